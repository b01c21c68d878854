"""vxds/sources/folder/bids.py: entities from names and paths, sidecars, clinical tables."""

from __future__ import annotations

from typing import Any

import pytest

from vxds.sources.folder.bids import (
    Name,
    TableError,
    cell,
    merge_sidecars,
    path_attrs,
    read_table,
    record_attrs,
    resource_type,
    sidecar_applies,
    split_name,
)


def test_split_name_bids_file() -> None:
    name = split_name("sub-01_ses-02_acq-fast_run-03_T2w.nii.gz")
    assert name == Name({"subject": "01", "session": "02", "acq": "fast", "run": "03"}, "T2w", ".nii.gz")


@pytest.mark.parametrize(
    "filename",
    # Names of files that are not BIDS, from real datasets: FreeSurfer, pydicom's test files.
    ["JPEG-lossy.dcm", "lh.BA.annot", "T1.mgz", "aparc+aseg.mgz", "sub-01_foo-1_T1w.nii"],
)
def test_names_that_are_not_bids_get_no_entities_or_suffix(filename: str) -> None:
    name = split_name(filename)
    assert (name.entities, name.suffix) == ({}, None)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("FLAIR.json", Name({}, "FLAIR", ".json")),
        ("sub-01_ses-01.nii", Name({"subject": "01", "session": "01"}, None, ".nii")),
        ("sub-01_run-x_bold.nii", Name({"subject": "01", "run": "x"}, "bold", ".nii")),
        ("notes_final_v2.txt", Name({}, None, ".txt")),
        ("README", Name({}, "README", "")),
        ("participants.tsv", Name({}, "participants", ".tsv")),
    ],
)
def test_split_name_edge_cases(filename: str, expected: Name) -> None:
    assert split_name(filename) == expected


def test_path_attrs_folders_datatype_and_name() -> None:
    attrs = path_attrs("basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_run-2_desc-lesion_mask.nii.gz")
    assert attrs == {
        "subject": "BS01",
        "session": "01",
        "datatype": "anat",
        "run": "2",
        "desc": "lesion",
        "suffix": "mask",
        "extension": ".nii.gz",
    }


def test_path_attrs_outside_bids() -> None:
    assert path_attrs("docs/sub-/anatomy/notes.txt") == {"extension": ".txt"}
    assert path_attrs("sub-7/dwi/file") == {"subject": "7", "datatype": "dwi"}
    assert path_attrs("sub-7/dwi/FLAIR") == {"subject": "7", "datatype": "dwi", "suffix": "FLAIR"}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("a/sub-01_T2w.nii.gz", "Volume"),
        ("a/sub-01_T1w.nii", "Volume"),
        ("a/scan.MGZ", "Volume"),
        ("a/sub-01_desc-lesion_mask.nii.gz", "Mask"),
        ("a/sub-01_dseg.nii.gz", "Mask"),
        ("a/sub-01_probseg.nii", "Mask"),
        ("a/participants.tsv", "Table"),
        ("a/clinical.CSV", "Table"),
        ("a/sub-01_T2w.json", "File"),
        ("README", "File"),
    ],
)
def test_resource_type(path: str, kind: str) -> None:
    assert resource_type(path) == kind


def test_sidecar_applies_by_suffix_and_entity_subset() -> None:
    data = split_name("sub-01_ses-01_FLAIR.nii.gz")
    assert sidecar_applies(split_name("FLAIR.json"), data)
    assert sidecar_applies(split_name("ses-01_FLAIR.json"), data)
    assert sidecar_applies(split_name("sub-01_ses-01_FLAIR.json"), data)
    assert not sidecar_applies(split_name("ses-02_FLAIR.json"), data)
    assert not sidecar_applies(split_name("T2w.json"), data)
    assert not sidecar_applies(split_name("FLAIR.txt"), data)
    assert not sidecar_applies(split_name("FLAIR.json"), split_name("sub-01_FLAIR.json"))


def test_merge_sidecars_later_layers_win() -> None:
    assert merge_sidecars([{"a": 1, "b": 1}, {"b": 2}, {"c": 3}]) == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("n/a", None),
        ("", None),
        ("NA", None),
        ("42", 42),
        ("-3", -3),
        ("0", 0),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("F", "F"),
        ("inf", "inf"),
        ("nan", "nan"),
        ("1e400", "1e400"),
        ("+3", "+3"),
        ("0x10", "0x10"),
    ],
)
def test_cell(text: str, value: Any) -> None:
    assert cell(text) == value
    assert type(cell(text)) is type(value)


@pytest.mark.parametrize("text", ["007", "00", "-007", "0042"])
def test_cell_keeps_leading_zeros_as_strings(text: str) -> None:
    assert cell(text) == text


def test_read_table_values_and_keys() -> None:
    table = read_table("participant_id\tage\tsex\tedss\nsub-01\t34\tF\t2.5\nsub-02\tn/a\tM\tn/a\n", ".tsv")
    assert table.columns == ["participant_id", "age", "sex", "edss"]
    assert table.rows == [
        {"participant_id": "sub-01", "age": 34, "sex": "F", "edss": 2.5},
        {"participant_id": "sub-02", "age": None, "sex": "M", "edss": None},
    ]
    assert table.keys == ["sub-01", "sub-02"]


def test_read_table_csv_skips_blank_lines_and_strips_cells() -> None:
    table = read_table("id, score\n\na, 1\n\nb,2\n", ".CSV")
    assert table.columns == ["id", "score"]
    assert table.rows == [{"id": "a", "score": 1}, {"id": "b", "score": 2}]


@pytest.mark.parametrize(
    "text",
    ["id,x\na,1\na,2\n", "id,x\nn/a,1\nb,2\n", "id,x\na/b,1\nc,2\n"],
    ids=["repeated", "missing", "slash"],
)
def test_read_table_falls_back_to_row_numbers(text: str) -> None:
    assert read_table(text, ".csv").keys == ["row-1", "row-2"]


def test_read_table_keeps_padded_ids_as_keys() -> None:
    assert read_table("id,x\n001,1\n002,2\n", ".csv").keys == ["001", "002"]


def test_read_table_errors_name_the_line() -> None:
    with pytest.raises(TableError, match="line 3: 3 cells, the header has 2"):
        read_table("id,x\na,1\nb,2,3\n", ".csv")
    with pytest.raises(TableError, match="line 1: the header has empty or repeated column names"):
        read_table("id,id\na,1\n", ".csv")
    with pytest.raises(TableError, match="line 2: the header"):
        read_table("\nid,\na,1\n", ".csv")


def test_read_empty_table() -> None:
    table = read_table("\n\n", ".tsv")
    assert (table.columns, table.rows, table.keys) == ([], [], [])


def test_record_attrs_adds_subject_and_session_without_prefixes() -> None:
    row = {"participant_id": "sub-01", "session_id": "ses-02", "age": 30}
    assert record_attrs(row) == {**row, "subject": "01", "session": "02"}
    assert record_attrs({"participant_id": "P7"})["subject"] == "P7"
    assert record_attrs({"participant_id": "sub-01", "subject": "kept"})["subject"] == "kept"
    assert record_attrs({"participant_id": None}) == {"participant_id": None}
