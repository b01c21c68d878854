"""A Flywheel snapshot as a source: ``flywheel:PATH`` to ``snapshot.db`` or ``snapshot.db.gz``.

A snapshot is an SQLite database with the tables ``project``, ``subject``, ``session``,
``acquisition``, ``file`` and ``analysis``; each has an ``id`` column and a ``data``
column holding the entity as JSON, as Flywheel's API returns it. Containers point at
their parents through ``parents`` (``{"project": ..., "subject": ..., "session": ...}``);
files through ``parent_ref`` (``{"type": "acquisition", "id": ...}``), or ``parent``.
``data`` may be text or a BLOB of JSON bytes (real snapshots hold BLOBs). A file row comes
in either of two shapes: Flywheel's real one keeps the file's id and version under ``_id``
(``{"_id": {"file_id": ..., "version": N}, "uuid": ...}``), which is read as fw-dataset's
builder maps it (``_id.file_id`` -> ``file_id``, ``_id.version`` -> ``version``,
``uuid`` -> ``id``); the older flat one has ``version`` (and ``file_id``) at the top.

Each file becomes one resource:

* ``id``: labels from the hierarchy, ``project/subject/session/acquisition/file name``
  (files attached higher up have shorter ids; an analysis' files live under
  ``.../analyses/<label>/``). A ``/`` in a label becomes ``_``; containers of one parent
  that share a label get ``~<container id>`` appended, so ids never collide;
* ``version``: the file's own ``version``; ``hash``: its own hash as ``<algo>:<hex>``
  (Flywheel's ``v0-sha384-<hex>`` becomes ``sha384:<hex>``); ``size``: its size;
* ``type``: DICOMSeries for Flywheel ``dicom`` files, else from the name (Volume, Mask,
  Table, File);
* ``attrs``: project, subject, session and acquisition labels, ``modality``,
  ``classification``, the file's ``info``, Flywheel's file ``type``, and BIDS entities
  from the name.

A snapshot holds metadata only. ``open()`` reads a resource's bytes from a local mirror
when one is configured (``mirror`` in ``[tool.vxds.storage.flywheel]``: a folder laid out
by resource id, as an export writes it) and otherwise raises a ``SourceError`` naming the
file. The ``snapshot`` string is the digest of the database's bytes.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from blake3 import blake3

from vxds.errors import SourceError
from vxds.hashing import PREFIX
from vxds.resource import Resource, checked
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.folder import bids

TABLES = ("project", "subject", "session", "acquisition", "file", "analysis")
CONTAINERS = ("project", "subject", "session", "acquisition", "analysis")
_PARENT_ORDER = ("project", "subject", "session", "acquisition")


def snapshot_path(url: str, base: Path) -> Path:
    rest = url.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:]
    path = Path(rest)
    return path if path.is_absolute() else base / path


def flywheel_hash(value: object) -> str | None:
    """``v0-sha384-<hex>`` -> ``sha384:<hex>``; ``algo:hex`` as it is; anything else: None."""
    if not isinstance(value, str) or not value:
        return None
    if ":" in value:
        return value.lower()
    parts = value.split("-")
    if len(parts) == 3 and parts[0].startswith("v"):
        return f"{parts[1].lower()}:{parts[2].lower()}"
    return None


def file_row(data: dict[str, Any]) -> dict[str, Any]:
    """A file row in the flat shape: a real row's ``_id`` object mapped as fw-dataset maps it.

    ``_id.file_id`` -> ``file_id``, ``_id.version`` -> ``version``, ``uuid`` -> ``id``
    (fw-dataset's ``SNAPSHOT_MAPPINGS["file"]``); a flat row is returned as it is.
    """
    ids = data.get("_id")
    if not isinstance(ids, dict):
        return data
    row = {k: v for k, v in data.items() if k != "_id"}
    for key, value in (
        ("file_id", ids.get("file_id")),
        ("version", ids.get("version")),
        ("id", data.get("uuid")),
    ):
        if value is not None:
            row.setdefault(key, value)
    return row


class FlywheelSource(IndexedSource):
    """The files of a Flywheel snapshot; metadata only, bytes from an optional mirror.

    Its snapshot is the digest of the (uncompressed) snapshot database, read by the scan.
    ``open`` is its own: every resource, a DICOM archive too, is a file of the mirror.
    """

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        self.where = f"source {url!r}"
        self.path = snapshot_path(url, context.base)
        if not self.path.is_file():
            raise SourceError(f"source {url!r}: snapshot {self.path} does not exist")
        options = context.options.get("flywheel", {})
        mirror = options.get("mirror") if isinstance(options, Mapping) else None
        self.mirror = (context.base / str(mirror)) if mirror else None

    def _scan(self) -> list[Resource]:
        with self._database() as db:
            tables = self._read(db)
        return [checked(r) for r in _Hierarchy(self.url, tables).resources()]

    @contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        """The snapshot as an SQLite connection (a ``.gz`` is unpacked to a temporary file)."""
        with tempfile.TemporaryDirectory(prefix="vxds-flywheel-") as tmp:
            path = self.path
            if path.name.endswith(".gz"):
                path = Path(tmp) / "snapshot.db"
                try:
                    with gzip.open(self.path, "rb") as packed, open(path, "wb") as out:
                        shutil.copyfileobj(packed, out)
                except (OSError, EOFError) as exc:
                    raise SourceError(f"{self.where}: {self.path.name} is not a gzip file: {exc}") from None
            self._snapshot = _file_digest(path)
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                yield db
            finally:
                db.close()

    def _read(self, db: sqlite3.Connection) -> dict[str, dict[str, dict[str, Any]]]:
        tables: dict[str, dict[str, dict[str, Any]]] = {}
        for table in TABLES:
            try:
                rows = db.execute(f"SELECT id, data FROM {table}").fetchall()
            except sqlite3.DatabaseError as exc:
                raise SourceError(
                    f"{self.where}: {self.path.name} is not a Flywheel snapshot (table {table}: {exc})"
                ) from None
            entities: dict[str, dict[str, Any]] = {}
            for rid, data in rows:
                try:
                    value = orjson.loads(data)
                except (orjson.JSONDecodeError, TypeError) as exc:
                    raise SourceError(f"{self.where}: {table} {rid}: data is not JSON ({exc})") from None
                if not isinstance(value, dict):
                    raise SourceError(f"{self.where}: {table} {rid}: data is not a JSON object")
                entities[str(rid)] = file_row(value) if table == "file" else value
            tables[table] = entities
        return tables

    def open(self, resource: Resource) -> BinaryIO:
        if self.mirror is None:
            raise SourceError(
                f"{self.where}: a Flywheel snapshot holds metadata only; no bytes for {resource.id}",
                hint="set mirror = FOLDER in [tool.vxds.storage.flywheel] to read files from a local copy",
            )
        root = self.mirror.resolve()
        path = Path(os.path.realpath(root / resource.id))  # a symlink in the mirror is followed here
        if not path.is_relative_to(root):
            raise SourceError(f"resource {resource.id!r} points outside the mirror {self.mirror}")
        try:
            return open(path, "rb")
        except OSError as exc:
            raise SourceError(
                f"{self.where}: cannot open {resource.id} in the mirror: {exc.strerror}"
            ) from None


def _file_digest(path: Path) -> str:
    hasher = blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
    return PREFIX + hasher.hexdigest()


class _Hierarchy:
    """Ids from labels, and attrs from the containers above each file."""

    def __init__(self, url: str, tables: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.url = url
        self.where = f"source {url!r}"
        self.tables = tables
        self.segments = self._segments()

    def _segments(self) -> dict[tuple[str, str], str]:
        """(kind, container id) -> its path segment, unique among its siblings."""
        by_parent: dict[tuple[str, str | None, str], list[str]] = {}
        for kind in CONTAINERS:
            for cid, data in self.tables[kind].items():
                label = _label(data, cid)
                by_parent.setdefault((kind, self._parent_id(kind, data), label), []).append(cid)
        segments: dict[tuple[str, str], str] = {}
        for (kind, _, label), ids in by_parent.items():
            for cid in ids:
                segments[(kind, cid)] = label if len(ids) == 1 else f"{label}~{cid}"
        return segments

    def _parent_id(self, kind: str, data: Mapping[str, Any]) -> str | None:
        if kind == "project":
            return None
        if kind == "analysis":
            parent = data.get("parent") or data.get("parent_ref") or {}
            return f"{parent.get('type')}:{parent.get('id')}" if isinstance(parent, dict) else None
        parents = data.get("parents") or {}
        above = _PARENT_ORDER[_PARENT_ORDER.index(kind) - 1]
        value = parents.get(above) if isinstance(parents, dict) else None
        return str(value) if value is not None else None

    def resources(self) -> Iterator[Resource]:
        for fid, data in self.tables["file"].items():
            yield self._file(fid, data)

    def _chain(self, kind: str, cid: str, what: str) -> list[tuple[str, str, dict[str, Any]]]:
        """The containers from the project down to (kind, cid): [(kind, id, data)]."""
        chain: list[tuple[str, str, dict[str, Any]]] = []
        seen: set[tuple[str, str]] = set()
        while True:
            data = self.tables.get(kind, {}).get(cid)
            if data is None or (kind, cid) in seen:
                raise SourceError(f"{self.where}: {what}: its parent {kind} {cid} is not in the snapshot")
            seen.add((kind, cid))
            chain.append((kind, cid, data))
            if kind == "project":
                return chain[::-1]
            if kind == "analysis":
                parent = data.get("parent") or data.get("parent_ref") or {}
                kind, cid = str(parent.get("type")), str(parent.get("id"))
                continue
            above = _PARENT_ORDER[_PARENT_ORDER.index(kind) - 1]
            parent_id = (data.get("parents") or {}).get(above)
            if parent_id is None:
                raise SourceError(f"{self.where}: {what}: {kind} {cid} names no parent {above}")
            kind, cid = above, str(parent_id)

    def _file(self, fid: str, data: dict[str, Any]) -> Resource:
        name = data.get("name")
        what = f"file {fid}"
        if not isinstance(name, str) or not name or "/" in name:
            raise SourceError(f"{self.where}: {what}: 'name' must be a file name, got {name!r}")
        ref = data.get("parent_ref") or data.get("parent") or {}
        if not isinstance(ref, dict) or ref.get("type") not in CONTAINERS:
            raise SourceError(f"{self.where}: {what} ({name}): no parent_ref with a container type")
        chain = self._chain(str(ref["type"]), str(ref.get("id")), f"{what} ({name})")
        segments = []
        attrs: dict[str, Any] = {}
        for kind, cid, container in chain:
            if kind == "analysis":
                segments.append("analyses")
            segments.append(self.segments[(kind, cid)])
            attrs[kind] = _label(container, cid)
        rid = "/".join([*segments, name])
        parsed = bids.split_name(name)
        entities = bids.name_attrs({}, parsed)
        attrs = {**entities, **attrs}
        for key in ("modality", "classification", "info"):
            if data.get(key) is not None:
                attrs[key] = data[key]
        fw_type = data.get("type")
        if fw_type is not None:
            attrs["fw_type"] = fw_type
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise SourceError(f"{self.where}: {what} ({name}): 'version' must be an integer, got {version!r}")
        digest = flywheel_hash(data.get("hash"))
        if digest is None:
            raise SourceError(f"{self.where}: {what} ({name}): no usable 'hash' ({data.get('hash')!r})")
        kind = "DICOMSeries" if fw_type == "dicom" else bids.resource_type(name, parsed)
        size = data.get("size")
        return Resource(
            id=rid,
            version=version,
            type=kind,
            hash=digest,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            uri=rid,
            attrs=attrs,
        )


def _label(data: Mapping[str, Any], cid: str) -> str:
    label = data.get("label")
    text = str(label) if isinstance(label, (str, int)) and str(label) else cid
    text = text.replace("/", "_").replace("\\", "_")
    return "_" if text in (".", "..") else text
