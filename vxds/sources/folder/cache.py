"""Local caches that let an unchanged folder be relisted without reading it again.

* ``TreeCache`` (``stats.json``): every folder of the last walk with its (mtime, inode), and
  every name in it with its file's (size, mtime, inode), as flat lists in path order. A
  folder's modification time changes whenever an entry is added, removed or renamed in it,
  so an unchanged folder need not be listed again; its files are still stat'ed, since
  editing a file does not touch its folder. When every folder and file stats as before, the
  whole tree is known unchanged without listing anything; when some do not, they are the
  ``stale`` folders, and only they are listed again (``patch.py``).
* The resource index (``index.py``, ``FolderIndex``) is kept beside it, folder by folder:
  an unchanged listing reuses every resource without reading the hash cache or any file,
  and a changed one rebuilds only the folders whose files or sidecars changed.
* ``tree_digest``: the tree's root digest, over every folder's and file's path and stat
  key, while every folder and file stats as the last walk saw them. It is what a recipe's
  fingerprint records of a folder source; see docs/recipes.md for exactly what it trusts.

Both live under ``.vxds/`` and are optimisations only: a missing, stale or unreadable cache
is rebuilt. Entries younger than ``RACY_NS`` are not trusted, as git does for its index: a
file system with coarse timestamps could hide a change made within the same tick. Such an
entry is kept with a key no stat gives (``RACY_KEY``), so the next walk finds it stale.
"""

from __future__ import annotations

import operator
import os
import stat
import time
from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from vxds.fs import JsonCache
from vxds.hashing import digest_bytes

RACY_NS = 2_000_000_000
VERSION = 5  # 2: links out of the tree and names no id can hold are refused; 3: Zarr, NIfTI;
# 4: a dataset root's .bidsignore is listed (vxds.sources.folder.listing); 5: stats.json alone
RACY_KEY = -1  # every number of a folder's or file's key too recent to trust
OTHER_KEY = -2  # every number of the key of a name that is not a regular file


def cache_folder(cache_dir: Path | None, root: Path) -> Path | None:
    """Where the caches of the folder source at ``root`` live."""
    if cache_dir is None:
        return None
    return cache_dir / "folders" / digest_bytes(str(root.resolve()).encode())[7:23]


def racy_after() -> int:
    """Timestamps after this (in ns) are too recent to trust."""
    return time.time_ns() - RACY_NS


Listing = tuple[list[str], list[str]]  # file names, folder names
Key = list[int] | None  # a file's [size, mtime_ns, inode]; None when it is not a regular file


class Folder(NamedTuple):
    """One folder as a walk saw it: its key, its names and each name's key (``Key``)."""

    key: tuple[int, int]
    names: list[str]
    keys: list[Key]


STAMP_CHUNK = 4096  # paths stat'ed per C loop: a change is found without stat'ing the rest
_FOLDER_KEY = operator.attrgetter("st_mtime_ns", "st_ino")
_FILE_KEY = operator.attrgetter("st_size", "st_mtime_ns", "st_ino")
_FIELDS = ("folders", "folder_keys", "counts", "files", "file_keys")


class TreeCache:
    """Every folder and file of the last walk of the tree, with their stat keys.

    ``unchanged_listing`` re-stats what was seen last time and, when nothing differs,
    returns the root digest the last walk computed, without listing any folder; otherwise
    ``stale`` holds the folders whose own stat or one of whose files' differs. ``stats.json``
    holds ``folders`` (paths with a trailing slash, ``""`` the root, sorted), ``folder_keys``
    (flat: mtime, inode, ...), ``counts`` (each folder's names), ``files`` (every name's path,
    folder by folder, in listing order) and ``file_keys`` (flat: size, mtime, inode, ...).
    """

    def __init__(self, folder: Path | None) -> None:
        self._path = folder / "stats.json" if folder is not None else None
        self.data = JsonCache(self._path, VERSION).data
        if not _valid(self.data):
            self.data = {}
        self._new: dict[str, Folder] = {}
        self._at: dict[str, int] | None = None  # folder -> its index in ``folders``
        self._starts: list[int] = []  # each folder's first name in ``files``
        self._children: dict[str, list[str]] | None = None
        self.stale: set[str] | None = None  # what ``unchanged_listing`` found changed
        self.gone: set[str] = set()  # ... and, of the folders, those no longer there
        self.damaged: set[str] = set()  # folders with a name no listing gives: listed again

    @property
    def root(self) -> str | None:
        """The root digest of the last settled walk, if there was one."""
        found = self.data.get("root")
        return found if isinstance(found, str) else None

    @property
    def token(self) -> str | None:
        """Names the walk that wrote this cache (the resource index records it)."""
        found = self.data.get("token")
        return found if isinstance(found, str) else None

    def unchanged_listing(self, root: str) -> str | None:
        """The root digest, if every folder and file still stats the same; every stat is
        made and compared in C loops. When something differs, ``stale`` holds the folders
        whose own stat or one of whose files' differs, so that only they are listed again."""
        data = self.data
        if not data:
            return None
        base = root + "/"
        folders, files, keys = data["folders"], data["files"], data["file_keys"]
        stale = {folders[i] for i in _differing(folders, data["folder_keys"], base, _FOLDER_KEY, 2)}
        self.gone = {rel for rel in stale if not os.path.isdir(base + rel)}
        for index in _differing(files, keys, base, _FILE_KEY, 3):
            if keys[index * 3] == OTHER_KEY and file_key(base + files[index]) is None:
                continue  # not a regular file then, and still not one
            folder, slash, _name = files[index].rpartition("/")
            stale.add(folder + slash)
        self.stale = stale
        return None if stale else self.root

    def folder(self, rel: str) -> Folder | None:
        """What the last walk saw of folder ``rel``; None when it did not see it, or when a
        name the cache holds for it is not one a listing gives (``..``, a path: a planted or
        damaged cache), so that the folder is listed again rather than a path outside it read."""
        if self._at is None:
            folders = self.data.get("folders", [])
            self._at = {rel: at for at, rel in enumerate(folders)}
            self._starts = [0, *accumulate(self.data.get("counts", []))]
        at = self._at.get(rel)
        if at is None or rel in self.damaged:
            return None
        data = self.data
        start, end = self._starts[at], self._starts[at + 1]
        cut = len(rel)
        paths = data["files"][start:end]
        names = [path[cut:] for path in paths]
        plain = plain_folder(rel) and all(map(_plain_name, names))
        if not plain or not all(path[:cut] == rel for path in paths):
            self.damaged.add(rel)
            return None
        flat = data["file_keys"][start * 3 : end * 3]
        keys: list[Key] = [
            None if k == OTHER_KEY else [k, flat[i + 1], flat[i + 2]] for i, k in _triples(flat)
        ]
        return Folder((data["folder_keys"][at * 2], data["folder_keys"][at * 2 + 1]), names, keys)

    def subdirs(self, rel: str) -> list[str]:
        """The names of the folders the last walk entered in ``rel`` (each a plain name, as
        ``folder`` checks its files')."""
        if self._children is None:
            self._children = {}
            for path in self.data.get("folders", []):
                if path:
                    parent, slash, name = path[:-1].rpartition("/")
                    self._children.setdefault(parent + slash, []).append(name)
        return self._children.get(rel, [])

    def trusted(self, rel: str) -> tuple[tuple[int, int], Listing, list[list[int]]] | None:
        """A folder's key, listing and file keys as the last walk saw them, when the stats
        made by ``unchanged_listing`` found nothing of it changed since."""
        if self.stale is None or rel in self.stale:
            return None
        seen = self.folder(rel)
        if seen is None or any(key is None for key in seen.keys):
            return None
        listing = self.get(rel, seen.key)
        return None if listing is None else (seen.key, listing, [key for key in seen.keys if key is not None])

    def get(self, rel: str, key: tuple[int, int]) -> Listing | None:
        """A folder's listing, when its key is the one the last walk saw and none of its
        folders was found stale (gone, say, while the folder's time was put back)."""
        seen = self.folder(rel)
        if seen is None or seen.key != (key[0], key[1]):
            return None
        subdirs = self.subdirs(rel)
        if not all(map(_plain_name, subdirs)):
            self.damaged.add(rel)
            return None
        if self.gone and any(f"{rel}{name}/" in self.gone for name in subdirs):
            return None
        return seen.names, subdirs

    def put(self, rel: str, key: tuple[int, int], listing: Listing, keys: list[Key], racy: int) -> None:
        """Note what a walk saw of folder ``rel``; what changed after ``racy`` is kept stale."""
        self._new[rel] = _settled(Folder(key, listing[0], keys), racy)

    def save(self) -> str | None:
        """Write what this walk saw; return the root digest (None when something was too
        recent to trust: it is kept as stale, for the next walk to list again)."""
        return self._write(_flat(sorted(self._new.items())))

    def splice(self, changed: dict[str, Folder], removed: set[str], racy: int) -> str | None:
        """Write the last walk's tree with the ``changed`` folders (new or listed again) in
        and the ``removed`` ones (with everything below them) out; return its root digest."""
        data = self.data
        self.folder("")  # the offsets
        folders = data["folders"]
        cuts = sorted({*changed, *removed})
        pieces: list[dict[str, list[Any]]] = []
        done = 0
        for rel in cuts:
            at = bisect_left(folders, rel)
            if at < done:
                continue  # below a folder already removed
            pieces.append(self._slice(done, at))
            if rel in removed:
                done = bisect_left(folders, rel + "\U0010ffff", at)  # its whole subtree
            else:
                done = at + 1 if at < len(folders) and folders[at] == rel else at
                pieces.append(_flat([(rel, _settled(changed[rel], racy))]))
        pieces.append(self._slice(done, len(folders)))
        return self._write({name: list(chain.from_iterable(p[name] for p in pieces)) for name in _FIELDS})

    def _slice(self, begin: int, end: int) -> dict[str, list[Any]]:
        data, first, last = self.data, self._starts[begin], self._starts[end]
        return {
            "folders": data["folders"][begin:end],
            "folder_keys": data["folder_keys"][begin * 2 : end * 2],
            "counts": data["counts"][begin:end],
            "files": data["files"][first:last],
            "file_keys": data["file_keys"][first * 3 : last * 3],
        }

    def _write(self, flat: dict[str, list[Any]]) -> str | None:
        body = orjson.dumps([flat[name] for name in _FIELDS])
        settled = RACY_KEY not in flat["folder_keys"] and RACY_KEY not in flat["file_keys"]
        root = digest_bytes(body) if settled else None
        cache = JsonCache(self._path, VERSION)
        cache.data = {"root": root, "token": os.urandom(8).hex(), **flat}
        cache.mark()
        if cache.save() and self._path is not None:
            (self._path.parent / "tree.json").unlink(missing_ok=True)  # cache version 4's listings
        self.data, self._at, self._children = cache.data, None, None
        return root


def _plain_name(name: str) -> bool:
    """Whether ``name`` is one a folder's listing can give: not empty, ``.`` or ``..``, no
    ``/`` (nor NUL, which no file system allows)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def plain_folder(rel: str) -> bool:
    """Whether ``rel`` is a folder path a walk gives: ``""``, or plain names each ending in ``/``."""
    return rel == "" or (rel[-1] == "/" and all(map(_plain_name, rel[:-1].split("/"))))


def _triples(flat: list[int]) -> Iterable[tuple[int, int]]:
    return ((i, flat[i]) for i in range(0, len(flat), 3))


def _settled(seen: Folder, racy: int) -> Folder:
    """``seen`` with each key modified after ``racy`` (ns) replaced by ``RACY_KEY``s."""
    key = seen.key if seen.key[0] < racy else (RACY_KEY, RACY_KEY)
    keys = [k if k is None or k[1] < racy else [RACY_KEY] * 3 for k in seen.keys]
    return Folder(key, seen.names, keys)


def _flat(folders: Iterable[tuple[str, Folder]]) -> dict[str, list[Any]]:
    """The flat lists of ``stats.json`` for ``folders`` (given in path order)."""
    out: dict[str, list[Any]] = {name: [] for name in _FIELDS}
    for rel, seen in folders:
        out["folders"].append(rel)
        out["folder_keys"].extend(seen.key)
        out["counts"].append(len(seen.names))
        out["files"].extend(rel + name for name in seen.names)
        for key in seen.keys:
            out["file_keys"].extend((OTHER_KEY, OTHER_KEY, OTHER_KEY) if key is None else key)
    return out


def _valid(data: dict[str, Any]) -> bool:
    """Whether ``stats.json``'s lists agree with each other."""
    try:
        folders, files, counts = data["folders"], data["files"], data["counts"]
        return (
            len(data["folder_keys"]) == 2 * len(folders) == 2 * len(counts)
            and sum(counts) == len(files)
            and len(data["file_keys"]) == 3 * len(files)
            and all(isinstance(x, list) for x in (folders, files))
        )
    except (KeyError, TypeError):
        return False


def _differing(rels: list[str], keys: list[int], base: str, key_of: Any, width: int) -> list[int]:
    """The indexes of the paths whose stat key (``width`` numbers each, flat in ``keys``)
    differs now, or which cannot be stat'ed; the stats are made in C loops, chunk by chunk."""
    found: list[int] = []
    for start in range(0, len(rels), STAMP_CHUNK):
        paths = [base + rel for rel in rels[start : start + STAMP_CHUNK]]
        was = keys[start * width : (start + len(paths)) * width]
        try:
            if list(chain.from_iterable(map(key_of, map(os.stat, paths)))) == was:
                continue
        except OSError:
            pass
        for offset, path in enumerate(paths):
            try:
                now = list(key_of(os.stat(path)))
            except OSError:
                now = []
            if now != was[offset * width : (offset + 1) * width]:
                found.append(start + offset)
    return found


def tree_digest(
    cache_dir: Path | None,
    root: Path,
    settings: str,
    *,
    saved_before: int | None = None,
    tree: TreeCache | None = None,
) -> str | None:
    """The root digest of the folder source at ``root`` (with ``settings``, what else its
    resources depend on, and this cache's version), or None when it is not known.

    By default every folder and file the last walk saw is stat'ed again (by ``tree``, which
    keeps what it found stale for a walk) and any difference gives None. With
    ``saved_before`` (ns), right after a scan that just wrote it, the saved digest is taken
    as it is, unless the cache was written at or after that time (by another process, whose
    walk this process did not see).
    """
    folder = cache_folder(cache_dir, root)
    if folder is None:
        return None
    if saved_before is not None:
        try:
            if (folder / "stats.json").stat().st_mtime_ns >= saved_before:
                return None
        except OSError:
            return None
    tree = tree or TreeCache(folder)
    if tree.root is None:
        return None
    if saved_before is None and tree.unchanged_listing(str(root)) is None:
        return None
    return digest_bytes(f"{VERSION}\n{tree.root}\n{settings}".encode())


def file_key(path: str) -> Key:
    """``[size, mtime_ns, inode]`` of a regular file (following links), else ``None``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino] if stat.S_ISREG(st.st_mode) else None
