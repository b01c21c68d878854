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
                             (at the Git root, added to its config as text, with the paths of
                             DIRECTORY when it is a subfolder)
  .gitignore                 ignores .vxds/ (vxds' local cache) and materialized/
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


IGNORED = (
    ("# vxds' local cache", ".vxds/"),
    ("# vxds materialize's default output (derived from the locks)", "materialized/"),
)


def _gitignore(path: Path) -> str:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip().strip("/") for line in text.splitlines()}
    missing = [(comment, entry) for comment, entry in IGNORED if entry.strip("/") not in present]
    if not missing:
        return "kept"
    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write_text(path, prefix + "".join(f"{comment}\n{entry}\n" for comment, entry in missing))
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


def _git_root(directory: Path) -> Path | None:
    """The work tree holding ``directory`` (a ``.git`` folder, or file in a linked worktree)."""
    here = directory.resolve()
    return next((folder for folder in (here, *here.parents) if (folder / ".git").exists()), None)


def _pre_commit(directory: Path) -> tuple[str, str]:
    """Where pre-commit reads its configuration (the Git root), with the hooks for DIRECTORY."""
    from vxds.project import precommit_config

    root = _git_root(directory) or directory.resolve()
    prefix = directory.resolve().relative_to(root).as_posix().removeprefix(".")
    config = root / ".pre-commit-config.yaml"
    name = f"{_shown(config)} (the Git root's)" if prefix else ".pre-commit-config.yaml"
    return name, precommit_config.write(config, prefix)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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
        _pre_commit(directory),
        (".gitignore", _gitignore(directory / ".gitignore")),
        *_merge_driver(directory),
    ]
    if not quiet:
        for name, action in actions:
            click.echo(f"{click.style(f'{action:>8}', fg='green' if action != 'kept' else None)}  {name}")
        for step in _next_steps(directory, dict(actions)):
            click.echo(f"next: {step}")
    return 0


def _next_steps(directory: Path, actions: dict[str, str]) -> list[str]:
    """What the user does after init: the merge driver, pre-commit, a source, a first dataset."""
    from vxds.project.config import load_config

    steps = []
    if actions.get("git config merge.vxds") == "skipped":
        steps.append("after 'git init', run 'vxds install' to register the merge driver")
    config = next(name for name in actions if ".pre-commit-config.yaml" in name)
    if actions[config] == "skipped":
        steps.append(
            f"add the vxds hooks to {config} by hand: its repos: is not a block list (docs/pre-commit.md)"
        )
    else:
        steps.append("pre-commit install   (pip install pre-commit; the vxds hooks then run on every commit)")
    if not load_config(directory.resolve()).source:
        pyproject = _shown(directory.resolve() / "pyproject.toml")
        steps.append(f'set source = "./data" (a folder, s3://..., catalog:...) in [tool.vxds] of {pyproject}')
    steps.append("vxds new NAME   (adds a recipe and registers it in datasets.yaml)")
    return steps
