"""The ``bids`` layout: names from attrs, sidecars, participants, and the real BIDS validator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydicom.data import get_testdata_file

from vxds import __version__
from vxds.cli.main import cli
from vxds.materialize import Target, materialize
from vxds.materialize.base import Job
from vxds.materialize.bids import BidsMaterializer, BidsName, Placed, bids_path, participants_tsv
from vxds.materialize.receipt import read_receipt
from vxds.resource import Resource

MakeTarget = Callable[..., Target]
WriteTree = Callable[[Path, Mapping[str, "str | bytes"]], Path]


def _validator() -> str | None:
    beside = Path(sys.executable).parent / "bids-validator-deno"
    return str(beside) if beside.exists() else shutil.which("bids-validator-deno")


def test_names_follow_the_entity_order_and_masks_go_to_derivatives() -> None:
    image = Resource(
        "x/y.nii.gz",
        1,
        "Volume",
        attrs={
            "run": 2,
            "acq": "fast",
            "subject": "01",
            "session": "a",
            "suffix": "T2w",
            "extension": ".nii.gz",
        },
    )
    assert bids_path(image) == "sub-01/ses-a/anat/sub-01_ses-a_acq-fast_run-2_T2w.nii.gz"
    mask = Resource(
        "t/derivatives/lesions/sub-01/anat/m.nii.gz",
        1,
        "Mask",
        attrs={
            "subject": "01",
            "desc": "lesion",
            "suffix": "mask",
            "extension": ".nii.gz",
            "datatype": "anat",
        },
    )
    assert bids_path(mask) == "derivatives/lesions/sub-01/anat/sub-01_desc-lesion_mask.nii.gz"
    with pytest.raises(BidsName, match="subject 'a_b' is not a BIDS label"):
        bids_path(Resource("z", 1, "Volume", attrs={"subject": "a_b", "suffix": "T1w", "extension": ".nii"}))


def test_participants_table_has_a_stable_column_order() -> None:
    records = {"02": {"subject": "02", "participant_id": "sub-02", "sex": "F", "age": 30, "edss": None}}
    assert participants_tsv(["01", "02"], records) == (
        b"participant_id\tage\tedss\tsex\nsub-01\tn/a\tn/a\tn/a\nsub-02\t30\tn/a\tF\n"
    )


def test_the_layout_of_a_split(sample: Path, target: MakeTarget) -> None:
    out = sample / "out"
    report = materialize(target("all_basel_data", 1), out, ["bids"])
    assert report.ok
    root = out / "bids/all"
    description = json.loads((root / "dataset_description.json").read_text())
    source = json.loads((sample / "sample-data/basel/dataset_description.json").read_text())
    assert description == {**source, "GeneratedBy": [*source["GeneratedBy"], description["GeneratedBy"][-1]]}
    assert description["GeneratedBy"][-1]["Name"] == "vxds"
    assert "all_basel_data@1" in description["GeneratedBy"][-1]["Description"]
    assert target("all_basel_data", 1).lock_digest in description["GeneratedBy"][-1]["Description"]
    t2w = root / "sub-BS01/ses-01/anat/sub-BS01_ses-01_T2w.nii.gz"
    assert (
        t2w.read_bytes()
        == (sample / "sample-data/basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T2w.nii.gz").read_bytes()
    )
    sidecar = json.loads(t2w.with_name("sub-BS01_ses-01_T2w.json").read_text())
    assert sidecar["RepetitionTime"] == 6.0
    assert "subject" not in sidecar
    mask = root / "derivatives/lesions/sub-BS01/ses-01/anat/sub-BS01_ses-01_desc-lesion_mask.nii.gz"
    assert mask.is_file()
    assert (
        json.loads((root / "derivatives/lesions/dataset_description.json").read_text())["DatasetType"]
        == "derivative"
    )
    source_rows = (sample / "sample-data/basel/participants.tsv").read_text().splitlines()
    assert (root / "participants.tsv").read_text().splitlines()[:2] == source_rows[:2]
    assert source_rows[1].startswith("sub-BS01\t")
    assert "age" in json.loads((root / "participants.json").read_text())
    assert any("have no place in BIDS" in n for n in report.notices)


@pytest.mark.parametrize(
    ("name", "version"), [("viseg_training", 1), ("viseg_training", 2), ("all_basel_data", 1)]
)
def test_the_bids_validator_finds_no_error(sample: Path, target: MakeTarget, name: str, version: int) -> None:
    validator = _validator()
    assert validator is not None, "bids-validator-deno is in the dev extra: pip install -e '.[dev]'"
    out = sample / "out"
    t = target(name, version)
    assert materialize(t, out, ["bids"]).ok
    for split in t.splits:
        run = subprocess.run(
            [validator, "--format", "json", "--recursive", str(out / "bids" / split)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        issues = json.loads(run.stdout)["issues"]["issues"]
        errors = [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"]
        assert errors == [], errors
        assert run.returncode == 0


# --- a source of our own, through the CLI ----------------------------------------------------

ALL_FILES = """\
import vxds


@vxds.recipe()
def mixed(client):
    return {"all": list(client.list())}
"""
NII = b"\x5c\x01\x00\x00not really a volume"
SCANS = "filename\tacq_time\nanat/sub-01_run-01_T1w.nii.gz\tn/a\nanat/sub-01_run-02_T1w.nii.gz\tn/a\n"


def _run_cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


@pytest.fixture
def mixed(tmp_path: Path, write_tree: WriteTree) -> Path:
    """A BIDS dataset with FreeSurfer output and a DICOM series beside it, and a loose image."""
    dicom = Path(get_testdata_file("CT_small.dcm")).read_bytes()  # type: ignore[arg-type]
    return write_tree(
        tmp_path / "project",
        {
            "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
            "datasets.yaml": "- name: mixed\n  version: 1\n  script_location: ./recipes/mixed.py\n",
            "recipes/mixed.py": ALL_FILES,
            "data/ds/dataset_description.json": '{"Name": "ds", "BIDSVersion": "1.9.0", "License": "CC0"}',
            "data/ds/README": "A dataset.\n",
            "data/ds/sub-01/anat/sub-01_run-01_T1w.nii.gz": NII,
            "data/ds/sub-01/anat/sub-01_run-01_T1w.json": '{"FlipAngle": [1, 2], "EchoTime": 0.1}',
            "data/ds/sub-01/sub-01_scans.tsv": SCANS,
            "data/ds/derivatives/freesurfer/sub-01/mri/T1.mgz": b"mgz",
            "data/ds/derivatives/freesurfer/sub-01/label/lh.BA.annot": b"annot",
            "data/ds/sourcedata/sub-01/ct/a.dcm": dicom,
            "data/ds/sourcedata/sub-01/ct/b.dcm": dicom,
        },
    )


def test_files_keep_their_paths_and_dicom_is_left_out_with_a_notice(mixed: Path) -> None:
    assert _run_cli(mixed, "lock", "--all", "-q").exit_code == 0
    done = _run_cli(mixed, "materialize", "mixed@1", "-o", str(mixed / "out"), "-m", "bids")
    assert done.exit_code == 0, done.output
    root, source = mixed / "out/bids/all", mixed / "data/ds"
    for rel in (
        "sub-01/anat/sub-01_run-01_T1w.nii.gz",
        "sub-01/anat/sub-01_run-01_T1w.json",  # the source's bytes, not a sidecar from attrs
        "derivatives/freesurfer/sub-01/mri/T1.mgz",
        "derivatives/freesurfer/sub-01/label/lh.BA.annot",
    ):
        assert (root / rel).read_bytes() == (source / rel).read_bytes(), rel
    description = json.loads((root / "derivatives/freesurfer/dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert [g["Name"] for g in description["GeneratedBy"]] == ["freesurfer", "vxds"]
    assert json.loads((root / "dataset_description.json").read_text())["License"] == "CC0"
    # Its sourcedata/ holds the originals of what the dataset has: not converted again.
    assert "1 DICOMSeries in a BIDS dataset's sourcedata/ have no place in BIDS" in done.output
    # A scans table lists only what is there: run-02 is in the table but not in the source.
    assert (root / "sub-01/sub-01_scans.tsv").read_text() == SCANS.rsplit("anat/sub-01_run-02", 1)[0]
    assert not (root / "sourcedata").exists()


def test_a_converter_places_a_resource_type(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def convert(job: Job, resources: Sequence[Resource], out: str) -> Placed:
        seen.append([r.id for r in resources])
        rel = "sub-01/anat/sub-01_run-02_T1w.json"
        job.placer.write(f"{out}/{rel}", b"{}\n", module=job.module)
        return Placed([rel], {"fake": "1.0"})

    monkeypatch.setitem(BidsMaterializer.converters, "DICOMSeries", convert)
    (mixed / "data/ds/sourcedata").rename(mixed / "data/ds/scanner")  # not the dataset's originals
    assert _run_cli(mixed, "lock", "--all", "-q").exit_code == 0
    done = _run_cli(mixed, "materialize", "mixed@1", "-o", str(mixed / "out"), "-m", "bids")
    assert done.exit_code == 0, done.output
    assert seen == [["ds/scanner/sub-01/ct"]]  # every series of the split at once
    assert (mixed / "out/bids/all/sub-01/anat/sub-01_run-02_T1w.json").read_bytes() == b"{}\n"
    assert "DICOMSeries" not in done.output
    generated = json.loads((mixed / "out/bids/all/dataset_description.json").read_text())["GeneratedBy"]
    assert [(g["Name"], g.get("Version")) for g in generated] == [("fake", "1.0"), ("vxds", __version__)]
    receipt = read_receipt(mixed / "out")
    assert receipt is not None
    assert receipt.converters == {"fake": "1.0"}


def test_an_image_that_cannot_be_named_fails_the_run(mixed: Path) -> None:
    (mixed / "data/loose").mkdir()
    (mixed / "data/loose/scan.nii.gz").write_bytes(NII)
    assert _run_cli(mixed, "lock", "--all", "-q").exit_code == 0
    done = _run_cli(mixed, "materialize", "mixed@1", "-o", str(mixed / "out"), "-m", "bids")
    assert done.exit_code == 1
    assert "loose/scan.nii.gz: no BIDS suffix in its attrs; not placed" in done.output
    assert (mixed / "out/bids/all/sub-01/anat/sub-01_run-01_T1w.nii.gz").is_file()
