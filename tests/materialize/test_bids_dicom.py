"""``-m bids`` on DICOM (vxds/materialize/bids/dicom.py), through the CLI, judged by the validator.

The files are pydicom's own test images (an MR and a CT), written as a scanner exports them
(no extension, one folder) with every identifying attribute of the PS3.15 profile set.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner, Result
from pydicom.data import get_testdata_file

from vxds.cli.main import cli
from vxds.locks.store import lock_dir, read_lock
from vxds.materialize.bids.dicom import Plan, names, number_runs, task_label
from vxds.materialize.dicom_nifti import ConversionError, Converted, postfix_entities
from vxds.materialize.receipt import read_receipt
from vxds.resource import Resource

from ..dicom_files import found_in, grep_values, identifying_values

WriteTree = Callable[[Path, Mapping[str, "str | bytes"]], Path]
VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"
MR_UID = "1.2.826.0.1.3680043.8.498.10001"
CT_UID = "1.2.826.0.1.3680043.8.498.10002"
ALL = """\
import vxds


@vxds.recipe()
def scans(client):
    return {"train": [r for r in client.list() if %s]}
"""


def _export(test_file: str, uid: str, description: str, number: int) -> bytes:
    """A pydicom test image as its own series, with every PS3.15 attribute given a value."""
    path = get_testdata_file(test_file)
    assert path is not None
    ds = pydicom.dcmread(path)
    for keyword, value in identifying_values().items():
        if keyword not in ("SOPInstanceUID", "FrameOfReferenceUID") and "Sequence" not in keyword:
            setattr(ds, keyword, value)
    ds.SeriesInstanceUID, ds.SeriesDescription, ds.SeriesNumber = uid, description, number
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _project(tmp_path: Path, write_tree: WriteTree, files: Mapping[str, bytes], where: str = "True") -> Path:
    return write_tree(
        tmp_path / "project",
        {
            "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
            "datasets.yaml": "- name: scans\n  version: 1\n  script_location: ./recipes/scans.py\n",
            "recipes/scans.py": ALL % where,
            **{f"data/{rel}": data for rel, data in files.items()},
        },
    )


def _cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


def _errors(folder: Path) -> list[tuple[str, str | None]]:
    run = subprocess.run(
        [str(VALIDATOR), "--format", "json", str(folder)], capture_output=True, text=True, timeout=300
    )
    issues = json.loads(run.stdout)["issues"]["issues"]
    return [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"]


def _leaks(folder: Path) -> list[tuple[str, str]]:
    """Identifying values found in any file below ``folder`` (images read unzipped)."""
    values = grep_values(identifying_values())
    found = []
    for path in (p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("latin-1")
        found.extend((path.name, v) for v in found_in(text, values))
    return found


@pytest.fixture
def scanner(tmp_path: Path, write_tree: WriteTree) -> Path:
    """One export folder holding an MR and a CT series, files without extensions."""
    return _project(
        tmp_path,
        write_tree,
        {
            "sub-01/ses-1/export/IM0000": _export("MR_small.dcm", MR_UID, "t1_mprage_sag", 3),
            "sub-01/ses-1/export/IM0001": _export("CT_small.dcm", CT_UID, "Routine Brain", 4),
        },
    )


def test_two_series_of_extensionless_files_lock_without_phi(scanner: Path) -> None:
    assert _cli(scanner, "lock", "--all", "-q").exit_code == 0
    lock = read_lock(lock_dir(scanner / "locks", "scans", 1))
    series = {r.id: r.attrs for r in lock.splits["train"].resources()}
    assert {rid: (a["SeriesInstanceUID"], a["Modality"]) for rid, a in series.items()} == {
        "sub-01/ses-1/export/series-3": (MR_UID, "MR"),
        "sub-01/ses-1/export/series-4": (CT_UID, "CT"),
    }
    text = "".join(p.read_text() for p in (scanner / "locks").rglob("*") if p.is_file())
    assert found_in(text, grep_values(identifying_values())) == []


def test_the_mr_becomes_valid_bids_nifti_and_the_unmapped_ct_fails(scanner: Path) -> None:
    assert _cli(scanner, "lock", "--all", "-q").exit_code == 0
    done = _cli(scanner, "materialize", "scans@1", "-o", str(scanner / "out"), "-m", "bids")
    assert done.exit_code == 1, done.output
    assert (
        "error: sub-01/ses-1/export/series-4: no BIDS datatype/suffix for a CT series described"
        " 'Routine Brain'"
    ) in done.output
    root = scanner / "out/bids/train"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "README",
        "dataset_description.json",
        "participants.tsv",
        "sub-01/ses-1/anat/sub-01_ses-1_T1w.json",
        "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
    ]
    assert _errors(root) == []
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw"
    assert [g["Name"] for g in description["GeneratedBy"]] == ["dcm2niix", "vxds"]
    receipt = read_receipt(scanner / "out")
    assert receipt is not None
    version = description["GeneratedBy"][0]["Version"]
    assert receipt.converters == {"dcm2niix": version}
    assert version.startswith("v1.0.")
    assert json.loads((root / "sub-01/ses-1/anat/sub-01_ses-1_T1w.json").read_text())["Modality"] == "MR"
    assert _leaks(scanner / "out") == []  # the receipt, images, sidecars and tables
    header = gzip.decompress((root / "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz").read_bytes())[:348]
    assert header[148:252] == bytes(104)  # descrip held "Time=<AcquisitionTime>", aux_file ImageComments
    assert not (scanner / "out/.vxds-tmp").exists()  # the staged DICOM copies are gone


def test_series_of_one_name_get_runs_and_a_func_series_a_task(tmp_path: Path, write_tree: WriteTree) -> None:
    project = _project(
        tmp_path,
        write_tree,
        {
            "sub-02/a/IM1": _export("MR_small.dcm", MR_UID, "T1 MPRAGE", 7),
            "sub-02/b/IM1": _export("MR_small.dcm", CT_UID, "t1_mprage_repeat", 2),
            "sub-02/c/IM1": _export("MR_small.dcm", MR_UID + "3", "rs_fMRI 2mm", 9),
        },
    )
    (project / "pyproject.toml").write_text(
        '[tool.vxds]\nsource = "./data"\n\n[tool.vxds.dicom_bids]\n"MR:*fmri*" = "func/bold"\n'
    )
    assert _cli(project, "lock", "--all", "-q").exit_code == 0
    done = _cli(project, "materialize", "scans@1", "-o", str(project / "out"), "-m", "bids")
    assert done.exit_code == 0, done.output
    root = project / "out/bids/train/sub-02"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.nii.gz")) == [
        "anat/sub-02_run-1_T1w.nii.gz",  # series 2 (in SeriesNumber order)
        "anat/sub-02_run-2_T1w.nii.gz",  # series 7
        "func/sub-02_task-rsfMRI2mm_bold.nii.gz",
    ]
    assert json.loads((root / "func/sub-02_task-rsfMRI2mm_bold.json").read_text())["TaskName"] == "rsfMRI2mm"
    sidecar = json.loads((root / "anat/sub-02_run-1_T1w.json").read_text())
    assert sidecar["SeriesDescription"] == "t1_mprage_repeat"
    again = _cli(project, "materialize", "scans@1", "-o", str(project / "out"), "-m", "bids")
    assert again.exit_code == 0, again.output
    assert "0 placed" in again.output  # the conversion is deterministic: every file in place


def test_without_dcm2niix_one_error_names_the_extra_before_anything_is_written(
    scanner: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli(scanner, "lock", "--all", "-q").exit_code == 0
    monkeypatch.setitem(sys.modules, "dcm2niix", None)  # the wheel is not installed
    monkeypatch.setenv("PATH", str(scanner / "nothing"))
    done = _cli(scanner, "materialize", "scans@1", "-o", str(scanner / "out"), "-m", "files", "-m", "bids")
    assert done.exit_code == 2
    assert done.output.splitlines()[0] == (
        "error: dcm2niix is not installed: converting DICOM needs the vxds[dicom] extra"
    )
    assert not (scanner / "out").exists()


def _output(postfix: str, extension: str = ".nii.gz") -> Converted:
    return Converted(Path("x"), "anat", "T2starw", extension, postfix, postfix_entities(postfix))


def test_postfixes_become_entities_or_fail_the_series() -> None:
    assert postfix_entities("") == {}
    assert postfix_entities("_e2") == {"echo": "2"}
    assert postfix_entities("_e2_ph") == {"echo": "2", "part": "phase"}
    assert postfix_entities("_imaginary") == {"part": "imag"}
    assert postfix_entities("_i00001") is None
    assert postfix_entities("a") is None
    series = Resource("s/series-1", 1, "DICOMSeries", attrs={"subject": "01"})
    plans = [Plan(series, {"subject": "01", "datatype": "anat"}, "T2starw")]
    number_runs(plans)
    named = [rel for rel, _ in names(plans[0], [_output("_e1"), _output("_e1_ph"), _output("_e1", ".json")])]
    assert named == [
        "sub-01/anat/sub-01_echo-1_part-mag_T2starw.nii.gz",
        "sub-01/anat/sub-01_echo-1_part-phase_T2starw.nii.gz",
        "sub-01/anat/sub-01_echo-1_part-mag_T2starw.json",
    ]
    with pytest.raises(ConversionError, match=r"BIDS has no entity for \(postfix _c3, _i00001\)"):
        names(plans[0], [_output(""), _output("_i00001"), _output("_c3")])
    assert task_label({"SeriesDescription": "--"}) == "unknown"
