"""What a NIfTI header says of a volume: ``shape``, ``voxel_size``, and ``RepetitionTime``.

Only the header is read (the first 540 bytes, decompressed for ``.nii.gz``), with ``struct``
(``niftihead``), or with nibabel for a header that reader leaves to it. A file whose header
cannot be read (empty, truncated, not NIfTI, a unit code NIfTI does not define) gives no
attrs: that is not an error, since a lock of a tree of placeholders (as bids-examples' are)
must still work. Values are plain JSON: shape as ints, sizes in the header's units rounded to 6
significant digits, ``RepetitionTime`` (4-D only) in seconds from pixdim[4] and the
header's time unit, absent when the unit is unknown.

``HeaderCache`` keeps the attrs by the file's (size, mtime, inode), as ``HashCache`` keeps
digests, so an unchanged volume's header is not read again.
"""

from __future__ import annotations

import gzip
import io
import math
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vxds.executor import Executor
from vxds.fs import JsonCache
from vxds.hashing import StatKey
from vxds.sources.folder import niftihead
from vxds.sources.folder.cache import RACY_NS

NIFTI_EXTENSIONS = (".nii", ".nii.gz")
_SECONDS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}


def is_nifti(rel: str) -> bool:
    return rel.lower().endswith(NIFTI_EXTENSIONS)


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _head(path: str) -> bytes:
    with open(path, "rb") as fh:
        if path.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=fh) as unzipped:
                return unzipped.read(niftihead.HEADER_BYTES)
        return fh.read(niftihead.HEADER_BYTES)


def header_attrs(path: str, *, fast: bool = True) -> dict[str, Any]:
    """The header's attrs of the NIfTI file at ``path``; ``{}`` when it has no readable header.

    Read with ``niftihead`` (no numpy), or with nibabel when that cannot read it exactly or
    ``fast`` is False (the tests hold the two to each other)."""
    try:
        head = _head(path)
    except (OSError, EOFError, ValueError, zlib.error):
        return {}
    where = niftihead.layout(head)
    if where is None:  # empty, truncated, or not NIfTI: no header
        return {}
    found = niftihead.read(head, where) if fast else None
    if found is None:
        found = nibabel_header(head, where)
    if found is None or not all(math.isfinite(z) for z in found.zooms):  # not JSON, no real header
        return {}
    shape, zooms, time_unit = found
    attrs: dict[str, Any] = {"shape": shape, "voxel_size": [_round(z) for z in zooms[:3]]}
    if len(shape) == 4 and len(zooms) >= 4 and zooms[3] > 0 and time_unit in _SECONDS:
        attrs["RepetitionTime"] = _round(zooms[3] * _SECONDS[time_unit])
    return attrs


def nibabel_header(head: bytes, where: niftihead.Layout) -> niftihead.Header | None:
    """What nibabel reads of ``head``; None when it refuses it (a unit code it does not know,
    say: a ``KeyError`` of its ``unit_codes``)."""
    # Costly (numpy): imported only when a header is one ``niftihead`` leaves to nibabel.
    import nibabel
    from nibabel.spatialimages import HeaderDataError
    from nibabel.wrapstruct import WrapStructError

    kind: Any = nibabel.Nifti2Header if where is niftihead.NIFTI2 else nibabel.Nifti1Header
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel warns of odd headers; they are read as they are
            header = kind.from_fileobj(io.BytesIO(head), check=False)  # check=True logs its fixes
            shape = [int(n) for n in header.get_data_shape()]
            zooms = [float(z) for z in header.get_zooms()]
            time_unit = str(header.get_xyzt_units()[1])
    except (ValueError, KeyError, HeaderDataError, WrapStructError):
        return None
    return niftihead.Header(shape, zooms, time_unit)


class HeaderCache(JsonCache):
    """A stat cache of header attrs: absolute path -> (size, mtime_ns, inode, attrs); NIfTI's
    and DICOM's (``version`` says what was read)."""

    VERSION = 1

    def __init__(self, path: Path | None, version: int | str = VERSION) -> None:
        super().__init__(path, version)
        self._entries = self.table("entries")

    def get(self, path: str, key: StatKey) -> dict[str, Any] | None:
        entry = self._entries.get(path)
        try:
            if entry is not None and list(entry[:3]) == list(key) and isinstance(entry[3], dict):
                return dict(entry[3])
        except (TypeError, IndexError, KeyError):  # a cache file of the wrong shape is a miss
            pass
        return None

    def put(self, path: str, key: StatKey, attrs: dict[str, Any]) -> None:
        self._entries[path] = [key[0], key[1], key[2], attrs]
        self.mark()


def prefetch(
    cache: HeaderCache,
    files: Sequence[tuple[str, StatKey]],
    read: Callable[[str], dict[str, Any]],
    executor: Executor,
) -> None:
    """Read on ``executor`` (a cluster's workers) the headers of ``files`` that ``cache`` lacks,
    so the scan that follows finds them there; a file changed just now is left to the scan,
    which reads it again, as it never vouches for itself."""
    settled = time.time_ns() - RACY_NS
    todo = [(path, key) for path, key in files if key[1] < settled and cache.get(path, key) is None]
    # A header is a few KiB of a file: thousands go in one task whatever the files' sizes.
    found = executor.map(read, [path for path, _ in todo], [0] * len(todo))
    for (path, key), attrs in zip(todo, found, strict=True):
        cache.put(path, key, attrs)


class Headers:
    """``rel -> header attrs`` of a tree's files (``{}`` but for NIfTI), through the cache."""

    def __init__(self, cache_dir: Path | None, files: dict[str, tuple[str, StatKey]]) -> None:
        self.cache = HeaderCache(cache_dir / "headers.json" if cache_dir else None)
        self.files = files

    def prefetch(self, executor: Executor) -> None:
        """The NIfTI headers read by ``executor``'s workers (``prefetch``)."""
        prefetch(
            self.cache, [found for rel, found in self.files.items() if is_nifti(rel)], header_attrs, executor
        )

    def __call__(self, rel: str) -> dict[str, Any]:
        if not is_nifti(rel):
            return {}
        path, key = self.files[rel]
        found = self.cache.get(path, key)
        if found is None:
            found = header_attrs(path)
            if key[1] < time.time_ns() - RACY_NS:  # a file changed just now might change again
                self.cache.put(path, key, found)
        return found
