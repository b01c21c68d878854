"""DICOM series and Zarr folders in the store: members plus a manifest, from real data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import BIDS_EXAMPLES, REPO, commit_all, git
from tests.store.conftest import objects, vxds
from vxds.api import load_lock

RECIPE = """\
import vxds


@vxds.recipe()
def everything(client):
    return {"all": [r for r in client.query() if r.type in ("DICOMSeries", "Zarr", "Volume")]}
"""


def _project(tmp_path: Path, data: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(data, root / "data", symlinks=True)
    (root / "recipes").mkdir()
    (root / "recipes/everything.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        "- name: everything\n  version: 1\n  description: series and volumes.\n"
        "  script_location: ./recipes/everything.py\n"
    )
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    git(root, "init", "-q", "-b", "main")
    assert vxds(root, "lock", "--all").exit_code == 0
    commit_all(root, "lock")
    return root


@pytest.mark.parametrize(
    ("data", "kind"), [(REPO / "sample-data/basel", "DICOMSeries"), (BIDS_EXAMPLES / "micr_SEMzarr", "Zarr")]
)
def test_a_folder_resource_is_pushed_and_materialized_from_the_store(
    tmp_path: Path, data: Path, kind: str
) -> None:
    root = _project(tmp_path, data)
    series = [r for r in load_lock("everything@1", root=root) if r.type == kind]
    assert series
    store = tmp_path / "store"
    pushed = vxds(root, "push", "--all", "--store", str(store))
    assert pushed.exit_code == 0, pushed.output
    count = len(objects(store))
    assert count > len(series)  # members besides one manifest per folder
    shutil.rmtree(root / "data" / series[0].id)  # the source loses the folder
    out = tmp_path / "out"
    result = vxds(root, "materialize", "everything", "-o", str(out), "-m", "files", "--store", str(store))
    assert result.exit_code == 0, result.output
    for name in (data / series[0].id).rglob("*"):
        if name.is_file():
            rel = name.relative_to(data)
            assert (out / "all" / rel).read_bytes() == name.read_bytes()
    assert vxds(root, "verify", "--no-exec", "--store", str(store)).exit_code == 0
    gc = vxds(root, "gc", "--store", str(store))
    assert "would remove 0 objects" in gc.output  # the members are reachable through the manifest
