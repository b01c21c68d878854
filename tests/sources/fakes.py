"""Small fake sources: an ``IndexedSource`` that counts its scans, and a bare ``Source``."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from vxds.errors import NotFoundError
from vxds.resource import Resource
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.folder.dicom import SERIES_KEYWORDS

RESOURCES = [
    Resource("b.nii.gz", "v2", "Volume"),
    Resource("a.tsv#sub-01", 1, "ClinicalRecord", attrs={"age": 34}),
    Resource("sub-01/dicom", "v1", "DICOMSeries"),
]


class Counted(IndexedSource):
    """Lists ``RESOURCES``, counting scans; its snapshot and rows come with the listing."""

    def __init__(self) -> None:
        super().__init__("counted://", SourceContext(base=Path(".")))
        self.scans = 0

    def _scan(self) -> list[Resource]:
        self.scans += 1
        self._snapshot = f"listed {self.scans} times"
        self._rows = {"a.tsv#sub-01": b"participant_id\tage\nsub-01\t34\n"}
        return list(RESOURCES)

    def _open_file(self, resource: Resource) -> BinaryIO:
        return io.BytesIO(b"file " + resource.id.encode())


class Bare:
    """The ``Source`` protocol alone: no ``scan()``; counts the reads of its snapshot."""

    url = "bare://"
    time_travel = False

    def __init__(self) -> None:
        self.reads = 0

    @property
    def snapshot(self) -> str:
        self.reads += 1
        return "bare"

    def resources(self) -> Sequence[Resource]:
        return []

    def get(self, id: str, version: int | str | None = None) -> Resource:
        raise NotFoundError(id)

    def open(self, resource: Resource) -> BinaryIO:
        raise NotFoundError(resource.id)


HEADER_ATTRS = frozenset({"shape", "voxel_size"})  # the sample volumes are 3-D: no RepetitionTime


def tree_shape(r: Any) -> tuple[Any, ...]:
    """What a bucket prefix and a folder holding the same files agree on: everything but the
    NIfTI and DICOM header attrs, which only the folder source reads (an object store would have to
    fetch every volume's head again on a warm relock)."""
    header = HEADER_ATTRS | (frozenset(SERIES_KEYWORDS) if r.type == "DICOMSeries" else frozenset())
    attrs = {k: v for k, v in r.attrs.items() if k not in header}
    return (r.id, r.type, r.hash, r.size, r.uri, attrs)
