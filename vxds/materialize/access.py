"""The source as materializing sees it: local paths where there are any, else streams.

With a store (``--store``), a resource the source no longer has the locked bytes of is
read again from the store (``fallback``); with ``--from-store`` every resource is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from vxds.errors import SourceError
from vxds.materialize.transfer import StatKey
from vxds.resource import Resource
from vxds.sources.base import Source

if TYPE_CHECKING:
    from vxds.store.reader import StoreReader

T = TypeVar("T")


class SourceAccess:
    """The source as materializing sees it: local paths where there are any, else streams."""

    def __init__(
        self, source: Source | None, store: StoreReader | None = None, *, from_store: bool = False
    ) -> None:
        self.source = source
        self.store = store
        self._from_store: set[str] = set()  # ids read from the store
        self._all_from_store = from_store and store is not None

    def _stored(self, resource: Resource) -> StoreReader | None:
        """The store, when this resource is read from it."""
        if not (self._all_from_store or resource.id in self._from_store):
            return None
        from vxds.store.cas import stored_digest

        return self.store if stored_digest(resource) is not None else None

    def stored(self, resource: Resource) -> bool:
        """Whether this resource is read from the store (``--from-store``, or its source lost it)."""
        return self._stored(resource) is not None

    def fallback(self, resource: Resource, attempt: Callable[[], T]) -> T:
        """``attempt()``; when the source fails it (bytes changed or gone) and there is a
        store, ``attempt()`` again with the resource read from the store."""
        from vxds.locks.verified_read import IntegrityError
        from vxds.store.cas import stored_digest

        lost = (IntegrityError, SourceError, FileNotFoundError)
        try:
            return attempt()
        except lost as exc:
            if self.store is None or self._stored(resource) is not None or stored_digest(resource) is None:
                raise
            first = _text(exc)
        self._from_store.add(resource.id)
        try:
            return attempt()
        except lost as exc:
            raise SourceError(f"{first}; from the store: {_text(exc)}") from None

    def _need(self) -> Source:
        if self.source is None:
            raise SourceError("no source to read from; pass --source or set [tool.vxds] source")
        return self.source

    @property
    def is_local(self) -> bool:
        """True for a source with files on this machine (a folder)."""
        return hasattr(self.source, "local_path")

    def local_path(self, resource: Resource) -> str | None:
        store = self._stored(resource)
        if store is not None:
            return store.local_path(resource)
        finder = getattr(self.source, "local_path", None)
        if finder is None or resource.type == "ClinicalRecord":
            return None
        path: str = finder(resource)
        return path

    def local_file(self, resource: Resource) -> tuple[str, os.stat_result] | None:
        """``local_path`` and the file's stat, from one system call where the source can
        (the store's file, when the resource is read from the store)."""
        finder = getattr(self.source, "local_file", None)
        if finder is None or self._stored(resource) is not None:
            path = self.local_path(resource)
            return None if path is None else (path, os.stat(path))
        if resource.type == "ClinicalRecord":
            return None
        found: tuple[str, os.stat_result] = finder(resource)
        return found

    def open(self, resource: Resource) -> BinaryIO:
        store = self._stored(resource)
        return store.open(resource) if store is not None else self._need().open(resource)

    def read_checked(self, resource: Resource) -> bytes:
        """A resource's bytes, checked against the lock (from the store if need be)."""
        from vxds.locks.verified_read import VerifiedReader

        def attempt() -> bytes:
            with VerifiedReader(resource, self.open(resource)) as reader:
                return reader.read()

        return self.fallback(resource, attempt)

    def cached(self, resource: Resource) -> Callable[[StatKey], str | None] | None:
        """A lookup of the source's hash cache for this resource's file, if it keeps one."""
        lookup = getattr(self.source, "cached_digest", None)
        if lookup is None or self._stored(resource) is not None:
            return None
        return lambda key: lookup(resource, key)

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        store = self._stored(resource)
        if store is not None:
            return store.members(resource)
        lister = getattr(self._need(), "members", None)
        if lister is None:
            raise SourceError(f"{resource.id}: this source cannot list the files of a {resource.type}")
        found: list[tuple[str, str]] = lister(resource)
        return found


def _text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, SourceError) else str(getattr(exc, "strerror", None) or exc)
