"""BIDS naming: entities from paths, and sidecar inheritance.

Labels lose their ``sub-``/``ses-`` prefixes and are otherwise strings exactly as written
(``run-01`` is ``"01"``: BIDS names are strings, and a sidecar's ``IntendedFor`` names the
file as written). Only ``sub`` and ``ses`` are renamed (``subject``, ``session``); other
entities keep their short keys (``acq``, ``run``, ``desc``, ``label`` ...). Which keys are
entities, and which names have a suffix, is the BIDS schema's (``bidsschema``): a name with a
key the schema does not know (``JPEG-lossy.dcm``) is not a BIDS name, and a name with no
entities has a suffix only when the schema knows it (``README``, ``participants``, ``T1w``;
not FreeSurfer's ``lh.BA.annot``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vxds.resource import InvalidResource, check_id
from vxds.sources.folder.bidsschema import bids_schema

RENAMED = {"sub": "subject", "ses": "session"}
VOLUME_EXTENSIONS = frozenset({".nii", ".nii.gz", ".mgz", ".mgh", ".nrrd", ".mha", ".mhd"})
MASK_SUFFIXES = frozenset({"mask", "dseg", "probseg"})
TABLE_EXTENSIONS = {".tsv": "\t", ".csv": ","}
# A table's JSON sidecar describes its columns: it goes under attrs["descriptions"], never
# merged into attrs (a column named "sample" is not the sample entity).
TABULAR_EXTENSIONS = frozenset({".tsv", ".csv", ".tsv.gz", ".csv.gz"})
ZARR_EXTENSIONS = (".zarr",)  # a folder named so (``.ome.zarr`` too) is one resource


@dataclass(frozen=True)
class Name:
    """A file name split the BIDS way."""

    entities: dict[str, Any]
    suffix: str | None
    extension: str


def split_name(name: str) -> Name:
    """``sub-01_run-2_T2w.nii.gz`` -> entities {subject: '01', run: '2'}, suffix T2w, .nii.gz."""
    dot = name.find(".", 1)
    stem, extension = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    tokens = stem.split("_")
    known = bids_schema().keys
    entities: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition("-")
        if token is tokens[-1] and not sep:
            break
        if not (sep and value and key in known):
            return Name({}, None, extension)  # not a BIDS name
        entities[RENAMED.get(key, key)] = value
    else:
        return Name(entities, None, extension)
    suffix = tokens[-1]
    if not entities and suffix not in bids_schema().bare_stems:
        return Name({}, None, extension)
    return Name(entities, suffix or None, extension)


def folder_attrs(folder: str) -> dict[str, Any]:
    """Entities a folder path gives its files: subject and session labels, the datatype."""
    parts = folder.split("/") if folder else []
    attrs: dict[str, Any] = {}
    for part in parts:
        if part.startswith("sub-") and len(part) > 4:
            attrs["subject"] = part[4:]
        elif part.startswith("ses-") and len(part) > 4:
            attrs["session"] = part[4:]
    if parts and parts[-1] in bids_schema().datatypes:
        attrs["datatype"] = parts[-1]
    return attrs


def path_attrs(relpath: str, name: Name | None = None) -> dict[str, Any]:
    """Entities of a path: folder labels, the datatype folder, then the file name."""
    folder, _, filename = relpath.rpartition("/")
    return name_attrs(folder_attrs(folder), name or split_name(filename))


def name_attrs(attrs: dict[str, Any], name: Name) -> dict[str, Any]:
    """``attrs`` (modified) with a file name's entities, suffix and extension."""
    attrs.update(name.entities)
    if name.suffix:
        attrs["suffix"] = name.suffix
    if name.extension:
        attrs["extension"] = name.extension
    return attrs


def resource_type(relpath: str, name: Name | None = None) -> str:
    name = name or split_name(relpath.rsplit("/", 1)[-1])
    if name.extension.lower() in VOLUME_EXTENSIONS:
        return "Mask" if name.suffix in MASK_SUFFIXES else "Volume"
    if name.extension.lower() in TABLE_EXTENSIONS:
        return "Table"
    return "File"


def sidecar_applies(sidecar: Name, data: Name) -> bool:
    """The inheritance principle: same suffix, and the sidecar's entities are a subset."""
    if sidecar.extension != ".json" or data.extension == ".json" or sidecar.suffix != data.suffix:
        return False
    return all(data.entities.get(k) == v for k, v in sidecar.entities.items())


def merge_sidecars(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge sidecars from least to most specific; later keys win."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged


# --- tables ------------------------------------------------------------------------------

_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_FLOAT_RE = re.compile(r"-?(([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)\Z")
MISSING = frozenset({"", "n/a", "NA"})


def cell(value: str) -> Any:
    """A table cell as a JSON value: ``n/a`` and empty are null, numbers are numbers.

    Strings with leading zeros (``"007"``) stay strings so labels keep their padding.
    """
    if value in MISSING:
        return None
    if _INT_RE.match(value):
        return int(value)
    if _FLOAT_RE.match(value):
        number = float(value)
        return number if math.isfinite(number) else value
    return value


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]
    keys: list[str]  # one unique key per row


class TableError(ValueError):
    pass


def read_table(text: str, extension: str) -> Table:
    """Parse a CSV/TSV table; the row key is the first column when its cells are unique and
    can end an id (no '/', backslash or control character), else the row number."""
    reader = csv.reader(io.StringIO(text), delimiter=TABLE_EXTENSIONS[extension.lower()])
    lines = [(n, row) for n, row in enumerate(reader, start=1) if any(c.strip() for c in row)]
    if not lines:
        return Table([], [], [])
    header = [c.strip() for c in lines[0][1]]
    if len(set(header)) != len(header) or "" in header:
        raise TableError(f"line {lines[0][0]}: the header has empty or repeated column names")
    rows = []
    for number, row in lines[1:]:
        if len(row) != len(header):
            raise TableError(f"line {number}: {len(row)} cells, the header has {len(header)}")
        rows.append({col: cell(value.strip()) for col, value in zip(header, row, strict=True)})
    first = ["" if row[header[0]] is None else str(row[header[0]]) for row in rows]
    usable = len(set(first)) == len(first) and all(_usable_key(k) for k in first)
    keys = first if usable else [f"row-{n}" for n in range(1, len(rows) + 1)]
    return Table(header, rows, keys)


def _usable_key(key: str) -> bool:
    """A cell that can end a record id ``<table>#<key>`` (no '/', nothing the id rules refuse)."""
    if not key or "/" in key:
        return False
    try:
        check_id("table#" + key)  # one segment, so only the rules on characters apply
    except InvalidResource:
        return False
    return True


def record_attrs(row: Mapping[str, Any], path: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A clinical row's attrs: the row, plus ``subject``/``session`` from BIDS id columns,
    else from the table's own path (the rows of ``sub-01/sub-01_sessions.tsv`` are sub-01's)."""
    attrs = dict(row)
    for column, entity, prefix in (("participant_id", "subject", "sub-"), ("session_id", "session", "ses-")):
        value = row.get(column)
        if entity not in attrs and isinstance(value, str):
            attrs[entity] = value[len(prefix) :] if value.startswith(prefix) else value
        elif entity not in attrs and path is not None and isinstance(path.get(entity), str):
            attrs[entity] = path[entity]
    return attrs


def is_zarr(name: str) -> bool:
    """A folder holding one Zarr store (``*.zarr``, ``*.ome.zarr``)."""
    return name.lower().endswith(ZARR_EXTENSIONS) and len(name) > len(".zarr")


def zarr_root(rel: str) -> str | None:
    """The Zarr folder a path lies inside (``a/x.ome.zarr`` for ``a/x.ome.zarr/0/.zarray``)."""
    parts = rel.rstrip("/").split("/")
    for index, part in enumerate(parts[:-1] if not rel.endswith("/") else parts):
        if is_zarr(part):
            return "/".join(parts[: index + 1])
    return None
