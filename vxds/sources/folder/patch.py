"""The walk of a tree that changed a little: only the folders the tree cache found stale are
listed again (with every folder new below them), and only the groups of the resource index
they can change are built again.

``TreeCache.unchanged_listing`` stats every folder and file the last walk saw; a folder is
stale when its own (mtime, inode) or one of its files' (size, mtime, inode) differs. Adding,
removing or renaming an entry changes its folder's mtime, so every other folder holds what
it held, with the same stats: its files are taken from the cache without a ``stat``. A
group (a folder's files, or a Zarr store's members, ``index.py``) is built again when

* a folder of it was listed again (a file in it changed, came or went);
* a ``.json`` file (a sidecar or a ``dataset_description.json``) of a folder above it, or
  of its own folder, changed, came or went: its context is not what its entry was built in;
* the index has no entry for it (it was too recent to keep, or its bucket was lost).

Every other group keeps its entry as it is: its files and their context are unchanged. The
result is what a walk of the whole tree gives (tests/sources/folder/test_patch.py).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from vxds.errors import SourceError
from vxds.sources.folder import bids
from vxds.sources.folder.cache import Folder, Key, TreeCache, plain_folder
from vxds.sources.folder.index import FOLDERS, ZARRS, Contexts, FolderIndex, Group, Kept, group
from vxds.sources.folder.listing import listing
from vxds.sources.folder.walk import WalkedFile, Walker

GroupKey = tuple[str, str]  # (FOLDERS or ZARRS, rel without a trailing slash)


def group_key(folder: str) -> GroupKey:
    """The group the files of ``folder`` (a trailing slash, ``""`` the root) belong to."""
    zarr = bids.zarr_root(folder) if folder and ".zarr/" in folder.lower() else None
    return (ZARRS, zarr) if zarr is not None else (FOLDERS, folder[:-1])


@dataclass
class Patch:
    """What changed since the last walk, and what the index must build again."""

    plan: list[Group]  # the groups to check against their entries (built when they differ)
    kept: Kept  # the entries of every other group, reused as they are
    touched: set[GroupKey]  # groups whose entries change or go
    sidecars: list[WalkedFile]  # every JSON file that may apply to a group of ``plan``
    root: str | None  # the tree's new root digest (None: something was too recent)
    total: int  # files in the tree


def relisted(root: Path, tree: TreeCache, url: str) -> tuple[Walker, set[str]] | None:
    """The stale folders listed again and every new folder below them walked (``seen``), and
    the folders gone (each with all below it); None when the cache's stale set does not
    explain what is found (a folder gone whose parent did not change): walk everything."""
    walker = Walker(root, None)
    removed: set[str] = set()
    stale = tree.stale or set()
    if not all(map(plain_folder, stale)):  # a damaged cache's path, not one a walk gives
        return None
    for rel in sorted(stale):  # a folder before those below it
        if any(rel.startswith(gone) for gone in removed):
            continue
        path = f"{walker.root}/{rel[:-1]}" if rel else walker.root
        try:
            (names, subdirs), key = listing(rel, path, tree)  # from the cache if its key is the same
        except (FileNotFoundError, NotADirectoryError):
            parent, slash, _ = rel[:-1].rpartition("/")
            if parent + slash not in stale:
                return None
            removed.add(rel)
            continue
        except OSError as exc:
            raise SourceError(f"cannot read folder {path}: {exc.strerror}") from None
        found, keys = walker.folder(rel, path, names)
        walker.seen[rel], walker.found[rel] = Folder(key, names, keys), found
        entered = walker.folders(rel, path, subdirs)
        walker.run([(sub, where) for sub, where in entered if tree.folder(sub) is None])
        now = set(subdirs)
        removed.update(f"{rel}{name}/" for name in tree.subdirs(rel) if name not in now)
    walker.check(url)
    return walker, removed


def _sidecars(keys: list[Key], names: list[str], rel: str, base: str) -> list[WalkedFile]:
    return [
        WalkedFile(rel + name, f"{base}{rel}{name}", key[0], (key[0], key[1], key[2]))
        for name, key in zip(names, keys, strict=True)
        if key is not None and name.endswith(".json")
    ]


class _Unknown(Exception):
    """A folder neither this walk listed nor the tree cache holds (its cached names were not
    a listing's, ``TreeCache.folder``): the tree is walked instead."""


class _Files:
    """Each folder's regular files: listed again by this walk, else from the tree cache."""

    def __init__(self, tree: TreeCache, walker: Walker) -> None:
        self.tree, self.walker = tree, walker
        self.base = walker.root + "/"

    def of(self, rel: str) -> list[WalkedFile]:
        found = self.walker.found.get(rel)
        if found is not None:
            return found
        seen = self.tree.folder(rel)
        if seen is None:  # not an empty folder: one whose files are not known
            raise _Unknown(rel)
        return [
            WalkedFile(rel + name, f"{self.base}{rel}{name}", key[0], (key[0], key[1], key[2]))
            for name, key in zip(seen.names, seen.keys, strict=True)
            if key is not None
        ]

    def json(self, rel: str) -> list[WalkedFile]:
        return [f for f in self.of(rel) if f.rel.endswith(".json")]


def _json_changed(tree: TreeCache, walker: Walker) -> list[str]:
    """The folders listed again whose ``.json`` files (names and stats) are not the cache's."""
    changed = []
    base = walker.root + "/"
    for rel, seen in walker.seen.items():
        old = tree.folder(rel)
        was = _sidecars(old.keys, old.names, rel, base) if old is not None else []
        if was != _sidecars(seen.keys, seen.names, rel, base):
            changed.append(rel)
    return changed


def patch(root: Path, tree: TreeCache, index: FolderIndex, url: str) -> Patch | None:
    """The groups to build again after the changes the tree cache found stale, with the tree
    cache written anew; None when the whole tree must be walked instead."""
    entries = index.entries() if index.matches(tree=tree.token) else None
    found = relisted(root, tree, url) if entries is not None else None
    if entries is None or found is None:
        return None
    walker, removed = found
    context_changed = _json_changed(tree, walker)
    new_root = tree.splice(walker.seen, removed, walker.racy)
    folders, counts = tree.data["folders"], tree.data["counts"]
    present = {
        group_key(rel) if ".zarr/" in rel.lower() else (FOLDERS, rel[:-1])
        for rel, count in zip(folders, counts, strict=True)
        if count
    }
    affected = {group_key(rel) for rel in walker.seen} | (present - entries.keys())
    for rel in context_changed:  # every folder below a changed sidecar
        start = bisect_left(folders, rel)
        end = bisect_left(folders, rel + "\U0010ffff", start)
        affected.update(group_key(below) for below in folders[start:end])
    gone = entries.keys() - present
    kept = {key: entry for key, entry in entries.items() if key not in affected and key not in gone}
    try:
        plan, sidecars = _plan(sorted(affected & present), _Files(tree, walker), walker.racy, folders)
    except _Unknown:
        return None
    return Patch(plan, kept, affected | gone, sidecars, new_root, len(tree.data["files"]))


def _plan(
    keys: list[GroupKey], files: _Files, racy: int, folders: list[str]
) -> tuple[list[Group], list[WalkedFile]]:
    """The groups of ``keys``, and the JSON files of every folder holding them or above."""
    wanted: dict[str, None] = {}
    members: dict[GroupKey, tuple[list[WalkedFile], str]] = {}
    for kind, rel in keys:
        if kind == FOLDERS:
            holder, found = rel, files.of(f"{rel}/" if rel else "")
        else:
            start = bisect_left(folders, rel + "/")
            end = bisect_left(folders, rel + "/\U0010ffff", start)
            holder = rel.rpartition("/")[0]
            found = [f for below in folders[start:end] for f in files.of(below)]
        if found:
            members[kind, rel] = (found, holder)
        parts = holder.split("/") if holder else []
        wanted.update(dict.fromkeys(["/".join(parts[:i]) for i in range(len(parts) + 1)]))
    sidecars = {folder: files.json(f"{folder}/" if folder else "") for folder in wanted}
    contexts = Contexts({folder: found for folder, found in sidecars.items() if found}, racy)
    plan = [
        group(kind, rel, found, holder, contexts, racy) for (kind, rel), (found, holder) in members.items()
    ]
    return plan, [f for found in sidecars.values() for f in found]
