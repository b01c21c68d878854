"""The ``bids`` layout: names from attrs, sidecars, participants, and the real BIDS validator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vxds.materialize import Target, materialize
from vxds.materialize.bids import BidsName, bids_path, participants_tsv
from vxds.resource import Resource

MakeTarget = Callable[..., Target]


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
