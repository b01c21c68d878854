"""vxds/sources/folder/cache.py: the tree and index caches, kept in ``JsonCache`` files."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from vxds.sources.folder.cache import VERSION, TreeCache, cache_folder, root_digest, tree_digest

LISTING = "blake3:" + "1" * 64
OTHER = "blake3:" + "2" * 64


def test_the_tree_cache_file_keeps_its_shape(tmp_path: Path) -> None:
    tree = TreeCache(tmp_path)
    tree.put("a/", (5, 7), (["f"], []), [[1, 2, 3]], racy=10)
    tree.save(LISTING)
    assert orjson.loads((tmp_path / "tree.json").read_bytes()) == {
        "version": VERSION,
        "listing": LISTING,
        "root": "blake3:6b4282d7c8d1153310f4bf1be2327dd786a5b822ac3876e72d11ad6c01712dd1",
        "dirs": {"a/": [5, 7, ["f"], [], [[1, 2, 3]]]},
    }
    assert TreeCache(tmp_path).get("a/", (5, 7)) == (["f"], [])
    assert TreeCache(tmp_path).get("a/", (5, 8)) is None  # the folder changed since
    assert orjson.loads((tmp_path / "stats.json").read_bytes()) == {
        "version": VERSION,
        "listing": LISTING,
        "root": "blake3:6b4282d7c8d1153310f4bf1be2327dd786a5b822ac3876e72d11ad6c01712dd1",
        "folders": ["a/"],
        "folder_keys": [5, 7],
        "files": ["a/f"],
        "file_keys": [1, 2, 3],
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json", "tree.json"]  # no temporary file


def test_a_racy_folder_is_not_cached_and_keeps_the_listing_out(tmp_path: Path) -> None:
    tree = TreeCache(tmp_path)
    tree.put("a/", (10, 7), (["f"], []), [[1, 2, 3]], racy=10)  # modified as late as the walk
    tree.save(LISTING)
    again = TreeCache(tmp_path)
    assert again.get("a/", (10, 7)) is None
    assert again.unchanged_listing(str(tmp_path)) is None


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"[1]", b'{"version": 1, "dirs": {}}', b'{"version": 2, "dirs": 5}']
)
def test_a_tree_cache_that_cannot_be_trusted_is_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "tree.json").write_bytes(content)
    tree = TreeCache(tmp_path)
    assert tree.get("a/", (5, 7)) is None
    assert tree.unchanged_listing(str(tmp_path)) is None


def test_the_root_digest_is_built_from_each_folders_digest() -> None:
    dirs = {"": [1, 2, [], ["a"], []], "a/": [5, 7, ["f"], [], [[1, 2, 3]]]}
    same = root_digest(dirs)
    assert root_digest(dict(reversed(dirs.items()))) == same  # in path order, whatever the walk's
    assert root_digest({**dirs, "a/": [5, 7, ["f"], [], [[1, 2, 4]]]}) != same  # a file's stat
    assert root_digest({**dirs, "a/": [5, 7, ["f", "g"], [], [[1, 2, 3], None]]}) != same  # a name
    assert root_digest({**dirs, "": [1, 3, [], ["a"], []]}) != same  # a folder's stat


def test_tree_digest_holds_while_every_folder_and_file_stats_the_same(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / ".vxds"
    (data / "a").mkdir(parents=True)
    (data / "a" / "f.txt").write_text("one")
    folder = cache_folder(cache, data)
    assert folder is not None
    tree = TreeCache(folder)
    for rel, path in (("", data), ("a/", data / "a")):
        st = path.stat()
        names = sorted(p.name for p in path.iterdir() if p.is_file())
        keys = [
            [p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino]
            for p in sorted(path.iterdir())
            if p.is_file()
        ]
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
        tree.put(rel, (st.st_mtime_ns, st.st_ino), (names, subdirs), keys, racy=st.st_mtime_ns + 1)
    tree.save(LISTING)
    found = tree_digest(cache, data, "")
    assert found is not None
    assert found.startswith("blake3:")
    assert tree_digest(cache, data, "record tables") not in (None, found)  # settings count
    assert tree_digest(cache, data, "", saved_before=(folder / "tree.json").stat().st_mtime_ns) is None
    assert tree_digest(cache, data, "", saved_before=2**62) == found  # right after the scan
    (data / "a" / "f.txt").write_text("two")  # same size, new mtime
    assert tree_digest(cache, data, "") is None
    assert tree_digest(None, data, "") is None


def test_a_name_that_is_not_a_regular_file_is_checked_through_tree_json(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    os.mkfifo(data / "pipe")
    st, f = data.stat(), (data / "f").stat()
    tree = TreeCache(tmp_path / "cache")
    keys = [[f.st_size, f.st_mtime_ns, f.st_ino], None]
    tree.put("", (st.st_mtime_ns, st.st_ino), (["f", "pipe"], []), keys, racy=st.st_mtime_ns + 1)
    tree.save(LISTING)
    assert orjson.loads((tmp_path / "cache" / "stats.json").read_bytes()) == {"version": VERSION}
    assert TreeCache(tmp_path / "cache").unchanged_listing(str(data)) == LISTING
    (data / "pipe").unlink()
    (data / "pipe").write_text("now a file")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the folder's time put back
    assert TreeCache(tmp_path / "cache").unchanged_listing(str(data)) is None
