"""The committed sample-data/ tree is exactly what scripts/make_sample_data.py produces."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_sample_data.py"
SAMPLE = ROOT / "sample-data"
SHAPE = (16, 16, 10)
ZOOMS = (1.0, 1.0, 3.0)
MAX_BYTES = 2 * 1024 * 1024


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _describe(path: str, expected: bytes, actual: bytes) -> str:
    if path.endswith(".gz") and gzip.decompress(expected) == gzip.decompress(actual):
        return f"{path} (same payload, different gzip stream: another zlib build?)"
    return path


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Header]:
    img = nib.load(path)
    assert isinstance(img, nib.Nifti1Image), path
    return np.asarray(img.dataobj), img.affine, img.header


def _masks() -> list[Path]:
    return sorted(SAMPLE.glob("*/derivatives/lesions/sub-*/ses-*/anat/*_desc-lesion_mask.nii.gz"))


def _mask_source(mask: Path) -> Path:
    sidecar = json.loads(mask.with_name(mask.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["Type"] == "Lesion"
    sources: list[str] = sidecar["Sources"]
    (source,) = sources
    assert source.startswith("bids:raw:")
    trial_root = mask.parents[5]  # <trial>/derivatives/lesions/sub-X/ses-Y/anat/<mask>
    return trial_root / source.removeprefix("bids:raw:")


def test_generator_reproduces_sample_data_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "sample-data"
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, capture_output=True)
    expected, actual = _tree(SAMPLE), _tree(out)
    assert set(actual) == set(expected)
    differing = [
        _describe(path, expected[path], actual[path]) for path in expected if expected[path] != actual[path]
    ]
    assert not differing, "regenerated files differ:\n" + "\n".join(differing)


def test_volumes_load_with_expected_grid_and_dtype() -> None:
    volumes = sorted(SAMPLE.rglob("*.nii.gz"))
    assert volumes
    for path in volumes:
        data, _, header = _load(path)
        assert data.shape == SHAPE, path
        assert header.get_zooms() == ZOOMS, path
        assert header.get_xyzt_units() == ("mm", "sec"), path
        if path.name.endswith("_mask.nii.gz"):
            assert data.dtype == np.uint8, path
            assert set(np.unique(data).tolist()) == {0, 1}, path
        else:
            assert data.dtype == np.int16, path
            assert data.min() >= 0, path
            assert data.max() > 0, path


def test_masks_share_the_grid_of_their_t2w_source() -> None:
    masks = _masks()
    assert masks
    for mask in masks:
        source = _mask_source(mask)
        assert source.name.endswith("_T2w.nii.gz"), mask
        assert source.is_file(), mask
        mask_data, mask_affine, _ = _load(mask)
        t2w_data, t2w_affine, _ = _load(source)
        assert mask_data.shape == t2w_data.shape, mask
        np.testing.assert_array_equal(mask_affine, t2w_affine)


def test_sample_design_covers_the_interesting_cases() -> None:
    t2w = set(SAMPLE.glob("*/sub-*/ses-*/anat/*_T2w.nii.gz"))
    with_mask = {_mask_source(mask) for mask in _masks()}
    assert with_mask <= t2w
    assert 0.6 <= len(with_mask) / len(t2w) <= 0.7
    assert {path.relative_to(SAMPLE).parts[0] for path in with_mask} == {"basel", "zurich"}
    follow_ups = {Path(str(path).replace("ses-01", "ses-02")) for path in with_mask}
    assert follow_ups & (t2w - with_mask), "no subject with a mask in ses-01 but not in ses-02"
    rows = []
    for tsv in sorted(SAMPLE.glob("*/participants.tsv")):
        with tsv.open(newline="") as handle:
            rows += list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) >= 12
    assert any("n/a" in row.values() for row in rows)


def test_dicom_series_matches_its_nifti_volume() -> None:
    series = sorted(SAMPLE.glob("basel/sourcedata/sub-BS01/ses-01/dicom/T2w/*.dcm"))
    assert len(series) == SHAPE[2]
    volume, _, _ = _load(SAMPLE / "basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T2w.nii.gz")
    datasets = [pydicom.dcmread(path) for path in series]
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    for k, ds in enumerate(sorted(datasets, key=lambda ds: int(ds.InstanceNumber))):
        np.testing.assert_array_equal(ds.pixel_array, volume[:, :, k].T)


def test_sample_data_is_small() -> None:
    assert sum(len(content) for content in _tree(SAMPLE).values()) < MAX_BYTES
