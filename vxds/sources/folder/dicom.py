"""DICOM files in a folder tree: found by content, grouped into series by their headers.

* A file is DICOM when its bytes 128..132 are ``DICM`` (the preamble and prefix of PS3.10),
  whatever its name: scanner exports name files ``IM0000`` with no extension.
* Only the header is read (pydicom, ``stop_before_pixels``), and of it only the attributes
  vxds records (``SERIES_KEYWORDS``) and those the project allows (``[tool.vxds]
  dicom_allow``), through ``specific_tags``: nothing else is even decoded, so no patient
  name, birth date or address can reach a lock. What is read is kept by the file's (size,
  mtime, inode) in ``.vxds/dicom.json``, as digests are.
* The DICOM files of one folder with the same ``SeriesInstanceUID`` are one series; a DICOM
  file without one, and any other file in the folder, stays a file of its own.
* A series' id is its folder's path when the folder's DICOM files are one series (as a
  folder of ``.dcm`` files always was); when the folder holds several (a CT and an MR),
  each is ``<folder>/series-<SeriesNumber>``, or ``<folder>/series-<SeriesInstanceUID>``
  when the number is missing, shared by two series of the folder, or already a path. Its
  ``uri`` is the folder. Its hash is the digest of its listing of file names and digests.
"""

from __future__ import annotations

import math
import os
import struct
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vxds.executor import Executor
from vxds.hashing import StatKey
from vxds.resource import Resource
from vxds.sources.folder import bids
from vxds.sources.folder.cache import RACY_NS
from vxds.sources.folder.nifti import HeaderCache, prefetch
from vxds.sources.folder.ps3_15 import without_identifying
from vxds.sources.folder.tree import series_digest

SERIES_KEYWORDS = (
    "Modality",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "SeriesDescription",
    "SeriesNumber",
    "Manufacturer",
    "MagneticFieldStrength",
)
_PREFIX = slice(128, 132)
_NOT_DICOM = (".json", ".nii", ".nii.gz", ".tsv", ".csv")  # named for what they are: not read


class DicomFile(Protocol):
    """A listed file: its path in the tree and on disk, its size and stat key."""

    @property
    def rel(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def key(self) -> StatKey: ...


def allowed(options: Mapping[str, Any]) -> tuple[str, ...]:
    """``[tool.vxds] dicom_allow``, which the configuration hands sources in their options."""
    value = options.get("dicom_allow", [])
    return tuple(sorted({str(name) for name in value})) if isinstance(value, list) else ()


def may_be_dicom(rel: str) -> bool:
    """Whether a file's bytes are looked at: any name but the BIDS ones that say what they are."""
    return not rel.lower().endswith(_NOT_DICOM)


def _json_value(value: Any) -> Any:
    """A header value as plain JSON: numbers, strings, lists of them; None for the rest."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) or type(value).__name__ == "PersonName":
        text = str(value).strip(" \0")
        return text or None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        items = [_json_value(item) for item in value]
        return items if items and all(item is not None for item in items) else None
    return None  # bytes, sequences, anything without a plain form


def header_attrs(path: str, keywords: Sequence[str]) -> dict[str, Any]:
    """The named attributes of the DICOM file at ``path``; ``{}`` when it is not DICOM."""
    try:
        with open(path, "rb") as fh:
            if fh.read(132)[_PREFIX] != b"DICM":
                return {}
    except OSError:
        return {}
    import pydicom  # costly: only when a DICOM file is found
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns of odd values; they are read as they are
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(keywords))
            found = {keyword: _json_value(ds.get(keyword)) for keyword in keywords}
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError, IndexError, struct.error):
        return {}  # DICM but unreadable: a file, not a member of any series
    return {keyword: value for keyword, value in found.items() if value is not None}


def read_header(path: str, keywords: Sequence[str], allow: Sequence[str]) -> dict[str, Any]:
    """``header_attrs`` without the identifying attributes the project does not allow."""
    return without_identifying(header_attrs(path, keywords), allow)


class DicomHeaders:
    """Header attrs of DICOM files (``{}`` for any other file), through a stat cache."""

    def __init__(self, cache_dir: Path | None, allow: Sequence[str] = ()) -> None:
        self.allow = tuple(allow)
        self.keywords = tuple(dict.fromkeys((*SERIES_KEYWORDS, *self.allow)))
        # Keyed by what is read: allowing another attribute reads every header again.
        version = "1:" + ",".join(self.keywords)
        self.cache = HeaderCache(cache_dir / "dicom.json" if cache_dir else None, version)

    def read(self, path: str) -> dict[str, Any]:
        """The header attrs of one file, read now (picklable: a cluster's workers call it)."""
        return read_header(path, self.keywords, self.allow)

    def prefetch(self, files: Iterable[DicomFile], executor: Executor) -> None:
        """The headers of ``files`` that may be DICOM read by ``executor``'s workers."""
        wanted = [(f.path, f.key) for f in files if may_be_dicom(f.rel)]
        prefetch(self.cache, wanted, partial(read_header, keywords=self.keywords, allow=self.allow), executor)

    def __call__(self, path: str, key: StatKey) -> dict[str, Any]:
        found = self.cache.get(path, key)
        if found is None:
            found = read_header(path, self.keywords, self.allow)
            if key[1] < time.time_ns() - RACY_NS:  # a file changed just now might change again
                self.cache.put(path, key, found)
        return found


def of_series(headers: DicomHeaders, folder: str, names: Iterable[str], uid: str) -> list[str]:
    """The names in ``folder`` of files of the series ``uid`` (read as a scan reads them)."""
    found = []
    for name in names:
        path = f"{folder}/{name}"
        try:
            st = os.stat(path)
        except OSError:
            continue
        if headers(path, (st.st_size, st.st_mtime_ns, st.st_ino)).get("SeriesInstanceUID") == uid:
            found.append(name)
    headers.cache.save()
    return found


@dataclass
class Series:
    """The DICOM files of one folder that share a ``SeriesInstanceUID``."""

    folder: str
    uid: str
    header: dict[str, Any]
    members: list[DicomFile] = field(default_factory=list)
    id: str = ""


F = TypeVar("F", bound=DicomFile)


Header = Callable[[str, StatKey], dict[str, Any]]  # (path, stat key) -> header attrs


def group(files: Iterable[F], header: Header) -> tuple[list[F], list[Series]]:
    """Files that are no series' member, and the series (each with its id)."""
    plain: list[F] = []
    found: dict[tuple[str, str], Series] = {}
    listed = sorted(files, key=lambda f: f.rel)  # a series' header is its first file's by name
    for f in listed:
        attrs = header(f.path, f.key) if may_be_dicom(f.rel) else {}
        uid = attrs.get("SeriesInstanceUID")
        if not isinstance(uid, str):
            plain.append(f)
            continue
        folder = f.rel.rpartition("/")[0]
        series = found.setdefault((folder, uid), Series(folder, uid, attrs))
        series.members.append(f)
    _name(list(found.values()), {f.rel for f in listed})
    return plain, list(found.values())


def _name(series: list[Series], taken: set[str]) -> None:
    """Give every series its id (the rule in the module docstring)."""
    by_folder: dict[str, list[Series]] = {}
    for s in series:
        by_folder.setdefault(s.folder, []).append(s)
    for folder, here in by_folder.items():
        if len(here) == 1 and folder:
            here[0].id = folder
            continue
        numbers = [s.header.get("SeriesNumber") for s in here]
        for s, number in zip(here, numbers, strict=True):
            label = f"series-{number}"
            if not isinstance(number, int) or numbers.count(number) > 1 or _join(folder, label) in taken:
                label = f"series-{s.uid}"
            s.id = _join(folder, label)


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def series_resource(series: Series, digests: Mapping[str, str]) -> Resource:
    """A series as one resource: hashed over its listing, its header's attrs with the path's."""
    names = [(m.rel.rpartition("/")[2], digests[m.rel]) for m in series.members]
    digest = series_digest(names)
    attrs = bids.path_attrs(series.folder + "/")
    attrs.pop("extension", None)
    attrs = {**series.header, **attrs, "files": len(series.members)}
    size = sum(m.size for m in series.members)
    uri = series.folder or None  # the folder; a series in the tree's root has none
    return Resource(
        id=series.id, version=digest, type="DICOMSeries", hash=digest, size=size, uri=uri, attrs=attrs
    )
