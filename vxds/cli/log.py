"""``vxds log``: the commits that changed a dataset's lock, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vxds.cli.options import format_option, root_option

EPILOG = """\b
Counts: +added -removed ~changed (metadata included) >moved, against the commit's
first parent. A commit that changed only the header (for example the source
snapshot) shows "header".

\b
Examples:
  vxds log viseg_training          every version
  vxds log viseg_training@2 -n 5   the last five changes of version 2
  vxds log clinical_cohort --format json
"""


def _record(entry: Any) -> dict[str, Any]:
    c = entry.commit
    return {
        "sha": c.hexsha,
        "short": c.short,
        "date": c.date,
        "author": c.author,
        "subject": c.subject,
        "datasets": [
            {
                "name": d.name,
                "old_version": d.old_version,
                "new_version": d.new_version,
                "status": d.status,
                "summary": d.counts(),
                "header": [h.field for h in d.header],
            }
            for d in entry.diffs
        ],
    }


@click.command("log", epilog=EPILOG)
@click.argument("dataset", metavar="NAME[@V]")
@click.option("-n", "--max-count", type=click.IntRange(min=1), default=None, help="Show at most N commits.")
@format_option
@root_option
def command(dataset: str, max_count: int | None, fmt: str, root: Path | None) -> int:
    """List the commits that changed the lock of NAME (or NAME@V), newest first."""
    from vxds.cli.output import print_json
    from vxds.git.history import log
    from vxds.project.config import load_config
    from vxds.report.text import change_words

    config = load_config(root)
    entries = list(log(config, dataset, max_count=max_count))
    if fmt == "json":
        print_json({"dataset": dataset, "commits": [_record(e) for e in entries]})
        return 0
    if not entries:
        click.echo(f"no commit changed the lock of {dataset}")
    for entry in entries:
        c = entry.commit
        changes = [
            f"{d.name}@{d.new_version or d.old_version} {change_words(d.counts())}"
            + (" header" if d.header else "")
            + ("" if d.status == "changed" else f" ({d.status})")
            for d in entry.diffs
        ] or ["(no change to the lock's content)"]
        date = c.date[:10]
        click.echo(f"{click.style(c.short, fg='yellow')}  {date}  {c.author}  {c.subject}")
        for words in changes:
            click.echo(f"         {words}")
    return 0
