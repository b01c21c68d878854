"""The ``clinical-csv`` layout: one CSV per split from the checked record bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vxds.materialize import Target, materialize
from vxds.materialize.clinical_csv import render_csv

MakeTarget = Callable[..., Target]


def test_columns_are_id_entities_then_fields_by_name() -> None:
    rows = [("t#2", {"b": 1.5, "subject": "02", "a": None}), ("t#1", {"c": [1, 2], "flag": True})]
    assert render_csv(rows) == b'id,subject,a,b,c,flag\nt#2,02,,1.5,,\nt#1,,,,"[1,2]",true\n'


def test_one_row_per_record(sample: Path, target: MakeTarget) -> None:
    out = sample / "out"
    report = materialize(target("clinical_cohort", 1), out, ["clinical-to-csv"])
    assert report.ok
    assert report.modules == ["clinical-to-csv"]
    lines = (out / "clinical/cohort.csv").read_text().splitlines()
    assert lines[0] == "id,subject,age,edss,participant_id,sex,site"
    assert lines[1] == "basel/participants.tsv#sub-BS01,BS01,34,2.0,sub-BS01,F,USB-A"
    assert len(lines) == 1 + target("clinical_cohort", 1).splits["cohort"].count


def test_a_record_that_changed_in_the_source_is_reported_and_left_out(
    sample: Path, target: MakeTarget
) -> None:
    table = sample / "sample-data/basel/participants.tsv"
    table.write_text(table.read_text().replace("sub-BS02\t41", "sub-BS02\t42"))
    out = sample / "out"
    report = materialize(target("clinical_cohort", 1), out, ["clinical-csv", "clinical-to-csv"])
    assert report.modules == ["clinical-csv"]  # an alias counts once
    assert [f.resource for f in report.failures] == ["basel/participants.tsv#sub-BS02"]
    text = (out / "clinical/cohort.csv").read_text()
    assert "sub-BS02" not in text
    assert "sub-BS03" in text
