"""vxds/sources/folder/nifti.py: header attrs of real NIfTI files written with nibabel."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pytest

from vxds.sources.base import SourceContext
from vxds.sources.folder import nifti
from vxds.sources.folder.source import FolderSource

ANAT = "sub-01/anat"
FUNC = "sub-01/func"


def _write(
    path: Path, shape: tuple[int, ...], zooms: tuple[float, ...], unit: str = "sec", two: bool = False
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = nibabel.Nifti2Image if two else nibabel.Nifti1Image
    image = kind(np.zeros(shape, dtype=np.int16), np.eye(4))
    image.header.set_zooms(zooms)
    image.header.set_xyzt_units("mm", unit)
    nibabel.save(image, path)
    return path


def _old(path: Path) -> None:
    """Older than the racy window, so a cache keeps what was read of it."""
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))


XYZ = [1.0, 1.0, 1.0]
HEADERS: list[tuple[str, tuple[int, ...], tuple[float, ...], str, bool, dict[str, Any]]] = [
    ("a.nii.gz", (4, 5, 6), (0.9, 0.9375, 1.2), "sec", False, {"voxel_size": [0.9, 0.9375, 1.2]}),
    (
        "b.nii",
        (3, 3, 2, 5),
        (2.0, 2.0, 2.5, 2.0),
        "sec",
        False,
        {"voxel_size": [2.0, 2.0, 2.5], "RepetitionTime": 2.0},
    ),
    ("c.nii", (3, 3, 2, 5), (1.0, 1.0, 1.0, 800.0), "msec", True, {"voxel_size": XYZ, "RepetitionTime": 0.8}),
    (
        "d.nii.gz",
        (3, 3, 2, 5),
        (1.0, 1.0, 1.0, 3.0),
        "unknown",
        False,
        {"voxel_size": XYZ},
    ),  # TR unit unknown
    ("e.nii", (2, 2, 2), (1 / 3, 1.0, 1.0), "sec", False, {"voxel_size": [0.333333, 1.0, 1.0]}),
]


@pytest.mark.parametrize(("name", "shape", "zooms", "unit", "two", "expected"), HEADERS)
def test_header_attrs(
    tmp_path: Path,
    name: str,
    shape: tuple[int, ...],
    zooms: tuple[float, ...],
    unit: str,
    two: bool,
    expected: dict[str, Any],
) -> None:
    expected = {"shape": list(shape), **expected}
    found = nifti.header_attrs(str(_write(tmp_path / name, shape, zooms, unit, two)))
    assert found == expected
    assert json.loads(json.dumps(found)) == found


def test_no_header_is_no_attrs(tmp_path: Path) -> None:
    whole = _write(tmp_path / "whole.nii", (4, 4, 4), (1.0, 1.0, 1.0)).read_bytes()
    cases = {
        "empty.nii": b"",
        "empty.nii.gz": b"",
        "truncated.nii": whole[:200],
        "truncated.nii.gz": gzip.compress(whole)[:20],
        "text.nii": b"not an image" * 100,
        "gzip-of-nothing.nii.gz": gzip.compress(b""),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert nifti.header_attrs(str(tmp_path / name)) == {}, name


def test_volumes_and_masks_get_header_attrs_through_the_source(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _write(root / f"{ANAT}/sub-01_T1w.nii.gz", (4, 5, 6), (1.0, 1.0, 1.5))
    _write(root / f"derivatives/x/{ANAT}/sub-01_desc-brain_mask.nii.gz", (4, 5, 6), (1.0, 1.0, 1.5))
    _write(root / f"{FUNC}/sub-01_task-rest_bold.nii.gz", (2, 2, 2, 3), (3.0, 3.0, 3.0, 2.0))
    (root / f"{FUNC}/sub-01_task-rest_bold.json").write_text('{"RepetitionTime": 2.5}')
    (root / f"{ANAT}/sub-01_T2w.nii.gz").write_bytes(b"")  # as bids-examples' files are
    found = {r.id: r for r in FolderSource(str(root), SourceContext(base=tmp_path)).resources()}
    t1 = found[f"{ANAT}/sub-01_T1w.nii.gz"].attrs
    assert (t1["shape"], t1["voxel_size"]) == ([4, 5, 6], [1.0, 1.0, 1.5])
    assert found[f"derivatives/x/{ANAT}/sub-01_desc-brain_mask.nii.gz"].attrs["shape"] == [4, 5, 6]
    bold = found[f"{FUNC}/sub-01_task-rest_bold.nii.gz"].attrs
    assert bold["shape"] == [2, 2, 2, 3]
    assert bold["RepetitionTime"] == 2.5  # the sidecar says what the scanner did
    empty = found[f"{ANAT}/sub-01_T2w.nii.gz"].attrs
    assert "shape" not in empty
    assert "voxel_size" not in empty


def test_headers_are_cached_by_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    volume = _write(root / f"{ANAT}/sub-01_T1w.nii.gz", (4, 5, 6), (1.0, 1.0, 1.5))
    _old(volume)
    cache = tmp_path / "cache"
    first = FolderSource(str(root), SourceContext(base=tmp_path, cache_dir=cache)).resources()
    shutil.rmtree(cache / "folders")  # the tree's index: without it, headers are asked for
    reads: list[str] = []
    real = nifti.header_attrs

    def counted(path: str) -> dict[str, Any]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(nifti, "header_attrs", counted)
    again = FolderSource(str(root), SourceContext(base=tmp_path, cache_dir=cache)).resources()
    assert [r.attrs for r in again] == [r.attrs for r in first]
    assert reads == []
    _write(volume, (7, 5, 6), (1.0, 1.0, 1.5))  # new bytes, new stat: read again
    _old(volume)
    shutil.rmtree(cache / "folders", ignore_errors=True)
    changed = FolderSource(str(root), SourceContext(base=tmp_path, cache_dir=cache)).resources()
    assert reads == [str(volume)]
    assert changed[0].attrs["shape"] == [7, 5, 6]
