"""vxds/sources/base.py: what ``IndexedSource`` gives a subclass, and ``scan`` of any source."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.sources.fakes import RESOURCES, Bare, Counted
from vxds.errors import NotFoundError, SourceError
from vxds.resource import Resource
from vxds.sources.base import IndexedSource, SourceContext, scan


def test_scan_lists_once_and_the_snapshot_comes_from_it() -> None:
    source = Counted()
    assert source.scans == 0  # opening a source lists nothing
    source.scan()
    source.scan()
    assert source.snapshot == "listed 1 times"
    assert [r.id for r in source.resources()] == ["a.tsv#sub-01", "b.nii.gz", "sub-01/dicom"]
    assert source.scans == 1


def test_the_snapshot_lists_a_source_not_scanned_yet() -> None:
    source = Counted()
    assert source.snapshot == "listed 1 times"
    assert source.scans == 1


def test_scan_of_any_source() -> None:
    indexed, bare = Counted(), Bare()
    scan(indexed)
    scan(bare)  # a bare protocol implementation is listed through its snapshot, as before
    assert indexed.scans == 1
    assert bare.reads == 1


def test_a_failing_listing_fails_the_scan() -> None:
    class Unreadable(Counted):
        def _scan(self) -> list[Resource]:
            raise SourceError("source 'counted://': cannot list it")

    with pytest.raises(SourceError, match="cannot list it"):
        scan(Unreadable())


def test_open_serves_rows_files_and_refuses_a_series() -> None:
    source = Counted()
    with source.open(RESOURCES[1]) as fh:
        assert fh.read() == b"participant_id\tage\nsub-01\t34\n"
    with source.open(RESOURCES[0]) as fh:
        assert fh.read() == b"file b.nii.gz"
    with pytest.raises(SourceError, match="sub-01/dicom is a DICOM series"):
        source.open(RESOURCES[2])
    with pytest.raises(NotFoundError, match=r"no resource 'a\.tsv#sub-02'"):
        source.open(Resource("a.tsv#sub-02", 1, "ClinicalRecord"))


def test_a_source_with_its_own_open_needs_no_open_file() -> None:
    class OwnOpen(IndexedSource):
        def _scan(self) -> list[Resource]:
            return list(RESOURCES)

        def open(self, resource: Resource) -> BinaryIO:
            return io.BytesIO(b"own")

    source = OwnOpen("own://", SourceContext(base=Path(".")))
    assert source.open(RESOURCES[2]).read() == b"own"
    assert source.snapshot == ""  # nothing recorded one: an override of snapshot says more


def test_a_source_that_cannot_open_anything_is_refused() -> None:
    class NoBytes(IndexedSource):
        def _scan(self) -> list[Resource]:
            return []

    with pytest.raises(TypeError, match="NoBytes implements neither _open_file"):
        NoBytes("none://", SourceContext(base=Path(".")))
