"""vxds/materialize/dicom_nifti.py: a DICOM series to NIfTI with dcm2niix, placed as BIDS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from vxds.materialize import dicom_nifti
from vxds.materialize.dicom_nifti import ConversionError, bids_target, convert
from vxds.sources.base import SourceContext
from vxds.sources.folder.source import FolderSource

from ..dicom_files import found_in, grep_values, identifying_values

VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"


def _series(tmp_path: Path, description: str = "t1_mprage_sag") -> FolderSource:
    """pydicom's own MR test image, as a one-file series described as an MPRAGE, with every
    identifying attribute of the PS3.15 profile set."""
    source_file = get_testdata_file("MR_small.dcm")
    assert source_file is not None
    ds = pydicom.dcmread(source_file)
    ds.SeriesDescription = description
    for keyword, value in identifying_values().items():
        if (
            keyword not in ("SOPInstanceUID", "FrameOfReferenceUID", "ContentSequence")
            and "Sequence" not in keyword
        ):
            setattr(ds, keyword, value)
    folder = tmp_path / "data/sub-01/dicom"
    folder.mkdir(parents=True)
    ds.save_as(folder / "IM0000", enforce_file_format=True)
    (folder / "notes.txt").write_text("a stray file, not a member")
    return FolderSource(str(tmp_path / "data"), SourceContext(base=tmp_path))


def test_a_pydicom_mr_series_becomes_a_valid_bids_t1w_without_phi(tmp_path: Path) -> None:
    source = _series(tmp_path)
    series = source.get("sub-01/dicom")
    work = tmp_path / "work"
    work.mkdir()
    done = convert(series, source.members(series), work)
    assert done.converter == "dcm2niix"
    assert done.version.startswith("v1.")
    assert {(f.datatype, f.suffix, f.extension, f.postfix) for f in done.files} == {
        ("anat", "T1w", ".nii.gz", ""),
        ("anat", "T1w", ".json", ""),
    }
    bids = tmp_path / "bids"
    (bids / "sub-01/anat").mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "converted",
                "BIDSVersion": "1.9.0",
                "DatasetType": "raw",  # with GeneratedBy but no DatasetType: validated as a derivative
                "GeneratedBy": [{"Name": done.converter, "Version": done.version}],
            }
        )
    )
    (bids / "README").write_text("One series converted by vxds with dcm2niix.\n")
    for f in done.files:
        shutil.copy(f.path, bids / "sub-01/anat" / f"sub-01_{f.suffix}{f.extension}")
    run = subprocess.run(
        [str(VALIDATOR), "--format", "json", str(bids)], capture_output=True, text=True, timeout=300
    )
    issues = json.loads(run.stdout)["issues"]["issues"]
    assert [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"] == []
    sidecar = (bids / "sub-01/anat/sub-01_T1w.json").read_text()
    assert json.loads(sidecar)["Modality"] == "MR"
    assert json.loads(sidecar)["SeriesDescription"] == "t1_mprage_sag"
    leaked = found_in(sidecar, grep_values(identifying_values()))
    assert leaked == []
    assert not any(
        key in sidecar
        for key in ('"InstitutionName"', '"StationName"', '"DeviceSerialNumber"', '"PatientName"')
    )


def test_the_mapping_defaults_and_project_rules() -> None:
    assert bids_target({"Modality": "MR", "SeriesDescription": "T2 FLAIR AX"}) == ("anat", "FLAIR")
    assert bids_target({"Modality": "MR", "SeriesDescription": "MPRAGE"}) == ("anat", "T1w")
    assert bids_target({"Modality": "MR", "SeriesDescription": "ep2d_diff_64dir"}) == ("dwi", "dwi")
    assert bids_target({"Modality": "PT"}) == ("pet", "pet")
    rules = [("MR:*localizer*", "anat/T2w")]
    assert bids_target({"Modality": "MR", "SeriesDescription": "FAST LOCALIZER"}, rules) == ("anat", "T2w")
    with pytest.raises(
        ConversionError, match="no BIDS datatype/suffix for a CT series described 'Routine Brain'"
    ):
        bids_target({"Modality": "CT", "SeriesDescription": "Routine Brain"})


def test_a_missing_or_failing_converter_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _series(tmp_path)
    series = source.get("sub-01/dicom")
    monkeypatch.setitem(sys.modules, "dcm2niix", None)  # the wheel is not installed
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ConversionError, match="dcm2niix is not installed") as missing:
        convert(series, source.members(series), tmp_path)
    assert missing.value.hint == "pip install 'vxds[dicom]'"
    fake = tmp_path / "bin/dcm2niix"  # a converter that fails as dcm2niix does, naming why
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: unable to convert'\nexit 3\n")
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ConversionError, match=r"dcm2niix failed \(exit 3\): Error: unable to convert"):
        convert(series, source.members(series), work)


def test_bytes_that_are_not_the_locked_ones_are_not_converted(tmp_path: Path) -> None:
    source = _series(tmp_path)
    series = source.get("sub-01/dicom")
    member = tmp_path / "data/sub-01/dicom/IM0000"
    member.write_bytes(member.read_bytes() + b"\0\0")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ConversionError, match="its files do not match the locked hash"):
        convert(series, source.members(series), work)
    assert dicom_nifti.EXTENSIONS[0] == ".nii.gz"
