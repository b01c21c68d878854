"""``vxds verify`` in a clone without the data: VX208, a warning that names the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import Invoke, commit_all, git


def test_a_fresh_clone_without_its_data_folder_is_a_warning(
    project: Path, invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    commit_all(project, "locks")
    assert invoke("verify").exit_code == 0
    assert "VX208" not in invoke("verify").output
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    shutil.rmtree(clone / "sample-data")  # a clone of a repository that does not commit its data
    monkeypatch.chdir(clone)
    result = invoke("verify", "--no-exec", "--format", "json")
    assert result.exit_code == 0  # a warning
    findings = json.loads(result.output)["findings"]
    assert {(f["code"], f["severity"], f["dataset"]) for f in findings} == {
        ("VX208", "warning", key)
        for key in ("viseg_training@1", "viseg_training@2", "all_basel_data@1", "clinical_cohort@1")
    }
    message = findings[0]["message"]
    assert message.startswith("source './sample-data': folder ")
    assert message.endswith(
        "does not exist: the lock cannot be checked against its data in this clone; keep the data where every"
        " clone reaches it: a catalog ('vxds catalog'), a versioned bucket (s3://, gs:// or az:// with object"
        " versioning), or a content-addressed store"
    )
    assert invoke("verify", "--no-exec", "--strict").exit_code == 1
    data = invoke("verify", "--data", "--format", "json")  # --data says it as VX504, not twice
    assert {f["code"] for f in json.loads(data.output)["findings"]} == {"VX504"}
