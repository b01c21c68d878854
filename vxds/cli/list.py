"""``vxds list``: each dataset and version with the state of its lock."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import format_option, root_option
from vxds.cli.output import print_json, state, table
from vxds.locks.status import LockStatus, lock_status
from vxds.project.load import open_project

EPILOG = """\b
States:
  fresh    the lock matches its recipe, params and manifest entry
  stale    the recipe script, params or entry changed since it was locked
  merged   fresh, but written by the Git merge driver: relock before release
  frozen   closed by 'vxds bump': the lock is kept as published, never relocked
  missing  no lock has been written yet
  corrupt  the lock cannot be read or a digest does not match its content
"""


def _record(status: LockStatus) -> dict[str, object]:
    counts = {name: count for name, (count, _) in status.header.splits.items()} if status.header else None
    return {
        "name": status.entry.name,
        "version": status.entry.version,
        "description": status.entry.description,
        "state": status.state,
        "reasons": list(status.reasons),
        "resources": sum(counts.values()) if counts is not None else None,
        "splits": counts or {},
    }


@click.command("list", epilog=EPILOG)
@format_option
@root_option
def command(fmt: str, root: Path | None) -> int:
    """List datasets with the state of their locks (no recipe is run)."""
    config, manifest = open_project(root, require_scripts=False)
    records = [_record(lock_status(entry, config)) for entry in manifest]
    if fmt == "json":
        print_json({"datasets": records})
        return 0
    if not records:
        click.echo(f"no datasets in {config.relative(config.manifest)}; add one with 'vxds new NAME'")
        return 0
    rows = [
        [
            str(r["name"]),
            str(r["version"]),
            state(str(r["state"])),
            "" if r["resources"] is None else str(r["resources"]),
            str(r["description"]),
        ]
        for r in records
    ]
    click.echo(table(rows, ["DATASET", "VERSION", "STATE", "RESOURCES", "DESCRIPTION"]))
    for r in records:
        for reason in r["reasons"]:  # type: ignore[attr-defined]
            click.secho(f"  {r['name']}@{r['version']}: {reason}", dim=True)
    return 0
