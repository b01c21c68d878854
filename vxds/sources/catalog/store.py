"""A catalog's database and its content-addressed object store, and reading them.

``NAME.db`` holds the snapshots and every version of every resource, each version with the
snapshot that made it current and the one that changed or deleted it; ``NAME.objects/``
holds the bytes of every version under their blake3 digest, in the content store's layout
(``blake3/ab/<62 hex>``, docs/store.md), so that a push of a catalog's locks to that folder
finds every object there. A catalog made before keeps ``ab/<62 hex>``: read from there until
the next ingest moves them (``vxds.sources.catalog.ingest``). ``Catalog`` opens both
(checking the format), creates them (``init``), and reads them as of any snapshot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vxds.errors import SourceError
from vxds.fs import StagedFile, make_dirs
from vxds.resource import Resource, checked
from vxds.sources.base import SourceContext

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
COLUMNS = "id, version, type, hash, size, attrs"
LAYOUT = "blake3"  # the folder every object is under, as in a store (vxds.store.cas.TOP)
# How long a write waits for another connection's write to finish before it gives up.
BUSY_TIMEOUT = 60.0


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

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
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
        (row,) = self.query("SELECT MAX(id) FROM snapshots")
        return int(row[0] or 0)

    def snapshot_number(self, at: str | None) -> int:
        """``at`` as a snapshot number of this catalog (the latest when None)."""
        if at is None:
            return self.latest()
        if not at.isdigit() or not 0 <= int(at) <= self.latest():
            raise SourceError(f"{self.label}: no snapshot {at!r} (snapshots are 0 to {self.latest()})")
        return int(at)

    def snapshots(self) -> list[Snapshot]:
        return [Snapshot(*row) for row in self.query("SELECT * FROM snapshots ORDER BY id")]

    def resources(self, at: int, prefix: str = "") -> list[Resource]:
        """Every resource current at snapshot ``at``, sorted by id."""
        rows = self.query(
            f"SELECT {COLUMNS} FROM versions WHERE added_at <= ? AND (removed_at IS NULL OR removed_at > ?)"
            " AND substr(id, 1, ?) = ? ORDER BY id",
            (at, at, len(prefix), prefix),
        )
        return [_resource(row) for row in rows]

    def version(self, id: str, version: int, at: int | None = None) -> Resource | None:
        """One version of a resource (if it existed by snapshot ``at``)."""
        rows = self.query(
            f"SELECT {COLUMNS} FROM versions WHERE id = ? AND version = ? AND added_at <= ?",
            (id, version, self.latest() if at is None else at),
        )
        return _resource(rows[0]) if rows else None

    def history(self, id: str) -> list[VersionRow]:
        """Every version of ``id``, oldest first, with when it was current."""
        rows = self.query(
            f"SELECT {COLUMNS}, added_at, removed_at FROM versions WHERE id = ? ORDER BY version", (id,)
        )
        added = {row[6] for row in rows}
        return [
            VersionRow(_resource(row[:6]), row[6], row[7], row[7] is not None and row[7] not in added)
            for row in rows
        ]

    def blob(self, digest: str) -> Path:
        """Where the object with this digest is: the store's layout, or where a catalog made
        before it kept the object (and no ingest has moved it yet)."""
        hexdigest = digest.split(":", 1)[1]
        path = self.objects / LAYOUT / hexdigest[:2] / hexdigest[2:]
        if not path.exists():
            old = self.objects / hexdigest[:2] / hexdigest[2:]
            if old.exists():
                return old
        return path

    # --- ingesting ---------------------------------------------------------------------

    def ingest(self, folder: Path, *, context: SourceContext, origin: str) -> Snapshot:
        """Record the folder as the next snapshot (``vxds.sources.catalog.ingest``)."""
        from vxds.sources.catalog.ingest import ingest  # it builds on this module

        return ingest(self, folder, context=context, origin=origin)


def _resource(row: Any) -> Resource:
    rid, version, kind, digest, size, attrs = row
    return checked(
        Resource(
            id=rid, version=version, type=kind, hash=digest, size=size, uri=rid, attrs=orjson.loads(attrs)
        )
    )
