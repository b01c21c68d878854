"""Locking against a Flywheel snapshot through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.flywheel_snapshot import build
from tests.helpers import Invoke

RECIPE = """\
import vxds


@vxds.recipe()
def t2(client):
    volumes = client.query(type="Volume", suffix="T2w")
    return {
        "train": [v for v in volumes if v.attrs["subject"] != "BS03"],
        "test": list(client.query(type="Volume", suffix="T2w", subject="BS03")),
    }
"""


@pytest.fixture
def fw_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "p"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/t2.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        "- name: t2\n  version: 1\n  script_location: ./recipes/t2.py\n  group_by: attrs.subject\n"
    )
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "flywheel:snapshot.db.gz"\n')
    monkeypatch.chdir(root)
    return root


def test_lock_a_flywheel_snapshot(fw_project: Path, invoke: Invoke) -> None:
    build(fw_project / "snapshot.db.gz", subjects=3, sessions=2)
    result = invoke("lock", "t2")
    assert result.exit_code == 0, result.output
    assert "written  t2@1: test 2, train 4" in result.output
    lines = (fw_project / "locks/t2/1/resources.test.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["id"] == "MS-Lesions/BS03/ses-01/T2w/sub-BS03_ses-01_T2w.nii.gz"
    assert first["hash"].startswith("sha384:")
    assert isinstance(first["version"], int)
    header = (fw_project / "locks/t2/1/lock.toml").read_text()
    assert 'url = "flywheel:snapshot.db.gz"' in header
    assert 'snapshot = "blake3:' in header
    assert invoke("lock", "t2", "--check").exit_code == 0


def test_a_missing_snapshot_exits_2_and_writes_nothing(fw_project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "t2")
    assert result.exit_code == 2
    assert result.output.startswith("error: source 'flywheel:snapshot.db.gz': snapshot ")
    assert result.output.rstrip().endswith("snapshot.db.gz does not exist")
    assert len(result.output.strip().splitlines()) == 1
    assert not (fw_project / "locks").exists()
