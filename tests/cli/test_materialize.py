from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, Invoke
from vxds.materialize.check import check_output

MASK = "basel/derivatives/lesions/sub-BS01/ses-01/anat/sub-BS01_ses-01_desc-lesion_mask.nii.gz"


@pytest.fixture
def locked(project: Path) -> Path:
    """The example project with the repository's locks (same recipes and data)."""
    shutil.copytree(REPO / "locks", project / "locks")
    return project


def test_materialize_by_name(locked: Path, invoke: Invoke) -> None:
    result = invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files", "-m", "bids")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{locked / 'out'}: 86 placed, 0 unchanged (files, bids; splits test, train)\n"
    assert (locked / "out/train" / MASK).is_file()
    assert (locked / "out/bids/train/dataset_description.json").is_file()
    again = invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files", "-m", "bids")
    assert "0 placed, 86 unchanged" in again.stdout


def test_json_summary_and_split(locked: Path, invoke: Invoke) -> None:
    result = invoke(
        "materialize", "viseg_training", "-o", "out", "-m", "files", "--split", "test", "--format", "json"
    )
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary == {
        "failed": [],
        "modules": ["files"],
        "notices": [],
        "out": str(locked / "out"),
        "kept": 0,
        "placed": 15,
        "removed": 0,
        "splits": ["test"],
        "unchanged": 0,
    }


def test_lockfile_inside_its_lock_folder_uses_the_header(locked: Path, invoke: Invoke) -> None:
    lockfile = "locks/clinical_cohort/1/resources.cohort.jsonl"
    result = invoke("materialize", "-f", lockfile, "-o", "out", "-m", "clinical-to-csv")
    assert result.exit_code == 0, result.output
    receipt = json.loads((locked / "out/.vxds-receipt.json").read_text())
    assert receipt["dataset"] == "clinical_cohort@1"
    assert (locked / "out/clinical/cohort.csv").read_text().startswith("id,subject,age")


def test_a_lockfile_alone_reads_from_the_project_source(locked: Path, invoke: Invoke) -> None:
    alone = locked / "elsewhere"
    alone.mkdir()
    shutil.copy(locked / "locks/viseg_training/1/resources.train.jsonl", alone)
    result = invoke("materialize", "-f", "elsewhere/resources.train.jsonl", "-o", "out", "-m", "files")
    assert result.exit_code == 0, result.output
    assert "22 placed" in result.stdout
    receipt = json.loads((locked / "out/.vxds-receipt.json").read_text())
    assert receipt["dataset"] is None
    assert receipt["source"] == "./sample-data"
    assert check_output(locked / "out") == []


def test_a_lockfile_that_differs_from_its_header_is_refused(locked: Path, invoke: Invoke) -> None:
    lockfile = locked / "locks/viseg_training/1/resources.test.jsonl"
    lockfile.write_text(lockfile.read_text().splitlines()[0] + "\n")
    result = invoke("materialize", "-f", str(lockfile), "-o", "out", "-m", "files")
    assert result.exit_code == 2
    assert "corrupt lock: resources.test.jsonl does not match its digest" in result.output
    assert not (locked / "out").exists()


def test_a_failing_resource_exits_1_and_names_it(locked: Path, invoke: Invoke) -> None:
    (locked / "sample-data" / MASK).write_bytes(b"changed")
    result = invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files", "-q")
    assert result.exit_code == 1
    assert f"error: {MASK}: read 7 bytes, the lock says 141\n" in result.stderr
    assert result.stderr.count(MASK) == 1  # the id is named once
    assert "25 placed, 0 unchanged, 1 failed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["viseg_training", "-m", "nope"], "no materializer named 'nope'"),
        (["viseg_training", "-m", "files", "--split", "val"], "no split named 'val'"),
        (["-m", "files"], "give either NAME[@VERSION] or -f"),
        (["viseg_training", "-m", "files", "-f", "x.jsonl"], "give either NAME[@VERSION] or -f"),
        (["viseg_training"], "choose at least one module with -m"),
        (["-f", "notes.txt", "-m", "files"], "expected a file named resources.<split>.jsonl"),
    ],
)
def test_bad_usage_exits_2(locked: Path, invoke: Invoke, args: list[str], message: str) -> None:
    result = invoke("materialize", *args, "-o", "out")
    assert result.exit_code == 2
    assert message in result.output


def test_an_output_that_is_a_file(locked: Path, invoke: Invoke) -> None:
    (locked / "out").write_text("x")
    result = invoke("materialize", "viseg_training", "-o", "out", "-m", "files")
    assert result.exit_code == 2
    assert "is not a folder" in result.output


def _count(out: Path) -> int:
    return sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith(".vxds"))


def test_fewer_modules_keep_the_others_files_until_prune(locked: Path, invoke: Invoke) -> None:
    both = invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files", "-m", "bids")
    assert both.exit_code == 0, both.output
    before = _count(locked / "out")
    fewer = invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files")
    assert fewer.exit_code == 0, fewer.output
    assert _count(locked / "out") == before
    assert "removed" not in fewer.stdout
    kept = before - 26
    assert (
        f"{kept} file(s) of an earlier run kept, not wanted by this one; --prune removes them" in fewer.stderr
    )
    pruned = invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert f"0 placed, 26 unchanged, {kept} removed" in pruned.stdout
    assert _count(locked / "out") == 26
    assert not (locked / "out/bids").exists()


def test_another_dataset_into_a_materialized_folder_is_refused(locked: Path, invoke: Invoke) -> None:
    assert invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files").exit_code == 0
    before = _count(locked / "out")
    for other in ("all_basel_data@1", "viseg_training@2"):
        refused = invoke("materialize", other, "-o", "out", "-m", "files")
        assert refused.exit_code == 2
        assert f"holds viseg_training@1; not materializing {other} into it" in refused.stderr
        assert "--force" in refused.stderr
        assert _count(locked / "out") == before
    forced = invoke("materialize", "viseg_training@2", "-o", "out", "-m", "files", "--force")
    assert forced.exit_code == 0, forced.output
    assert _count(locked / "out") >= before
    assert json.loads((locked / "out/.vxds-receipt.json").read_text())["dataset"] == "viseg_training@2"


def test_json_error_on_stdout_with_the_exit_code(locked: Path, invoke: Invoke) -> None:
    assert invoke("materialize", "viseg_training@1", "-o", "out", "-m", "files").exit_code == 0
    refused = invoke("materialize", "all_basel_data@1", "-o", "out", "-m", "files", "--format", "json")
    assert refused.exit_code == 2
    body = json.loads(refused.stdout)
    assert body["code"] == 2
    assert (
        body["error"]
        == f"{locked / 'out'} holds viseg_training@1; not materializing all_basel_data@1 into it"
    )
    assert "--force" in body["hint"]


def test_a_changed_clinical_row_names_its_id_once(locked: Path, invoke: Invoke) -> None:
    table = locked / "sample-data/basel/participants.tsv"
    table.write_text(table.read_text().replace("USB-A", "USB-Z"))
    result = invoke("materialize", "clinical_cohort", "-o", "out", "-m", "clinical-csv")
    assert result.exit_code == 1
    rid = "basel/participants.tsv#sub-BS01"
    [line] = [line for line in result.stderr.splitlines() if rid in line]
    assert line.startswith(f"error: {rid}: content does not match the locked hash blake3:")
    assert line.count(rid) == 1
    as_json = invoke("materialize", "clinical_cohort", "-o", "out2", "-m", "clinical-csv", "--format", "json")
    failed = {f["resource"]: f["message"] for f in json.loads(as_json.stdout)["failed"]}
    assert failed[rid].startswith("content does not match")


ADDS_ATTRS = """\
import dataclasses

import vxds


@vxds.recipe()
def clinical_cohort(client):
    rows = client.query(type="ClinicalRecord", participant_id=lambda v: v is not None)
    return {"cohort": [dataclasses.replace(r, attrs={**r.attrs, "arm": "A", "site": "S-" + r.id[:5]})
                       for r in rows]}
"""


def test_every_attribute_of_a_record_is_a_csv_column(locked: Path, invoke: Invoke) -> None:
    (locked / "recipes/clinical.py").write_text(ADDS_ATTRS)
    assert invoke("lock", "clinical_cohort").exit_code == 0
    result = invoke("materialize", "clinical_cohort", "-o", "out", "-m", "clinical-csv")
    assert result.exit_code == 0, result.output
    import csv

    rows = list(csv.DictReader((locked / "out/clinical/cohort.csv").read_text().splitlines()))
    assert len(rows) == 14  # every participant row of both trials
    assert list(rows[0])[:3] == ["id", "subject", "age"]
    assert {row["arm"] for row in rows} == {"A"}  # an attribute the recipe added
    assert {row["site"] for row in rows} == {"USB-A", "USB-B", "USZ"}  # the row's checked value wins


def test_the_seed_line_works_as_written_in_a_lock_folder(
    locked: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``vxp materialize -f resources.train.jsonl -m bids -m clinical-to-csv``, as vxds."""
    monkeypatch.chdir(locked / "locks/viseg_training/1")
    result = invoke("materialize", "-f", "resources.train.jsonl", "-m", "bids", "-m", "clinical-to-csv")
    assert result.exit_code == 0, result.output
    out = locked / "materialized/train"
    assert f"note: no -o given: writing to {out}\n" in result.stderr
    assert result.stdout.startswith(f"{out}: ")
    assert json.loads((out / ".vxds-receipt.json").read_text())["dataset"] == "viseg_training@1"
    assert (out / "bids/train/dataset_description.json").is_file()
    assert check_output(out) == []


def test_no_o_for_a_dataset_is_materialized_name_at_version(locked: Path, invoke: Invoke) -> None:
    result = invoke("materialize", "clinical_cohort", "-m", "clinical-csv")
    assert result.exit_code == 0, result.output
    assert "note: no -o given: writing to materialized/clinical_cohort@1\n" in result.stderr
    assert (locked / "materialized/clinical_cohort@1/clinical/cohort.csv").is_file()


def _nothing_written(root: Path) -> bool:
    return not (root / "materialized").exists() and not (root / "out").exists()


def test_no_source_at_all_is_one_error_before_anything_is_written(locked: Path, invoke: Invoke) -> None:
    pyproject = locked / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('source = "./sample-data"\n', ""))
    alone = locked / "elsewhere"
    alone.mkdir()
    shutil.copy(locked / "locks/viseg_training/1/resources.train.jsonl", alone)
    result = invoke("materialize", "-f", "elsewhere/resources.train.jsonl", "-m", "bids", "-m", "files")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no source to read the locked bytes from;"
        " pass --source URL or set source in [tool.vxds] of pyproject.toml\n"
    )
    assert _nothing_written(locked)


def test_outside_a_project_no_source_says_pass_source(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(REPO / "locks/viseg_training/1/resources.train.jsonl", tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke("materialize", "-f", "resources.train.jsonl", "-m", "files", "-o", "out")
    assert result.exit_code == 2
    assert "pass --source URL (outside a project" in result.stderr
    assert result.stderr.count("error:") == 1
    assert _nothing_written(tmp_path)


def test_the_usage_line_shows_f_file_as_the_alternative(invoke: Invoke) -> None:
    usage = invoke("materialize", "--help").stdout.splitlines()[0]
    assert usage.endswith(" materialize [OPTIONS] NAME[@VERSION] | -f FILE")
