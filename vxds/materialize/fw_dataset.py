"""``fw-dataset``: the layout the fw-dataset package reads, under ``OUT/fw-dataset/``.

::

    fw-dataset/versions/<version>/provenance/dataset_description.json
    fw-dataset/versions/<version>/schemas/<table>.schema.json
    fw-dataset/versions/<version>/tables/<table>/<content hash>.parquet

``<version>`` is the first 16 hex digits of the lock digest, so a new lock is a new
version folder (the previous one, recorded in the receipt, is removed). Tables:
``resources`` (every resource with its split), ``split_<name>`` (one per split) and
``clinical_records`` (one row per clinical record, its fields as columns, read from the
source and checked). Open it with
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


class FwDatasetMaterializer:
    name: ClassVar[str] = "fw-dataset"

    def materialize(self, job: Job) -> None:
        version = job.lock_digest.partition(":")[2][:16]
        base = f"{PREFIX}/versions/{version}"
        tables = self._tables(job)
        for table in tables:
            data = table.parquet()
            name = digest_bytes(data).partition(":")[2][:32]
            job.placer.write(f"{base}/tables/{table.name}/{name}.parquet", data, module=job.module)
            job.placer.write(
                f"{base}/schemas/{table.name}.schema.json", _schema_json(table), module=job.module
            )
        rel = f"{base}/provenance/dataset_description.json"
        description = {
            "id": f"{job.name}-{version}",
            "name": job.key,
            "version": version,
            "version_label": job.key,
            "created": self._created(job, rel, version),
            "description": f"vxds materialize of {job.key}, lock {job.lock_digest}",
        }
        job.placer.write(rel, _json(description), module=job.module)

    def _tables(self, job: Job) -> list[Table]:
        every: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        tables = []
        for split in sorted(job.splits):
            rows = [_resource_row(split, r) for r in job.resources(split)]
            every.extend(rows)
            tables.append(
                Table(_table_name(split), f"resources of split {split}", list(RESOURCE_COLUMNS), rows)
            )
            for resource in job.resources(split):
                if resource.type == "ClinicalRecord":
                    records.extend(self._record(job, split, resource))
                job.placer.task.advance()
        tables.insert(0, Table("resources", "every locked resource", list(RESOURCE_COLUMNS), every))
        if records:
            fields = sorted({k for row in records for k in row} - {"split", "id"})
            tables.append(Table("clinical_records", "clinical records", ["split", "id", *fields], records))
        return tables

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
