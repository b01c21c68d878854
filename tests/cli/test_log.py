"""``vxds log``: the commits that changed a dataset's lock."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import Invoke, commit_all


def test_log_lists_changes_newest_first(history: Path, invoke: Invoke) -> None:
    result = invoke("log", "all_basel_data")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("Test  data changed")
    assert lines[2].endswith("Test  locks")
    assert lines[1].split() == ["all_basel_data@1", "+0", "-1", "~3", "header"]
    assert lines[3].split() == ["all_basel_data@1", "+102", "-0", "~0", "(added)"]


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


def test_log_of_an_unknown_dataset(history: Path, invoke: Invoke) -> None:
    result = invoke("log", "nothing")
    assert result.exit_code == 0
    assert result.output == "no commit changed the lock of nothing\n"
    assert invoke("log", "Bad@x").exit_code == 2
