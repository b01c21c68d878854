"""vxds/hashing.py: pinned digests, file hashing on both paths, the stat cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from vxds import filehash, hashing
from vxds.hashing import (
    MMAP_THRESHOLD,
    HashCache,
    canonical_json,
    digest_bytes,
    digest_json,
    digest_text,
    hash_file,
    hash_files,
)

EMPTY = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
VXDS = "blake3:2cb92394f29459a687a2c036d08812377c55dbc2a459cad94579889ce6b9b5df"
NESTED = {"z": [1, 2.5, None, True], "a": {"ü": "Zürich — 東京", "b": 'x"y'}}
NESTED_JSON = '{"a":{"b":"x\\"y","ü":"Zürich — 東京"},"z":[1,2.5,null,true]}'.encode()
NESTED_DIGEST = "blake3:e1b7613ba199f036311ff52b12271d28eb1ec32673978a53cab520a74e07a111"


def test_digest_bytes_pinned() -> None:
    assert digest_bytes(b"") == EMPTY
    assert digest_bytes(b"vxds") == VXDS


def test_canonical_json_sorts_keys_is_compact_and_keeps_unicode() -> None:
    assert canonical_json(NESTED) == NESTED_JSON
    assert digest_json(NESTED) == NESTED_DIGEST
    assert canonical_json(dict(reversed(list(NESTED.items())))) == NESTED_JSON


@pytest.mark.parametrize("value", [{1, 2}, b"raw", {1: "non-string key"}, 1 << 70])
def test_canonical_json_refuses_what_json_cannot_hold(value: object) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


def test_digest_text_ignores_line_endings() -> None:
    assert digest_text("a\r\nb\r\n") == digest_text("a\nb\n") == digest_bytes(b"a\nb\n")


@pytest.mark.parametrize("size", [0, 5, MMAP_THRESHOLD - 1, MMAP_THRESHOLD, MMAP_THRESHOLD + 4099])
def test_hash_file_equals_digest_bytes_on_both_paths(tmp_path: Path, size: int) -> None:
    data = bytes(range(251)) * (size // 251) + b"\x07" * (size % 251)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert len(data) == size
    assert hash_file(path) == hash_file(path, size) == digest_bytes(data)


def test_large_files_are_hashed_by_blake3_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"v" * (MMAP_THRESHOLD + 1))
    time.sleep(2 * filehash.RACY_NS / 1e9)  # old enough to be read once
    expected = digest_bytes(b"v" * (MMAP_THRESHOLD + 1))
    made: list[dict[str, object]] = []
    real = filehash.blake3

    def spy(*args: object, **kwargs: object) -> object:
        made.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    spy.AUTO = real.AUTO  # type: ignore[attr-defined]
    monkeypatch.setattr(filehash, "blake3", spy)
    assert hash_file(path) == expected
    assert made == [{"max_threads": real.AUTO}]  # read in blocks, not mapped: see MMAP_THRESHOLD


def test_hash_files_keeps_input_order(tmp_path: Path) -> None:
    items = []
    for n in range(150):
        path = tmp_path / f"f{n:03d}"
        path.write_bytes(f"content {n}".encode() * (n % 7 + 1))
        items.append((str(path), path.stat().st_size))
    items.reverse()
    done: list[int] = []
    digests = list(hash_files(items, jobs=4, on_done=done.append))
    assert digests == [digest_bytes(Path(p).read_bytes()) for p, _ in items]
    assert sorted(done) == sorted(size for _, size in items)
    assert list(hash_files(items[:3], jobs=1)) == digests[:3]
    assert list(hash_files([])) == []


def test_hash_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "hashes.json"
    cache = HashCache(path)
    cache.put("/data/a", (10, 111, 5), VXDS)
    cache.save()
    assert path.is_file()
    assert not list(path.parent.glob(".*tmp"))
    again = HashCache(path)
    assert again.get("/data/a", (10, 111, 5)) == VXDS
    assert again.get("/data/b", (10, 111, 5)) is None


@pytest.mark.parametrize("key", [(11, 111, 5), (10, 112, 5), (10, 111, 6)], ids=["size", "mtime", "inode"])
def test_hash_cache_misses_when_stat_changes(tmp_path: Path, key: tuple[int, int, int]) -> None:
    cache = HashCache(tmp_path / "hashes.json")
    cache.put("/data/a", (10, 111, 5), VXDS)
    cache.save()
    assert HashCache(tmp_path / "hashes.json").get("/data/a", key) is None


@pytest.mark.parametrize("content", [b"", b"not json", b'{"version": 99, "entries": {}}', b"[1, 2]"])
def test_unreadable_hash_cache_is_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hashes.json"
    path.write_bytes(content)
    assert HashCache(path).get("/data/a", (1, 2, 3)) is None


def test_hash_cache_with_malformed_entries_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "hashes.json"
    path.write_bytes(b'{"version": 1, "entries": {"/x": 5, "/y": [1]}}')
    cache = HashCache(path)
    assert cache.get("/x", (1, 2, 3)) is None
    assert cache.get("/y", (1, 2, 3)) is None


def test_hash_cache_without_a_path_never_writes(tmp_path: Path) -> None:
    cache = HashCache(None)
    cache.put("/a", (1, 2, 3), EMPTY)
    cache.save()
    assert cache.get("/a", (1, 2, 3)) == EMPTY
    assert os.listdir(tmp_path) == []


def test_a_file_changed_as_recently_as_the_read_is_read_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write within one tick of the file clock leaves the stats equal: two reads must agree."""
    path = tmp_path / "fresh"
    path.write_bytes(b"new bytes")
    reads: list[str] = []
    real = filehash._read_once

    def counting(name: str) -> tuple[str, os.stat_result, os.stat_result]:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(filehash, "_read_once", counting)
    assert hash_file(path) == digest_bytes(b"new bytes")
    assert len(reads) == 2
    reads.clear()
    time.sleep(2 * filehash.RACY_NS / 1e9)
    assert hash_file(path) == digest_bytes(b"new bytes")
    assert len(reads) == 1


def test_two_racy_reads_that_disagree_are_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "flipping"
    path.write_bytes(b"a")
    contents = iter([b"a", b"b"] * 4)
    real = filehash._read_once

    def flipping(name: str) -> tuple[str, os.stat_result, os.stat_result]:
        _digest, before, after = real(name)
        return digest_bytes(next(contents)), before, after  # the same stats, other bytes each time

    monkeypatch.setattr(filehash, "_read_once", flipping)
    monkeypatch.setattr(filehash, "RACY_NS", 10**18)  # every read is as recent as the file
    with pytest.raises(hashing.FileChanged, match="changed while it was read"):
        hash_file(path)


def test_hash_cache_file_keeps_its_shape_and_an_unwritable_one_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "hashes.json"
    cache = HashCache(path)
    cache.put("/data/a", (10, 111, 5), VXDS)
    cache.save()
    assert orjson.loads(path.read_bytes()) == {"version": 1, "entries": {"/data/a": [10, 111, 5, VXDS]}}
    blocked = HashCache(path / "under-a-file.json")  # its folder is a file: it cannot be written
    blocked.put("/data/a", (10, 111, 5), VXDS)
    blocked.save()
    assert blocked.get("/data/a", (10, 111, 5)) == VXDS
