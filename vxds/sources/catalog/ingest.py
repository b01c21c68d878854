"""Ingesting a folder into a catalog as its next numbered snapshot.

The folder is read exactly as the folder source reads it. A resource seen for the first time
gets version 1, a changed one (hash, type, size or attrs) the next version, and one no
longer in the folder is marked deleted; new bytes are copied into the object store under
their digest, each checked on the way. One ingest runs at a time: a second waits on
``INGEST_LOCK`` in the object store, then ingests on top of the first one's snapshot.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
from dataclasses import astuple
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from blake3 import blake3

from vxds.errors import SourceError
from vxds.fs import StagedFile, exclusive, fsync_dir, make_dirs, temp_owner
from vxds.hashing import PREFIX, canonical_json
from vxds.progress import NO_PROGRESS, Progress
from vxds.resource import Resource
from vxds.sources.base import SourceContext
from vxds.sources.catalog.store import COLUMNS, LAYOUT, Catalog, Snapshot
from vxds.sources.folder.source import FolderSource
from vxds.sources.folder.tree import series_listing

INGEST_LOCK = ".ingest.lock"  # in the object store; held for the whole of an ingest
_LEGACY_TEMP_RE = re.compile(r"tmp[a-z0-9_]{8}\Z")  # tempfile's names: earlier vxds
_OLD_FOLDER_RE, _OLD_NAME_RE = re.compile(r"[0-9a-f]{2}\Z"), re.compile(r"[0-9a-f]{62}\Z")  # before LAYOUT


def ingest(catalog: Catalog, folder: Path, *, context: SourceContext, origin: str) -> Snapshot:
    """Record the folder as the catalog's next snapshot; see the module docstring.

    Temporary files a killed ingest left in the store are removed first, and objects kept
    in the layout before the store's (``ab/<62 hex>``) moved into it.
    """
    with exclusive(catalog.objects / INGEST_LOCK):
        _remove_temps(catalog.objects)
        _move_to_layout(catalog.objects)
        return _ingest(catalog, folder, context=context, origin=origin)


def _ingest(catalog: Catalog, folder: Path, *, context: SourceContext, origin: str) -> Snapshot:
    source = FolderSource(str(folder), context)
    found = source.resources()
    current = {
        row[0]: row for row in catalog.query(f"SELECT {COLUMNS} FROM versions WHERE removed_at IS NULL")
    }
    last = dict(catalog.query("SELECT id, MAX(version) FROM versions GROUP BY id"))
    number = catalog.latest() + 1
    inserts: list[tuple[Any, ...]] = []
    superseded: list[tuple[int, str]] = []
    added = changed = 0
    stored = _Store(catalog, source, context.progress)
    for resource in found:
        attrs = canonical_json(dict(resource.attrs))
        row = (resource.type, resource.hash, resource.size, attrs)
        old = current.pop(resource.id, None)
        if old is not None and tuple(old[2:]) == row:
            continue
        if old is None:
            added += 1
        else:
            changed += 1
            superseded.append((number, resource.id))
        stored.add(resource)
        version = int(last.get(resource.id, 0)) + 1
        inserts.append((resource.id, version, number, *row))
    stored.finish()
    deleted = [(number, rid) for rid in current]
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    snapshot = Snapshot(number, created, origin, added, changed, len(deleted), len(found))
    _record(catalog, snapshot, superseded + deleted, inserts)
    return snapshot


def _record(
    catalog: Catalog, snapshot: Snapshot, removed: list[tuple[int, str]], inserts: list[tuple[Any, ...]]
) -> None:
    """Write one snapshot in one transaction, taken before the check that no other
    writer (one that does not hold the ingest lock) recorded a snapshot meanwhile."""
    try:
        with catalog.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT MAX(id) FROM snapshots").fetchone()[0] != (snapshot.id - 1 or None):
                raise SourceError(f"{catalog.label}: another ingest finished meanwhile; ingest again")
            db.executemany("UPDATE versions SET removed_at = ? WHERE id = ? AND removed_at IS NULL", removed)
            db.executemany(
                "INSERT INTO versions (id, version, added_at, type, hash, size, attrs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            db.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(snapshot))
    except sqlite3.DatabaseError as exc:
        raise SourceError(
            f"{catalog.label}: cannot record snapshot {snapshot.id} in {catalog.path}: {exc}"
        ) from None


def _remove_temps(objects: Path) -> None:
    """Remove the temporary files of killed ingests from the store's top folder (blobs live
    in its subfolders). Only called under the ingest lock, when no other ingest is writing."""
    try:
        names = os.listdir(objects)
    except FileNotFoundError:
        return
    for name in names:
        if temp_owner(name) is not None or _LEGACY_TEMP_RE.match(name):
            (objects / name).unlink(missing_ok=True)


def _move_to_layout(objects: Path) -> None:
    """Move objects from ``ab/<62 hex>`` to ``blake3/ab/<62 hex>``: linked under the new name
    (and the folder synced) before the old name goes, so a reader finds each at one of them
    at every moment. Only called under the ingest lock."""
    for folder in sorted(objects.iterdir()) if objects.is_dir() else []:
        if not _OLD_FOLDER_RE.match(folder.name) or not folder.is_dir():
            continue
        target = objects / LAYOUT / folder.name
        make_dirs(target)
        names = [name for name in os.listdir(folder) if _OLD_NAME_RE.match(name)]
        for name in names:
            with contextlib.suppress(FileExistsError):  # moved by an ingest killed after linking
                os.link(folder / name, target / name)
        fsync_dir(target)
        for name in names:
            (folder / name).unlink()
        with contextlib.suppress(OSError):  # not empty: something else is in it, kept
            folder.rmdir()


def _stat_key(fh: BinaryIO) -> tuple[int, int, int, int] | None:
    """What changes when a file is written: size, mtime, ctime, inode (None: not a file)."""
    try:
        st = os.fstat(fh.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class _Store:
    """Copies new content into the object store, checking each digest on the way."""

    def __init__(self, catalog: Catalog, source: Any, progress: Progress = NO_PROGRESS) -> None:
        self.catalog = catalog
        self.source = source
        self.pending: list[Resource] = []
        self.progress = progress

    def add(self, resource: Resource) -> None:
        if resource.hash is not None and not self.catalog.blob(resource.hash).exists():
            self.pending.append(resource)

    def finish(self) -> None:
        task = self.progress.task(f"storing {self.catalog.path.name}", total=len(self.pending))
        try:
            for resource in self.pending:
                self._store(resource)
                task.advance()
        finally:
            task.close()

    def _store(self, resource: Resource) -> None:
        if resource.type == "DICOMSeries":
            members = []
            for name, path in self.source.members(resource):  # the series' own files of its folder
                # never through a link: one made after the walk checked the folder is refused
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                with open(fd, "rb") as fh:
                    members.append((name, self._put(fh, None, f"{resource.id}/{name}")))
            listing = series_listing(members)
            self._put(io.BytesIO(listing), resource.hash, resource.id)
            return
        with self.source.open(resource) as fh:
            self._put(fh, resource.hash, resource.id)

    def _put(self, fh: BinaryIO, expected: str | None, what: str) -> str:
        """Copy a stream into the store under its digest, durably; refuse one that changed
        (its digest is not the one expected, or the file was written while it was read)."""
        hasher = blake3()
        before = _stat_key(fh)
        make_dirs(self.catalog.objects)
        with StagedFile(self.catalog.objects, "blob") as out:
            while chunk := fh.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
            digest = PREFIX + hasher.hexdigest()
            if _stat_key(fh) != before or (expected is not None and digest != expected):
                raise SourceError(f"{self.catalog.label}: {what} changed while it was ingested; ingest again")
            target = self.catalog.blob(digest)
            make_dirs(target.parent)
            out.commit(target, mode=0o444)
        return digest
