"""Locking and reading locks from Python code such as a training script or a notebook.

``vxds.lock("viseg_training@1")`` does what ``vxds lock`` does and returns one
``LockOutcome`` per dataset (docs/api.md). ``vxds.load_lock("viseg_training@1")`` returns a
``LockedDataset``: the lock's header and splits, its resources per split, ``open(resource)``
for bytes checked against the lock as they are read (for a DICOM series or a Zarr, its
member files, ``SeriesFiles``), and ``to_records()`` for plain dicts (a
DataFrame is one call away, but no data-frame library is imported here). Nothing heavier
than the lock reader is imported until a resource is opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vxds.errors import NotFoundError, SourceError, VxdsError
from vxds.locks.store import Lock, lock_dir, read_lock
from vxds.locks.verified_read import IntegrityError, VerifiedReader, mismatch
from vxds.project.config import find_root, load_config
from vxds.resource import Resource

if TYPE_CHECKING:
    from vxds.recipes.locking import LockOutcome


@dataclass(frozen=True)
class LockedDataset(Lock):
    """A checked lock plus where its source is, so its resources can be opened."""

    base: Path = field(default_factory=Path.cwd, compare=False)  # relative source URLs start here
    source_url: str | None = field(default=None, compare=False)  # None: the lock's own
    storage: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # [tool.vxds.storage]
    _sources: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    store_url: str | None = field(default=None, compare=False)  # the store readers fall back to

    def __iter__(self) -> Iterator[Resource]:
        """Every resource, split by split in name order."""
        return self.resources()

    def __len__(self) -> int:
        return sum(split.count for split in self.splits.values())

    def to_records(self, split: str | None = None) -> list[dict[str, Any]]:
        """One dict per resource (``split`` added), e.g. for ``pandas.DataFrame(...)``."""
        names = [split] if split is not None else sorted(self.splits)
        records = []
        for name in self._known(names):
            for resource in self.splits[name].resources():
                records.append({"split": name, **resource.to_record()})
        return records

    def to_arrow(self, split: str | None = None) -> Any:
        """The resources as a ``pyarrow.Table`` (columns as ``to_records``, ``attrs`` as JSON
        text), read by DuckDB from the lock's bytes; needs ``vxds[query]``."""
        from vxds.query.frames import lock_table

        return lock_table(self, self._known([split] if split is not None else sorted(self.splits)))

    def to_pandas(self, split: str | None = None) -> Any:
        """``to_arrow()`` as a ``pandas.DataFrame``."""
        from vxds.query.frames import pandas_frame

        return pandas_frame(self.to_arrow(split))

    def to_polars(self, split: str | None = None) -> Any:
        """``to_arrow()`` as a ``polars.DataFrame``."""
        from vxds.query.frames import polars_frame

        return polars_frame(self.to_arrow(split))

    def open(self, resource: Resource | str) -> VerifiedReader | SeriesFiles:
        """A binary stream of the resource's bytes; reading to the end raises
        ``vxds.locks.verified_read.IntegrityError`` if they are not the locked bytes.

        A DICOM series or a Zarr gives its member files instead (``SeriesFiles``), whose
        listing is checked against the lock before any is handed out."""
        if isinstance(resource, str):
            resource = self.get(resource)
        if resource.type in ("DICOMSeries", "Zarr"):
            return self._series(resource)
        if self.store_url is not None:  # the source's bytes, else the store's; checked either way
            from vxds.store.reader import open_with_fallback

            raw = open_with_fallback(resource, lambda: self.source.open(resource), self._store())
            return VerifiedReader(resource, raw)
        return VerifiedReader(resource, self.source.open(resource))

    def get(self, id: str) -> Resource:
        """The locked resource with this id, from any split."""
        for resource in self.resources():
            if resource.id == id:
                return resource
        raise NotFoundError(f"{self.header.key}: no resource {id!r} in the lock")

    @property
    def source(self) -> Any:
        """The source the lock was made from (opened on first use)."""
        url = self.source_url or self.header.source
        if url not in self._sources:
            from vxds.sources import SourceContext, open_source

            context = SourceContext(base=self.base, cache_dir=self.base / ".vxds", options=self.storage)
            self._sources[url] = open_source(url, context)
        return self._sources[url]

    def _series(self, resource: Resource) -> SeriesFiles:
        """A series' members from the source, else (with a store) from the store."""
        if self.store_url is None:
            if not hasattr(self.source, "members"):
                raise SourceError(f"{resource.id}: this source cannot list a series' member files")
            return SeriesFiles(resource, self.source.members(resource))
        try:
            return SeriesFiles(resource, self.source.members(resource))
        except (AttributeError, OSError, VxdsError, IntegrityError):
            return SeriesFiles(resource, self._store().members(resource))

    def _store(self) -> Any:
        """The store ``open`` falls back to (opened on first use)."""
        key = f"store:{self.store_url}"
        if key not in self._sources:
            from vxds.store.cas import open_store
            from vxds.store.reader import StoreReader

            assert self.store_url is not None
            self._sources[key] = StoreReader(open_store(self.store_url, base=self.base, options=self.storage))
        return self._sources[key]

    def _known(self, names: list[str]) -> list[str]:
        for name in names:
            if name not in self.splits:
                raise NotFoundError(
                    f"{self.header.key}: no split {name!r}; it has {', '.join(sorted(self.splits))}"
                )
        return names


class SeriesFiles:
    """The member files of a DICOM series (or a Zarr), each checked against the lock.

    Every member is hashed once when this is made, and the listing of names and digests
    must be the series' locked hash (``IntegrityError`` otherwise); ``open(name)`` then
    checks the bytes it reads against that member's digest, as ``VerifiedReader`` does."""

    def __init__(self, resource: Resource, members: Sequence[tuple[str, str]]) -> None:
        from vxds.hashing import hash_file_key
        from vxds.sources.folder.tree import series_digest

        self.resource = resource
        self._members: dict[str, tuple[str, Resource]] = {}
        for name, path in members:
            try:
                digest, key = hash_file_key(path)
            except OSError as exc:
                raise SourceError(f"{resource.id}: cannot read its file {name}: {exc.strerror}") from None
            member = Resource(id=f"{resource.id}/{name}", version=digest, hash=digest, size=key[0])
            self._members[name] = (path, member)
        listing = series_digest((name, m.hash or "") for name, (_, m) in self._members.items())
        size = sum(m.size or 0 for _, m in self._members.values())
        problem = mismatch(resource, listing.partition(":")[2], size)
        if problem is not None:
            raise IntegrityError(f"{problem} (its member files)")

    @property
    def names(self) -> list[str]:
        """The members' names (paths inside the folder, for a Zarr), sorted."""
        return sorted(self._members)

    def open(self, name: str) -> VerifiedReader:
        """One member's bytes, checked against the digest the listing was checked with."""
        if name not in self._members:
            raise NotFoundError(f"{self.resource.id}: no member {name!r}")
        path, member = self._members[name]
        try:
            return VerifiedReader(member, open(path, "rb"))
        except OSError as exc:
            raise SourceError(f"{member.id}: cannot open: {exc.strerror}") from None

    def read(self, name: str) -> bytes:
        """One member's bytes, whole and checked (``io.BytesIO`` of it is what pydicom seeks in)."""
        with self.open(name) as fh:
            return fh.read()

    def __iter__(self) -> Iterator[tuple[str, VerifiedReader]]:
        """``(name, stream)`` of every member in name order, each opened as it is reached."""
        for name in self.names:
            yield name, self.open(name)

    def __len__(self) -> int:
        return len(self._members)

    def __enter__(self) -> SeriesFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def load_lock(
    spec: str | Path,
    *,
    root: str | Path | None = None,
    source: str | None = None,
    rev: str | None = None,
    store: str | None = None,
) -> LockedDataset:
    """A checked lock from ``"name@version"`` (or ``"name"``: the highest) or a lock folder.

    Every digest and every line is checked, as ``vxds verify`` does; a lock that another
    process relocks meanwhile is read again (``LockError`` if it keeps changing).
    ``root`` is the project folder (default: found from the current directory, or from
    the lock folder). ``source`` reads bytes from another URL than the one in the lock.
    ``rev`` reads the lock as it was at a Git revision (a tag, branch or sha), from Git's
    objects, without a checkout. ``store``: where ``open`` falls back to (docs/store.md).
    """
    path = Path(spec)
    if rev is not None:
        from vxds.locks.refs import lock_at

        config = load_config(Path(root) if root is not None else None)
        lock = lock_at(config, rev, str(spec))
        return LockedDataset(
            lock.header,
            lock.splits,
            base=config.root,
            source_url=source,
            storage=config.storage,
            store_url=store or config.store,
        )
    if isinstance(spec, Path) or (path / "lock.toml").is_file():
        lock = read_lock(path, deep=True)
        base = Path(root).resolve() if root is not None else find_root(path.resolve())
        try:
            loaded = load_config(base)
            storage, store = loaded.storage, store or loaded.store
        except VxdsError:  # a lock folder outside any project: no storage options
            storage = {}
    else:
        from vxds.project.load import open_project
        from vxds.project.manifest import parse_spec

        config, manifest = open_project(root, require_scripts=False)
        entry = manifest.find(*parse_spec(str(spec)))
        lock = read_lock(lock_dir(config.locks, entry.name, entry.version), deep=True)
        base, storage, store = config.root, config.storage, store or config.store
    return LockedDataset(
        lock.header, lock.splits, base=base, source_url=source, storage=storage, store_url=store
    )


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
