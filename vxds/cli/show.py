"""``vxds show``: what a lock holds, counted per split, type and chosen attributes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from vxds.cli.completion import complete_datasets
from vxds.cli.options import by_option, format_option, root_option
from vxds.cli.output import print_json, table
from vxds.locks.store import Lock, lock_dir, read_lock
from vxds.project.load import open_project
from vxds.project.manifest import parse_spec
from vxds.resource import lookup

EPILOG = """\b
Examples:
  vxds show viseg_training                 the highest version
  vxds show viseg_training@1 --by attrs.site --by attrs.suffix
  vxds show clinical_cohort --format json
"""


def _key(value: Any) -> str:
    return "(none)" if value is None else str(value)


def count(lock: Lock, by: tuple[str, ...]) -> dict[str, Any]:
    """Counts per split: total, per type, and per value of each ``by`` field."""
    splits: dict[str, Any] = {}
    for name, split in sorted(lock.splits.items()):
        types: Counter[str] = Counter()
        fields: dict[str, Counter[str]] = {field: Counter() for field in by}
        for resource in split.resources():
            types[resource.type] += 1
            record = resource.to_record()
            for field in by:
                fields[field][_key(lookup(record, field))] += 1
        splits[name] = {
            "count": split.count,
            "types": dict(sorted(types.items())),
            "by": {f: dict(sorted(c.items())) for f, c in fields.items()},
        }
    return splits


@click.command("show", epilog=EPILOG)
@click.argument("dataset", metavar="NAME[@VERSION]", shell_complete=complete_datasets)
@by_option
@format_option
@root_option
def command(dataset: str, by: tuple[str, ...], fmt: str, root: Path | None) -> int:
    """Count a lock's resources per split, type and attribute."""
    config, manifest = open_project(root, require_scripts=False)
    entry = manifest.find(*parse_spec(dataset))
    # deep: a lock resealed by hand has matching digests and any lines at all
    lock = read_lock(lock_dir(config.locks, entry.name, entry.version), deep=True)
    splits = count(lock, by)
    if fmt == "json":
        print_json(
            {
                "name": entry.name,
                "version": entry.version,
                "digest": lock.digest,
                "snapshot": lock.header.snapshot,
                "splits": splits,
            }
        )
        return 0
    total = sum(s["count"] for s in splits.values())
    click.secho(f"{entry.key}: {total} resources in {len(splits)} splits", bold=True)
    if entry.description:
        click.echo(entry.description)
    types = sorted({t for s in splits.values() for t in s["types"]})
    click.echo()
    rows = [[t, *(str(s["types"].get(t, 0)) for s in splits.values())] for t in types]
    rows.append(["total", *(str(s["count"]) for s in splits.values())])
    click.echo(table(rows, ["TYPE", *splits]))
    for field in by:
        values = sorted({v for s in splits.values() for v in s["by"][field]})
        click.echo()
        click.echo(
            table(
                [[v, *(str(s["by"][field].get(v, 0)) for s in splits.values())] for v in values],
                [field.upper(), *splits],
            )
        )
    return 0
