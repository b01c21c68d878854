"""A catalog's own object store is a store: pushing its locks there copies nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.helpers import REPO, commit_all, git
from tests.store.conftest import objects, vxds

RECIPE = """\
import vxds


@vxds.recipe()
def everything(client):
    return {"all": [r for r in client.query() if r.type in ("DICOMSeries", "Volume", "Mask")]}
"""


def catalog_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/everything.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        "- name: everything\n  version: 1\n  script_location: ./recipes/everything.py\n"
    )
    (root / "pyproject.toml").write_text(
        '[tool.vxds]\nsource = "catalog:catalog.db"\n\n[tool.vxds.store]\nurl = "catalog.objects"\n'
    )
    shutil.copytree(REPO / "sample-data/basel", root / "data")
    assert vxds(root, "catalog", "init").exit_code == 0
    ingested = vxds(root, "catalog", "ingest", str(root / "data"))
    assert ingested.exit_code == 0, ingested.output
    git(root, "init", "-q", "-b", "main")
    locked = vxds(root, "lock", "--all")
    assert locked.exit_code == 0, locked.output
    commit_all(root, "lock")
    return root


def test_pushing_a_catalog_lock_to_the_catalogs_store_copies_nothing(tmp_path: Path) -> None:
    root = catalog_project(tmp_path)
    before = objects(root / "catalog.objects")
    assert before
    pushed = vxds(root, "push", "--all")
    assert pushed.exit_code == 0, pushed.output
    assert " 0 uploaded (0 bytes)" in pushed.output
    assert objects(root / "catalog.objects") == before
    assert vxds(root, "verify", "--no-exec").exit_code == 0  # every resource is in the store
    # and it is a store like any other: the locked bytes read back from it
    out = tmp_path / "out"
    placed = vxds(root, "materialize", "everything", "-o", str(out), "-m", "files", "--from-store")
    assert placed.exit_code == 0, placed.output
    assert any(p.suffix == ".dcm" for p in out.rglob("*"))
    refused = vxds(root, "gc", "--delete")
    assert refused.exit_code == 2
    assert "is the object store of the catalog catalog.db" in refused.output
    assert objects(root / "catalog.objects") == before


def test_a_catalog_in_the_old_layout_is_read_and_moved_by_the_next_ingest(tmp_path: Path) -> None:
    root = catalog_project(tmp_path)
    store = root / "catalog.objects"
    top = store / "blake3"
    for folder in sorted(top.iterdir()):  # back to the layout catalogs had before
        folder.rename(store / folder.name)
    top.rmdir()
    out = tmp_path / "out"
    placed = vxds(root, "materialize", "everything", "-o", str(out), "-m", "files")
    assert placed.exit_code == 0, placed.output
    before = vxds(root, "verify", "--data", "--no-exec")
    assert before.exit_code == 1  # the bytes read back, but the store's layout lacks them
    assert "VX801" in before.output
    assert "VX50" not in before.output
    (root / "data/extra.txt").write_text("one more file\n")
    assert vxds(root, "catalog", "ingest", str(root / "data")).exit_code == 0
    left = [name for name in os.listdir(store) if not name.startswith(".")]
    assert left == ["blake3"]
    assert vxds(root, "verify", "--data", "--no-exec").exit_code == 0
    relocked = vxds(root, "lock", "--all", "--check", "--at", "1")  # the lock, made again
    assert relocked.exit_code == 0, relocked.output
    again = tmp_path / "again"
    assert vxds(root, "materialize", "everything", "-o", str(again), "-m", "files").exit_code == 0
    assert sorted(p.relative_to(again) for p in again.rglob("*")) == sorted(
        p.relative_to(out) for p in out.rglob("*")
    )
