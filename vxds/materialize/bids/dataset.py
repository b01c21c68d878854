"""The dataset-level files ``-m bids`` writes: descriptions and per-split participant tables.

A ``dataset_description.json`` carried from the source keeps every key it has (Authors,
License, DatasetDOI, Funding, HowToAcknowledge ...) in its order, and gets vxds appended to
``GeneratedBy``; one the source lacks is generated (``DatasetType: derivative`` under
``derivatives/<pipeline>/``). ``participants.tsv`` and ``samples.tsv`` keep all their columns
and bytes, with only the rows of the split's subjects (the validator wants one row per
subject folder, and a split holds some of them); a ``scans.tsv`` keeps the rows of the files
placed beside it.
"""

from __future__ import annotations

from typing import Any

import orjson

from vxds.materialize.base import Job
from vxds.materialize.bids.naming import json_bytes
from vxds.sources.folder.bidsschema import bids_schema

# Rows per subject, kept for the split's subjects; each table's JSON goes with the table.
ROW_TABLES = {"participants.tsv": "participants.json", "samples.tsv": "samples.json"}


def generated_by(job: Job, split: str, *, tools: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``GeneratedBy`` entries: each converter that made files of the split, then vxds."""
    from vxds import __version__

    made = [
        {"Name": name, "Version": version, "Description": "DICOM to NIfTI, run by vxds materialize"}
        for name, version in sorted((tools or {}).items())
    ]
    return [
        *made,
        {
            "Name": "vxds",
            "Version": __version__,
            "Description": f"vxds materialize of {job.key}, split {split}, lock {job.lock_digest}",
        },
    ]


def new_description(
    job: Job, split: str, *, pipeline: str | None = None, generated: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A description for a dataset the source has none for (``DatasetType`` always written:
    with ``GeneratedBy`` and without it, the validator takes a dataset for a derivative)."""
    body: dict[str, Any] = {
        "Name": f"{job.key} ({split})" if pipeline is None else f"{pipeline}: {job.key} ({split})",
        "BIDSVersion": bids_schema().version,
        "DatasetType": "raw" if pipeline is None else "derivative",
        "GeneratedBy": list(generated or generated_by(job, split)),
    }
    if pipeline is not None:
        body["GeneratedBy"].insert(0, {"Name": pipeline})
        body["DatasetLinks"] = {"raw": "../../"}
        body["SourceDatasets"] = [{"URL": "bids:raw:"}]
    return body


def carried_description(data: bytes, generated: list[dict[str, Any]], *, derivative: bool) -> bytes | None:
    """The source's description with ``generated`` appended to ``GeneratedBy``; None if not a
    JSON object.

    A ``DatasetType`` the source left to its default is written out: with ``GeneratedBy``
    present, the validator would otherwise take a raw dataset for a derivative one.
    """
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    body.setdefault("DatasetType", "derivative" if derivative else "raw")
    before = body.get("GeneratedBy")
    body["GeneratedBy"] = [*(before if isinstance(before, list) else []), *generated]
    return json_bytes(body, sort=False)


def subject_rows(data: bytes, subjects: set[str]) -> bytes | None:
    """A ``participant_id`` table with only ``subjects``' rows (see ``rows_where``)."""
    return rows_where(data, b"participant_id", {f"sub-{s}".encode() for s in subjects})


def rows_where(data: bytes, column: bytes, wanted: set[bytes]) -> bytes | None:
    """``data`` (a TSV) with its header and only the rows whose ``column`` is in ``wanted``.

    The lines kept are the source's bytes; a table without that column is returned as is,
    and None when no row is left (a table of nothing is not valid BIDS).
    """
    lines = data.splitlines(keepends=True)
    if not lines:
        return data
    header = lines[0].rstrip(b"\r\n").split(b"\t")
    if column not in header:
        return data
    index = header.index(column)
    kept = [lines[0]]
    for line in lines[1:]:
        cells = line.rstrip(b"\r\n").split(b"\t")
        if len(cells) > index and cells[index].strip() in wanted:
            kept.append(line)
    return b"".join(kept) if len(kept) > 1 else None
