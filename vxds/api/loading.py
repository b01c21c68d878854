"""``load_lock``, ``lock`` and ``query``: the functions of the public API (docs/api.md)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vxds.api.dataset import LockedDataset
from vxds.errors import ConfigError, VxdsError
from vxds.locks.store import Lock, lock_dir, read_lock
from vxds.project.config import find_root, load_config

if TYPE_CHECKING:
    from vxds.recipes.locking import LockOutcome


def load_lock(
    spec: str | Path,
    *,
    root: str | Path | None = None,
    source: str | None = None,
    rev: str | None = None,
    store: str | None = None,
) -> LockedDataset:
    """A checked lock from ``"name@version"`` (or ``"name"``: the highest), a lock folder, or
    ``"git+URL[@REV]#NAME[@V]"`` (a registry's lock, not imported).

    Every digest and every line is checked, as ``vxds verify`` does; a lock that another
    process relocks meanwhile is read again (``LockError`` if it keeps changing).
    ``root`` is the project folder (default: found from the current directory, or from
    the lock folder). ``source`` reads bytes from another URL than the one in the lock.
    ``rev`` reads the lock as it was at a Git revision (a tag, branch or sha), from Git's
    objects, without a checkout. ``store``: where ``open`` falls back to (docs/store.md).
    """
    from vxds.registry.remote import is_remote

    if is_remote(spec):
        return _remote(str(spec), root, source, store)
    if rev is not None:
        return _at_revision(str(spec), rev, root, source, store)
    path = Path(spec)
    if isinstance(spec, Path) or (path / "lock.toml").is_file():
        return _folder(path, root, source, store)
    from vxds.project.load import open_project
    from vxds.project.manifest import parse_spec

    config, manifest = open_project(_project_root(root, str(spec)), require_scripts=False)
    entry = manifest.find(*parse_spec(str(spec)))
    lock = read_lock(lock_dir(config.locks, entry.name, entry.version), deep=True)
    return _dataset(lock, config.root, source, config.storage, store or config.store)


def _dataset(lock: Lock, base: Path, source: str | None, storage: Any, store: str | None) -> LockedDataset:
    return LockedDataset(
        lock.header, lock.splits, base=base, source_url=source, storage=storage, store_url=store
    )


def _project_root(root: str | Path | None, spec: str) -> Path:
    """The project folder a ``name@version`` is looked up in; one-line ``ConfigError`` when
    there is none here or above."""
    found = find_root(Path(root).resolve() if root is not None else None)
    if _in_project(found):
        return found
    raise ConfigError(
        f"load_lock({spec!r}): {found} is not inside a vxds project (no datasets.yaml here or above);"
        " pass root=, a lock folder or a 'git+URL#NAME@V' registry spec"
    )


def _in_project(folder: Path) -> bool:
    return load_config(folder).manifest.is_file()


def _folder(path: Path, root: str | Path | None, source: str | None, store: str | None) -> LockedDataset:
    lock = read_lock(path, deep=True)
    base = Path(root).resolve() if root is not None else find_root(path.resolve())
    storage: Any = {}
    try:
        loaded = load_config(base)
        storage, store = loaded.storage, store or loaded.store
    except VxdsError:  # a lock folder outside any project: no storage options
        pass
    return _dataset(lock, base, source, storage, store)


def _at_revision(
    spec: str, rev: str, root: str | Path | None, source: str | None, store: str | None
) -> LockedDataset:
    from vxds.locks.refs import lock_at

    config = load_config(Path(root) if root is not None else None)
    lock = lock_at(config, rev, spec)
    return _dataset(lock, config.root, source, config.storage, store or config.store)


def _remote(spec: str, root: str | Path | None, source: str | None, store: str | None) -> LockedDataset:
    """A registry's lock, fetched into the project's ``.vxds/registry/`` (outside a project:
    ``$XDG_CACHE_HOME/vxds`` or ``~/.cache/vxds``)."""
    from vxds.registry.remote import remote_lock

    start = find_root(Path(root).resolve() if root is not None else None)
    if _in_project(start):
        config = load_config(start)
        cache, storage, store = config.cache_dir, config.storage, store or config.store
    else:
        home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache, storage = Path(home) / "vxds", {}
    _, _, found = remote_lock(spec, cache)
    return _dataset(found.lock, start, source, storage, store)


def query(sql: str, *, rev: str | Sequence[str] | None = None, root: str | Path | None = None) -> Any:
    """``sql`` run by DuckDB over the project's locks, as ``vxds query`` does: a ``pyarrow.Table``.

    ``rev`` reads the locks at a Git revision or several (a ``rev`` column then says which);
    docs/query.md lists the views and columns. Needs ``vxds[query]``.
    """
    from vxds.query.engine import query as run_query

    return run_query(sql, rev=rev, root=root)


def lock(
    names: str | Sequence[str] | None = None,
    *,
    root: str | Path | None = None,
    stale: bool = False,
    dry_run: bool = False,
    jobs: int | None = None,
    at: str | None = None,
    refresh: bool = False,
) -> list[LockOutcome]:
    """Run recipes and write their locks, as ``vxds lock`` does; one ``LockOutcome`` each.

    ``names`` are ``"name@version"`` or ``"name"`` (the highest version), one or a list;
    None locks every dataset in the manifest. ``stale`` keeps only the datasets whose lock
    is missing or stale; ``dry_run`` writes nothing and says what would change (``--check``
    and ``--dry-run``); ``at`` resolves against a source snapshot; ``refresh`` runs recipes
    whose fingerprint says nothing they read changed (``--refresh``). A dataset whose recipe
    fails gets an outcome in state ``"error"`` with the exception in ``error`` and the
    others are still locked; a missing project, a bad manifest or an unknown name raise.
    """
    from vxds.project.load import open_project
    from vxds.recipes.locking import lock_datasets, select_entries

    config, manifest = open_project(root, require_scripts=True)
    specs = [names] if isinstance(names, str) else list(names or ())
    entries = select_entries(config, manifest, specs, stale=stale)
    return lock_datasets(config, entries, dry_run=dry_run, jobs=jobs, at=at, refresh=refresh)
