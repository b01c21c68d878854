"""``vxds log``: the commits that changed a dataset's lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Invoke, commit_all


def test_log_lists_changes_newest_first(history: Path, invoke: Invoke) -> None:
    result = invoke("log", "all_basel_data")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("Test  data changed")
    assert lines[2].endswith("Test  locks")
    assert lines[1] == "         all_basel_data@1: 1 removed, 2 changed, 1 metadata; header: snapshot"
    assert lines[3] == "         all_basel_data@1: 102 added (first lock)"


def test_log_json_and_limit(history: Path, invoke: Invoke) -> None:
    doc = json.loads(invoke("log", "all_basel_data@1", "-n", "1", "--format", "json").output)
    [commit] = doc["commits"]
    assert commit["subject"] == "data changed"
    assert len(commit["sha"]) == 40
    [dataset] = commit["datasets"]
    assert dataset["summary"] == {
        "added": 0,
        "removed": 1,
        "changed": 2,
        "metadata": 1,
        "moved": 0,
        "unchanged": 98,
    }
    assert "snapshot" in dataset["header"]


def test_log_of_one_version_ignores_the_others(history: Path, invoke: Invoke) -> None:
    (history / "datasets.yaml").write_text(
        (history / "datasets.yaml").read_text().replace("test_every: 3", "test_every: 4")
    )
    assert invoke("lock", "viseg_training@2").exit_code == 0
    commit_all(history, "hold out every fourth subject")
    one = json.loads(invoke("log", "viseg_training@1", "--format", "json").output)
    two = json.loads(invoke("log", "viseg_training@2", "--format", "json").output)
    assert "hold out every fourth subject" not in [c["subject"] for c in one["commits"]]
    assert two["commits"][0]["subject"] == "hold out every fourth subject"
    assert two["commits"][0]["datasets"][0]["summary"]["moved"] > 0


def test_log_of_a_name_and_of_its_version_agree(history: Path, invoke: Invoke) -> None:
    every = json.loads(invoke("log", "viseg_training", "--format", "json").output)["commits"]
    two = json.loads(invoke("log", "viseg_training@2", "--format", "json").output)["commits"]
    assert [c["sha"] for c in two] == [c["sha"] for c in every]
    for all_versions, one in zip(every, two, strict=True):
        assert [d for d in all_versions["datasets"] if d["new_version"] == 2] == one["datasets"]
    first = two[-1]["datasets"][0]
    assert (first["status"], first["summary"]["added"], first["old_version"]) == ("added", 39, None)
    lines = invoke("log", "viseg_training").output.splitlines()
    assert lines[-2:] == [
        "         viseg_training@1: 26 added (first lock)",
        "         viseg_training@2: 39 added (first lock)",
    ]
    assert invoke("log", "viseg_training@2").output.splitlines()[-1] == lines[-1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nosuch",
            "error: no dataset named 'nosuch' in datasets.yaml "
            "(datasets: all_basel_data, clinical_cohort, viseg_training)\n",
        ),
        (
            "viseg_training@7",
            "error: dataset 'viseg_training' has no version 7 in datasets.yaml (versions: 1, 2)\n",
        ),
        ("Bad@x", "error: 'Bad@x': the version after '@' must be a positive integer\n"),
    ],
)
def test_log_of_an_unknown_dataset_is_exit_2(history: Path, invoke: Invoke, spec: str, message: str) -> None:
    result = invoke("log", spec)
    assert (result.exit_code, result.output) == (2, message)


def test_log_of_a_dataset_gone_from_the_manifest_still_shows_its_history(
    history: Path, invoke: Invoke
) -> None:
    manifest = history / "datasets.yaml"
    manifest.write_text(manifest.read_text().split("- name: clinical_cohort")[0])
    result = invoke("log", "clinical_cohort")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "         clinical_cohort@1: 13 added (first lock)"


def test_log_id_shows_one_resource_across_commits(history: Path, invoke: Invoke) -> None:
    rid = "basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz"
    result = invoke("log", "all_basel_data", "--id", rid)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("Test  data changed")
    assert lines[1] == "         all_basel_data@1: metadata in all: attrs.Manufacturer Siemens -> Other"
    assert lines[3] == "         all_basel_data@1: added in all"
    everywhere = invoke("log", "--id", rid).output.splitlines()  # in every dataset that holds it
    assert everywhere[1] == lines[1]
    doc = json.loads(invoke("log", "--id", rid, "--format", "json").output)
    assert doc["id"] == rid
    [change] = [c for c in doc["commits"][0]["changes"] if c["dataset"] == "all_basel_data"]
    assert (change["kind"], change["version"], change["fields"]) == ("metadata", 1, ["attrs.Manufacturer"])
    assert change["old"]["attrs"]["Manufacturer"] == "Siemens"
    assert change["new"]["attrs"]["Manufacturer"] == "Other"
    assert {c["dataset"] for c in doc["commits"][-1]["changes"]} == {"all_basel_data"}


def test_log_id_of_a_move_and_of_nothing(history: Path, invoke: Invoke) -> None:
    manifest = history / "datasets.yaml"
    manifest.write_text(manifest.read_text().replace("test_every: 3", "test_every: 4"))
    assert invoke("lock", "viseg_training@2").exit_code == 0
    commit_all(history, "hold out every fourth subject")
    doc = json.loads(invoke("log", "viseg_training@2", "--format", "json").output)
    moved = doc["commits"][0]
    assert moved["datasets"][0]["summary"]["moved"] > 0
    diff = json.loads(invoke("diff", "HEAD~1", "HEAD", "-d", "viseg_training@2", "--format", "json").output)
    rid, was, now = next(
        (c["id"], c["from"], c["to"]) for c in diff["datasets"][0]["changes"] if c["kind"] == "moved"
    )
    text = invoke("log", "viseg_training@2", "--id", rid, "-n", "1").output.splitlines()
    assert text[1] == f"         viseg_training@2: moved in {was} -> {now}"
    assert invoke("log", "--id", "no/such/id").output == "no commit changed no/such/id\n"
    assert invoke("log").exit_code == 2
