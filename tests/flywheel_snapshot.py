"""Build realistic Flywheel snapshots for tests: ``python -m tests.flywheel_snapshot OUT.db[.gz]``.

The layout follows Flywheel's: a project of subjects, their sessions, acquisitions per
sequence holding a NIfTI and a zipped DICOM file, a session-level report, a project-level
clinical table, and an analysis per session whose output is a lesion mask. Each table has
an ``id`` column and a ``data`` column with the entity as JSON; ids are 24-hex Flywheel
ids drawn from a seeded generator, so a given seed always builds the same snapshot.

Rows take the shape of Flywheel's real snapshots by default (``shape="real"``): ``data``
is a BLOB of JSON bytes, and a file row keeps its id and version under ``_id``
(``{"_id": {"file_id": ..., "version": N}, "uuid": ...}``; the row's ``id`` is the
``uuid``), which fw-dataset's builder maps to ``file_id``, ``version`` and ``id``
(``SNAPSHOT_MAPPINGS`` in ``fw_dataset/admin/constants.py``). ``shape="flat"`` writes
the older shape: text JSON, a file's ``_id``, ``file_id`` and ``version`` at the top.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson

SEQUENCES = {
    "T1w": {"Intent": ["Structural"], "Measurement": ["T1"], "Features": ["3D"]},
    "T2w": {"Intent": ["Structural"], "Measurement": ["T2"]},
    "FLAIR": {"Intent": ["Structural"], "Measurement": ["T2"], "Features": ["FLAIR"]},
}


class Builder:
    def __init__(self, seed: int, shape: str = "real") -> None:
        self.random = random.Random(seed)
        self.shape = shape
        self.rows: dict[str, list[tuple[str, bytes]]] = {
            t: [] for t in ("project", "subject", "session", "acquisition", "file", "analysis")
        }

    def new_id(self) -> str:
        return "".join(self.random.choice("0123456789abcdef") for _ in range(24))

    def add(self, table: str, data: dict[str, Any], row_id: str | None = None) -> str:
        rid = row_id or str(data["_id"])
        self.rows[table].append((rid, orjson.dumps(data, option=orjson.OPT_SORT_KEYS)))
        return rid

    def file(self, parent: tuple[str, str], parents: dict[str, str], name: str, **extra: Any) -> str:
        content = f"{name}:{self.random.random()}".encode()
        uuid, file_id = self.new_id(), self.new_id()
        version = self.random.choice([1, 1, 1, 2, 3])
        if self.shape == "real":
            ids: dict[str, Any] = {"_id": {"file_id": file_id, "version": version}, "uuid": uuid}
        else:
            ids = {"_id": uuid, "file_id": file_id, "version": version}
        data = {
            **ids,
            "name": name,
            "parent_ref": {"type": parent[0], "id": parent[1]},
            "parents": parents,
            "hash": "v0-sha384-" + hashlib.sha384(content).hexdigest(),
            "size": len(content) * 1000,
            "mimetype": "application/octet-stream",
            "modality": extra.pop("modality", None),
            "classification": extra.pop("classification", {}),
            "info": extra.pop("info", {}),
            "created": "2024-03-01T10:00:00+00:00",
            **extra,
        }
        return self.add("file", data, row_id=uuid)


def build(path: Path, *, subjects: int = 3, sessions: int = 2, seed: int = 0, shape: str = "real") -> Path:
    """Write a snapshot to ``path`` (gzip-compressed when it ends in ``.gz``); return it."""
    b = Builder(seed, shape)
    project = b.add(
        "project", {"_id": b.new_id(), "label": "MS-Lesions", "group": "neuro", "info": {"sponsor": "vxds"}}
    )
    b.file(("project", project), {"project": project}, "participants.tsv", type="tabular data")
    for s in range(1, subjects + 1):
        subject = b.add(
            "subject",
            {
                "_id": b.new_id(),
                "label": f"BS{s:02d}",
                "code": f"BS{s:02d}",
                "sex": b.random.choice(["female", "male"]),
                "parents": {"project": project},
                "info": {"edss": round(b.random.uniform(0, 7), 1)},
            },
        )
        for n in range(1, sessions + 1):
            parents = {"project": project, "subject": subject}
            session = b.add(
                "session",
                {
                    "_id": b.new_id(),
                    "label": f"ses-{n:02d}",
                    "parents": parents,
                    "age": 30 + s + n,
                    "timestamp": f"2024-0{n}-1{s % 10}T09:00:00+00:00",
                    "info": {},
                },
            )
            parents = {**parents, "session": session}
            b.file(("session", session), parents, "radiology_report.pdf", type="pdf")
            for label, classification in SEQUENCES.items():
                acquisition = b.add(
                    "acquisition",
                    {"_id": b.new_id(), "label": label, "parents": parents, "info": {}},
                )
                here = {**parents, "acquisition": acquisition}
                stem = f"sub-BS{s:02d}_ses-{n:02d}_{label}"
                info = {"EchoTime": round(b.random.uniform(0.01, 0.12), 3), "MagneticFieldStrength": 3}
                b.file(
                    ("acquisition", acquisition),
                    here,
                    f"{stem}.nii.gz",
                    type="nifti",
                    modality="MR",
                    classification=classification,
                    info=info,
                )
                b.file(
                    ("acquisition", acquisition),
                    here,
                    f"{stem}.dicom.zip",
                    type="dicom",
                    modality="MR",
                    classification=classification,
                    info=info,
                )
            analysis = b.add(
                "analysis",
                {
                    "_id": b.new_id(),
                    "label": "lesion-seg",
                    "parent": {"type": "session", "id": session},
                    "parents": parents,
                    "gear_info": {"name": "lesion-seg", "version": "1.4.0"},
                },
            )
            b.file(
                ("analysis", analysis),
                parents,
                f"sub-BS{s:02d}_ses-{n:02d}_desc-lesion_mask.nii.gz",
                type="nifti",
                modality="MR",
                classification={"Custom": ["Lesion mask"]},
            )
    return write(path, b.rows, binary=shape == "real")


def write(path: Path, rows: dict[str, list[tuple[str, bytes]]], *, binary: bool = True) -> Path:
    """Write tables of (id, JSON bytes) rows as a snapshot database (``data`` a BLOB, or text)."""
    plain = path.with_name(path.name + ".tmp") if path.name.endswith(".gz") else path
    plain.unlink(missing_ok=True)
    db = sqlite3.connect(plain)
    try:
        with db:
            for table, items in rows.items():
                column = "BLOB" if binary else "TEXT"
                db.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, data {column} NOT NULL)")
                values = [(i, d if binary else d.decode()) for i, d in items]
                db.executemany(f"INSERT INTO {table} VALUES (?, ?)", values)
    finally:
        db.close()
    if plain != path:
        path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
        plain.unlink()
    return path


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
