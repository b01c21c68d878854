"""``bids``: one BIDS dataset per split under ``OUT/bids/<split>/``.

* ``dataset_description.json`` with ``GeneratedBy`` naming vxds, the dataset, its version
  and the lock digest, and a short ``README``;
* images at ``sub-<subject>/[ses-<session>/]<datatype>/`` with names built from the
  resource's attrs (BIDS entities in the specification's order, then suffix and
  extension), each with a JSON sidecar of its BIDS metadata (the attrs whose keys start with
  a capital letter, as BIDS metadata keys do);
* masks (type ``Mask``, or a ``mask``/``dseg``/``probseg`` suffix) under
  ``derivatives/<pipeline>/`` (the pipeline named by the ``derivatives/<name>/`` folder of
  the resource's id, else ``vxds``), which gets its own ``dataset_description.json``;
* ``participants.tsv``: one row per subject with images, filled from the split's clinical
  records (type ``ClinicalRecord`` with a ``subject``) where present, and
  ``participants.json`` from a locked ``participants`` table's column descriptions.

Resources with no place in BIDS (DICOM series, tables, plain files, an image without a
subject or suffix) are left out with a notice; ``-m files`` writes them.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

import orjson

from vxds.materialize.base import Job
from vxds.resource import Resource
from vxds.sources.folder.bids import MASK_SUFFIXES

BIDS_VERSION = "1.9.0"
# Entity order from the BIDS specification (appendix: entity table).
ENTITIES = (
    ("subject", "sub"),
    ("session", "ses"),
    ("sample", "sample"),
    ("task", "task"),
    ("tracksys", "tracksys"),
    ("acq", "acq"),
    ("nuc", "nuc"),
    ("voi", "voi"),
    ("ce", "ce"),
    ("trc", "trc"),
    ("stain", "stain"),
    ("rec", "rec"),
    ("dir", "dir"),
    ("run", "run"),
    ("mod", "mod"),
    ("echo", "echo"),
    ("flip", "flip"),
    ("inv", "inv"),
    ("mt", "mt"),
    ("part", "part"),
    ("proc", "proc"),
    ("hemi", "hemi"),
    ("space", "space"),
    ("split", "split"),
    ("recording", "recording"),
    ("chunk", "chunk"),
    ("seg", "seg"),
    ("res", "res"),
    ("den", "den"),
    ("label", "label"),
    ("desc", "desc"),
)
LABEL_RE = re.compile(r"[A-Za-z0-9]+\Z")
IMAGE_TYPES = frozenset({"Volume", "Mask"})
_PIPELINE_RE = re.compile(r"(?:^|/)derivatives/([A-Za-z0-9_.-]+)/")


class BidsName(ValueError):
    """A resource's attrs do not make a valid BIDS name; the message says which."""


def bids_path(resource: Resource) -> str:
    """Where an image goes inside one BIDS dataset (derivatives included)."""
    attrs = resource.attrs
    suffix, extension = attrs.get("suffix"), attrs.get("extension")
    if not isinstance(suffix, str) or not LABEL_RE.match(suffix):
        raise BidsName(f"{resource.id}: no BIDS suffix in its attrs")
    if not isinstance(extension, str) or not extension.startswith("."):
        raise BidsName(f"{resource.id}: no file extension in its attrs")
    tokens = []
    for key, short in ENTITIES:
        value = attrs.get(key)
        if value is None:
            continue
        label = str(value)
        if not LABEL_RE.match(label):
            raise BidsName(f"{resource.id}: {key} {label!r} is not a BIDS label (letters and digits only)")
        tokens.append(f"{short}-{label}")
    if "subject" not in attrs:
        raise BidsName(f"{resource.id}: no subject in its attrs")
    datatype = str(attrs.get("datatype") or "anat")
    folder = f"sub-{attrs['subject']}"
    if attrs.get("session") is not None:
        folder += f"/ses-{attrs['session']}"
    name = "_".join([*tokens, suffix]) + extension
    path = f"{folder}/{datatype}/{name}"
    if is_mask(resource):
        match = _PIPELINE_RE.search(resource.id)
        path = f"derivatives/{match.group(1) if match else 'vxds'}/{path}"
    return path


def is_mask(resource: Resource) -> bool:
    return resource.type == "Mask" or resource.attrs.get("suffix") in MASK_SUFFIXES


def sidecar(resource: Resource) -> dict[str, Any]:
    """The BIDS metadata among the attrs: keys that start with a capital letter."""
    return {k: v for k, v in sorted(resource.attrs.items()) if k[:1].isupper()}


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    text = str(value)
    return text.replace("\t", " ").replace("\n", " ") or "n/a"


def participants_tsv(subjects: list[str], records: dict[str, dict[str, Any]]) -> bytes:
    """``participant_id`` first, then every clinical column in name order."""
    skip = {"participant_id", "subject", "session", "session_id"}
    columns = sorted({k for row in records.values() for k in row if k not in skip})
    lines = ["\t".join(["participant_id", *columns])]
    for subject in subjects:
        row = records.get(subject, {})
        lines.append("\t".join([f"sub-{subject}", *(_cell(row.get(c)) for c in columns)]))
    return ("\n".join(lines) + "\n").encode("utf-8")


def column_descriptions(table: Resource) -> dict[str, Any]:
    """Column descriptions a participants table's sidecar gave it (``attrs.descriptions``;
    at the top of attrs in locks made before vxds kept them apart)."""
    names = table.attrs.get("columns")
    if not isinstance(names, list):
        return {}
    given = table.attrs.get("descriptions")
    described = given if isinstance(given, dict) else table.attrs
    return {c: described[c] for c in names if isinstance(described.get(c), dict)}


class BidsMaterializer:
    name: ClassVar[str] = "bids"

    def materialize(self, job: Job) -> None:
        for split in sorted(job.splits):
            self._split(job, split)

    def _description(self, job: Job, split: str, *, derivative: str | None = None) -> dict[str, Any]:
        from vxds import __version__

        generated = {
            "Name": "vxds",
            "Version": __version__,
            "Description": f"vxds materialize of {job.key}, split {split}, lock {job.lock_digest}",
        }
        body: dict[str, Any] = {
            "Name": f"{job.key} ({split})" if derivative is None else f"{derivative}: {job.key} ({split})",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw" if derivative is None else "derivative",
            "GeneratedBy": [generated],
        }
        if derivative is not None:
            body["DatasetLinks"] = {"raw": "../../"}
            body["SourceDatasets"] = [{"URL": "bids:raw:"}]
        return body

    def _split(self, job: Job, split: str) -> None:
        root = f"bids/{split}"
        placer, module = job.placer, job.module
        subjects: set[str] = set()
        pipelines: set[str] = set()
        records: dict[str, dict[str, Any]] = {}
        left_out: Counter[str] = Counter()
        columns: dict[str, Any] = {}
        for resource in job.resources(split):
            if resource.type == "Table" and resource.attrs.get("suffix") == "participants":
                columns.update(column_descriptions(resource))
            if resource.type == "ClinicalRecord" and isinstance(resource.attrs.get("subject"), str):
                records.setdefault(str(resource.attrs["subject"]), dict(resource.attrs))
                continue
            if resource.type not in IMAGE_TYPES:
                left_out[resource.type] += 1
                continue
            try:
                path = bids_path(resource)
            except BidsName as exc:
                job.notice(str(exc) + "; left out")
                continue
            placer.place(resource, f"{root}/{path}", module=module)
            meta = sidecar(resource)
            if meta:
                stem = path[: -len(str(resource.attrs["extension"]))]
                placer.write(f"{root}/{stem}.json", _json(meta), module=module)
            if path.startswith("derivatives/"):
                pipelines.add(path.split("/")[1])
            else:
                subjects.add(str(resource.attrs["subject"]))
        if left_out:
            kinds = ", ".join(f"{n} {t}" for t, n in sorted(left_out.items()))
            job.notice(f"split {split}: {kinds} have no place in BIDS and were left out (use -m files)")
        if not subjects and not records and not pipelines:
            return
        placer.write(f"{root}/dataset_description.json", _json(self._description(job, split)), module=module)
        readme = f"{job.key}, split {split}, written by vxds materialize from lock {job.lock_digest}.\n"
        placer.write(f"{root}/README", readme.encode("utf-8"), module=module)
        listed = sorted(subjects) if subjects else sorted(records)
        table = participants_tsv(listed, records)
        placer.write(f"{root}/participants.tsv", table, module=module)
        described = {c: columns[c] for c in table.split(b"\n", 1)[0].decode().split("\t") if c in columns}
        if described:
            placer.write(f"{root}/participants.json", _json(described), module=module)
        for pipeline in sorted(pipelines):
            description = self._description(job, split, derivative=pipeline)
            placer.write(
                f"{root}/derivatives/{pipeline}/dataset_description.json", _json(description), module=module
            )
