"""``vxds import``, ``vxds update`` and the import check of ``vxds verify``, through the CLI,
against a bare registry reached by plain path and by ``file://`` URL."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import yaml

from tests.helpers import Invoke, git
from tests.registry.conftest import Registry
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock, read_lock, write_lock


def _block(root: Path, name: str) -> dict[str, object]:
    entries = yaml.safe_load((root / "datasets.yaml").read_text())
    block: dict[str, object] = next(e for e in entries if e["name"] == name)["import"]
    return block


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_import_at_a_tag_copies_the_registrys_lock(
    registry: Registry, consumer: Path, invoke: Invoke
) -> None:
    tagged = git(registry.work, "rev-parse", "v1").strip()
    registry.drop_last("viseg_training", 2, "train")  # main moves on; the tag does not

    result = invoke("import", str(registry.bare), "viseg_training@2", "--rev", "v1")

    assert result.exit_code == 0, result.output
    assert (
        f"imported  viseg_training@2 from {registry.bare} (viseg_training@2 at v1, {tagged[:12]})"
        in result.output
    )
    assert _block(consumer, "viseg_training") == {
        "url": str(registry.bare),
        "rev": "v1",
        "commit": tagged,
        "name": "viseg_training",
        "version": 2,
    }
    git(registry.work, "checkout", "-q", "v1")
    assert _files(consumer / "locks/viseg_training/2") == _files(registry.work / "locks/viseg_training/2")
    text = (consumer / "datasets.yaml").read_text()
    assert text.startswith("# training datasets, imported from the registry\n")
    assert not list((consumer / ".vxds/registry").glob("*.git/index"))  # bare: never checked out


def test_import_at_a_branch_under_another_name(registry: Registry, consumer: Path, invoke: Invoke) -> None:
    url = registry.bare.as_uri()
    result = invoke("import", url, "all_basel_data", "--rev", "main", "--as", "basel")

    assert result.exit_code == 0, result.output
    assert _block(consumer, "basel")["url"] == url
    lock = read_lock(consumer / "locks/basel/1", deep=True)
    theirs = read_lock(registry.work / "locks/all_basel_data/1", deep=True)
    assert (lock.header.name, lock.splits) == ("basel", theirs.splits)
    locked = invoke("lock", "--all")
    assert locked.exit_code == 0, locked.output
    assert "basel@1: imported from a registry: no recipe here" in locked.output
    verified = invoke("verify", "--no-exec")
    assert verified.exit_code == 0, verified.output
    # the registry's data folder is not in this repository: said, not an error
    assert "0 errors, 1 warning" in verified.output
    assert "warning VX208 locks/basel/1/lock.toml: source './sample-data'" in verified.output


def test_update_after_a_new_commit_shows_the_diff(registry: Registry, consumer: Path, invoke: Invoke) -> None:
    url = registry.bare.as_uri()
    assert invoke("import", url, "viseg_training@2", "--rev", "main").exit_code == 0
    current = invoke("update", "--all", "--check")
    assert (current.exit_code, current.output.split()[0]) == (0, "current")

    newest = registry.drop_last("viseg_training", 2, "train")
    behind = invoke("update", "--all", "--check")
    assert behind.exit_code == 1, behind.output
    assert "behind  viseg_training@2" in behind.output

    updated = invoke("update", "viseg_training")
    assert updated.exit_code == 0, updated.output
    assert f"-> {newest[:12]}" in updated.output
    assert "@@ train: 24 -> 23" in updated.output
    assert "viseg_training@2: changed, 1 removed (38 unchanged)" in updated.output
    assert _block(consumer, "viseg_training")["commit"] == newest
    assert _files(consumer / "locks/viseg_training/2") == _files(registry.work / "locks/viseg_training/2")
    assert invoke("update", "--all", "--check").exit_code == 0
    assert invoke("verify", "--no-exec").exit_code == 0


def test_a_tag_is_not_behind_when_the_branch_moves(
    registry: Registry, consumer: Path, invoke: Invoke
) -> None:
    assert invoke("import", str(registry.bare), "clinical_cohort", "--rev", "v1").exit_code == 0
    registry.drop_last("clinical_cohort", 1, "cohort")
    assert invoke("update", "--all", "--check").exit_code == 0


def test_verify_finds_a_hand_edited_import(registry: Registry, consumer: Path, invoke: Invoke) -> None:
    assert invoke("import", registry.bare.as_uri(), "viseg_training@1").exit_code == 0
    folder = consumer / "locks/viseg_training/1"
    lock = read_lock(folder, deep=True)  # resealed by hand: every digest matches the new lines
    splits = {**lock.splits, "test": Split.from_lines(list(lock.splits["test"].lines())[1:])}
    counts = {s: (sum(1 for _ in c.lines()), c.content_digest) for s, c in splits.items()}
    write_lock(Lock(replace(lock.header, splits=counts, shards=header_shards(splits)), splits), folder)
    shutil.rmtree(consumer / ".vxds")  # fetched again at the pinned commit

    result = invoke("verify", "--no-exec")

    assert result.exit_code == 1, result.output
    assert "VX209" in result.output
    assert "edited by hand?" in result.output


def test_an_unreachable_registry(registry: Registry, consumer: Path, invoke: Invoke) -> None:
    assert invoke("import", str(registry.bare), "viseg_training@1", "--rev", "main").exit_code == 0
    shutil.rmtree(registry.bare)
    shutil.rmtree(consumer / ".vxds")

    verified = invoke("verify", "--no-exec")
    assert verified.exit_code == 0, verified.output
    assert "warning VX210" in verified.output
    assert invoke("update", "viseg_training").exit_code == 2
    checked = invoke("update", "--all", "--check")
    assert checked.exit_code == 2
    assert "unreachable" in checked.output


def test_refusals(registry: Registry, consumer: Path, invoke: Invoke) -> None:
    secret = invoke("import", "https://user:secret@example.com/registry.git", "viseg_training")
    assert secret.exit_code == 2
    assert "must not carry credentials" in secret.output
    assert "secret" not in secret.output
    assert invoke("import", str(registry.bare), "viseg_training@1").exit_code == 0
    again = invoke("import", str(registry.bare), "viseg_training@1")
    assert (again.exit_code, "already in datasets.yaml" in again.output) == (2, True)
    missing = invoke("import", str(registry.bare), "viseg_training@1", "--rev", "no-such-tag")
    assert (missing.exit_code, "cannot fetch 'no-such-tag'" in missing.output) == (2, True)
    assert invoke("update", "--all").exit_code == 0
    assert invoke("update").exit_code == 2
