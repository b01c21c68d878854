"""Checking bytes against a lock while they are read.

A resource's ``hash`` is ``<algorithm>:<hex>``: blake3 (what vxds writes) or an algorithm
``new_hasher`` knows (what a store or another source may record: ``sha256``, ``md5``, ``crc32c``).
``VerifiedReader`` wraps a source's stream and raises ``IntegrityError`` when the last byte
has been read and the digest or size is not the locked one, so a caller that reads to the
end never uses bytes the lock does not promise.
"""

from __future__ import annotations

from typing import BinaryIO

from vxds.errors import SourceError
from vxds.hashing import new_hasher as new_hasher  # its home was here
from vxds.resource import Resource


class IntegrityError(SourceError):
    """Bytes read for a resource do not match its locked hash or size."""


def expected(resource: Resource) -> tuple[str, str] | None:
    """``(algorithm, hex)`` of the resource's hash, or None when the lock records none."""
    if resource.hash is None:
        return None
    algorithm, _, hexpart = resource.hash.partition(":")
    return algorithm, hexpart.lower()


def mismatch(resource: Resource, digest: str | None, size: int) -> str | None:
    """Why ``digest``/``size`` are not what the lock says about ``resource`` (None if they are)."""
    if resource.size is not None and size != resource.size:
        return f"{resource.id}: read {size} bytes, the lock says {resource.size}"
    want = expected(resource)
    if want is not None and digest is not None and digest.lower() != want[1]:
        return f"{resource.id}: content does not match the locked hash {resource.hash}"
    return None


class VerifiedReader:
    """A read-only binary stream over a source's bytes that checks them at the end.

    ``read()`` raises ``IntegrityError`` on the call that reaches the end of the stream
    when the bytes do not hash to the locked value; a partial read is never checked.
    """

    def __init__(self, resource: Resource, raw: BinaryIO) -> None:
        self.resource = resource
        self._raw = raw
        want = expected(resource)
        self._hasher = new_hasher(want[0]) if want is not None else None
        self._size = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._size += len(data)
            if self._hasher is not None:
                self._hasher.update(data)
        if (not data or size is None or size < 0) and not self._done:
            self._done = True
            digest = self._hasher.hexdigest() if self._hasher is not None else None
            problem = mismatch(self.resource, digest, self._size)
            if problem is not None:
                raise IntegrityError(problem)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> VerifiedReader:
        return self

    def __next__(self) -> bytes:
        block = self.read(1 << 20)
        if not block:
            raise StopIteration
        return block
