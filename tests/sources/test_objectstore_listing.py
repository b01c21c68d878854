"""vxds/sources/objectstore/listing.py: the digest cache of object reads, and hidden keys."""

from __future__ import annotations

from pathlib import Path

import orjson
from blake3 import blake3

from vxds.sources.objectstore.listing import DigestCache, DigestSink, Listed, Stored, visible

LISTED = Listed("sub-01/a.nii.gz", "p/sub-01/a.nii.gz", 3, '"etag1"', "2024-01-01T00:00:00Z")
KEY = 'p/sub-01/a.nii.gz\t"etag1"\t2024-01-01T00:00:00Z\t3'


def test_a_cache_written_by_earlier_releases_is_read(tmp_path: Path) -> None:
    # What DigestCache wrote before it became a JsonCache: sorted keys, durable write.
    (tmp_path / "objects").mkdir()
    earlier = {"entries": {KEY: ["v1", "blake3:" + "0" * 64]}, "version": 1}
    (tmp_path / "objects" / "s3-b.json").write_bytes(orjson.dumps(earlier, option=orjson.OPT_SORT_KEYS))
    assert DigestCache(tmp_path, "s3-b").get(LISTED) == ("v1", "blake3:" + "0" * 64)


def test_a_read_is_remembered_in_the_same_format(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path, "s3-b")
    assert cache.get(LISTED) is None
    cache.put(LISTED, Stored(LISTED.rel, LISTED.key, 3, "v2", "blake3:" + "1" * 64))
    cache.save()
    written = orjson.loads((tmp_path / "objects" / "s3-b.json").read_bytes())
    assert written == {"version": 1, "entries": {KEY: ["v2", "blake3:" + "1" * 64]}}
    assert DigestCache(tmp_path, "s3-b").get(LISTED) == ("v2", "blake3:" + "1" * 64)
    assert DigestCache(tmp_path, "s3-b").get(LISTED._replace(tag='"etag2"')) is None


def test_a_damaged_cache_is_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "objects").mkdir()
    for damaged in (b"{", b"[]", b'{"version": 2, "entries": {}}', b'{"version": 1, "entries": {"k": 3}}'):
        (tmp_path / "objects" / "s3-b.json").write_bytes(damaged.replace(b'"k"', orjson.dumps(KEY)))
        assert DigestCache(tmp_path, "s3-b").get(LISTED) is None


def test_without_a_cache_folder_nothing_is_written(tmp_path: Path) -> None:
    cache = DigestCache(None, "s3-b")
    cache.put(LISTED, Stored(LISTED.rel, LISTED.key, 3, "v2", "blake3:" + "1" * 64))
    cache.save()
    assert cache.get(LISTED) == ("v2", "blake3:" + "1" * 64)
    assert list(tmp_path.iterdir()) == []


def test_hidden_keys_and_folder_markers_are_not_listed() -> None:
    assert visible("sub-01/a.nii.gz")
    assert not visible("")
    assert not visible("sub-01/")
    assert not visible("sub-01/.DS_Store")
    assert not visible(".git/config")


def test_a_sink_hashes_and_keeps_only_when_asked() -> None:
    kept, dropped = DigestSink(keep=True), DigestSink(keep=False)
    for sink in (kept, dropped):
        sink.update(b"ab")
        sink.update(b"c")
    assert kept.value() == dropped.value() == "blake3:" + blake3(b"abc").hexdigest()
    assert (kept.size, kept.kept, dropped.kept) == (3, [b"ab", b"c"], None)
