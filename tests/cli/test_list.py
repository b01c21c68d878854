from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers import Invoke


def states(invoke: Invoke) -> dict[str, str]:
    data = json.loads(invoke("list", "--format", "json").stdout)
    return {f"{d['name']}@{d['version']}": d["state"] for d in data["datasets"]}


def test_states_fresh_missing_stale_corrupt(project: Path, invoke: Invoke) -> None:
    assert set(states(invoke).values()) == {"missing"}
    invoke("lock", "--all")
    assert set(states(invoke).values()) == {"fresh"}

    recipe = project / "recipes/clinical.py"
    recipe.write_text(recipe.read_text() + "\n# a comment is a change to the recipe\n")
    line = project / "locks/all_basel_data/1/resources.all.jsonl"
    line.write_bytes(line.read_bytes().replace(b'"size":', b'"size": ', 1))
    (project / "locks/viseg_training/2/lock.toml").unlink()
    assert states(invoke) == {
        "viseg_training@1": "fresh",
        "viseg_training@2": "missing",
        "all_basel_data@1": "corrupt",
        "clinical_cohort@1": "stale",
    }


def test_text_output_names_the_reasons(project: Path, invoke: Invoke) -> None:
    invoke("lock", "--all")
    manifest = project / "datasets.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "params: {test_every: 3, with_flair: true}", "params: {test_every: 2, with_flair: true}"
        )
    )
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["DATASET", "VERSION", "STATE", "RESOURCES", "DESCRIPTION"]
    assert lines[2].split()[:4] == ["viseg_training", "2", "stale", "39"]
    assert "  viseg_training@2: the recipe params changed" in lines
    assert "  viseg_training@2: the manifest entry changed" in lines
    assert "\x1b[" not in result.output  # no colour in a pipe


def test_description_change_is_not_stale(project: Path, invoke: Invoke) -> None:
    invoke("lock", "--all")
    manifest = project / "datasets.yaml"
    manifest.write_text(manifest.read_text().replace("Everything from the Basel trial", "All of Basel"))
    assert states(invoke)["all_basel_data@1"] == "fresh"


def _data(invoke: Invoke) -> dict[str, str]:
    result = invoke("list", "--data", "--format", "json")
    assert result.exit_code == 0, result.output
    return {
        f"{d['name']}@{d['version']}": d["data"] and d["data"]["state"]
        for d in json.loads(result.stdout)["datasets"]
    }


def test_data_column_says_whether_the_source_drifted(project: Path, invoke: Invoke) -> None:
    assert set(_data(invoke).values()) == {None}  # no lock, nothing to compare
    assert invoke("lock", "--all").exit_code == 0
    assert set(_data(invoke).values()) == {"same"}
    assert invoke("list").output.split()[:4] == ["DATASET", "VERSION", "STATE", "RESOURCES"]
    t2 = project / "sample-data/basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz"
    t2.write_bytes(t2.read_bytes() + b"\0")
    assert states(invoke) == dict.fromkeys(_data(invoke), "fresh")  # the lock still matches its recipe
    assert set(_data(invoke).values()) == {"drifted"}
    lines = invoke("list", "--data").output.splitlines()
    assert lines[0].split() == ["DATASET", "VERSION", "STATE", "DATA", "RESOURCES", "DESCRIPTION"]
    assert lines[1].split()[:4] == ["viseg_training", "1", "fresh", "drifted"]
    assert (
        "  viseg_training@1: the source ./sample-data changed since the lock:"
        in invoke("list", "--data").output
    )
    shutil.rmtree(project / "sample-data")
    assert set(_data(invoke).values()) == {"unreachable"}
    text = invoke("list", "--data").output
    assert "does not exist; keep the data where every clone reaches it: a catalog" in text
