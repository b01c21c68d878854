from __future__ import annotations

import hashlib
import io

import pytest

from vxds.hashing import digest_bytes
from vxds.locks.verified_read import IntegrityError, VerifiedReader
from vxds.resource import Resource

DATA = b"locked bytes" * 1000


def _reader(data: bytes, **fields: object) -> VerifiedReader:
    resource = Resource("a", 1, **fields)  # type: ignore[arg-type]
    return VerifiedReader(resource, io.BytesIO(data))


def test_matching_bytes_read_in_blocks_or_whole() -> None:
    assert _reader(DATA, hash=digest_bytes(DATA), size=len(DATA)).read() == DATA
    reader = _reader(DATA, hash=digest_bytes(DATA))
    assert b"".join(iter(lambda: reader.read(1000), b"")) == DATA


def test_a_changed_byte_or_size_raises_at_the_end() -> None:
    changed = DATA[:-1] + b"!"
    reader = _reader(changed, hash=digest_bytes(DATA))
    assert reader.read(10) == changed[:10]  # a partial read is not checked yet
    with pytest.raises(IntegrityError, match="a: content does not match the locked hash"):
        reader.read()
    with pytest.raises(IntegrityError, match="a: read 12000 bytes, the lock says 5"):
        _reader(DATA, size=5).read()


def test_other_algorithms_are_checked_with_hashlib() -> None:
    md5 = "md5:" + hashlib.md5(DATA).hexdigest()
    assert _reader(DATA, hash=md5).read() == DATA
    with pytest.raises(IntegrityError):
        _reader(DATA + b"x", hash=md5).read()
