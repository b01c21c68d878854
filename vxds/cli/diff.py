"""``vxds diff``: what changed between two sets of locks."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import by_option, root_option

EPILOG = """\b
What to compare (each side is every lock, or the ones chosen with -d):
  vxds diff                                   the working tree against HEAD
  vxds diff v1                                tag v1 against the working tree
  vxds diff HEAD~2 HEAD                       two revisions
  vxds diff origin/main...HEAD                the merge base of the two against HEAD
  vxds diff viseg_training@1 viseg_training@2 two versions in the working tree
  vxds diff main:viseg_training@1 viseg_training@1
  vxds diff locks/viseg_training/1 /tmp/other/lock-folder
  vxds diff old/resources.train.jsonl new/resources.train.jsonl

\b
Lines: + added, - removed, ~ changed (version, hash, size, uri or type),
= metadata (attrs only), > moved to another split.
Exit codes: 0 (with --exit-code: nothing differs), 1 something differs (with
--exit-code), 2 bad input: an unknown revision or dataset, a corrupt lock.
"""

STYLES = {
    "added": {"fg": "green"},
    "removed": {"fg": "red"},
    "changed": {"fg": "yellow"},
    "metadata": {"fg": "cyan"},
    "moved": {"fg": "magenta"},
    "hunk": {"fg": "cyan", "bold": True},
    "header": {"bold": True},
    "warning": {"fg": "yellow", "bold": True},
    "summary": {"bold": True},
    "dim": {"dim": True},
}


def paint(text: str, role: str) -> str:
    return click.style(text, **STYLES.get(role, {}))  # type: ignore[arg-type]


@click.command("diff", epilog=EPILOG)
@click.argument("sides", nargs=-1, metavar="[OLD [NEW]]")
@click.option("--dataset", "-d", "datasets", multiple=True, metavar="NAME[@V]", help="Only these datasets.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text (git-like), json (see docs/diff.md) or markdown (a pull-request comment).",
)
@click.option("--stat", is_flag=True, help="Counts only, no resource lines (text).")
@click.option("--name-only", is_flag=True, help="Only the ids that differ, one per line.")
@by_option
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Longest list in a Markdown report; the rest is counted.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything differs, 0 when nothing does.")
@root_option
def command(
    sides: tuple[str, ...],
    datasets: tuple[str, ...],
    fmt: str,
    stat: bool,
    name_only: bool,
    by: tuple[str, ...],
    max_rows: int,
    exit_code: bool,
    root: Path | None,
) -> int:
    """Show what changed between two locks: resources added, removed, changed, moved.

    OLD and NEW are Git revisions, NAME@VERSION in the working tree, REV:NAME@VERSION, or
    paths to lock folders or resources.<split>.jsonl files. Nothing is checked out and the
    repository is never modified.
    """
    from vxds.errors import UsageError
    from vxds.locks.diff import diff_sides
    from vxds.locks.refs import SideFinder, select
    from vxds.project.config import load_config

    config = load_config(root)
    old, new = SideFinder(config).sides(list(sides))
    for spec in datasets:
        if not select(old, [spec]).locks and not select(new, [spec]).locks:
            raise UsageError(f"-d {spec}: no lock for it in {old.label} or {new.label}")
    old, new = select(old, list(datasets)), select(new, list(datasets))
    diffs = diff_sides(old, new, by=by)
    if name_only:
        from vxds.report.text import names

        for line in names(diffs):
            click.echo(line)
    elif fmt == "json":
        from vxds.cli.output import print_json
        from vxds.report.jsonreport import document

        print_json(document(diffs, old=old.label, new=new.label))
    elif fmt == "markdown":
        from vxds.report.markdown import render as markdown

        click.echo(markdown(diffs, old=old.label, new=new.label, max_rows=max_rows), nl=False)
    else:
        from vxds.report.text import render

        if not diffs:
            click.echo(f"no locks in {old.label} or {new.label}")
        for line in render(diffs, paint=paint, stat=stat):
            click.echo(line)
    differs = any(not d.empty for d in diffs)
    return 1 if exit_code and differs else 0
