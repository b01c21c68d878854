"""``vxds log``: the commits that changed a dataset's lock, or one resource, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vxds.cli.completion import complete_datasets
from vxds.cli.options import format_option, root_option

if TYPE_CHECKING:
    from vxds.git.history import IdEntry, LogEntry
    from vxds.locks.changes import Change
    from vxds.locks.diff import DatasetDiff

EPILOG = """\b
Counts are vxds diff's categories (added, removed, changed, metadata, moved), each
version against the same version at the commit's first parent; "header: FIELD"
names header fields that changed (for example the source snapshot).

\b
Examples:
  vxds log viseg_training          every version
  vxds log viseg_training@2 -n 5   the last five changes of version 2
  vxds log clinical_cohort --format json
  vxds log --id basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz
                                   one resource's history, in every dataset
"""


def _commit(entry: LogEntry | IdEntry) -> dict[str, Any]:
    c = entry.commit
    return {"sha": c.hexsha, "short": c.short, "date": c.date, "author": c.author, "subject": c.subject}


def _record(entry: LogEntry) -> dict[str, Any]:
    datasets = [
        {
            "name": d.name,
            "old_version": d.old_version,
            "new_version": d.new_version,
            "status": d.status,
            "summary": d.counts(),
            "header": [h.field for h in d.header],
        }
        for d in entry.diffs
    ]
    return {**_commit(entry), "datasets": datasets}


def _id_record(entry: IdEntry) -> dict[str, Any]:
    changes = [{"dataset": c.dataset, "version": c.version, **c.change.to_json()} for c in entry.changes]
    return {**_commit(entry), "changes": changes}


def diff_words(diff: DatasetDiff) -> str:
    """``viseg_training@2: 1 changed, 6 metadata; header: snapshot``, ``(first lock)`` when new."""
    from vxds.cli.lock import counted

    words = [w for w in [counted(diff.counts())] if w]
    if diff.header:
        words.append("header: " + ", ".join(h.field for h in diff.header))
    status = {"added": " (first lock)", "removed": " (lock removed)"}.get(diff.status, "")
    return f"{diff.name}@{diff.new_version or diff.old_version}: {'; '.join(words) or 'no change'}{status}"


def change_words(change: Change) -> str:
    """``metadata in train: attrs.age 49 -> 50``; digests short, long values cut."""
    from vxds.report.values import shown

    where = f"{change.from_split} -> {change.split}" if change.kind == "moved" else change.split
    fields = [f"{name} {shown(old)} -> {shown(new)}" for name, old, new in change.values() if name != "split"]
    return f"{change.kind} in {where}" + (f": {', '.join(fields)}" if fields else "")


def _header(entry: LogEntry | IdEntry) -> None:
    c = entry.commit
    click.echo(f"{click.style(c.short, fg='yellow')}  {c.date[:10]}  {c.author}  {c.subject}")


def _show_id(config: Any, rid: str, spec: str | None, max_count: int | None, fmt: str) -> int:
    from vxds.cli.output import print_json
    from vxds.git.history import id_log

    entries = list(id_log(config, rid, spec, max_count=max_count))
    if fmt == "json":
        print_json({"id": rid, "dataset": spec, "commits": [_id_record(e) for e in entries]})
        return 0
    if not entries:
        click.echo(f"no commit changed {rid}" + (f" in {spec}" if spec else ""))
    for entry in entries:
        _header(entry)
        for c in entry.changes:
            click.echo(f"         {c.dataset}@{c.version}: {change_words(c.change)}")
    return 0


@click.command("log", epilog=EPILOG)
@click.argument("dataset", metavar="[NAME[@V]]", required=False, shell_complete=complete_datasets)
@click.option("--id", "rid", metavar="ID", help="Show one resource's history: each commit that changed it.")
@click.option("-n", "--max-count", type=click.IntRange(min=1), default=None, help="Show at most N commits.")
@format_option
@root_option
def command(dataset: str | None, rid: str | None, max_count: int | None, fmt: str, root: Path | None) -> int:
    """List the commits that changed the lock of NAME (or NAME@V), or one resource, newest first."""
    from vxds.cli.output import print_json
    from vxds.errors import UsageError
    from vxds.git.history import log
    from vxds.project.config import load_config

    config = load_config(root)
    if rid is not None:
        return _show_id(config, rid, dataset, max_count, fmt)
    if dataset is None:
        raise UsageError("name a dataset (NAME or NAME@V), or a resource with --id ID")
    entries = list(log(config, dataset, max_count=max_count))
    if fmt == "json":
        print_json({"dataset": dataset, "commits": [_record(e) for e in entries]})
        return 0
    if not entries:
        click.echo(f"no commit changed the lock of {dataset}")
    for entry in entries:
        _header(entry)
        for words in [diff_words(d) for d in entry.diffs] or ["(no change to the lock's content)"]:
            click.echo(f"         {words}")
    return 0
