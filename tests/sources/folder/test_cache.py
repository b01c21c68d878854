"""vxds/sources/folder/cache.py: the tree and index caches, kept in ``JsonCache`` files."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from vxds.sources.folder.cache import OTHER_KEY, RACY_KEY, VERSION, TreeCache, cache_folder, tree_digest

RACY = 10


def _tree_file(folder: Path) -> dict[str, object]:
    data: dict[str, object] = orjson.loads((folder / "stats.json").read_bytes())
    return data


def test_the_tree_cache_file_keeps_its_shape(tmp_path: Path) -> None:
    tree = TreeCache(tmp_path)
    tree.put("a/", (5, 7), (["f", "g"], []), [[1, 2, 3], None], racy=RACY)
    tree.put("", (1, 2), ([], ["a"]), [], racy=RACY)
    root = tree.save()
    data = _tree_file(tmp_path)
    assert isinstance(data.pop("token"), str)
    assert data == {
        "version": VERSION,
        "root": root,
        "folders": ["", "a/"],  # in path order, whatever the walk's
        "folder_keys": [1, 2, 5, 7],
        "counts": [0, 2],
        "files": ["a/f", "a/g"],
        "file_keys": [1, 2, 3, OTHER_KEY, OTHER_KEY, OTHER_KEY],  # g is not a regular file
    }
    again = TreeCache(tmp_path)
    assert again.root == root
    assert again.get("a/", (5, 7)) == (["f", "g"], [])
    assert again.get("a/", (5, 8)) is None  # the folder changed since
    assert again.get("", (1, 2)) == ([], ["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]  # no temporary file


def test_the_root_digest_changes_with_any_stat_or_name(tmp_path: Path) -> None:
    def root_of(folders: dict[str, tuple[tuple[int, int], list[str], list[list[int] | None]]]) -> str | None:
        tree = TreeCache(tmp_path)
        for rel, (key, names, keys) in folders.items():
            tree.put(rel, key, (names, []), keys, racy=RACY)
        return tree.save()

    same = root_of({"": ((1, 2), [], []), "a/": ((5, 7), ["f"], [[1, 2, 3]])})
    assert same is not None
    assert root_of({"a/": ((5, 7), ["f"], [[1, 2, 3]]), "": ((1, 2), [], [])}) == same  # path order
    assert root_of({"": ((1, 2), [], []), "a/": ((5, 7), ["f"], [[1, 2, 4]])}) != same  # a file's stat
    assert root_of({"": ((1, 2), [], []), "a/": ((5, 7), ["f", "g"], [[1, 2, 3], None])}) != same  # a name
    assert root_of({"": ((1, 3), [], []), "a/": ((5, 7), ["f"], [[1, 2, 3]])}) != same  # a folder's stat


def test_a_racy_entry_is_kept_stale_and_keeps_the_root_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "a" / "f").write_text("x")
    tree = TreeCache(tmp_path / "cache")
    st, f = (data / "a").stat(), (data / "a" / "f").stat()
    top = data.stat()
    tree.put("", (top.st_mtime_ns, top.st_ino), ([], ["a"]), [], racy=2**62)
    tree.put(
        "a/",
        (st.st_mtime_ns, st.st_ino),
        (["f"], []),
        [[f.st_size, f.st_mtime_ns, f.st_ino]],
        racy=f.st_mtime_ns,
    )
    assert tree.save() is None  # the file was modified as late as the walk
    again = TreeCache(tmp_path / "cache")
    assert _tree_file(tmp_path / "cache")["file_keys"] == [RACY_KEY] * 3
    assert again.unchanged_listing(str(data)) is None
    assert again.stale == {"a/"}  # listed again by the next walk, and only it


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[1]",
        b'{"version": 4, "folders": []}',
        f'{{"version": {VERSION}, "folders": ["a/"], "folder_keys": [1], "counts": [0], "files": [],'
        ' "file_keys": []}'.encode(),
        f'{{"version": {VERSION}, "folders": [""], "folder_keys": [1, 2], "counts": [2], "files": ["f"],'
        ' "file_keys": [1, 2, 3]}'.encode(),
    ],
)
def test_a_tree_cache_that_cannot_be_trusted_is_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "stats.json").write_bytes(content)
    tree = TreeCache(tmp_path)
    assert tree.get("a/", (1, 2)) is None
    assert tree.unchanged_listing(str(tmp_path)) is None
    assert tree.stale is None  # nothing to trust: the whole tree is walked


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
        tree.put(rel, (st.st_mtime_ns, st.st_ino), (names, subdirs), keys, racy=2**62)
    assert tree.save() is not None
    found = tree_digest(cache, data, "")
    assert found is not None
    assert found.startswith("blake3:")
    assert tree_digest(cache, data, "record tables") not in (None, found)  # settings count
    assert tree_digest(cache, data, "", saved_before=(folder / "stats.json").stat().st_mtime_ns) is None
    assert tree_digest(cache, data, "", saved_before=2**62) == found  # right after the scan
    (data / "a" / "f.txt").write_text("two")  # same size, new mtime
    assert tree_digest(cache, data, "") is None
    assert tree_digest(None, data, "") is None


def test_a_name_that_is_not_a_regular_file_must_stay_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    os.mkfifo(data / "pipe")
    st, f = data.stat(), (data / "f").stat()
    tree = TreeCache(tmp_path / "cache")
    keys = [[f.st_size, f.st_mtime_ns, f.st_ino], None]
    tree.put("", (st.st_mtime_ns, st.st_ino), (["f", "pipe"], []), keys, racy=st.st_mtime_ns + 1)
    root = tree.save()
    assert root is not None
    assert TreeCache(tmp_path / "cache").unchanged_listing(str(data)) == root
    (data / "pipe").unlink()
    (data / "pipe").write_text("now a file")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the folder's time put back
    again = TreeCache(tmp_path / "cache")
    assert again.unchanged_listing(str(data)) is None
    assert again.stale == {""}


def _plant(folder: Path, rel: str, name: str, key: list[int]) -> None:
    """Add ``name`` to folder ``rel`` of ``folder``'s ``stats.json``, with stat ``key``, as a
    planted (or damaged) cache would hold it."""
    data: dict[str, list[object]] = orjson.loads((folder / "stats.json").read_bytes())
    at = data["folders"].index(rel)
    start = sum(int(str(n)) for n in data["counts"][:at])
    data["files"].insert(start, rel + name)
    data["file_keys"][start * 3 : start * 3] = key
    data["counts"][at] = int(str(data["counts"][at])) + 1
    (folder / "stats.json").write_bytes(orjson.dumps(data))


@pytest.mark.parametrize("name", ["../secret", "..", ".", "/abs", "a/b", ""])
def test_a_name_no_listing_gives_makes_its_folder_unknown(tmp_path: Path, name: str) -> None:
    tree = TreeCache(tmp_path)
    tree.put("a/", (5, 7), (["f"], []), [[1, 2, 3]], racy=RACY)
    tree.put("b/", (6, 7), (["g"], []), [[1, 2, 4]], racy=RACY)
    tree.put("", (1, 2), ([], ["a", "b"]), [], racy=RACY)
    tree.save()
    _plant(tmp_path, "a/", name, [1, 2, 9])
    planted = TreeCache(tmp_path)
    assert planted.folder("a/") is None  # listed again, never read from the cache
    assert planted.get("a/", (5, 7)) is None
    assert planted.damaged == {"a/"}
    assert planted.folder("b/") == ((6, 7), ["g"], [[1, 2, 4]])  # its neighbour is as it was


def test_a_folder_path_no_walk_gives_is_unknown(tmp_path: Path) -> None:
    tree = TreeCache(tmp_path)
    tree.put("a/", (5, 7), (["f"], []), [[1, 2, 3]], racy=RACY)
    tree.put("a/../", (5, 8), (["g"], []), [[1, 2, 4]], racy=RACY)  # a subfolder named ".."
    tree.put("", (1, 2), ([], ["a"]), [], racy=RACY)
    tree.save()
    planted = TreeCache(tmp_path)
    assert planted.folder("a/../") is None
    assert planted.get("a/", (5, 7)) is None  # its listing names ".." as a subfolder
    assert planted.get("", (1, 2)) == ([], ["a"])
