"""``fw-dataset``: the layout the fw-dataset package reads, under ``OUT/fw-dataset/``.

::

    fw-dataset/versions/<version>/provenance/dataset_description.json
    fw-dataset/versions/<version>/provenance/project.json
    fw-dataset/versions/<version>/schemas/<table>.schema.json
    fw-dataset/versions/<version>/tables/<table>/<content hash>.parquet
    fw-dataset/latest/...   (the same files: fw-dataset before 0.3 reads only latest/)

``<version>`` is the first 16 hex digits of the lock digest, so a new lock is a new
version folder (the previous one, recorded in the receipt, is removed). Every table is
always written, with its schema, empty when nothing fits, so that fw-dataset's
``is_populated()`` holds and a query never meets a missing table: ``resources`` (every
resource with its split), ``split_<name>`` (one per split), ``clinical_records`` (one row
per clinical record, its fields as columns, read from the source and checked), and
fw-dataset's hierarchy tables built from the resources' attrs: ``subjects``, ``sessions``,
``acquisitions`` and ``analyses`` (one row per distinct label path; ``id`` is that path,
``label`` the last label, ``parents.*`` the labels above) and ``files`` (one row per
resource with its parents' ids). Open it with
``FWDatasetClient.get_dataset_from_filesystem("fs", OUT, "fw-dataset", None)``.
Needs pyarrow (``pip install 'vxds[fw]'``), imported only here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any, ClassVar

import orjson

from vxds.errors import VxdsError
from vxds.hashing import digest_bytes
from vxds.materialize.base import Job
from vxds.resource import Resource

PREFIX = "fw-dataset"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # what fw-dataset parses, fractional seconds
RESOURCE_COLUMNS = ("split", "id", "version", "type", "hash", "size", "uri", "subject", "session", "attrs")
LEVELS = ("subject", "session", "acquisition")  # the attrs the hierarchy is built from, in order
HIERARCHY = {"subject": "subjects", "session": "sessions", "acquisition": "acquisitions"}
FILE_COLUMNS = (
    "id", "version", "name", "split", "type", "size", "hash",
    "parents.subject", "parents.session", "parents.acquisition", "parents.analysis",
)  # fmt: skip


def _table_name(split: str) -> str:
    return "split_" + re.sub(r"[^A-Za-z0-9_]", "_", split)


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _schema_json(table: Table) -> bytes:
    """The schema file, its properties in column order."""
    return orjson.dumps(table.schema(), option=orjson.OPT_INDENT_2) + b"\n"


def _kind(values: Iterable[Any]) -> str:
    """The JSON-schema type of a column: integer, number, boolean or string."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "integer"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "number"
    return "string"


def _as(kind: str, value: Any) -> Any:
    if value is None or kind != "string":
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


class Table:
    """Columns of one table, with their JSON-schema types."""

    def __init__(self, name: str, description: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
        self.name, self.description, self.columns = name, description, columns
        self.kinds = {c: _kind(row.get(c) for row in rows) for c in columns}
        self.data = {c: [_as(self.kinds[c], row.get(c)) for row in rows] for c in columns}

    def schema(self) -> dict[str, Any]:
        required = [c for c in self.columns if self.data[c] and all(v is not None for v in self.data[c])]
        return {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "id": self.name,
            "description": self.description,
            "type": "object",
            "properties": {
                c: {"type": self.kinds[c] if c in required else [self.kinds[c], "null"]} for c in self.columns
            },
            "required": required,
        }

    def parquet(self) -> bytes:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise VxdsError("the fw-dataset layout needs pyarrow: pip install 'vxds[fw]'") from None
        types = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}
        arrays = [pa.array(self.data[c], type=types[self.kinds[c]]) for c in self.columns]
        table = pa.Table.from_arrays(arrays, names=self.columns)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return bytes(sink.getvalue().to_pybytes())


def _resource_row(split: str, resource: Resource) -> dict[str, Any]:
    attrs = resource.attrs
    return {
        "split": split,
        "id": resource.id,
        "version": str(resource.version),
        "type": resource.type,
        "hash": resource.hash,
        "size": resource.size,
        "uri": resource.uri,
        "subject": attrs.get("subject") if isinstance(attrs.get("subject"), str) else None,
        "session": attrs.get("session") if isinstance(attrs.get("session"), str) else None,
        "attrs": orjson.dumps(dict(attrs), option=orjson.OPT_SORT_KEYS).decode(),
    }


def _labels(resource: Resource) -> list[str]:
    """The resource's hierarchy labels, from the top down to the first one missing."""
    labels: list[str] = []
    for level in LEVELS:
        value = resource.attrs.get(level)
        if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
            break
        labels.append(str(value))
    return labels


def _parents(labels: list[str]) -> dict[str, str | None]:
    return {
        f"parents.{lv}": "/".join(labels[: n + 1]) if n < len(labels) else None for n, lv in enumerate(LEVELS)
    }


def hierarchy_tables(rows: list[tuple[str, Resource]]) -> list[Table]:
    """fw-dataset's subjects, sessions, acquisitions, analyses and files, from the attrs."""
    containers: dict[str, dict[str, dict[str, Any]]] = {level: {} for level in LEVELS}
    analyses: dict[str, dict[str, Any]] = {}
    files = []
    for split, resource in rows:
        labels = _labels(resource)
        for n, level in enumerate(LEVELS[: len(labels)]):
            cid = "/".join(labels[: n + 1])
            above = {k: v for k, v in _parents(labels[:n]).items() if k != f"parents.{level}"}
            containers[level].setdefault(cid, {"id": cid, "label": labels[n], **above})
        analysis = resource.attrs.get("analysis")
        aid = None
        if isinstance(analysis, str) and analysis:
            aid = "/".join([*labels, "analyses", analysis])
            analyses.setdefault(aid, {"id": aid, "label": analysis, **_parents(labels)})
        row = {"split": split, "name": resource.id.rsplit("/", 1)[-1], **_resource_row(split, resource)}
        files.append({**row, **_parents(labels), "parents.analysis": aid})
    tables = []
    for level in LEVELS:
        columns = ["id", "label", *[f"parents.{lv}" for lv in LEVELS[: LEVELS.index(level)]]]
        found = [containers[level][k] for k in sorted(containers[level])]
        tables.append(Table(HIERARCHY[level], f"{level}s of the locked resources", columns, found))
    columns = ["id", "label", *[f"parents.{lv}" for lv in LEVELS]]
    tables.append(
        Table(
            "analyses", "analyses of the locked resources", columns, [analyses[k] for k in sorted(analyses)]
        )
    )
    tables.append(Table("files", "every locked resource, as a file", list(FILE_COLUMNS), files))
    return tables


class FwDatasetMaterializer:
    name: ClassVar[str] = "fw-dataset"

    def materialize(self, job: Job) -> None:
        version = job.lock_digest.partition(":")[2][:16]
        files: list[tuple[str, bytes]] = []
        for table in self._tables(job):
            data = table.parquet()
            name = digest_bytes(data).partition(":")[2][:32]
            files.append((f"tables/{table.name}/{name}.parquet", data))
            files.append((f"schemas/{table.name}.schema.json", _schema_json(table)))
        rel = f"{PREFIX}/versions/{version}/provenance/dataset_description.json"
        files.append(("provenance/dataset_description.json", _json(self._description(job, rel, version))))
        files.append(("provenance/project.json", _json(self._project(job))))
        for base in (f"{PREFIX}/versions/{version}", f"{PREFIX}/latest"):
            for path, data in files:
                job.placer.write(f"{base}/{path}", data, module=job.module)

    def _project(self, job: Job) -> dict[str, Any]:
        """The project record fw-dataset's ``is_populated()`` looks for (no source data in it)."""
        return {"id": job.name, "label": job.key, "lock": job.lock_digest, "splits": sorted(job.splits)}

    def _description(self, job: Job, rel: str, version: str) -> dict[str, Any]:
        return {
            "id": f"{job.name}-{version}",
            "name": job.key,
            "version": version,
            "version_label": job.key,
            "created": self._created(job, rel, version),
            "description": f"vxds materialize of {job.key}, lock {job.lock_digest}",
        }

    def _tables(self, job: Job) -> list[Table]:
        every: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        located: list[tuple[str, Resource]] = []
        tables = []
        for split in sorted(job.splits):
            items = list(job.resources(split))
            rows = [_resource_row(split, r) for r in items]
            located.extend((split, r) for r in items)
            every.extend(rows)
            tables.append(
                Table(_table_name(split), f"resources of split {split}", list(RESOURCE_COLUMNS), rows)
            )
            for resource in items:
                if resource.type == "ClinicalRecord":
                    records.extend(self._record(job, split, resource))
                job.placer.task.advance()
        tables.insert(0, Table("resources", "every locked resource", list(RESOURCE_COLUMNS), every))
        fields = sorted({k for row in records for k in row} - {"split", "id"})
        tables.append(Table("clinical_records", "clinical records", ["split", "id", *fields], records))
        return tables + hierarchy_tables(located)

    def _record(self, job: Job, split: str, resource: Resource) -> list[dict[str, Any]]:
        data = job.placer.fetch(resource, module=job.module)
        if data is None:
            return []
        try:
            row = orjson.loads(data)
        except orjson.JSONDecodeError:
            row = None
        values = dict(row) if isinstance(row, dict) else {}
        for key in ("subject", "session"):
            if key in resource.attrs and key not in values:
                values[key] = resource.attrs[key]
        values.pop("split", None)
        values.pop("id", None)
        return [{"split": split, "id": resource.id, **values}]

    def _created(self, job: Job, rel: str, version: str) -> str:
        """Keep the time of the first run for an unchanged version, so reruns skip the file."""
        previous = job.placer.existing(rel)
        if previous is not None:
            try:
                old = orjson.loads(previous)
                if old.get("version") == version and isinstance(old.get("created"), str):
                    return str(old["created"])
            except (orjson.JSONDecodeError, AttributeError):
                pass
        return dt.datetime.now(dt.timezone.utc).strftime(DATE_FORMAT)
