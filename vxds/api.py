"""Reading locks from Python code such as a training script."""

from __future__ import annotations

from pathlib import Path

from vxds.config import load_config
from vxds.lockfile import Lock, lock_dir, read_lock
from vxds.manifest import load_manifest, parse_spec


def load_lock(spec: str | Path, *, root: str | Path | None = None) -> Lock:
    """A checked lock from ``"name@version"`` (or ``"name"``: the highest) or a lock folder.

    ``root`` is the project folder (default: found from the current directory).
    """
    path = Path(spec)
    if isinstance(spec, Path) or (path / "lock.toml").is_file():
        return read_lock(path)
    config = load_config(Path(root) if root is not None else None)
    manifest = load_manifest(config.manifest, default_source=config.source, require_scripts=False)
    entry = manifest.find(*parse_spec(str(spec)))
    return read_lock(lock_dir(config.locks, entry.name, entry.version))
