"""Opening a project: its ``[tool.vxds]`` configuration and its manifest, read together."""

from __future__ import annotations

from pathlib import Path

from vxds.project.config import Config, load_config
from vxds.project.manifest import Manifest, load_manifest


def open_project(root: str | Path | None, *, require_scripts: bool = True) -> tuple[Config, Manifest]:
    """The configuration found from ``root`` (or the current folder) and its manifest, checked;
    ``require_scripts=False`` for commands that never run a recipe."""
    config = load_config(Path(root) if root is not None else None)
    manifest = load_manifest(
        config.manifest,
        default_source=config.source,
        require_scripts=require_scripts,
        cache_dir=config.cache_dir,
    )
    return config, manifest
