"""vxds/git/published.py: locks published at a base revision must not change."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import Invoke, commit_all, git
from vxds.git.published import published_changes
from vxds.project.config import load_config


def test_unchanged_and_snapshot_only_changes_pass(history: Path, invoke: Invoke) -> None:
    config = load_config(history)
    assert published_changes(config, "HEAD") == []
    (history / "sample-data/new-unrelated-file.txt").write_text("x")  # a new snapshot, same resources
    assert invoke("lock", "viseg_training@1").exit_code == 0
    assert published_changes(config, "HEAD") == []


def test_changed_resources_recipe_and_removal_are_reported(history: Path, invoke: Invoke) -> None:
    config = load_config(history)
    sidecar = history / "sample-data/basel/sub-BS03/ses-01/anat/sub-BS03_ses-01_T2w.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "Note": "fixed"}))
    assert invoke("lock", "all_basel_data").exit_code == 0
    manifest = history / "datasets.yaml"
    manifest.write_text(manifest.read_text().replace("test_every: 3", "test_every: 4"))
    assert invoke("lock", "viseg_training@2").exit_code == 0
    git(history, "rm", "-q", "-r", "locks/clinical_cohort")
    changes = {c.key: c for c in published_changes(config, "HEAD")}
    assert sorted(changes) == ["all_basel_data@1", "clinical_cohort@1", "viseg_training@2"]
    assert changes["all_basel_data@1"].message == (
        "all_basel_data@1 is published at HEAD and its resources changed (1 changed, 1 metadata); "
        "lock the change as a new version (all_basel_data@2) instead"
    )
    message = changes["viseg_training@2"].message
    assert "its resources and its recipe or params and its manifest entry changed" in message
    assert changes["clinical_cohort@1"].message.endswith("its lock was removed")
    assert changes["all_basel_data@1"].path == "locks/all_basel_data/1"
    assert [c.key for c in published_changes(config, "HEAD", ["clinical_cohort@1"])] == ["clinical_cohort@1"]
    commit_all(history, "published anyway")
    assert published_changes(config, "HEAD") == []
    assert len(published_changes(config, "HEAD~1")) == 3
