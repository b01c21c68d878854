"""``vxds import`` and ``vxds update``: a registry's lock copied in, pinned, moved on purpose.

The lock is written through ``vxds.locks.store.write_lock`` (atomic, whole) and the
manifest entry through ``vxds.project.manifest_edit`` (line-level: comments survive). The
lock is written first: a failure to edit the manifest leaves a lock that ``vxds verify``
reports as an orphan, never a manifest naming a lock that is not there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vxds.errors import UsageError
from vxds.fs import atomic_write_text
from vxds.locks.diff import DatasetDiff, diff_locks
from vxds.locks.store import Lock, guard_file, lock_dir, read_lock, write_lock
from vxds.project.config import Config
from vxds.project.manifest import Entry, Manifest, load_manifest, parse_spec
from vxds.project.manifest_edit import with_entry, with_import
from vxds.registry.fetch import cache_for, check_url, fetch, remote_commit, shown
from vxds.registry.read import RegistryLock, registry_lock

NAME_RE = re.compile(r"[a-z0-9_-]+\Z")


@dataclass(frozen=True)
class Imported:
    """What ``import_dataset`` or ``update_import`` did to ``key``."""

    key: str
    block: dict[str, Any]  # the manifest's import: block as written
    old_commit: str | None  # None: a new import
    diff: DatasetDiff | None  # the lock's change (None: a new import)


@dataclass(frozen=True)
class Behind:
    key: str
    commit: str  # pinned
    latest: str  # what its rev names in the registry now

    @property
    def behind(self) -> bool:
        return self.commit != self.latest


def _manifest(config: Config, text: str | None = None) -> Manifest:
    return load_manifest(config.manifest, default_source=config.source, require_scripts=False, text=text)


def _fetched(config: Config, url: str, rev: str, name: str, version: int | None) -> tuple[str, RegistryLock]:
    bare = cache_for(config.cache_dir, url)
    commit = fetch(bare, url, rev)
    return commit, registry_lock(bare, commit, url, name, version)


def _block(url: str, rev: str, commit: str, found: RegistryLock) -> dict[str, Any]:
    return {
        "url": url,
        "rev": rev,
        "commit": commit,
        "name": found.entry.name,
        "version": found.entry.version,
    }


def import_dataset(
    config: Config, url: str, spec: str, *, rev: str | None = None, local: str | None = None
) -> Imported:
    """Copy ``spec``'s lock from the registry at ``url`` (at ``rev``, default its HEAD) into
    ``locks/LOCAL/V/`` and add its manifest entry with an ``import:`` block."""
    url = shown(check_url(url))
    name, version = parse_spec(spec)
    local = local or name
    if not NAME_RE.match(local):
        raise UsageError(f"--as {local!r}: a dataset name is lower-case letters, digits, '_' and '-'")
    manifest = _manifest(config)
    rev = rev or "HEAD"
    commit, found = _fetched(config, url, rev, name, version)
    key = f"{local}@{found.entry.version}"
    if any(e.key == key for e in manifest):
        raise UsageError(f"{key} is already in {config.relative(config.manifest)}", hint=f"vxds update {key}")
    block = _block(url, rev, commit, found)
    fields: dict[str, Any] = {"name": local, "version": found.entry.version}
    if found.entry.description:
        fields["description"] = found.entry.description
    text = with_entry(
        config.manifest.read_text(encoding="utf-8"), config.manifest, {**fields, "import": block}
    )
    _manifest(config, text)  # the edit must leave a valid manifest
    _write(config, found.as_local(local))
    atomic_write_text(config.manifest, text)
    return Imported(key, block, None, None)


def imported_entries(config: Config, specs: list[str]) -> list[Entry]:
    """The imported entries named (none: every one); ``UsageError`` for one not imported."""
    manifest = _manifest(config)
    entries = manifest.select(specs) if specs else [e for e in manifest if e.imported is not None]
    for entry in entries:
        if entry.imported is None:
            raise UsageError(f"{entry.key} is not imported (it has no import: block in the manifest)")
    return entries


def update_import(config: Config, entry: Entry, *, rev: str | None = None) -> Imported:
    """Move ``entry`` to the newest commit of its rev (or of ``rev``): rewrite lock and block."""
    assert entry.imported is not None
    old = dict(entry.imported)
    rev = rev or old["rev"]
    commit, found = _fetched(config, old["url"], rev, old["name"], old["version"])
    directory = lock_dir(config.locks, entry.name, entry.version)
    before = read_lock(directory, deep=True) if (directory / "lock.toml").is_file() else None
    after = found.as_local(entry.name)
    block = _block(old["url"], rev, commit, found)
    text = with_import(
        config.manifest.read_text(encoding="utf-8"), config.manifest, entry.name, entry.version, block
    )
    _manifest(config, text)
    _write(config, after)
    if block != old:
        atomic_write_text(config.manifest, text)
    return Imported(entry.key, block, old["commit"], diff_locks(before, after))


def check_behind(entry: Entry) -> Behind:
    """Whether ``entry``'s pinned commit is still what its rev names (``git ls-remote``)."""
    assert entry.imported is not None
    block = entry.imported
    return Behind(entry.key, block["commit"], remote_commit(block["url"], block["rev"]))


def _write(config: Config, lock: Lock) -> None:
    directory = lock_dir(config.locks, lock.header.name, lock.header.version)
    write_lock(lock, directory, guard=guard_file(config.cache_dir, lock.header.name, lock.header.version))
