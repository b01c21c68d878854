"""Adding a dataset to a project (``vxds new``): a recipe from the template, and its entry
appended to ``datasets.yaml`` with a line-level edit, so comments and order survive."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vxds.errors import UsageError
from vxds.fs import atomic_write_text
from vxds.project.config import Config
from vxds.project.manifest import load_manifest
from vxds.templates import read

NAME_RE = re.compile(r"[a-z0-9_-]+\Z")


@dataclass(frozen=True)
class NewDataset:
    name: str
    version: int
    script: Path  # the recipe script the entry points to
    created: bool  # True when the script was written from the template
    manifest: Path


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise UsageError(f"dataset name {name!r} must use only lower-case letters, digits, '_' and '-'")


def add_dataset(
    config: Config,
    name: str,
    *,
    version: int = 1,
    description: str = "",
    script: Path | None = None,
    source: str | None = None,
    group_by: str | None = "attrs.subject",
) -> NewDataset:
    """Register ``name@version`` in the manifest (written from the template if there is none).

    Without ``script``, writes ``recipes/<name>.py`` beside the manifest from the recipe
    template; with one, registers that existing script (a relative path starts at the
    current folder). Raises ``UsageError`` when the version is taken, the recipe file exists
    or the script does not; the edited manifest must load, else ``ManifestError``.
    """
    check_name(name)
    manifest = config.manifest
    text = manifest.read_text(encoding="utf-8") if manifest.exists() else read("datasets.yaml.txt")
    if manifest.exists():
        _check_free(config, name, version)
    function = name.replace("-", "_")
    if script is None:
        script_path = _write_recipe(config, name, function, description)
    else:
        script_path = script if script.is_absolute() else Path.cwd() / script
        if not script_path.is_file():
            raise UsageError(f"--script {script}: no such file")
    location = "./" + Path(os.path.relpath(script_path, manifest.parent)).as_posix()
    from vxds.project.manifest_edit import with_entry

    fields = _fields(name, version, description, location, None if script else function, source, group_by)
    atomic_write_text(manifest, with_entry(text, manifest, fields))
    load_manifest(manifest, default_source=config.source)  # the edit must leave a valid manifest
    return NewDataset(name, version, script_path, script is None, manifest)


def _check_free(config: Config, name: str, version: int) -> None:
    existing = load_manifest(config.manifest, default_source=config.source, require_scripts=False)
    if version in existing.versions(name):
        raise UsageError(
            f"{name}@{version} is already in {config.relative(config.manifest)}",
            hint=f"pick another --version (have: {existing.versions(name)})",
        )


def _write_recipe(config: Config, name: str, function: str, description: str) -> Path:
    path = config.manifest.parent / "recipes" / f"{name}.py"
    if path.exists():
        raise UsageError(
            f"{config.relative(path)} already exists",
            hint="pass --script to register it, or choose another name",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = read("recipe.py.txt").format(
        name=name, function=function, description=description or f"The {name} dataset."
    )
    atomic_write_text(path, text)
    return path


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
