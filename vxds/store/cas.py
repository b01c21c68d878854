"""The store's layout: one object per distinct blake3 digest, ``<url>/blake3/ab/cdef…``.

An object's name is the digest of its bytes, so every object checks itself: bytes are
hashed on the way in (``put`` refuses them unless they hash to the name) and on the way
out (readers check against the lock, as they check a source). A DICOM series or a Zarr
folder is stored as its member files plus a manifest: the canonical JSON of its sorted
``[name, digest]`` listing, which is exactly what the lock's hash of a series is the
digest of (``vxds.hashing.digest_json``), so the manifest too is named by its own digest.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from blake3 import blake3

from vxds.errors import SourceError, UsageError
from vxds.locks.verified_read import IntegrityError
from vxds.resource import Resource
from vxds.store.backends import Backend, BucketBackend, FolderBackend

ALGORITHM = "blake3"
TOP = ALGORITHM  # the folder every object is under
SERIES = ("DICOMSeries", "Zarr")  # stored as members plus a manifest
UNSTORED = ("ClinicalRecord",)  # rows of a table: the table is stored, not each row
COPY_THRESHOLD = 32 << 20  # from this size a folder store copies a local file in the kernel
BLOCK = 8 << 20  # bytes read at a time from a local file
_HEX_RE = re.compile(r"[0-9a-f]{64}\Z")
_KEY_RE = re.compile(rf"{TOP}/([0-9a-f]{{2}})/([0-9a-f]{{62}})\Z")


def key_of(hexdigest: str) -> str:
    """``blake3/ab/cdef…``: where the object with this digest lives."""
    return f"{TOP}/{hexdigest[:2]}/{hexdigest[2:]}"


def digest_of(key: str) -> str | None:
    """The digest an object's key names (None for anything else under the store)."""
    match = _KEY_RE.match(key)
    return match.group(1) + match.group(2) if match else None


def stored_digest(resource: Resource) -> str | None:
    """The hex digest a resource is stored under, or None when it is not stored (no blake3
    hash, or a table row)."""
    if resource.type in UNSTORED or resource.hash is None:
        return None
    algorithm, _, hexpart = resource.hash.partition(":")
    hexpart = hexpart.lower()
    return hexpart if algorithm == ALGORITHM and _HEX_RE.match(hexpart) else None


def manifest_bytes(members: Iterable[tuple[str, str]]) -> bytes:
    """A series' manifest: the canonical JSON of its sorted ``[name, "blake3:<hex>"]`` pairs."""
    from vxds.hashing import canonical_json

    return canonical_json(sorted([name, digest] for name, digest in members))


class Store:
    """A content-addressed store at ``url``."""

    def __init__(self, url: str, backend: Backend) -> None:
        self.url = url
        self.backend = backend

    def listing(self) -> dict[str, int]:
        """Every object's digest and size, from one listing of the store."""
        found: dict[str, int] = {}
        for key, size in self.backend.listing(TOP):
            digest = digest_of(key)
            if digest is not None:
                found[digest] = size
        return found

    def digests(self) -> set[str]:
        """Every object's digest, from one listing of the store (no size: a folder store
        lists its folders and stats no file)."""
        found = (digest_of(key) for key in self.backend.names(TOP))
        return {digest for digest in found if digest is not None}

    def has(self, hexdigest: str) -> bool:
        return self.backend.exists(key_of(hexdigest))

    def put(self, hexdigest: str, chunks: Iterable[bytes], size: int | None = None, what: str = "") -> int:
        """Write an object from ``chunks``; it appears only if they hash to ``hexdigest``
        (and are ``size`` bytes long). Returns the number of bytes written."""
        hasher = blake3(max_threads=blake3.AUTO)
        count = [0]

        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                hasher.update(chunk)
                count[0] += len(chunk)
                yield chunk

        def check() -> None:
            _check(what or hexdigest, hasher.hexdigest(), hexdigest, count[0], size)

        self.backend.write(key_of(hexdigest), counted(), check)
        return count[0]

    def flush(self) -> None:
        """Make every write so far visible (a folder store links its writes in batches)."""
        self.backend.flush()

    def put_file(self, hexdigest: str, path: str, size: int | None = None, what: str = "") -> int:
        """``put`` of a local file: a folder store copies it in the kernel, hashing it on
        another thread; any other store streams it."""
        copy = getattr(self.backend, "copy", None)
        if copy is None or (size if size is not None else os.path.getsize(path)) < COPY_THRESHOLD:
            with open(path, "rb", buffering=0) as fh:
                return self.put(hexdigest, _blocks(fh), size, what)
        from vxds.hashing import hash_file

        def digest(at: str) -> str:
            found = hash_file(at)
            _check(what or hexdigest, found.partition(":")[2], hexdigest, os.path.getsize(at), size)
            return found

        written: int = copy(key_of(hexdigest), path, digest)
        return written

    def open(self, hexdigest: str) -> BinaryIO:
        """The object's bytes (``KeyError`` when it is not in the store)."""
        return self.backend.open(key_of(hexdigest))

    def local_path(self, hexdigest: str) -> str | None:
        """The object's file, for a store in a local folder."""
        return self.backend.local_path(key_of(hexdigest))

    def delete(self, hexdigest: str) -> None:
        self.backend.delete(key_of(hexdigest))

    def manifest(self, hexdigest: str) -> list[tuple[str, str]]:
        """A series' ``(name, member hex digest)`` pairs, read and checked against its name."""
        with self.open(hexdigest) as fh:
            data = fh.read()
        if blake3(data).hexdigest() != hexdigest:
            raise IntegrityError(
                f"store {self.url!r}: the object {key_of(hexdigest)} does not match its name"
            )
        try:
            pairs = [(str(name), str(digest).partition(":")[2]) for name, digest in orjson.loads(data)]
        except (orjson.JSONDecodeError, TypeError, ValueError):
            pairs = [("", "")]
        # member digests name objects and spooled files: only plain hex digests are accepted
        if not all(_HEX_RE.match(digest) for _, digest in pairs):
            raise SourceError(f"store {self.url!r}: {key_of(hexdigest)} is not a series manifest")
        return pairs


def _blocks(fh: io.FileIO) -> Iterator[bytes]:
    """An open file's bytes block by block, the first block sized by its size (one read
    and one at the end for a small file, never more than ``BLOCK`` bytes at a time)."""
    count = min(os.fstat(fh.fileno()).st_size + 1, BLOCK)
    while data := fh.read(count):
        yield data
        count = BLOCK


def _check(label: str, found: str, hexdigest: str, count: int, size: int | None) -> None:
    """``IntegrityError`` unless bytes of digest ``found`` and length ``count`` are the locked ones."""
    if size is not None and count != size:
        raise IntegrityError(f"{label}: read {count} bytes, the lock says {size}")
    if found != hexdigest:
        raise IntegrityError(f"{label}: content does not match the locked hash blake3:{hexdigest}")


def open_store(url: str, *, base: Path, options: Mapping[str, Any]) -> Store:
    """The store at ``url``: a folder (a path or ``file://``) or a bucket (``s3://``,
    ``gs://``, ``az://``) opened with the sources' options and credentials handling."""
    from vxds.sources import SourceContext, open_source, scheme_of

    scheme = scheme_of(url)
    if scheme == "file":
        path = Path(url.removeprefix("file://") if url.startswith("file://") else url)
        return Store(url, FolderBackend(url, path if path.is_absolute() else base / path))
    source = open_source(url, SourceContext(base=base, options=options))
    if not hasattr(source, "fs") or not hasattr(source, "bucket"):
        raise SourceError(f"store {url!r}: a store is a folder or an s3://, gs:// or az:// prefix")
    return Store(url, BucketBackend(source))


def store_url(given: str | None, configured: str | None) -> str:
    """``--store URL``, else ``[tool.vxds.store] url``; a ``UsageError`` when neither is set."""
    url = given or configured
    if not url:
        raise UsageError("no store: pass --store URL or set url in [tool.vxds.store]")
    return url
