"""``vxds init``: scaffold a vxds repository, never overwriting what is there."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import quiet_option
from vxds.fs import atomic_write_text
from vxds.templates import read

EPILOG = """\b
Creates, where missing:
  datasets.yaml              the manifest (with a commented example)
  recipes/  locks/           recipe scripts and committed locks
  pyproject.toml             a [tool.vxds] table (added to an existing file, comments kept)
  .pre-commit-config.yaml    hooks: check datasets.yaml, relock what changed, verify every lock
  .gitignore                 ignores .vxds/, vxds' local cache
  .gitattributes             lock files merge by resource id (vxds merge-driver)
  git config merge.vxds.*    the merge driver itself, when DIRECTORY is in a Git repository

\b
Examples:
  vxds init --source ./data && vxds new my_dataset && vxds lock --all
  vxds init ml/datasets --source s3://bucket/scans   a project in a monorepo's subfolder
"""


def _pyproject(path: Path, source: str | None) -> str:
    import tomlkit

    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    tool = document.get("tool")
    if tool is not None and "vxds" in tool:
        return "kept"
    table = tomlkit.table()
    table.add("manifest", "datasets.yaml")
    table.add("locks", "locks")
    if source:
        table.add("source", source)
    if tool is None:
        tool = tomlkit.table(is_super_table=True)
        document.add("tool", tool)
    tool.add("vxds", table)
    existed = path.exists()
    atomic_write_text(path, tomlkit.dumps(document))
    return "updated" if existed else "created"


def _gitignore(path: Path) -> str:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if any(line.strip() in (".vxds", ".vxds/", "/.vxds/") for line in text.splitlines()):
        return "kept"
    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write_text(path, prefix + "# vxds' local cache\n.vxds/\n")
    return "updated" if text else "created"


def _file(path: Path, text: str) -> str:
    if path.exists():
        return "kept"
    atomic_write_text(path, text)
    return "created"


def _folder(path: Path) -> str:
    if path.is_dir():
        return "kept"
    path.mkdir(parents=True)
    (path / ".gitkeep").touch()
    return "created"


def _merge_driver(directory: Path) -> list[tuple[str, str]]:
    """Register the lock merge driver; outside Git, only its .gitattributes lines."""
    from vxds.cli.install import install
    from vxds.errors import VxdsError
    from vxds.git.merge_driver import add_attributes

    try:
        return [(name, action) for name, action in install(directory, directory / "locks")]
    except VxdsError:  # not a Git repository (yet): 'vxds install' after 'git init' finishes it
        changed = add_attributes(directory / ".gitattributes", "locks")
        return [(".gitattributes", "updated" if changed else "kept"), ("git config merge.vxds", "skipped")]


@click.command("init", epilog=EPILOG)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--source", help="Default source URL for [tool.vxds], e.g. ./data or s3://bucket/prefix.")
@quiet_option
def command(directory: Path, source: str | None, quiet: bool) -> int:
    """Scaffold a vxds repository in DIRECTORY (default: here)."""
    directory.mkdir(parents=True, exist_ok=True)
    actions = [
        ("datasets.yaml", _file(directory / "datasets.yaml", read("datasets.yaml.txt"))),
        ("recipes/", _folder(directory / "recipes")),
        ("locks/", _folder(directory / "locks")),
        ("pyproject.toml", _pyproject(directory / "pyproject.toml", source)),
        (
            ".pre-commit-config.yaml",
            _file(directory / ".pre-commit-config.yaml", read("pre-commit-config.yaml.txt")),
        ),
        (".gitignore", _gitignore(directory / ".gitignore")),
        *_merge_driver(directory),
    ]
    if not quiet:
        for name, action in actions:
            click.echo(f"{click.style(f'{action:>8}', fg='green' if action != 'kept' else None)}  {name}")
        if any(action == "skipped" for _, action in actions):
            click.echo(
                "not a Git repository: after 'git init', run 'vxds install' to register the merge driver"
            )
        click.echo("next: vxds new NAME   (adds a recipe and registers it in datasets.yaml)")
    return 0
