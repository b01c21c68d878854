"""BIDS names built from attrs, for images of a source that is not laid out as BIDS.

A resource from a BIDS dataset keeps the name it has there (``layout``); only an image from
elsewhere gets a name made from its attrs: the entities in the schema's order, then suffix
and extension, each value checked against the schema's format (a label is letters and
digits, an index digits). Its JSON sidecar is then made from its BIDS metadata (the attrs
whose keys start with a capital letter, as BIDS metadata keys do).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from vxds.resource import Resource
from vxds.sources.folder.bids import MASK_SUFFIXES
from vxds.sources.folder.bidsschema import bids_schema

LABEL_RE = re.compile(r"[A-Za-z0-9]+\Z")
INDEX_RE = re.compile(r"[0-9]+\Z")
_PIPELINE_RE = re.compile(r"(?:^|/)derivatives/([A-Za-z0-9_.-]+)/")


class BidsName(ValueError):
    """A resource's attrs do not make a valid BIDS name; the message says which."""


def _tokens(resource: Resource) -> list[str]:
    tokens = []
    for entity in bids_schema().entities:
        value = resource.attrs.get(entity.attr)
        if value is None:
            continue
        label = str(value)
        if not (INDEX_RE if entity.index else LABEL_RE).match(label):
            kind = "index (digits only)" if entity.index else "label (letters and digits only)"
            raise BidsName(f"{resource.id}: {entity.attr} {label!r} is not a BIDS {kind}")
        tokens.append(f"{entity.key}-{label}")
    return tokens


def bids_path(resource: Resource) -> str:
    """Where an image goes inside one BIDS dataset (derivatives included)."""
    attrs = resource.attrs
    suffix, extension = attrs.get("suffix"), attrs.get("extension")
    if not isinstance(suffix, str) or not LABEL_RE.match(suffix):
        raise BidsName(f"{resource.id}: no BIDS suffix in its attrs")
    if not isinstance(extension, str) or not extension.startswith("."):
        raise BidsName(f"{resource.id}: no file extension in its attrs")
    tokens = _tokens(resource)
    if "subject" not in attrs:
        raise BidsName(f"{resource.id}: no subject in its attrs")
    datatype = str(attrs.get("datatype") or "anat")
    folder = f"sub-{attrs['subject']}"
    if attrs.get("session") is not None:
        folder += f"/ses-{attrs['session']}"
    path = f"{folder}/{datatype}/" + "_".join([*tokens, suffix]) + extension
    if is_mask(resource):
        match = _PIPELINE_RE.search(resource.id)
        path = f"derivatives/{match.group(1) if match else 'vxds'}/{path}"
    return path


def is_mask(resource: Resource) -> bool:
    return resource.type == "Mask" or resource.attrs.get("suffix") in MASK_SUFFIXES


def sidecar(resource: Resource) -> dict[str, Any]:
    """The BIDS metadata among the attrs: keys that start with a capital letter."""
    return {k: v for k, v in sorted(resource.attrs.items()) if k[:1].isupper()}


def json_bytes(value: Any, *, sort: bool = True) -> bytes:
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort else 0)
    return orjson.dumps(value, option=option) + b"\n"


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
