"""The folder source's resource index, kept folder by folder, so one changed file rebuilds
the resources of its own folder and nothing else.

A folder's resources (its files', its record tables' rows, its DICOM series: a series never
spans folders) are a function of

* its own files: names, sizes, modification times and inodes (the hash cache's own test);
* its **context**: every ``.json`` file, with its stat, in the folder and in each folder
  above it up to the source's root. BIDS inheritance reads sidecars from the nearest
  dataset root down; taking every level above is the safe superset, so a sidecar edited
  anywhere above a folder rebuilds it, and a ``dataset_description.json`` added or removed
  (which moves a dataset root) does too;
* the settings (record tables, DICOM fields) and this cache's version.

A Zarr store is one entry of its own: its members' stats, and the context of the folder
holding it. An entry whose files or context are younger than ``cache.RACY_NS`` is not kept.
When every folder is unchanged the whole index is taken as it is (``whole``), keyed by the
tree cache's root digest; after a change, ``patch.py`` says which groups to build again.
Entries are kept in ``BUCKETS`` files by a hash of their path, so a change rewrites only the
buckets it touched; ``index.json`` names each bucket's token, and a bucket whose token is
not the head's is empty. The index is an optimisation only: a missing or damaged file is an
empty index and everything is built again.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from vxds.fs import JsonCache
from vxds.hashing import digest_bytes
from vxds.resource import Resource
from vxds.sources.folder.cache import VERSION
from vxds.sources.folder.walk import WalkedFile

INDEX_VERSION = f"{VERSION}.3"  # .1: kept per folder; .2: in buckets; .3: snapshot lines
BUCKETS = 64
FOLDERS, ZARRS = "folders", "zarrs"


class Group(NamedTuple):
    """One folder's files (or one Zarr's members), and what its resources depend on."""

    kind: str  # FOLDERS or ZARRS
    rel: str  # the folder ("" for the root) or the Zarr store, no trailing slash
    files: list[WalkedFile]
    stamp: str  # a line of name, size, mtime_ns and inode per file, in the walk's order
    context: str  # digest of the sidecars that may apply (see the module docstring)
    settled: bool  # nothing in it or its context is too recent to trust


@dataclass(frozen=True)
class Index:
    snapshot: str
    resources: list[Resource]
    rows: dict[str, bytes]


def groups(files: Iterable[WalkedFile], zarrs: dict[str, list[WalkedFile]], racy: int) -> list[Group]:
    """Every folder holding files, and every Zarr store, with their stamps and contexts.

    A group's files are in the walk's order (a folder's listing order): a folder listed
    in another order gets another stamp, and is only built again."""
    by_folder: dict[str, list[WalkedFile]] = {}
    sidecars: dict[str, list[WalkedFile]] = {}
    for f in files:
        folder = f.rel.rpartition("/")[0]
        by_folder.setdefault(folder, []).append(f)
        if f.rel.endswith(".json"):
            sidecars.setdefault(folder, []).append(f)
    contexts = Contexts(sidecars, racy)
    found = [group(FOLDERS, rel, members, rel, contexts, racy) for rel, members in by_folder.items()]
    for rel, members in zarrs.items():
        found.append(group(ZARRS, rel, members, rel.rpartition("/")[0], contexts, racy))
    return found


def group(
    kind: str, rel: str, members: list[WalkedFile], folder: str, contexts: Contexts, racy: int
) -> Group:
    cut = len(rel) + 1 if rel else 0
    stamp = "".join([f"{f.rel[cut:]}\t{f.key[0]}\t{f.key[1]}\t{f.key[2]}\n" for f in members])
    context, context_racy = contexts.of(folder)
    settled = not context_racy and max(f.key[1] for f in members) < racy
    return Group(kind, rel, members, stamp, context, settled)


class Contexts:
    """Each folder's context digest, from the ``.json`` files of it and every folder above."""

    def __init__(self, sidecars: dict[str, list[WalkedFile]], racy: int) -> None:
        self.racy = racy
        self.sidecars = {rel: sorted(here, key=lambda f: f.rel) for rel, here in sidecars.items()}
        self.known: dict[str, tuple[str, bool]] = {}

    def of(self, folder: str) -> tuple[str, bool]:
        """(digest, whether a sidecar in it is too recent to trust) of ``folder``'s context."""
        found = self.known.get(folder)
        if found is None:
            above = self.of(folder.rpartition("/")[0]) if folder else ("", False)
            here = self.sidecars.get(folder) or []
            if not here:
                found = above
            else:
                lines = "".join(f"{f.rel}\t{f.key[0]}\t{f.key[1]}\t{f.key[2]}\n" for f in here)
                racy = above[1] or any(f.key[1] >= self.racy for f in here)
                found = (digest_bytes(f"{above[0]}\n{lines}".encode("utf-8", "surrogateescape")), racy)
            self.known[folder] = found
        return found


Kept = dict[tuple[str, str], list[Any]]  # (kind, rel) -> entry


def bucket(kind: str, rel: str) -> int:
    """The index file a group's entry is kept in (stable across runs and machines)."""
    return zlib.crc32(f"{kind}:{rel}".encode("utf-8", "surrogateescape")) % BUCKETS


class FolderIndex:
    """The resources of each folder of the tree: ``index.json`` (the settings, the listing
    and snapshot of the last build, the tree cache's token and each bucket's token) and
    ``index/NN.json``, the entries of the groups ``bucket`` puts there. A bucket whose
    token is not the head's (a write cut short) is empty: its groups are built again."""

    def __init__(self, folder: Path | None, settings: str) -> None:
        self.folder = folder
        self.head = JsonCache(folder / "index.json" if folder is not None else None, INDEX_VERSION)
        self._first = not self.head.data  # no index.json of this version yet: old ones may lie about
        if self.head.data.get("settings") != settings or not isinstance(self.head.data.get("buckets"), list):
            self.head.data = {}
        self.settings = settings
        self._loaded: dict[int, dict[str, dict[str, list[Any]]] | None] = {}

    def _bucket(self, number: int) -> dict[str, dict[str, list[Any]]] | None:
        """Bucket ``number``'s entries by kind and rel; None when it cannot be trusted."""
        if number not in self._loaded:
            tokens = self.head.data.get("buckets") or []
            found = None
            if self.folder is not None and number < len(tokens):
                data = JsonCache(self.folder / "index" / f"{number:02d}.json", INDEX_VERSION).data
                tables = data.get(FOLDERS), data.get(ZARRS)
                if data.get("token") == tokens[number] and all(isinstance(t, dict) for t in tables):
                    found = {FOLDERS: data[FOLDERS], ZARRS: data[ZARRS]}
            self._loaded[number] = found
        return self._loaded[number]

    def matches(self, listing: str | None = None, tree: str | None = None) -> bool:
        """Whether the last build was of ``listing`` (or of the walk that wrote ``tree``)."""
        data = self.head.data
        if listing is not None:
            return bool(data) and data.get("listing") == listing
        return bool(data) and tree is not None and data.get("tree") == tree

    def entries(self) -> Kept | None:
        """Every kept entry; None when a bucket cannot be trusted."""
        out: Kept = {}
        for number in range(BUCKETS):
            found = self._bucket(number)
            if found is None:
                return None
            for kind in (FOLDERS, ZARRS):
                out.update(((kind, rel), entry) for rel, entry in found[kind].items())
        return out

    def whole(self, listing: str) -> Index | None:
        """Every resource, when the last build was of exactly this listing."""
        if not self.matches(listing):
            return None
        entries = self.entries()
        try:
            if entries is None:
                return None
            resources = kept(entries.values())
            rows = {rid: body.encode() for entry in entries.values() for rid, body in entry[3].items()}
            return Index(str(self.head.data["snapshot"]), resources, rows)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return None

    def _entry(self, group: Group) -> list[Any] | None:
        found = self._bucket(bucket(group.kind, group.rel))
        entry = found[group.kind].get(group.rel) if found is not None else None
        return entry if isinstance(entry, list) and len(entry) == 5 else None

    def reusable(self, group: Group) -> list[Any] | None:
        """The kept entry of ``group`` (stamp, context, rows, records, the snapshot's lines of its
        files: ``path<TAB>digest``), if it matches."""
        entry = self._entry(group)
        return entry if entry is not None and entry[0] == group.stamp and entry[1] == group.context else None

    def known(self, group: Group) -> dict[str, str]:
        """Digests the kept entry of a changed ``group`` still vouches for: its files whose
        name, size, modification time and inode are as they were."""
        old = self._entry(group)
        if old is None or not isinstance(old[0], str):
            return {}
        digests = list(digests_of(old).values()) if isinstance(old[4], str) else []
        was = dict(zip(old[0].split("\n")[:-1], digests, strict=False))  # names hold no control character
        now = group.stamp.split("\n")[:-1]
        return {
            f.rel: digest
            for f, line in zip(group.files, now, strict=True)
            if isinstance(digest := was.get(line), str)
        }

    def save(
        self,
        listing: str | None,
        snapshot: str,
        tree: str | None,
        entries: Kept,
        *,
        touched: set[tuple[str, str]] | None = None,
    ) -> None:
        """Keep ``entries`` (every group's); ``listing`` when the whole tree was settled.
        With ``touched``, only the buckets of those groups are written again."""
        numbers = range(BUCKETS) if touched is None else sorted({bucket(*key) for key in touched})
        tokens = list(self.head.data.get("buckets") or []) if touched is not None else []
        tokens += [""] * (BUCKETS - len(tokens))
        by_bucket: dict[int, dict[str, dict[str, list[Any]]]] = {n: {FOLDERS: {}, ZARRS: {}} for n in numbers}
        for (kind, rel), entry in entries.items():
            target = by_bucket.get(bucket(kind, rel))
            if target is not None:
                target[kind][rel] = entry
        for number, tables in by_bucket.items():
            tokens[number] = os.urandom(8).hex()
            cache = JsonCache(
                self.folder / "index" / f"{number:02d}.json" if self.folder else None, INDEX_VERSION
            )
            cache.data = {"token": tokens[number], **tables}
            cache.mark()
            cache.save()
        self.head.data = {
            "settings": self.settings,
            "listing": listing,
            "snapshot": snapshot,
            "tree": tree,
            "buckets": tokens,
        }
        self.head.mark()
        self.head.save()
        if self.folder is not None and self._first:
            for old in self.folder.glob("index-*.json"):  # the whole-tree index of cache version 4
                old.unlink(missing_ok=True)


def entry(
    group: Group, built: Sequence[Resource], rows: dict[str, bytes], digests: dict[str, str]
) -> list[Any]:
    """What the index keeps of a group that was just built."""
    records = {r.id: rows[r.id].decode() for r in built if r.type == "ClinicalRecord"}
    lines = "".join([f"{f.rel}\t{digests[f.rel]}\n" for f in group.files])  # the snapshot's lines
    return [group.stamp, group.context, [_row(r) for r in built], records, lines]


def digests_of(entry: list[Any]) -> dict[str, str]:
    """Each file's digest in a kept entry, by path."""
    pairs = (line.partition("\t") for line in entry[4].split("\n")[:-1])
    return {rel: digest for rel, _, digest in pairs}


def kept(entries: Iterable[list[Any]]) -> list[Resource]:
    """The resources of reused entries."""
    return [_resource(row) for entry in entries for row in entry[2]]


def _row(r: Resource) -> list[Any]:
    # A file's version is its hash and its uri its id: store 0 rather than the same text twice.
    version = 0 if r.version == r.hash else r.version
    uri = 0 if r.uri == r.id else r.uri
    return [r.id, version, r.type, r.hash, r.size, uri, r.attrs, r._checked]


def _resource(row: list[Any]) -> Resource:
    rid, version, rtype, digest, size, uri, attrs, ok = row
    resource = Resource(
        rid, digest if version == 0 else version, rtype, digest, size, rid if uri == 0 else uri, attrs
    )
    if ok:
        object.__setattr__(resource, "_checked", True)  # it was checked when the index was built
    return resource
