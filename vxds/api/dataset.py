"""``LockedDataset``: a checked lock plus where its bytes are, for training code.

It is a map-style dataset: ``len(lock)`` and ``lock[i]`` (negative and slices too) over
every resource, splits in name order and each split in id order, as iteration gives them;
``lock.splits[name]`` is the same for one split. Positions and ids are found through the
shard list (``vxds.locks.positions``), never by parsing every line.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from vxds.errors import NotFoundError, SourceError, VxdsError
from vxds.locks.store import Lock
from vxds.locks.verified_read import IntegrityError, VerifiedReader
from vxds.resource import Resource

if TYPE_CHECKING:
    from vxds.api.series import SeriesFiles


@dataclass(frozen=True)
class LockedDataset(Lock):
    """A checked lock plus where its source is, so its resources can be opened."""

    base: Path = field(default_factory=Path.cwd, compare=False)  # relative source URLs start here
    source_url: str | None = field(default=None, compare=False)  # None: the lock's own
    storage: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # [tool.vxds.storage]
    _sources: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    store_url: str | None = field(default=None, compare=False)  # the store readers fall back to

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its opened sources and caches (a DataLoader's worker processes
        reopen them on first use)."""
        return {**self.__dict__, "_sources": {}}

    def __iter__(self) -> Iterator[Resource]:
        """Every resource, split by split in name order."""
        return self.resources()

    def __len__(self) -> int:
        return sum(split.count for split in self.splits.values())

    @overload
    def __getitem__(self, index: int) -> Resource: ...
    @overload
    def __getitem__(self, index: slice) -> list[Resource]: ...
    def __getitem__(self, index: int | slice) -> Resource | list[Resource]:
        """The resource at position ``index`` in iteration order (a list for a slice)."""
        total = len(self)
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(total))]
        if not -total <= index < total:
            raise IndexError(f"{self.header.key}: index {index} out of range for {total} resources")
        return self._at(index % total)

    @cached_property
    def _split_ends(self) -> tuple[list[str], list[int]]:
        names = sorted(self.splits)
        return names, list(accumulate(self.splits[name].count for name in names))

    def _at(self, position: int) -> Resource:
        names, ends = self._split_ends
        at = bisect_right(ends, position)
        return self.splits[names[at]][position - (ends[at - 1] if at else 0)]

    def resources(self, split: str | None = None) -> Iterator[Resource]:
        """Resources of one split, or of every split in name order; an unknown split raises
        ``NotFoundError`` here, not when the iterator is first used."""
        if split is not None:
            self._known([split])
        return super().resources(split)

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

            raw = open_with_fallback(resource, lambda: self.source.open(resource), self.store)
            return VerifiedReader(resource, raw)
        return VerifiedReader(resource, self.source.open(resource))

    def path(self, resource: Resource | str) -> Path:
        """A local path holding the resource's locked bytes, checked (``vxds.api.paths``): the
        file itself in a folder source, else a copy cached under ``.vxds/files/``; for a
        DICOM series or a Zarr, a folder of its member files."""
        from vxds.api.paths import local_path

        return local_path(self, self.get(resource) if isinstance(resource, str) else resource)

    def get(self, id: str) -> Resource:
        """The locked resource with this id, from any split (bisection: see ``position``)."""
        for name in sorted(self.splits):
            split = self.splits[name]
            at = split.position(id)
            if at is not None:
                return split[at]
        raise NotFoundError(f"{self.header.key}: no resource {id!r} in the lock")

    @property
    def source(self) -> Any:
        """The source the lock was made from (opened on first use)."""
        url = self.source_url or self.header.source
        if url not in self._sources:
            from vxds.sources import SourceContext, open_source

            context = SourceContext(base=self.base, cache_dir=self.cache_dir, options=self.storage)
            self._sources[url] = open_source(url, context)
        return self._sources[url]

    @property
    def cache_dir(self) -> Path:
        """Where caches are kept: ``.vxds/`` of the project (or of the folder) read from."""
        return self.base / ".vxds"

    def _series(self, resource: Resource) -> SeriesFiles:
        """A series' members from the source, else (with a store) from the store."""
        from vxds.api.series import SeriesFiles

        if self.store_url is None:
            if not hasattr(self.source, "members"):
                raise SourceError(f"{resource.id}: this source cannot list a series' member files")
            return SeriesFiles(resource, self.source.members(resource))
        try:
            return SeriesFiles(resource, self.source.members(resource))
        except (AttributeError, OSError, VxdsError, IntegrityError):
            return SeriesFiles(resource, self.store.members(resource))

    @property
    def store(self) -> Any:
        """The ``StoreReader`` that reads fall back to (opened on first use; None: no store)."""
        if self.store_url is None:
            return None
        key = f"store:{self.store_url}"
        if key not in self._sources:
            from vxds.store.cas import open_store
            from vxds.store.reader import StoreReader

            self._sources[key] = StoreReader(open_store(self.store_url, base=self.base, options=self.storage))
        return self._sources[key]

    def _known(self, names: list[str]) -> list[str]:
        for name in names:
            if name not in self.splits:
                raise NotFoundError(
                    f"{self.header.key}: no split {name!r}; it has {', '.join(sorted(self.splits))}"
                )
        return names
