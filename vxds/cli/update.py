"""``vxds update``: move imported datasets to the newest commit of their registry revision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vxds.cli.options import quiet_option, root_option

if TYPE_CHECKING:
    from vxds.project.config import Config
    from vxds.project.manifest import Entry

EPILOG = """\b
Examples:
  vxds update viseg_training             the newest commit of its rev (a branch or tag)
  vxds update viseg_training --rev v4    follow another rev from now on
  vxds update --all --check              exit 1 when any import is behind (for CI)

The change is printed as 'vxds diff' prints it. An unreachable registry is exit 2.
"""


@click.command("update", epilog=EPILOG)
@click.argument("datasets", nargs=-1, metavar="[NAME[@V]]...")
@click.option("--all", "every", is_flag=True, help="Every imported dataset.")
@click.option("--rev", default=None, metavar="REV", help="Follow this branch, tag or commit instead.")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when an import is behind its rev.")
@quiet_option
@root_option
def command(
    datasets: tuple[str, ...], every: bool, rev: str | None, check: bool, quiet: bool, root: Path | None
) -> int:
    """Move imports to the newest commit of their rev and print what changed."""
    from vxds.errors import UsageError
    from vxds.project.config import load_config
    from vxds.registry.imports import imported_entries

    if bool(datasets) == every:
        raise UsageError("name the imported datasets to update, or give --all")
    config = load_config(root)
    entries = imported_entries(config, list(datasets))
    if check:
        return _check(entries, quiet=quiet)
    for entry in entries:
        _update(config, entry, rev, quiet=quiet)
    return 0


def _check(entries: list[Entry], *, quiet: bool) -> int:
    from vxds.registry.imports import check_behind

    states = [check_behind(entry) for entry in entries]
    for state in states if not quiet else ():
        if state.behind:
            moved = f"{state.commit[:12]} -> {state.latest[:12]}"
            click.echo(f"{click.style('  behind', fg='yellow')}  {state.key}: {moved}")
        else:
            click.echo(f"{click.style(' current', fg='green')}  {state.key} at {state.commit[:12]}")
    return 1 if any(state.behind for state in states) else 0


def _update(config: Config, entry: Entry, rev: str | None, *, quiet: bool) -> None:
    from vxds.cli.diff import paint
    from vxds.registry.imports import update_import
    from vxds.report.text import render

    done = update_import(config, entry, rev=rev)
    if quiet:
        return
    new = done.block["commit"]
    if new == done.old_commit:
        click.echo(f"{click.style('current', fg='green')}  {done.key} at {new[:12]}")
        return
    click.echo(
        f"{click.style('updated', fg='green')}  {done.key}: {(done.old_commit or '')[:12]} -> {new[:12]}"
    )
    assert done.diff is not None
    for line in render([done.diff], paint=paint, stat=False):
        click.echo(line)
