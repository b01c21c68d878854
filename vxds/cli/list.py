"""``vxds list``: each dataset and version with the state of its lock."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import format_option, root_option
from vxds.cli.output import print_json, state, table
from vxds.locks.status import LockStatus, lock_status
from vxds.project.config import Config
from vxds.project.load import open_project

EPILOG = """\b
Examples:
  vxds list                       every dataset version and the state of its lock
  vxds list --data                and whether each lock's source changed since
  vxds list --format json         the same as one JSON document
  vxds status                     the short form, exit 1 when anything needs work

\b
States:
  fresh    the lock matches its recipe, params and manifest entry
  stale    the recipe script, params or entry changed since it was locked
  merged   fresh, but written by the Git merge driver: relock before release
  frozen   closed by 'vxds bump': the lock is kept as published, never relocked
  missing  no lock has been written yet
  corrupt  the lock cannot be read or a digest does not match its content

\b
With --data, the DATA column says whether the source changed since the lock
(from the stat caches: only files whose size or mtime changed are hashed):
  same         the source's snapshot is the one locked
  drifted      the source changed: 'vxds verify --data' says which resources
  unreachable  the source cannot be read (a clone without the data folder)
  unknown      the lock records no single source snapshot
"""


def record(status: LockStatus) -> dict[str, object]:
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


def with_drift(config: Config, statuses: list[LockStatus], records: list[dict[str, object]]) -> None:
    """The DATA column: each lock's source against its snapshot now (each source read once)."""
    from vxds.verify.drift import Drift, source_drift

    seen: dict[str, str | Drift] = {}
    for status, row in zip(statuses, records, strict=True):
        drift = source_drift(config, status.header, seen) if status.header is not None else None
        row["data"] = None if drift is None else {"state": drift.state, "detail": drift.detail}


def _notes(record: dict[str, object]) -> list[str]:
    """The reasons under a row: why the lock is not fresh, and what the DATA column found."""
    drift = record.get("data")
    detail = [str(drift["detail"])] if isinstance(drift, dict) and drift["detail"] else []
    return [*map(str, record["reasons"]), *detail]  # type: ignore[call-overload]


@click.command("list", epilog=EPILOG)
@click.option("--data", "data", is_flag=True, help="Add a DATA column: did the source change since the lock?")
@format_option
@root_option
def command(data: bool, fmt: str, root: Path | None) -> int:
    """List datasets with the state of their locks (no recipe is run)."""
    config, manifest = open_project(root, require_scripts=False)
    statuses = [lock_status(entry, config) for entry in manifest]
    records = [record(s) for s in statuses]
    if data:
        with_drift(config, statuses, records)
    if fmt == "json":
        print_json({"datasets": records})
        return 0
    if not records:
        click.echo(f"no datasets in {config.relative(config.manifest)}; add one with 'vxds new NAME'")
        return 0
    click.echo(table([_row(r, data) for r in records], _headers(data)))
    for r in records:
        for reason in _notes(r):
            click.secho(f"  {r['name']}@{r['version']}: {reason}", dim=True)
    return 0


def _headers(data: bool) -> list[str]:
    return ["DATASET", "VERSION", "STATE", *(["DATA"] if data else []), "RESOURCES", "DESCRIPTION"]


def _row(r: dict[str, object], data: bool) -> list[str]:
    drift = r.get("data")
    shown = [str(drift["state"]) if isinstance(drift, dict) else ""] if data else []
    resources = "" if r["resources"] is None else str(r["resources"])
    return [
        str(r["name"]),
        str(r["version"]),
        state(str(r["state"])),
        *shown,
        resources,
        str(r["description"]),
    ]
