"""``vxds install``: register vxds' Git merge driver in an existing repository."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import quiet_option, root_option

EPILOG = """\b
Examples:
  vxds install                    register the driver in this clone
  vxds install -C ml/datasets     for the project in a subfolder of a monorepo

\b
Writes, in the repository that holds the project:
  git config merge.vxds.name / merge.vxds.driver   (local to this clone)
  .gitattributes                                   lock files use the driver

Run it once per clone: Git does not copy configuration when cloning. Where
'vxds' is not on PATH when Git merges, the driver says so on standard error and
leaves the lock file in a plain text conflict.
"""


# Git runs the driver with sh. Where 'vxds' is not on PATH (an IDE or GUI started without
# the project's environment), the file gets Git's plain text merge, is always left in
# conflict (a text merge of a lock cannot be trusted, even when it is clean) and standard
# error says why, rather than a silent plain conflict.
NOT_ON_PATH = (
    "vxds merge driver: 'vxds' is not on PATH (activate the project's environment), so %P was "
    "merged as plain text and left in conflict; resolve it, or run 'vxds lock' where vxds is found"
)
DRIVER_COMMAND = (
    "command -v vxds >/dev/null 2>&1 && exec vxds merge-driver %O %A %B %P; "
    f'echo "{NOT_ON_PATH}" >&2; git merge-file -L ours -L base -L theirs %A %O %B; exit 1'
)


def install(root: Path, locks: Path) -> list[tuple[str, str]]:
    """Register the merge driver; return (what, action) pairs."""
    from vxds.git.merge_driver import DRIVER, DRIVER_NAME, add_attributes
    from vxds.git.repo import Repository

    repo = Repository(root)
    section = f'merge "{DRIVER}"'
    changed = repo.set_config(section, "name", DRIVER_NAME) | repo.set_config(
        section, "driver", DRIVER_COMMAND
    )
    attributes = add_attributes(repo.root / ".gitattributes", repo.relative(locks))
    return [
        (f"git config merge.{DRIVER}.driver", "set" if changed else "kept"),
        (".gitattributes", "updated" if attributes else "kept"),
    ]


@click.command("install", epilog=EPILOG)
@root_option
@quiet_option
def command(root: Path | None, quiet: bool) -> int:
    """Register the lock merge driver with Git for this repository."""
    from vxds.project.config import load_config

    config = load_config(root)
    for name, action in install(config.root, config.locks):
        if not quiet:
            click.echo(f"{click.style(f'{action:>8}', fg='green' if action != 'kept' else None)}  {name}")
    return 0
