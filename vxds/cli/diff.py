"""``vxds diff``: what changed between two sets of locks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from vxds.cli.completion import complete_datasets
from vxds.cli.options import by_option, root_option

if TYPE_CHECKING:
    from vxds.locks.diff import DatasetDiff
    from vxds.locks.refs import Side
    from vxds.project.config import Config

EPILOG = """\b
Examples (each side is every lock, or the ones chosen with -d):
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
Every lock of NEW is also checked against its recipe, params and manifest entry
(no recipe runs): a stale or missing lock is reported in every format.
Exit codes: 0 (with --exit-code: nothing differs and no lock is stale or missing),
1 something differs or a lock is stale or missing (with --exit-code), 2 bad input:
an unknown revision or dataset, a corrupt lock.
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
@click.argument("sides", nargs=-1, metavar="[OLD [NEW]]", shell_complete=complete_datasets)
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
@click.option(
    "--hide-unchanged/--show-unchanged",
    default=None,
    help="Leave datasets with no change out of the summary (default: hidden in Markdown only).",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when anything differs or a lock on the new side is stale or missing, 0 otherwise.",
)
@root_option
def command(
    sides: tuple[str, ...],
    datasets: tuple[str, ...],
    fmt: str,
    stat: bool,
    name_only: bool,
    by: tuple[str, ...],
    max_rows: int,
    hide_unchanged: bool | None,
    exit_code: bool,
    root: Path | None,
) -> int:
    """Show what changed between two locks: resources added, removed, changed, moved.

    OLD and NEW are Git revisions, NAME@VERSION in the working tree, REV:NAME@VERSION, or
    paths to lock folders or resources.<split>.jsonl files. Nothing is checked out and the
    repository is never modified.
    """
    from vxds.git.freshness import with_freshness
    from vxds.locks.diff import diff_sides
    from vxds.project.config import load_config

    config = load_config(root)
    old, new = _sides(config, sides, datasets)
    diffs = with_freshness(config, new, diff_sides(old, new, by=by))
    hide = fmt == "markdown" if hide_unchanged is None else hide_unchanged
    labels = Labels(old.label, new.label, title(old), title(new))
    _render(diffs, labels, fmt=fmt, name_only=name_only, stat=stat, max_rows=max_rows, hide=hide)
    failed = any(not d.empty or d.needs_relock for d in diffs)
    return 1 if exit_code and failed else 0


class Labels(NamedTuple):
    old: str
    new: str
    old_title: str  # with the commit: main@1a2b3c4
    new_title: str


def title(side: Side) -> str:
    """A side as the Markdown title names it: a revision with its short commit."""
    if side.commit is None:
        return side.label
    match = re.fullmatch(r"merge-base\((.*), .*\)", side.label)
    return f"{match.group(1) if match else side.label}@{side.commit[:7]}"


def _sides(config: Config, sides: tuple[str, ...], datasets: tuple[str, ...]) -> tuple[Side, Side]:
    """The two sides to compare, narrowed to ``datasets``; each one must be in either side."""
    from vxds.errors import UsageError
    from vxds.locks.sides import SideFinder, select

    old, new = SideFinder(config).sides(list(sides))
    for spec in datasets:
        if not select(old, [spec]).locks and not select(new, [spec]).locks:
            raise UsageError(f"-d {spec}: no lock for it in {old.label} or {new.label}")
    return select(old, list(datasets)), select(new, list(datasets))


def _render(
    diffs: list[DatasetDiff],
    labels: Labels,
    *,
    fmt: str,
    name_only: bool,
    stat: bool,
    max_rows: int,
    hide: bool,
) -> None:
    """Print the diffs: the ids only (--name-only), or as ``json``, ``markdown`` or ``text``."""
    if name_only:
        from vxds.report.text import names

        for line in names(diffs):
            click.echo(line)
    elif fmt == "json":
        from vxds.cli.output import print_json
        from vxds.report.jsonreport import document

        print_json(document(diffs, old=labels.old, new=labels.new))
    elif fmt == "markdown":
        from vxds.report.markdown import render as markdown

        old, new = labels.old_title, labels.new_title
        click.echo(markdown(diffs, old=old, new=new, max_rows=max_rows, hide_unchanged=hide), nl=False)
    else:
        from vxds.report.text import render

        if not diffs:
            click.echo(f"no locks in {labels.old} or {labels.new}")
        for line in render(diffs, paint=paint, stat=stat, hide_unchanged=hide):
            click.echo(line)
