"""Seed-style records (the old platform's ``{"id": ..., "version": ...}``) through ``vxds lock``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.helpers import Invoke

RECIPE = """import vxds


@vxds.recipe()
def clinical_cohort(client):
    return {"train": [{"id": r.id, "version": r.version} for r in client.query(type="Volume")]}
"""


def _lines(project: Path) -> list[dict[str, object]]:
    split = next((project / "locks").rglob("resources.train.jsonl"))
    return [orjson.loads(line) for line in split.read_bytes().splitlines()]


def test_seed_records_lock_as_the_source_resources(project: Path, invoke: Invoke) -> None:
    (project / "recipes/clinical.py").write_text(RECIPE)
    result = invoke("lock", "clinical_cohort")
    assert result.exit_code == 0, result.output
    lines = _lines(project)
    assert lines
    assert all(line["type"] == "Volume" for line in lines)
    assert all(isinstance(line["hash"], str) and isinstance(line["size"], int) for line in lines)
    assert all(line["attrs"] for line in lines)
    out = invoke("materialize", "clinical_cohort@1", "-o", "out", "-m", "bids")
    assert out.exit_code == 0, out.output
    assert len(list((project / "out").rglob("*.nii.gz"))) == len(lines)


def _refused(project: Path, invoke: Invoke, record: str) -> str:
    (project / "recipes/clinical.py").write_text(
        f"import vxds\n\n\n@vxds.recipe()\ndef clinical_cohort(client):\n    return {{'train': [{record}]}}\n"
    )
    result = invoke("lock", "clinical_cohort")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1, result.output
    assert not (project / "locks").exists() or not list((project / "locks").rglob("resources.train.jsonl"))
    return result.output


def test_a_version_the_source_does_not_hold_is_one_line(project: Path, invoke: Invoke) -> None:
    rid = "zurich/sub-ZH05/ses-01/anat/sub-ZH05_ses-01_T2w.nii.gz"
    output = _refused(project, invoke, f"{{'id': {rid!r}, 'version': 99}}")
    assert f"split 'train', item 0: record {{'id': {rid!r}, 'version': 99}}" in output
    assert "not 99" in output


def test_a_seed_record_naming_nothing_is_one_line(project: Path, invoke: Invoke) -> None:
    output = _refused(project, invoke, "{'id': 'zurich/nothing.nii.gz', 'version': 1}")
    assert "record {'id': 'zurich/nothing.nii.gz', 'version': 1}" in output
    assert "no resource 'zurich/nothing.nii.gz'" in output


def test_a_script_outside_a_project_without_a_source_says_pass_source(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "script.py").write_text(RECIPE)
    monkeypatch.chdir(tmp_path)
    result = invoke("lock", "--file", "script.py")
    assert result.exit_code == 2
    assert "no source; pass --source URL" in result.stderr
    assert not list(tmp_path.glob("resources.*.jsonl"))


def test_a_script_inside_a_project_without_a_source_says_where_to_set_it(
    project: Path, invoke: Invoke
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('source = "./sample-data"\n', ""))
    (project / "script.py").write_text(RECIPE)
    result = invoke("lock", "--file", "script.py")
    assert result.exit_code == 2
    assert "no source; set 'source' in the manifest or in [tool.vxds]" in result.stderr
