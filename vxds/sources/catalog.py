"""A versioned catalog, embedded: ``catalog:PATH`` names a SQLite database.

It is a small local data platform of the kind recipes query. ``vxds catalog ingest DIR``
turns a folder into resources exactly as the folder source does (files, clinical rows,
DICOM series, BIDS attrs) and records them in one numbered **snapshot**:

* a resource seen for the first time gets version 1; a resource whose hash, type, size
  or attrs changed gets the next integer version (versions only ever grow, and a resource
  deleted and added again continues its numbering);
* a resource no longer in the folder is marked deleted at that snapshot;
* bytes go into a content-addressed store beside the database (``NAME.objects/`` next to
  ``NAME.db``), keyed by blake3, so every version ever ingested stays readable.

Each version row is valid from the snapshot that added it until the snapshot that changed
or deleted it, so the catalog can be read **as of** any snapshot: the source opened with
``SourceContext.at`` (``vxds lock --at``) lists what was current then, and a lock records
the snapshot number it was resolved at.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from blake3 import blake3

from vxds.errors import NotFoundError, SourceError
from vxds.fs import StagedFile, exclusive, make_dirs, temp_owner
from vxds.hashing import PREFIX, canonical_json, digest_bytes
from vxds.progress import NO_PROGRESS, Progress
from vxds.resource import InvalidResource, Resource, check_id, checked
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.folder.tree import series_listing

FORMAT = "1"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    origin TEXT NOT NULL,
    added INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    total INTEGER NOT NULL
);
CREATE TABLE versions (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    added_at INTEGER NOT NULL,   -- the snapshot that made this version current
    removed_at INTEGER,          -- the snapshot that changed or deleted it (NULL: current)
    type TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER,
    attrs BLOB NOT NULL,         -- canonical JSON
    PRIMARY KEY (id, version)
);
CREATE INDEX versions_current ON versions (removed_at, id);
"""
_COLUMNS = "id, version, type, hash, size, attrs"
# How long a write waits for another connection's write to finish before it gives up.
BUSY_TIMEOUT = 60.0
INGEST_LOCK = ".ingest.lock"  # in the object store; held for the whole of an ingest
_LEGACY_TEMP_RE = re.compile(r"tmp[a-z0-9_]{8}\Z")  # tempfile's names: earlier vxds


def catalog_path(url: str, base: Path) -> Path:
    """``catalog:./x.db`` or ``catalog://x.db`` -> the database file."""
    rest = url.split(":", 1)[1] if ":" in url else url
    if rest.startswith("//"):
        rest = rest[2:]
    path = Path(rest)
    return path if path.is_absolute() else base / path


def objects_dir(db: Path) -> Path:
    """The content-addressed store beside a catalog database."""
    return db.with_name(db.stem + ".objects")


@dataclass(frozen=True)
class Snapshot:
    id: int
    created: str
    origin: str
    added: int
    changed: int
    deleted: int
    total: int


@dataclass(frozen=True)
class VersionRow:
    """One version of a resource and the snapshots it was current for."""

    resource: Resource
    added_at: int
    removed_at: int | None
    deleted: bool  # removed_at marks a deletion (no newer version came with it)


class Catalog:
    """A catalog database and its object store."""

    def __init__(self, path: Path, *, label: str | None = None) -> None:
        self.path = path
        self.label = label or f"catalog {path}"
        self.objects = objects_dir(path)
        if not path.is_file():
            raise SourceError(
                f"{self.label}: {path} does not exist", hint="create it with 'vxds catalog init'"
            )
        try:
            with self.connect() as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{self.label}: {path} is not a vxds catalog ({exc})") from None
        if row is None or row[0] != FORMAT:
            found = row[0] if row else None
            raise SourceError(f"{self.label}: {path} has catalog format {found!r}, expected {FORMAT!r}")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, committed when it succeeds, always closed."""
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self.connect() as db:
            return db.execute(sql, params).fetchall()

    @classmethod
    def init(cls, path: Path) -> Catalog:
        """Create an empty catalog (snapshot 0, nothing in it)."""
        if path.exists():
            raise SourceError(f"catalog {path} already exists")
        make_dirs(path.parent)
        with StagedFile(path.parent, path.name) as staged:  # SQLite writes it, commit renames it
            db = sqlite3.connect(staged.path)
            try:
                with db:
                    db.executescript(SCHEMA)
                    db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
            finally:
                db.close()
            staged.commit(path)
        make_dirs(objects_dir(path))
        return cls(path)

    # --- reading -----------------------------------------------------------------------

    def latest(self) -> int:
        (row,) = self._all("SELECT MAX(id) FROM snapshots")
        return int(row[0] or 0)

    def snapshot_number(self, at: str | None) -> int:
        """``at`` as a snapshot number of this catalog (the latest when None)."""
        if at is None:
            return self.latest()
        if not at.isdigit() or not 0 <= int(at) <= self.latest():
            raise SourceError(f"{self.label}: no snapshot {at!r} (snapshots are 0 to {self.latest()})")
        return int(at)

    def snapshots(self) -> list[Snapshot]:
        return [Snapshot(*row) for row in self._all("SELECT * FROM snapshots ORDER BY id")]

    def resources(self, at: int, prefix: str = "") -> list[Resource]:
        """Every resource current at snapshot ``at``, sorted by id."""
        rows = self._all(
            f"SELECT {_COLUMNS} FROM versions WHERE added_at <= ? AND (removed_at IS NULL OR removed_at > ?)"
            " AND substr(id, 1, ?) = ? ORDER BY id",
            (at, at, len(prefix), prefix),
        )
        return [_resource(row) for row in rows]

    def version(self, id: str, version: int, at: int | None = None) -> Resource | None:
        """One version of a resource (if it existed by snapshot ``at``)."""
        rows = self._all(
            f"SELECT {_COLUMNS} FROM versions WHERE id = ? AND version = ? AND added_at <= ?",
            (id, version, self.latest() if at is None else at),
        )
        return _resource(rows[0]) if rows else None

    def history(self, id: str) -> list[VersionRow]:
        """Every version of ``id``, oldest first, with when it was current."""
        rows = self._all(
            f"SELECT {_COLUMNS}, added_at, removed_at FROM versions WHERE id = ? ORDER BY version", (id,)
        )
        added = {row[6] for row in rows}
        return [
            VersionRow(_resource(row[:6]), row[6], row[7], row[7] is not None and row[7] not in added)
            for row in rows
        ]

    def blob(self, digest: str) -> Path:
        hexdigest = digest.split(":", 1)[1]
        return self.objects / hexdigest[:2] / hexdigest[2:]

    # --- ingesting ---------------------------------------------------------------------

    def ingest(self, folder: Path, *, context: SourceContext, origin: str) -> Snapshot:
        """Record the folder as the next snapshot; see the module docstring.

        One ingest at a time: a second one waits for the first to finish, then ingests on
        top of its snapshot. Temporary files a killed ingest left in the store are removed.
        """
        with exclusive(self.objects / INGEST_LOCK):
            _remove_temps(self.objects)
            return self._ingest(folder, context=context, origin=origin)

    def _ingest(self, folder: Path, *, context: SourceContext, origin: str) -> Snapshot:
        from vxds.sources.folder.source import FolderSource

        source = FolderSource(str(folder), context)
        found = source.resources()
        current = {
            row[0]: row for row in self._all(f"SELECT {_COLUMNS} FROM versions WHERE removed_at IS NULL")
        }
        last = dict(self._all("SELECT id, MAX(version) FROM versions GROUP BY id"))
        number = self.latest() + 1
        inserts: list[tuple[Any, ...]] = []
        superseded: list[tuple[int, str]] = []
        added = changed = 0
        stored = _Store(self, source, context.progress)
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
        self._record(snapshot, superseded + deleted, inserts)
        return snapshot

    def _record(
        self, snapshot: Snapshot, removed: list[tuple[int, str]], inserts: list[tuple[Any, ...]]
    ) -> None:
        """Write one snapshot in one transaction, taken before the check that no other
        writer (one that does not hold the ingest lock) recorded a snapshot meanwhile."""
        try:
            with self.connect() as db:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("SELECT MAX(id) FROM snapshots").fetchone()[0] != (snapshot.id - 1 or None):
                    raise SourceError(f"{self.label}: another ingest finished meanwhile; ingest again")
                db.executemany(
                    "UPDATE versions SET removed_at = ? WHERE id = ? AND removed_at IS NULL", removed
                )
                db.executemany(
                    "INSERT INTO versions (id, version, added_at, type, hash, size, attrs)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    inserts,
                )
                db.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(snapshot))
        except sqlite3.DatabaseError as exc:
            raise SourceError(
                f"{self.label}: cannot record snapshot {snapshot.id} in {self.path}: {exc}"
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


def _stat_key(fh: BinaryIO) -> tuple[int, int, int, int] | None:
    """What changes when a file is written: size, mtime, ctime, inode (None: not a file)."""
    try:
        st = os.fstat(fh.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _resource(row: Any) -> Resource:
    rid, version, kind, digest, size, attrs = row
    return checked(
        Resource(
            id=rid, version=version, type=kind, hash=digest, size=size, uri=rid, attrs=orjson.loads(attrs)
        )
    )


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
            folder = self.source.root / resource.id
            members = []
            for name in sorted(os.listdir(folder)):
                if not name.startswith("."):
                    # never through a link: one made after the walk checked the folder is refused
                    fd = os.open(folder / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                    with open(fd, "rb") as fh:
                        members.append((name, self._put(fh, None, f"{resource.id}/{name}")))
            listing = series_listing(members)
            self._put(_bytes_reader(listing), resource.hash, resource.id)
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


_DIGEST = re.compile(r"blake3:[0-9a-f]{64}")


def _not_an_id(name: str) -> bool:
    try:
        check_id(name)
    except InvalidResource:
        return True
    return False


def _bytes_reader(data: bytes) -> BinaryIO:
    import io

    return io.BytesIO(data)


class CatalogSource(IndexedSource):
    """The resources of a catalog as of one snapshot (the latest, or ``context.at``)."""

    time_travel = True

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        self.catalog = Catalog(catalog_path(url, context.base), label=f"source {url!r}")
        self.at = self.catalog.snapshot_number(context.at)

    def _scan(self) -> list[Resource]:
        return self.catalog.resources(self.at)

    @property
    def snapshot(self) -> str:
        """The snapshot number the source reads at."""
        return str(self.at)

    def get(self, id: str, version: int | str | None = None) -> Resource:
        if version is None:
            return super().get(id)
        found = self.catalog.version(id, version, self.at) if isinstance(version, int) else None
        if found is None:
            raise NotFoundError(f"{self.url}: no version {version!r} of {id!r} at snapshot {self.at}")
        return found

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        """The files of a DICOM series as ``(name, path in the store)``, from its stored listing.

        The listing may come from anyone who can write the catalog (a pull request), so it
        is checked against the series' locked hash before anything is read from it, and each
        name must be a plain file name (``vxds materialize`` then checks every member's bytes
        against the listing as it places them, inside the series' own folder).
        """
        with self.open(resource) as fh:
            raw = fh.read()
        if resource.hash is not None and digest_bytes(raw) != resource.hash:
            raise SourceError(
                f"{self.url}: the stored listing of {resource.id} does not match its hash {resource.hash}"
            )
        return [(name, str(self.catalog.blob(digest))) for name, digest in self._listing(resource, raw)]

    def _listing(self, resource: Resource, raw: bytes) -> list[tuple[str, str]]:
        try:
            listing = orjson.loads(raw)
        except orjson.JSONDecodeError:
            listing = None
        if not isinstance(listing, list) or not all(
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
            for item in listing
        ):
            raise SourceError(
                f"{self.url}: the stored listing of {resource.id} is not a list of [name, digest]"
            )
        for name, digest in listing:
            if "/" in name or _not_an_id(name) or not _DIGEST.fullmatch(digest):
                raise SourceError(
                    f"{self.url}: the stored listing of {resource.id} holds {name!r} -> {digest!r},"
                    " not a file name and a blake3 digest"
                )
        return [(name, digest) for name, digest in listing]

    def open(self, resource: Resource) -> BinaryIO:
        """The stored bytes of the resource's own version (a series: its listing of files)."""
        if not isinstance(resource.version, int):
            raise NotFoundError(f"{self.url}: {resource.id} has no catalog version ({resource.version!r})")
        stored = self.catalog.version(resource.id, resource.version)
        if stored is None or stored.hash is None:
            raise NotFoundError(f"{self.url}: no version {resource.version} of {resource.id!r}")
        try:
            return open(self.catalog.blob(stored.hash), "rb")
        except OSError as exc:
            raise SourceError(
                f"{self.url}: the bytes of {resource.id} version {resource.version} are missing"
                f" from {self.catalog.objects}: {exc.strerror}"
            ) from None
