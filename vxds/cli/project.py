"""Finding the project and its manifest for a command."""

from __future__ import annotations

from pathlib import Path

from vxds.project.config import Config, load_config
from vxds.project.manifest import Manifest, load_manifest


def open_project(root: Path | None, *, require_scripts: bool = True) -> tuple[Config, Manifest]:
    config = load_config(root)
    manifest = load_manifest(
        config.manifest,
        default_source=config.source,
        require_scripts=require_scripts,
        cache_dir=config.cache_dir,
    )
    return config, manifest
