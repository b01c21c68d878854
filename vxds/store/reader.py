"""Reading locked resources back from the store: what readers fall back to.

Bytes read here are checked by the caller against the lock, as bytes from a source are
(``VerifiedReader``, ``vxds.materialize.transfer``): the store is one more place to read
from, never one that is trusted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from vxds.errors import NotFoundError
from vxds.fs.writer import create
from vxds.resource import Resource
from vxds.store.cas import Store, key_of, stored_digest
from vxds.store.push import chunks_of


class StoreReader:
    """A store as a source of locked resources, by their digest."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.url = store.url
        self._spool: tempfile.TemporaryDirectory[str] | None = None

    def _digest(self, resource: Resource) -> str:
        digest = stored_digest(resource)
        if digest is None:
            raise NotFoundError(f"{resource.id}: not kept in a store (it has no blake3 hash)")
        return digest

    def _missing(self, resource: Resource) -> NotFoundError:
        return NotFoundError(
            f"{resource.id}: not in the store {self.url!r} ({key_of(self._digest(resource))})"
        )

    def open(self, resource: Resource) -> BinaryIO:
        try:
            return self.store.open(self._digest(resource))
        except KeyError:
            raise self._missing(resource) from None

    def local_path(self, resource: Resource) -> str | None:
        """The object's file when the store is a local folder (None otherwise)."""
        digest = stored_digest(resource)
        return self.store.local_path(digest) if digest is not None else None

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        """A series' ``(name, path)`` pairs as a folder source gives them: the objects' own
        files in a local store, else copies fetched into a temporary folder."""
        try:
            pairs = self.store.manifest(self._digest(resource))
        except KeyError:
            raise self._missing(resource) from None
        return [(name, self._path(resource, name, digest)) for name, digest in pairs]

    def _path(self, resource: Resource, name: str, digest: str) -> str:
        local = self.store.local_path(digest)
        if local is not None:
            return local
        if self._spool is None:
            self._spool = tempfile.TemporaryDirectory(prefix="vxds-store-")
        path = f"{self._spool.name}/{digest}"
        try:
            with create(Path(path)) as out:  # a full disk names the file
                for block in chunks_of(self.store.open(digest)):
                    out.write(block)
        except KeyError:
            raise NotFoundError(
                f"{resource.id}/{name}: not in the store {self.url!r} ({key_of(digest)})"
            ) from None
        return path

    def close(self) -> None:
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None


def open_with_fallback(
    resource: Resource, source_open: Callable[[], BinaryIO], store: StoreReader
) -> BinaryIO:
    """The resource's checked bytes from the source, else (when the source no longer has
    the locked bytes) from the store; spooled, so nothing unchecked is ever returned."""
    from vxds.errors import SourceError
    from vxds.locks.verified_read import IntegrityError, VerifiedReader

    try:
        return _spooled(VerifiedReader(resource, source_open()))
    except (IntegrityError, SourceError, FileNotFoundError):
        pass
    return _spooled(VerifiedReader(resource, store.open(resource)))


def _spooled(reader: Any) -> BinaryIO:
    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 (returned open)
    try:
        with reader:
            while block := reader.read(8 << 20):
                spool.write(block)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool  # type: ignore[return-value]
