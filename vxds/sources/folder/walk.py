"""Walking a folder source's tree: the regular files it holds, its Zarr stores, and what it
refuses (links leading out of the tree, names no resource id can hold), before any byte is
read. The folder source (``source.py``) builds its resources from what ``walk`` returns."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

from vxds.errors import SourceError
from vxds.resource import InvalidResource, check_id
from vxds.sources.folder import bids
from vxds.sources.folder.cache import Folder, Key, TreeCache, racy_after
from vxds.sources.folder.listing import listing
from vxds.sources.folder.root import leads_out as leads_out  # re-exported
from vxds.sources.folder.root import shown as shown  # re-exported


class WalkedFile(NamedTuple):
    """A regular file a walk found: its id, its path, and its stat key."""

    rel: str
    path: str
    size: int
    key: tuple[int, int, int]


def _name_problem(rel: str) -> str | None:
    """Why a path in the tree cannot be a resource id, or None when it can."""
    # Plain names (printable ASCII, no backslash or colon) can only break an id's rules on
    # structure, which a walk cannot produce: check_id is asked about the others only.
    if rel.isascii() and rel.isprintable() and "\\" not in rel and ":" not in rel:
        return None
    try:
        rel.encode("utf-8")
        check_id(rel)
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    except InvalidResource as exc:
        return f"its name is not a valid resource id ({exc})"
    return None


def _file_key(path: str, real_root: str) -> tuple[Key, str | None]:
    """A file's ``[size, mtime_ns, inode]`` (None when it is not a regular file, as for
    ``file_key``), and the target of a link that would lead out of the tree."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            st = os.stat(path)
            if stat.S_ISREG(st.st_mode) and (target := leads_out(path, real_root)) is not None:
                return None, target
    except OSError:
        return None, None
    return ([st.st_size, st.st_mtime_ns, st.st_ino] if stat.S_ISREG(st.st_mode) else None), None


class Walker:
    """What a walk found: files, Zarr stores, each folder as seen (``seen``), and what it
    refused (see ``walk``)."""

    def __init__(self, root: Path, tree: TreeCache | None) -> None:
        self.root = str(root)
        self.real_root = os.path.realpath(root)
        self.tree = tree
        self.racy = racy_after()
        self.files: list[WalkedFile] = []
        self.series: dict[str, list[WalkedFile]] = {}
        self.refused: list[str] = []
        self.seen: dict[str, Folder] = {}  # folder (trailing slash, "" the root) -> what it held
        self.found: dict[str, list[WalkedFile]] = {}  # folder -> its regular files

    def folders(self, rel: str, path: str, subdirs: list[str]) -> list[tuple[str, str]]:
        """The subfolders to enter; one whose name no id can hold is refused as a whole."""
        entered = []
        for name in subdirs:
            problem = _name_problem(rel + name)
            if problem is None:
                entered.append((f"{rel}{name}/", f"{path}/{name}"))
            else:
                self.refused.append(f"folder {shown(rel + name)}: {problem}")
        return entered

    def folder(self, rel: str, path: str, names: list[str]) -> tuple[list[WalkedFile], list[Key]]:
        """The regular files among ``names``, and every name's key for the tree cache."""
        found: list[WalkedFile] = []
        keys: list[Key] = []
        for name in names:
            key, target = _file_key(f"{path}/{name}", self.real_root)
            keys.append(key)
            if target is not None:
                self.refused.append(
                    f"{shown(rel + name)}: a symbolic link to {shown(target)}, outside the source folder"
                )
            elif key is not None:
                problem = _name_problem(rel + name)
                if problem is None:
                    found.append(WalkedFile(rel + name, f"{path}/{name}", key[0], (key[0], key[1], key[2])))
                else:
                    self.refused.append(f"{shown(rel + name)}: {problem}")
        return found, keys

    def run(self, stack: list[tuple[str, str]]) -> None:
        """Walk the folders on ``stack`` (rel, path) and everything below them."""
        tree = self.tree
        while stack:
            rel, path = stack.pop()
            trusted = tree.trusted(rel) if tree is not None else None
            if trusted is not None:  # stat'ed unchanged as a whole: its files need no stat here
                dir_key, (names, subdirs), known = trusted
                keys: list[Key] = list(known)
                found = [
                    WalkedFile(rel + n, f"{path}/{n}", k[0], (k[0], k[1], k[2]))
                    for n, k in zip(names, known, strict=True)
                ]
            else:
                try:
                    (names, subdirs), dir_key = listing(rel, path, tree)
                except OSError as exc:
                    raise SourceError(f"cannot read folder {path}: {exc.strerror}") from None
                found, keys = self.folder(rel, path, names)
            stack.extend(self.folders(rel, path, subdirs))
            self.seen[rel] = Folder(dir_key, names, keys)
            self.found[rel] = found
            if tree is not None:
                tree.put(rel, dir_key, (names, subdirs), keys, self.racy)
            zarr = bids.zarr_root(rel) if rel else None
            if zarr is not None:
                self.series.setdefault(zarr, []).extend(found)
            else:
                self.files.extend(found)

    def check(self, url: str) -> None:
        """Stop with one ``SourceError`` naming everything refused, if anything was."""
        if self.refused:
            raise SourceError(_refusal(url, self.refused))


def walk(
    root: Path, tree: TreeCache | None = None, *, url: str | None = None
) -> tuple[list[WalkedFile], dict[str, list[WalkedFile]]]:
    """Files of the tree, and Zarr folders (rel path -> their files).

    Hidden entries are skipped and symlinked folders are not entered; a symlinked file
    counts as the file it points to when that file is inside the tree. A link leading out
    of the tree, and a name no resource id can hold, stop the walk with one
    ``SourceError`` naming them all, before any file is read.
    """
    state = Walker(root, tree)
    state.run([("", str(root))])
    state.check(url or str(root))
    return state.files, state.series


def _refusal(url: str, refused: list[str]) -> str:
    """One line naming what a walk refused (the first few, then how many more)."""
    listed = sorted(refused)
    head = "; ".join(listed[:5]) + (f"; and {len(listed) - 5} more" if len(listed) > 5 else "")
    return f"source {url!r}: cannot lock " + (head if len(listed) == 1 else f"{len(listed)} files: {head}")
