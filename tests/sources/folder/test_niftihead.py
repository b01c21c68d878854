"""vxds/sources/folder/niftihead.py: the struct reader gives what nibabel gives, on headers
nibabel writes (every version, byte order, dimension count, datatype, unit, transform code
and intent), on bytes no writer made, on bids-examples' volumes and on nibabel's own files."""

from __future__ import annotations

import gzip
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel.nifti1 import intent_codes
from nibabel.spatialimages import HeaderDataError

from tests.helpers import REPO
from vxds.sources.folder import nifti, niftihead


def _usable_datatypes() -> list[int]:
    usable = []
    for code in sorted(nibabel.Nifti1Header._data_type_codes.value_set("code")):
        try:
            nibabel.Nifti1Header().set_data_dtype(code)
        except HeaderDataError:  # none, binary, "all", and what this numpy cannot hold
            continue
        usable.append(code)
    return usable


DATATYPES = _usable_datatypes()
INTENTS = sorted(intent_codes.value_set("code"))
SPACE = ["unknown", "meter", "mm", "micron"]
TIME = ["unknown", "sec", "msec", "usec", "hz", "ppm", "rads"]
XFORM_CODES = [0, 1, 2, 3, 4]


@st.composite
def headers(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A header nibabel writes (its bytes, the extension flag after them), and whether it is
    NIfTI-2."""
    two = draw(st.booleans())
    header: Any = nibabel.Nifti2Header() if two else nibabel.Nifti1Header()
    most = 2**40 if two else 2**15 - 1
    shape = draw(st.lists(st.integers(1, most), min_size=1, max_size=7))
    header.set_data_shape(shape)
    header.set_data_dtype(draw(st.sampled_from(DATATYPES)))
    width = 64 if two else 32
    zoom = st.floats(0, 1e6, width=width, allow_nan=False, allow_infinity=False)
    header.set_zooms(draw(st.lists(zoom, min_size=len(shape), max_size=len(shape))))
    header.set_xyzt_units(draw(st.sampled_from(SPACE)), draw(st.sampled_from(TIME)))
    header.set_qform(np.diag([1.0, 2.0, 3.0, 1.0]), code=draw(st.sampled_from(XFORM_CODES)))
    header.set_sform(np.eye(4), code=draw(st.sampled_from(XFORM_CODES)))
    intent = draw(st.sampled_from(INTENTS))
    params = draw(st.lists(st.floats(-100, 100, width=32), min_size=3, max_size=3))
    header.set_intent(intent, tuple(params[: len(intent_codes.parameters[intent])]))
    if draw(st.booleans()):
        header = header.as_byteswapped(">" if sys.byteorder == "little" else "<")
    return header.binaryblock + b"\0\0\0\0" + draw(st.binary(max_size=300)), two


def _written(data: bytes, folder: Path) -> list[str]:
    (folder / "a.nii").write_bytes(data)
    (folder / "a.nii.gz").write_bytes(gzip.compress(data))
    return [str(folder / "a.nii"), str(folder / "a.nii.gz")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers())
def test_a_header_nibabel_writes_is_read_as_nibabel_reads_it(written: tuple[bytes, bool]) -> None:
    data, two = written
    head = data[: niftihead.HEADER_BYTES]
    where = niftihead.layout(head)
    assert where is (niftihead.NIFTI2 if two else niftihead.NIFTI1)
    found = niftihead.read(head, where)
    assert found is not None  # a header a writer made is never left to nibabel
    assert found == nifti.nibabel_header(head, where)
    assert repr(found) == repr(nifti.nibabel_header(head, where))  # floats bit for bit (-0.0, say)
    with tempfile.TemporaryDirectory() as folder:
        for path in _written(data, Path(folder)):
            attrs = nifti.header_attrs(path)
            assert attrs == nifti.header_attrs(path, fast=False)
            assert attrs["shape"] == found.shape


def _planted(base: bytes, two: bool, order: str, dims: list[int], units: int, extension: int) -> bytes:
    """``base`` made a NIfTI header of ``dims`` and ``units``, in byte order ``order``."""
    head = bytearray(base.ljust(niftihead.HEADER_BYTES, b"\0")[: niftihead.HEADER_BYTES])
    where = niftihead.NIFTI2 if two else niftihead.NIFTI1
    if two:
        head[4:12] = niftihead.NIFTI2_MAGIC
    else:
        head[344:348] = b"n+1\0"
        head[348] = extension
    offset, code = where.dim
    limit = 2**63 if two else 2**15
    struct.pack_into(f"{order}8{code}", head, offset, *(max(-limit, min(limit - 1, d)) for d in dims))
    offset, code = where.units
    struct.pack_into(order + code, head, offset, units % 256 if code == "B" else units)
    return bytes(head)


@settings(max_examples=500, deadline=None)
@given(
    st.binary(min_size=niftihead.HEADER_BYTES, max_size=niftihead.HEADER_BYTES),
    st.booleans(),
    st.sampled_from(["<", ">"]),
    st.lists(st.integers(-40000, 40000) | st.sampled_from([-1, 0, 1, 6, 27307]), min_size=8, max_size=8),
    st.integers(-70, 300),
    st.sampled_from([0, 0, 1]),
)
def test_any_header_bytes_are_read_as_nibabel_reads_them_or_left_to_it(
    base: bytes, two: bool, order: str, dims: list[int], units: int, extension: int
) -> None:
    dims[0] = dims[0] % 10 - 1  # mostly 0 to 7: the headers read here; -1, 8 left to nibabel
    head = _planted(base, two, order, dims, units, extension)
    where = niftihead.layout(head)
    assert where is not None
    found = niftihead.read(head, where)
    expected = nifti.nibabel_header(head, where)
    assert found is None or repr(found) == repr(expected)  # floats bit for bit, NaN too
    native = "<" if sys.byteorder == "little" else ">"
    stored = units % 256 if not two else units
    plain = extension == 0 and order == native and 1 <= dims[0] <= 7
    known = stored % 8 in niftihead.SPACE_UNITS and stored - stored % 8 in niftihead.TIME_UNITS
    if plain and known and (two or dims[1:4] not in ([-1, 1, 1], [27307, 1, 6])):
        assert found is not None  # what real headers hold is read here, not by nibabel


def _real_volumes() -> list[Path]:
    roots = [REPO / "tests/data/realdata", Path(nibabel.__file__).parent / "tests" / "data"]
    return sorted(p for root in roots for p in root.rglob("*") if nifti.is_nifti(p.name) and p.is_file())


def test_every_real_volume_is_read_as_nibabel_reads_it() -> None:
    volumes = _real_volumes()
    read = {str(p): nifti.header_attrs(str(p)) for p in volumes}
    assert read == {str(p): nifti.header_attrs(str(p), fast=False) for p in volumes}
    assert sum(1 for attrs in read.values() if attrs) >= 8  # nibabel's 8 (bids-examples' are placeholders)


def test_a_header_left_to_nibabel_is_still_read() -> None:
    [example] = [p for p in _real_volumes() if p.name == "example4d.nii.gz"]  # it has extensions
    with gzip.open(example) as fh:
        head = fh.read(niftihead.HEADER_BYTES)
    where = niftihead.layout(head)
    assert where is niftihead.NIFTI1
    assert niftihead.read(head, where) is None
    assert nifti.header_attrs(str(example))["shape"] == [128, 96, 24, 2]


def test_a_unit_code_nifti_does_not_define_is_no_header(tmp_path: Path) -> None:
    header = nibabel.Nifti1Header()
    header.set_data_shape((2, 3, 4))
    block = bytearray(header.binaryblock)
    block[123] = 4  # a space unit code nibabel's unit_codes lacks (its lookup raised KeyError)
    (tmp_path / "odd.nii").write_bytes(bytes(block) + b"\0\0\0\0")
    assert nifti.header_attrs(str(tmp_path / "odd.nii")) == {}
    assert nifti.header_attrs(str(tmp_path / "odd.nii"), fast=False) == {}
