"""``vxds completion bash|zsh|fish``: the shell completion script, through click's own.

The script calls ``vxds`` back with ``_VXDS_COMPLETE`` set (click's protocol); commands and
options complete from the click group, and dataset arguments (``NAME[@VERSION]``) from the
project's manifest through ``complete_datasets``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # click.shell_completion is imported when completing: every command imports this
    from click.shell_completion import CompletionItem, ShellComplete

SHELLS = ("bash", "zsh", "fish")
ENV_VAR = "_VXDS_COMPLETE"

EPILOG = """\b
Examples:
  vxds completion bash > ~/.local/share/bash-completion/completions/vxds
  vxds completion zsh > "${fpath[1]}/_vxds"        (or: eval "$(vxds completion zsh)" in ~/.zshrc)
  vxds completion fish > ~/.config/fish/completions/vxds.fish
  eval "$(vxds completion bash)"                    this shell only (or put it in ~/.bashrc)

Completes commands, options and, for NAME[@VERSION] arguments, the datasets and versions
of the project's manifest (found from the current folder, -C DIR or --root DIR).
"""


def _project_root(ctx: click.Context) -> Path | None:
    """The folder the command would run in: ``--root``, else the global ``-C``, else here."""
    root: Path | None = ctx.params.get("root")
    directory: Path | None = ctx.find_root().params.get("directory")
    if root is not None:
        return (directory or Path()) / root
    return directory


def dataset_keys(root: Path | None) -> list[str]:
    """Every ``NAME`` and ``NAME@VERSION`` of the manifest, or none outside a readable project."""
    from vxds.errors import VxdsError
    from vxds.project.config import find_root
    from vxds.project.load import open_project

    try:
        _, manifest = open_project(find_root(root) if root is not None else None, require_scripts=False)
    except (VxdsError, OSError):  # completion never fails: no project, no candidates
        return []
    keys: dict[str, None] = {}
    for entry in manifest:
        keys[entry.name] = None
        keys[f"{entry.name}@{entry.version}"] = None
    return list(keys)


def complete_datasets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``shell_complete`` for a ``NAME[@VERSION]`` argument."""
    from click.shell_completion import CompletionItem

    keys = dataset_keys(_project_root(ctx))
    return [CompletionItem(key) for key in keys if key.startswith(incomplete)]


@click.command("completion", epilog=EPILOG)
@click.argument("shell", type=click.Choice(list(SHELLS)))
def command(shell: str) -> int:
    """Print the completion script for SHELL (bash, zsh or fish)."""
    from click.shell_completion import BashComplete, FishComplete, ZshComplete

    from vxds.cli.main import cli

    shells: dict[str, type[ShellComplete]] = {"bash": BashComplete, "zsh": ZshComplete, "fish": FishComplete}
    click.echo(shells[shell](cli, {}, "vxds", ENV_VAR).source(), nl=False)
    return 0
