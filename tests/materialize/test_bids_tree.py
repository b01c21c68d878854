"""vxds/materialize/bids/tree.py and dataset.py: datasets in a source, companions, edited files."""

from __future__ import annotations

import json

import pytest

from vxds.materialize.bids.dataset import carried_description, rows_where, subject_rows
from vxds.materialize.bids.tree import SourceTree
from vxds.resource import Resource


def _tree(*ids: str) -> SourceTree:
    return SourceTree(Resource(rid, 1, "File") for rid in ids)


TREE = _tree(
    "ds/dataset_description.json",
    "ds/README",
    "ds/participants.tsv",
    "ds/task-rest_bold.json",
    "ds/T1w.json",
    "ds/stimuli/face.png",
    "ds/sub-01/sub-01_sessions.tsv",
    "ds/sub-01/ses-1/sub-01_ses-1_scans.tsv",
    "ds/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
    "ds/sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz",
    "ds/sub-01/ses-1/dwi/sub-01_ses-1_dwi.bval",
    "ds/sub-01/ses-1/dwi/sub-01_ses-1_dwi.bvec",
    "ds/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-01_bold.nii.gz",
    "ds/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-01_events.tsv",
    "ds/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-02_events.tsv",
    "ds/derivatives/fs/dataset_description.json",
    "ds/derivatives/fs/sub-01/mri/T1.mgz",
    "ds/derivatives/nodesc/sub-01/anat/sub-01_T1w.nii.gz",
    "loose/scan.nii.gz",
    "nodesc/sub-02/anat/sub-02_T1w.nii.gz",
)


@pytest.mark.parametrize(
    ("rid", "root"),
    [
        ("ds/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz", "ds"),
        ("ds/README", "ds"),
        ("ds/derivatives/fs/sub-01/mri/T1.mgz", "ds"),  # a derivative lies in its raw dataset
        ("ds/derivatives/nodesc/sub-01/anat/sub-01_T1w.nii.gz", "ds"),
        ("nodesc/sub-02/anat/sub-02_T1w.nii.gz", "nodesc"),  # no description: above sub-*
        ("loose/scan.nii.gz", None),
    ],
)
def test_the_dataset_a_file_lies_in(rid: str, root: str | None) -> None:
    assert TREE.root(rid) == root


def _companions(rid: str) -> set[str]:
    return {r.id.removeprefix("ds/") for r in TREE.companions(rid, "ds")}


DATASET_LEVEL = {"dataset_description.json", "README", "participants.tsv"}
SESSION_LEVEL = {"sub-01/sub-01_sessions.tsv", "sub-01/ses-1/sub-01_ses-1_scans.tsv"}


def test_companions_follow_the_schema_rules() -> None:
    assert _companions("ds/sub-01/ses-1/dwi/sub-01_ses-1_dwi.nii.gz") == DATASET_LEVEL | SESSION_LEVEL | {
        "sub-01/ses-1/dwi/sub-01_ses-1_dwi.bval",
        "sub-01/ses-1/dwi/sub-01_ses-1_dwi.bvec",
    }
    # Inherited sidecars at the root go only with the files they apply to; another run's
    # events do not; an events file brings the stimuli folder.
    assert _companions("ds/sub-01/ses-1/func/sub-01_ses-1_task-rest_run-01_bold.nii.gz") == (
        DATASET_LEVEL
        | SESSION_LEVEL
        | {
            "task-rest_bold.json",
            "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-01_events.tsv",
            "stimuli/face.png",
        }
    )
    assert _companions("ds/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz") == DATASET_LEVEL | SESSION_LEVEL | {
        "T1w.json"
    }
    # A derivative dataset's own root files go with its files.
    assert "derivatives/fs/dataset_description.json" in _companions("ds/derivatives/fs/sub-01/mri/T1.mgz")


def test_a_row_table_keeps_its_bytes_for_the_split_subjects() -> None:
    table = b"participant_id\tage\tsex\r\nsub-01\t30\tF\r\nsub-02\tn/a\tM\r\n\r\nsub-03\t41\tF\r\n"
    assert (
        subject_rows(table, {"01", "03"}) == b"participant_id\tage\tsex\r\nsub-01\t30\tF\r\nsub-03\t41\tF\r\n"
    )
    assert subject_rows(table, {"09"}) is None
    assert subject_rows(b"sample_id\tx\nA\t1\n", {"01"}) == b"sample_id\tx\nA\t1\n"
    scans = b"filename\tacq_time\nanat/a.nii\tn/a\nfunc/b.nii\t2020-01-01T00:00:00\n"
    assert (
        rows_where(scans, b"filename", {b"func/b.nii"})
        == b"filename\tacq_time\nfunc/b.nii\t2020-01-01T00:00:00\n"
    )


def test_a_carried_description_keeps_every_key_in_order() -> None:
    source = {"Name": "x", "BIDSVersion": "1.8.0", "Authors": ["A", "B"], "License": "CC0", "Funding": ["F"]}
    data = carried_description(json.dumps(source).encode(), [{"Name": "vxds"}], derivative=False)
    assert data is not None
    assert json.loads(data) == {**source, "DatasetType": "raw", "GeneratedBy": [{"Name": "vxds"}]}
    assert list(json.loads(data)) == [*source, "DatasetType", "GeneratedBy"]
    kept = {"Name": "d", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fmriprep"}]}
    data = carried_description(json.dumps(kept).encode(), [{"Name": "vxds"}], derivative=True)
    assert data is not None
    assert json.loads(data)["GeneratedBy"] == [{"Name": "fmriprep"}, {"Name": "vxds"}]
    assert carried_description(b"[1]", [{"Name": "vxds"}], derivative=True) is None
