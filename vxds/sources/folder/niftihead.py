"""A NIfTI-1 or NIfTI-2 header's shape, pixel sizes and time unit, read with ``struct``.

nibabel (through numpy) is what ``nifti.py`` reads a header with; importing the two costs
half a second, more than the rest of a relock with one file changed. This reader gives
exactly what nibabel's ``get_data_shape()``, ``get_zooms()`` and ``get_xyzt_units()[1]``
give for the headers real files hold, and says it cannot (``read`` returns None) for every
other one, which ``nifti.py`` then gives to nibabel:

* endianness as nibabel guesses it: native when ``dim[0]`` is 1 to 7, or 0 with a
  ``sizeof_hdr`` that is not the byte-swapped size; byte-swapped otherwise;
* ``dim[0]`` outside 0 to 7 in that byte order, a unit code nibabel does not know, a NIfTI-1
  header with extensions (nibabel parses them, and may refuse them), and the two FreeSurfer
  shapes nibabel rewrites (``(-1, 1, 1)`` and ``(27307, 1, 6)``) are left to nibabel.

tests/sources/folder/test_niftihead.py holds the two to each other on generated headers,
on bids-examples' volumes and on nibabel's own test files.
"""

from __future__ import annotations

import struct
import sys
from typing import NamedTuple

HEADER_BYTES = 540  # a NIfTI-2 header; NIfTI-1's is 348
NIFTI1_MAGICS = (b"n+1\0", b"ni1\0")
NIFTI2_MAGIC = b"n+2\0\r\n\x1a\n"
# nifti1.unit_codes: what get_xyzt_units() names each code (any other code is a KeyError there)
SPACE_UNITS = {0: "unknown", 1: "meter", 2: "mm", 3: "micron"}
TIME_UNITS = {0: "unknown", 8: "sec", 16: "msec", 24: "usec", 32: "hz", 40: "ppm", 48: "rads"}
_FREESURFER = ((-1, 1, 1), (27307, 1, 6))  # shapes nibabel's NIfTI-1 header rewrites


class Layout(NamedTuple):
    """Where one version's fields are: offsets and ``struct`` codes."""

    sizeof_hdr: int
    dim: tuple[int, str]  # offset of dim[0..7], and one value's code
    pixdim: tuple[int, str]
    units: tuple[int, str]  # xyzt_units
    extensions: int | None  # offset of the extension flag nibabel reads, if it reads one


NIFTI1 = Layout(348, (40, "h"), (76, "f"), (123, "B"), 348)
NIFTI2 = Layout(540, (16, "q"), (104, "d"), (500, "i"), None)  # nibabel reads past 540 bytes


class Header(NamedTuple):
    shape: list[int]
    zooms: list[float]
    time_unit: str


def layout(head: bytes) -> Layout | None:
    """Which NIfTI version ``head`` (a file's first ``HEADER_BYTES``) is, as ``nifti.py``
    decides; None when it is neither (empty, truncated, or not NIfTI)."""
    if head[4:12] == NIFTI2_MAGIC and len(head) == HEADER_BYTES:
        return NIFTI2
    if head[344:348] in NIFTI1_MAGICS:
        return NIFTI1
    return None


def _order(head: bytes, where: Layout) -> str:
    """nibabel's guess of the header's byte order (``AnalyzeHeader.guessed_endian``)."""
    native, swapped = ("<", ">") if sys.byteorder == "little" else (">", "<")
    offset, code = where.dim
    dim0 = struct.unpack_from(native + code, head, offset)[0]
    if dim0 == 0:
        size = struct.unpack_from(swapped + "i", head, 0)[0]
        return swapped if size == where.sizeof_hdr else native
    return native if 1 <= dim0 <= 7 else swapped


def read(head: bytes, where: Layout) -> Header | None:
    """What nibabel reads of ``head``'s shape, zooms and time unit; None when this reader
    cannot say it exactly (see the module docstring)."""
    if where.extensions is not None and head[where.extensions : where.extensions + 1] not in (b"", b"\0"):
        return None
    order = _order(head, where)
    offset, code = where.dim
    dims = list(struct.unpack_from(f"{order}8{code}", head, offset))
    ndim = dims[0]
    if not 0 <= ndim <= 7:
        return None
    offset, code = where.units
    units = struct.unpack_from(order + code, head, offset)[0]
    space, time = units % 8, units - units % 8
    if space not in SPACE_UNITS or time not in TIME_UNITS:
        return None
    if ndim == 0:
        return Header([0], [1.0], TIME_UNITS[time])
    shape = dims[1 : ndim + 1]
    if where is NIFTI1 and tuple(shape[:3]) in _FREESURFER:
        return None
    offset, code = where.pixdim
    zooms = list(struct.unpack_from(f"{order}8{code}", head, offset))[1 : ndim + 1]
    return Header(shape, zooms, TIME_UNITS[time])
