"""Lock files merged by ``git merge`` through vxds' merge driver, in real repositories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import GIT_ENV, Invoke, git
from vxds.cli.install import DRIVER_COMMAND
from vxds.locks import shards
from vxds.locks.shards import ShardRule, split_files
from vxds.locks.store import check_lock, read_lock

BASEL = "sample-data/basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.json"
OTHER = "sample-data/basel/sub-BS05/ses-01/anat/sub-BS05_ses-01_T2w.nii.gz"
LOCK = "locks/all_basel_data/1"


def merge(root: Path, branch: str) -> subprocess.CompletedProcess[str]:
    """``git merge`` with this checkout's ``vxds`` on PATH, as a user's shell would have it."""
    path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return subprocess.run(
        ["git", "merge", "--no-edit", branch],
        cwd=root,
        capture_output=True,
        text=True,
        env={**GIT_ENV, "PATH": path, "HOME": str(root)},
    )


def _edit_sidecar(root: Path, key: str, value: object) -> None:
    path = root / BASEL
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))


def _commit(root: Path, invoke: Invoke, message: str) -> None:
    assert invoke("lock", "--all", "-q").exit_code == 0
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def installed(project: Path, invoke: Invoke) -> Path:
    result = invoke("install")
    assert result.exit_code == 0, result.output
    assert "set  git config merge.vxds.driver" in result.output
    _commit(project, invoke, "locks and merge driver")
    return project


def test_install_registers_the_driver_once(installed: Path, invoke: Invoke) -> None:
    assert git(installed, "config", "merge.vxds.driver").strip() == DRIVER_COMMAND
    attributes = (installed / ".gitattributes").read_text()
    assert "locks/**/lock.toml merge=vxds\nlocks/**/resources.*.jsonl merge=vxds\n" in attributes
    assert attributes.startswith("# Sample data")  # what was there is kept
    again = invoke("install")
    assert again.output.count("kept") == 2
    assert (installed / ".gitattributes").read_text() == attributes
    assert (
        git(installed, "check-attr", "merge", f"{LOCK}/resources.all.jsonl").strip().endswith("merge: vxds")
    )


def test_init_in_a_git_repository_registers_the_driver(
    tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    assert invoke("init").exit_code == 0
    assert git(tmp_path, "config", "merge.vxds.driver").strip() == DRIVER_COMMAND


def test_disjoint_changes_merge_into_a_lock_that_verifies(installed: Path, invoke: Invoke) -> None:
    git(installed, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(installed, "Extra", 1)
    _commit(installed, invoke, "sidecar edit")
    git(installed, "checkout", "-q", "main")
    other = installed / OTHER
    other.write_bytes(other.read_bytes() + b"\0")
    _commit(installed, invoke, "new bytes")

    result = merge(installed, "sidecar")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "relock it before release" in result.stderr
    lock = read_lock(installed / LOCK, deep=True)  # digests, counts and every line check out
    assert lock.header.merged
    assert "merged by Git" in invoke("list").output

    merged = {p.name: p.read_bytes() for p in (installed / LOCK).iterdir()}
    assert invoke("lock", "--all", "--check").exit_code == 1  # a merged lock is due a relock
    assert invoke("lock", "--all", "-q").exit_code == 0
    relocked = read_lock(installed / LOCK)
    assert not relocked.header.merged
    # the merge chose exactly what running the recipe on the merged data gives
    assert merged["resources.all.jsonl"] == (installed / LOCK / "resources.all.jsonl").read_bytes()


def test_same_id_changed_on_both_sides_is_a_conflict(installed: Path, invoke: Invoke) -> None:
    git(installed, "checkout", "-q", "-b", "theirs")
    _edit_sidecar(installed, "Extra", "theirs")
    _commit(installed, invoke, "theirs")
    git(installed, "checkout", "-q", "main")
    _edit_sidecar(installed, "Extra", "ours")
    _commit(installed, invoke, "ours")

    result = merge(installed, "theirs")
    assert result.returncode != 0
    rid = "basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz"
    assert f"conflict on id {rid}" in result.stderr
    text = (installed / LOCK / "resources.all.jsonl").read_text()
    assert f"<<<<<<< ours ({rid})\n" in text
    assert f">>>>>>> theirs ({rid})\n" in text
    assert text.count("=======\n") == text.count("<<<<<<<")
    status = git(installed, "status", "--porcelain")
    assert f"UU {LOCK}/resources.all.jsonl" in status
    with pytest.raises(Exception, match="corrupt"):
        check_lock(installed / LOCK)


def test_the_driver_refuses_a_file_it_cannot_merge_by_id(tmp_path: Path, invoke: Invoke) -> None:
    base, ours, theirs = (tmp_path / n for n in ("base", "ours", "theirs"))
    base.write_text('{"id":"a"}\n')
    ours.write_text("not json\n")
    theirs.write_text('{"id":"b"}\n')
    result = invoke("merge-driver", str(base), str(ours), str(theirs), "locks/x/1/resources.train.jsonl")
    assert result.exit_code == 2
    assert "locks/x/1/resources.train.jsonl: ours:1: not a resource record" in result.output
    assert ours.read_text() == "not json\n"  # left as it was


SMALL_SHARDS = ShardRule(min_bytes=2000, target_bytes=8000, max_bytes=16000)  # the lock's 55 kB: shards


DRIVER_WITH_SMALL_SHARDS = f"""\
import sys
from vxds.locks import shards
from vxds.cli.main import main
shards.RULE = shards.{SMALL_SHARDS!r}
sys.argv = ["vxds", "merge-driver", *sys.argv[1:]]
main()
"""


@pytest.fixture
def sharded(installed: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project locked with small shards, and the installed driver run with them too (as
    ``vxds merge-driver``, in a process of its own that Git starts)."""
    monkeypatch.setattr(shards, "RULE", SMALL_SHARDS)
    driver = installed / ".git" / "small-shards-driver.py"
    driver.write_text(DRIVER_WITH_SMALL_SHARDS)
    git(installed, "config", "merge.vxds.driver", f"{sys.executable} {driver} %O %A %B %P")
    _commit(installed, invoke, "sharded locks")
    assert len(split_files(read_lock(installed / LOCK).header, "all")) > 2
    return installed


def test_a_sharded_split_one_side_changed_merges_with_that_sides_shards(
    sharded: Path, invoke: Invoke
) -> None:
    git(sharded, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(sharded, "Extra", 1)
    _commit(sharded, invoke, "sidecar edit")
    git(sharded, "checkout", "-q", "main")
    (sharded / "notes.txt").write_text("not a lock\n")
    git(sharded, "add", "-A")
    git(sharded, "commit", "-q", "-m", "notes")

    result = merge(sharded, "sidecar")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = read_lock(sharded / LOCK, deep=True)
    assert merged.digest == read_lock(sharded / LOCK).digest
    assert invoke("lock", "--all", "--check").exit_code == 0  # exactly the relock of the merged data


def _lock_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / LOCK).iterdir()}


def test_a_sharded_split_both_sides_changed_apart_merges_shard_by_shard(
    sharded: Path, invoke: Invoke
) -> None:
    git(sharded, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(sharded, "Extra", 1)  # sub-BS01: the first shards
    _commit(sharded, invoke, "sidecar edit")
    git(sharded, "checkout", "-q", "main")
    other = sharded / OTHER  # sub-BS05: shards further on
    other.write_bytes(other.read_bytes() + b"\0")
    _commit(sharded, invoke, "new bytes")

    result = merge(sharded, "sidecar")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = read_lock(sharded / LOCK, deep=True)  # every digest and line checks out
    assert merged.header.merged
    files = _lock_files(sharded)
    assert invoke("lock", "--all", "-q").exit_code == 0  # the relock of the merged resources
    relocked = _lock_files(sharded)
    assert sorted(files) == sorted(relocked)
    assert {n: b for n, b in files.items() if n != "lock.toml"} == {
        n: b for n, b in relocked.items() if n != "lock.toml"
    }  # byte-identical shards, cut where a relock cuts them
    assert read_lock(sharded / LOCK).header.shards == merged.header.shards
    assert len(merged.header.shards["all"]) > 2


NEIGHBOUR = "sample-data/basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T2w.nii.gz"


def _same_shard(root: Path, *paths: str) -> bool:
    header = read_lock(root / LOCK).header
    ids = [path.removeprefix("sample-data/") for path in paths]
    firsts = [s.first for s in header.shards["all"]]
    return len({max(f for f in firsts if f <= rid) for rid in ids}) == 1


def test_a_sharded_split_both_sides_changed_in_one_shard_merges_to_the_relock(
    sharded: Path, invoke: Invoke
) -> None:
    git(sharded, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(sharded, "Extra", 1)
    _commit(sharded, invoke, "sidecar edit")
    git(sharded, "checkout", "-q", "main")
    neighbour = sharded / NEIGHBOUR  # another resource of sub-BS01, in the same shard
    neighbour.write_bytes(neighbour.read_bytes() + b"\0")
    _commit(sharded, invoke, "new bytes")
    assert _same_shard(sharded, BASEL, NEIGHBOUR)

    result = merge(sharded, "sidecar")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = read_lock(sharded / LOCK, deep=True)
    assert merged.header.merged
    files = _lock_files(sharded)
    assert invoke("lock", "--all", "-q").exit_code == 0
    relocked = _lock_files(sharded)
    assert {n: b for n, b in files.items() if n != "lock.toml"} == {
        n: b for n, b in relocked.items() if n != "lock.toml"
    }  # byte-identical shards
    assert read_lock(sharded / LOCK).header.shards == merged.header.shards


def test_one_id_changed_on_both_sides_of_a_sharded_split_stays_a_conflict(
    sharded: Path, invoke: Invoke
) -> None:
    git(sharded, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(sharded, "Extra", 1)
    _commit(sharded, invoke, "sidecar edit")
    git(sharded, "checkout", "-q", "main")
    _edit_sidecar(sharded, "Other", 2)  # the same resource changed otherwise
    _commit(sharded, invoke, "another sidecar edit")

    result = merge(sharded, "sidecar")
    assert result.returncode != 0
    rid = BASEL.removeprefix("sample-data/")
    assert f"conflict on id {rid}" in result.stderr
    assert f"split all has conflicts: {rid}" in result.stderr
    assert invoke("lock", "--all", "-q").exit_code == 0
    read_lock(sharded / LOCK, deep=True)
