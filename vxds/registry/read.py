"""A registry's manifest and locks read from the Git objects of a fetched commit.

The registry is a vxds project: its ``datasets.yaml`` and ``locks/`` are where its own
``pyproject.toml``'s ``[tool.vxds]`` puts them (``manifest``, ``locks``), at the top of the
repository by default. Only the blobs read are fetched (``fetch.fetch_paths``): that
pyproject.toml, the manifest, and the one lock folder, read through ``vxds.locks.refs``
(format 1 or the sharded format 2, every line checked against the header's counts and
digests).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from pathlib import Path

from vxds.errors import ManifestError, NotFoundError
from vxds.git.repo import Repository
from vxds.locks.refs import lock_in_tree, whole_lock
from vxds.locks.store import Lock
from vxds.project.config import DEFAULTS
from vxds.project.manifest import Entry, Manifest, load_manifest
from vxds.registry.fetch import RegistryError, fetch_paths


class BareRepository(Repository):
    """The registry cache: a bare repository, read only through Git objects."""

    def __init__(self, bare: Path) -> None:  # no super().__init__: it refuses a bare repository
        import git

        self.repo = git.Repo(bare)
        self.root = bare.resolve()


@dataclass(frozen=True)
class RegistryLock:
    """The lock of ``entry`` in a registry at one commit."""

    entry: Entry
    lock: Lock

    def as_local(self, name: str) -> Lock:
        """The lock renamed to ``name`` (``--as``); everything else is the registry's bytes."""
        return Lock(replace(self.lock.header, name=name), self.lock.splits)


@dataclass(frozen=True)
class Layout:
    """Where a registry keeps its manifest and locks, as paths inside the repository."""

    manifest: str = DEFAULTS["manifest"]
    locks: str = DEFAULTS["locks"]
    source: str | None = None


def registry_lock(bare: Path, commit: str, url: str, name: str, version: int | None) -> RegistryLock:
    """``name@version`` (no version: the highest the registry's manifest declares) at ``commit``."""
    repo, label = BareRepository(bare), f"{url}@{commit[:12]}"
    layout = registry_layout(repo, bare, commit, label)
    manifest = _manifest(repo, bare, commit, layout, label)
    entry = manifest.find(name, version)
    folder = posixpath.join(layout.locks, entry.name, str(entry.version))
    fetch_paths(bare, commit, [folder])
    ref = lock_in_tree(repo, commit, folder, f"{label}:{folder}")
    if ref is None:
        raise NotFoundError(f"registry {label}: no lock for {entry.key} in {folder}/")
    return RegistryLock(entry, whole_lock(ref))


def registry_layout(repo: Repository, bare: Path, commit: str, label: str) -> Layout:
    """The registry's ``[tool.vxds]`` manifest, locks and source (the defaults without one)."""
    fetch_paths(bare, commit, ["pyproject.toml"])
    blob = repo.blob(commit, "pyproject.toml")
    if blob is None:
        return Layout()
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        document = tomlkit.parse(repo.read(blob).decode("utf-8")).unwrap()
    except (UnicodeDecodeError, TOMLKitError) as exc:
        raise RegistryError(f"registry {label}: pyproject.toml cannot be read: {exc}") from None
    table = document.get("tool", {}).get("vxds", {})
    if not isinstance(table, dict):
        raise RegistryError(f"registry {label}: pyproject.toml [tool.vxds] is not a table")
    found = {key: _inside(label, key, table[key]) for key in ("manifest", "locks") if key in table}
    source = table.get("source")
    return Layout(**found, source=source if isinstance(source, str) else None)


def _inside(label: str, key: str, value: object) -> str:
    """A ``[tool.vxds]`` path of the registry, which must stay inside the repository."""
    path = posixpath.normpath(value) if isinstance(value, str) and value else ""
    if not path or path.startswith(("/", "../")) or path == "..":
        raise RegistryError(
            f"registry {label}: pyproject.toml [tool.vxds] {key} must be a path inside the"
            f" repository, got {value!r}"
        )
    return "" if path == "." else path


def _manifest(repo: Repository, bare: Path, commit: str, layout: Layout, label: str) -> Manifest:
    fetch_paths(bare, commit, [layout.manifest])
    blob = repo.blob(commit, layout.manifest)
    if blob is None:
        raise NotFoundError(f"registry {label}: no {layout.manifest}")
    where = Path(label) / layout.manifest
    try:
        text = repo.read(blob).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError([f"{where}: cannot be read: {exc}"]) from None
    return load_manifest(where, default_source=layout.source, require_scripts=False, text=text)
