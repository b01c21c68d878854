"""verify's checks that stand on other commands: --base (published locks), merged locks,
--materialized output folders."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from tests.helpers import Invoke, git
from vxds.locks.store import read_lock, write_lock

BASEL = "locks/all_basel_data/1"


def _edit_sidecar(root: Path) -> None:
    sidecar = root / "sample-data/basel/sub-BS03/ses-01/anat/sub-BS03_ses-01_T2w.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "Note": "fixed"}))


def test_base_catches_a_published_lock_that_changed(history: Path, invoke: Invoke) -> None:
    assert invoke("verify", "--no-exec", "--base", "HEAD").exit_code == 0
    _edit_sidecar(history)
    assert invoke("lock", "all_basel_data").exit_code == 0
    result = invoke("verify", "--no-exec", "--base", "HEAD")
    assert result.exit_code == 1
    assert (
        f"VX205 {BASEL}/lock.toml: all_basel_data@1 is published at HEAD and its resources changed"
        " (1 changed, 1 metadata); lock the change as a new version (all_basel_data@2) instead"
        in result.output
    )
    assert invoke("verify", "--no-exec").exit_code == 0  # without --base the lock is fine
    doc = json.loads(invoke("verify", "--no-exec", "--base", "HEAD", "--format", "json").output)
    assert [f["code"] for f in doc["findings"]] == ["VX205"]


def test_base_accepts_a_new_version_and_reports_a_removed_one(history: Path, invoke: Invoke) -> None:
    shutil.copytree(history / "locks/viseg_training/2", history / "locks/viseg_training/3")
    assert "VX205" not in invoke("verify", "--no-exec", "--base", "HEAD").output
    git(history, "rm", "-q", "-r", "locks/clinical_cohort")
    manifest = history / "datasets.yaml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("- name: clinical_cohort")])
    result = invoke("verify", "--no-exec", "--base", "v1")
    assert result.exit_code == 1
    assert "VX205 locks/clinical_cohort/1: clinical_cohort@1 is published at v1 and its lock was removed" in (
        result.output
    )
    assert "unknown revision 'nope'" in invoke("verify", "--base", "nope").output


def test_a_merged_lock_is_a_warning(history: Path, invoke: Invoke) -> None:
    lock = read_lock(history / BASEL)
    write_lock(replace(lock, header=replace(lock.header, merged=True)), history / BASEL)
    result = invoke("verify", "--no-exec")
    assert result.exit_code == 0
    assert (
        "warning VX312 locks/all_basel_data/1/lock.toml: merged by Git, not written by its recipe;"
        " relock before release: 'vxds lock all_basel_data@1'" in result.output
    )
    assert invoke("verify", "--no-exec", "--strict").exit_code == 1


def test_materialized_output_folder(history: Path, invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("materialize", "viseg_training@1", "-o", str(out), "-m", "files", "-q").exit_code == 0
    result = invoke("verify", "--materialized", str(out))
    assert result.exit_code == 0, result.output
    assert "verified 1 lock, 26 resources: 0 errors, 0 warnings" in result.output
    placed = next(p for p in (out / "train").rglob("*.nii.gz"))
    placed.write_bytes(placed.read_bytes() + b"\0")
    result = invoke("verify", "--materialized", str(out), "--format", "json")
    assert result.exit_code == 1
    assert [f["code"] for f in json.loads(result.output)["findings"]] == ["VX704"]
    shutil.rmtree(history / "locks/viseg_training/1")
    result = invoke("verify", "--materialized", str(out))
    assert "skipped VX702" in result.output
    assert "checked against the receipt only" in result.output
    assert invoke("verify", "--materialized", str(tmp_path / "nothing")).exit_code == 1
