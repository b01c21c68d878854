"""``vxds new``: a recipe from a template, registered in datasets.yaml."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click

from vxds.cli.options import quiet_option, root_option
from vxds.errors import UsageError
from vxds.fs import atomic_write_text
from vxds.project.config import load_config
from vxds.project.manifest import load_manifest
from vxds.templates import read

NAME_RE = re.compile(r"[a-z0-9_-]+\Z")

EPILOG = """\b
Examples:
  vxds new lesion_seg --description "T2w with lesion masks"
  vxds new lesion_seg --version 2 --script recipes/lesion_seg.py   a new version, same recipe
"""


def _fields(
    name: str,
    version: int,
    description: str,
    script: str,
    entrypoint: str | None,
    source: str | None,
    group_by: str | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": name, "version": version}
    for key, value in (
        ("description", description),
        ("script_location", script),
        ("entrypoint", entrypoint),
        ("source", source),
        ("group_by", group_by),
    ):
        if value:
            fields[key] = value
    return fields


@click.command("new", epilog=EPILOG)
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--description", default="", help="One line saying what the dataset holds.")
@click.option(
    "--script",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use an existing recipe script instead of writing recipes/NAME.py.",
)
@click.option("--source", help="Source URL for this dataset (default: [tool.vxds] source).")
@click.option(
    "--group-by",
    default="attrs.subject",
    show_default=True,
    help="Field whose values must not span splits ('' for none).",
)
@quiet_option
@root_option
def command(
    name: str,
    version: int,
    description: str,
    script: Path | None,
    source: str | None,
    group_by: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Add dataset NAME: write recipes/NAME.py from a template and register it in datasets.yaml."""
    if not NAME_RE.match(name):
        raise UsageError(f"dataset name {name!r} must use only lower-case letters, digits, '_' and '-'")
    config = load_config(root)
    manifest_path = config.manifest
    text = manifest_path.read_text(encoding="utf-8") if manifest_path.exists() else read("datasets.yaml.txt")
    if manifest_path.exists():
        existing = load_manifest(manifest_path, default_source=config.source, require_scripts=False)
        if version in existing.versions(name):
            raise UsageError(
                f"{name}@{version} is already in {config.relative(manifest_path)}",
                hint=f"pick another --version (have: {existing.versions(name)})",
            )
    function = name.replace("-", "_")
    if script is None:
        script_path = manifest_path.parent / "recipes" / f"{name}.py"
        if script_path.exists():
            raise UsageError(
                f"{config.relative(script_path)} already exists",
                hint="pass --script to register it, or choose another name",
            )
        script_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            script_path,
            read("recipe.py.txt").format(
                name=name, function=function, description=description or f"The {name} dataset."
            ),
        )
    else:
        script_path = script if script.is_absolute() else Path.cwd() / script
        if not script_path.is_file():
            raise UsageError(f"--script {script}: no such file")
    location = "./" + Path(os.path.relpath(script_path, manifest_path.parent)).as_posix()
    from vxds.project.manifest_edit import with_entry

    fields = _fields(name, version, description, location, None if script else function, source, group_by)
    new_text = with_entry(text, manifest_path, fields)
    atomic_write_text(manifest_path, new_text)
    load_manifest(manifest_path, default_source=config.source)  # the edit must leave a valid manifest
    if not quiet:
        click.echo(f"created {config.relative(script_path)}" if script is None else f"using {script}")
        click.echo(f"registered {name}@{version} in {config.relative(manifest_path)}")
        click.echo(f"next: edit the recipe, then run 'vxds lock {name}@{version}'")
    return 0
