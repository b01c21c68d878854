"""``clinical-csv`` (alias ``clinical-to-csv``): ``OUT/clinical/<split>.csv``.

One row per clinical record (type ``ClinicalRecord``), in lock (id) order. Each row is the
record's bytes from the source, checked against the lock (the canonical JSON row); a
record that fails the check is reported and left out, the others are written. Every
attribute of a record is a column too (those vxds derived, such as ``subject``, and those the
recipe added, such as ``site``); where the row and an attribute share a name, the row's
checked value is written. Columns: ``id``, then ``subject`` and ``session`` when any record
has them, then every other field in name order. Missing values are empty cells; lists and
objects are JSON.
"""

from __future__ import annotations

import csv
import io
from typing import Any, ClassVar

import orjson

from vxds.materialize.base import Job
from vxds.resource import Resource

FIRST = ("subject", "session")


def _row(resource: Resource, data: bytes) -> dict[str, Any]:
    try:
        row = orjson.loads(data)
    except orjson.JSONDecodeError:
        row = None
    values = dict(row) if isinstance(row, dict) else {}
    for key, value in resource.attrs.items():  # derived (subject, session) or added by the recipe
        values.setdefault(key, value)
    return values


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def render_csv(rows: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The CSV text of ``(id, row)`` pairs, with the stable column order above."""
    keys = {k for _, row in rows for k in row}
    columns = [k for k in FIRST if k in keys] + sorted(keys - set(FIRST) - {"id"})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", *columns])
    for rid, row in rows:
        writer.writerow([rid, *(_cell(row.get(c)) for c in columns)])
    return buffer.getvalue().encode("utf-8")


class ClinicalCsvMaterializer:
    name: ClassVar[str] = "clinical-csv"

    def materialize(self, job: Job) -> None:
        for split in sorted(job.splits):
            rows = []
            for resource in job.resources(split):
                if resource.type != "ClinicalRecord":
                    continue
                data = job.placer.fetch(resource, module=job.module)
                if data is not None:
                    rows.append((resource.id, _row(resource, data)))
                job.placer.task.advance()
            if rows:
                job.placer.write(f"clinical/{split}.csv", render_csv(rows), module=job.module)
            else:
                job.notice(f"split {split} has no clinical records; no CSV written")
