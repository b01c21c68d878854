"""vxds/locks/stream_checks.py: a lock's split lines checked as they stream."""

from __future__ import annotations

import io

import pytest

from vxds.hashing import digest_bytes
from vxds.locks.format import CorruptLock
from vxds.locks.stream_checks import checked_lines

DATA = b'{"id":"a"}\n{"id":"b"}\n'


def test_lines_come_out_and_match_the_header() -> None:
    lines = checked_lines(io.BytesIO(DATA), "lock/resources.train.jsonl", (2, digest_bytes(DATA)))
    assert list(lines) == [b'{"id":"a"}', b'{"id":"b"}']


def test_a_wrong_count_or_digest_is_found_at_the_end() -> None:
    lines = checked_lines(io.BytesIO(DATA), "lock/resources.train.jsonl", (3, digest_bytes(b"")))
    with pytest.raises(CorruptLock) as caught:
        list(lines)
    assert [p.kind for p in caught.value.problems] == ["split-digest", "split-digest"]
    assert "has 2 lines, lock.toml says 3" in str(caught.value)


def test_a_carriage_return_is_found_before_its_line() -> None:
    lines = checked_lines(io.BytesIO(b'{"id":"a"}\n{"id":"b"}\r\n'), "lock/resources.train.jsonl", None)
    with pytest.raises(CorruptLock, match=r"resources.train.jsonl:2: a carriage return"):
        list(lines)


def test_a_missing_last_newline() -> None:
    with pytest.raises(CorruptLock, match="does not end with a newline"):
        list(checked_lines(io.BytesIO(DATA[:-1]), "lock/resources.train.jsonl", None))
