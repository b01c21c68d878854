"""``vxds status``: the short form of ``vxds list --data``, with an exit code CI can use."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.list import record, with_drift
from vxds.cli.options import format_option, root_option
from vxds.cli.output import print_json, state
from vxds.locks.status import FRESH, FROZEN, MERGED, lock_status
from vxds.project.load import open_project

EPILOG = """\b
Examples:
  vxds status                     one line per dataset version; exit 1 if any needs work
  vxds status --no-data           lock states only (a clone without the data)
  vxds status --format json       {"clean", "datasets": [...]}
  vxds status || vxds lock --stale

\b
Each line: the lock's state as 'vxds list' shows it, then what the DATA column of
'vxds list --data' says (same, drifted, unreachable, unknown), then why.
Exit codes: 0 every lock fresh, frozen or merged and no source drifted; 1 a lock
is stale, missing or corrupt (relock it), or its source drifted; 2 bad input.
A lock merged by Git is shown as 'merged' (relock it before release) and fails
only with --strict, as verify's warning VX312 does. An unreachable source (a
clone without the data folder) is shown, not failed.
"""

CLEAN_STATES = (FRESH, FROZEN)


def is_clean(entry: dict[str, object], *, strict: bool = False) -> bool:
    """A lock needs no work: fresh or frozen (or merged by Git, unless ``strict``: it
    verifies, and is relocked before release), and its source did not drift since."""
    drift = entry.get("data")
    drifted = isinstance(drift, dict) and drift["state"] == "drifted"
    clean_states = CLEAN_STATES if strict else (*CLEAN_STATES, MERGED)
    return entry["state"] in clean_states and not drifted


def _line(entry: dict[str, object], width: int) -> str:
    """``stale    same        viseg_training@2  the recipe script ... changed``."""
    drift, word = entry.get("data"), str(entry["state"])
    data = str(drift["state"]) if isinstance(drift, dict) else "-"
    why = [*map(str, entry["reasons"])]  # type: ignore[call-overload]
    if isinstance(drift, dict) and drift["detail"] and drift["state"] != "same":
        why.append(str(drift["detail"]))
    key = f"{entry['name']}@{entry['version']}"
    line = f"{state(word)}{' ' * max(1, 9 - len(word))}{data:<12}{key:<{width}}"
    return f"{line}  {'; '.join(why)}" if why else line.rstrip()


def _summary(records: list[dict[str, object]]) -> str:
    work = sum(1 for entry in records if not entry["clean"])
    merged = sum(1 for entry in records if entry["clean"] and entry["state"] == MERGED)
    if work:
        return f"{work} of {len(records)} dataset version(s) need work: relock them ('vxds lock NAME@V')"
    if merged:
        return f"clean: {len(records)} dataset version(s), {merged} merged by Git: relock before release"
    return f"clean: {len(records)} dataset version(s)"


@click.command("status", epilog=EPILOG)
@click.option("--no-data", "no_data", is_flag=True, help="Do not read the sources: lock states only.")
@click.option(
    "--strict", is_flag=True, help="A lock merged by Git needs work too (exit 1), as verify --strict."
)
@format_option
@root_option
def command(no_data: bool, strict: bool, fmt: str, root: Path | None) -> int:
    """Lock state and data drift of every dataset version, one line each (no recipe is run)."""
    config, manifest = open_project(root, require_scripts=False)
    statuses = [lock_status(entry, config) for entry in manifest]
    records = [record(s) for s in statuses]
    if not no_data:
        with_drift(config, statuses, records)
    for entry in records:
        entry["clean"] = is_clean(entry, strict=strict)
    clean = all(entry["clean"] for entry in records)
    if fmt == "json":
        print_json({"clean": clean, "datasets": records})
    else:
        width = max((len(f"{e['name']}@{e['version']}") for e in records), default=0)
        for entry in records:
            click.echo(_line(entry, width))
        click.echo(_summary(records))
    return 0 if clean else 1
