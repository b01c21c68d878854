"""``disjoint_by`` in lock.toml through the CLI: written by ``vxds lock`` for a ``group_by``
lock of two splits with a split of several shards, kept by ``git merge`` (the vxds driver)
only when the merge holds one side's resources, and verified."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.cli.test_merge_driver import NEIGHBOUR, OTHER, _commit, _edit_sidecar, installed, merge, sharded
from tests.helpers import Invoke, git
from vxds.locks.format import render_header
from vxds.locks.store import read_lock

__all__ = ["installed", "sharded"]  # the fixtures, shared with test_merge_driver.py

VISEG = "locks/viseg_training/1"


def _claim(root: Path, lock: str) -> str | None:
    return read_lock(root / lock).header.disjoint_by


def _bump(root: Path, path: str) -> None:
    file = root / path
    file.write_bytes(file.read_bytes() + b"\0")


def test_lock_claims_disjoint_by_for_a_sharded_lock_of_two_splits(sharded: Path, invoke: Invoke) -> None:
    header = read_lock(sharded / VISEG).header
    assert header.shards  # a split of several shards, of a group_by entry with train and test
    assert header.disjoint_by == "attrs.subject"
    assert 'disjoint_by = "attrs.subject"' in (sharded / VISEG / "lock.toml").read_text()
    assert _claim(sharded, "locks/all_basel_data/1") is None  # no group_by
    assert _claim(sharded, "locks/clinical_cohort/1") is None  # one split
    assert invoke("verify", "--no-exec").exit_code == 0


def test_a_merge_keeps_the_claim_of_the_side_whose_resources_it_holds(sharded: Path, invoke: Invoke) -> None:
    git(sharded, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(sharded, "Extra", 1)  # a T1w sidecar: not in viseg, whose header's snapshot changes alone
    _commit(sharded, invoke, "sidecar edit")
    git(sharded, "checkout", "-q", "main")
    _bump(sharded, NEIGHBOUR)  # a T2w of sub-BS01: viseg's resources change on this side
    _commit(sharded, invoke, "new bytes")
    ours = read_lock(sharded / VISEG).header

    result = merge(sharded, "sidecar")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = read_lock(sharded / VISEG, deep=True).header
    assert merged.merged
    assert merged.splits == ours.splits
    assert merged.disjoint_by == "attrs.subject"
    assert invoke("verify", "--no-exec").exit_code == 0  # VX312 (merged) is a warning


def test_a_merge_of_both_sides_resources_drops_the_claim(sharded: Path, invoke: Invoke) -> None:
    git(sharded, "checkout", "-q", "-b", "other")
    _bump(sharded, OTHER)  # a T2w of sub-BS05
    _commit(sharded, invoke, "their bytes")
    git(sharded, "checkout", "-q", "main")
    _bump(sharded, NEIGHBOUR)  # a T2w of sub-BS01
    _commit(sharded, invoke, "our bytes")
    sides = [read_lock(sharded / VISEG).header.splits]
    git(sharded, "checkout", "-q", "other")
    sides.append(read_lock(sharded / VISEG).header.splits)
    git(sharded, "checkout", "-q", "main")

    result = merge(sharded, "other")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = read_lock(sharded / VISEG, deep=True).header
    assert merged.splits not in sides  # both sides' changes
    assert merged.disjoint_by is None  # not proven by the driver: diffs read as before
    assert invoke("verify", "--no-exec").exit_code == 0
    assert invoke("lock", "--all", "-q").exit_code == 0
    assert _claim(sharded, VISEG) == "attrs.subject"  # the relock claims it again
    assert read_lock(sharded / VISEG).header.splits == merged.splits


def _untyped(root: Path, lock: str) -> None:
    """The lock's lock.toml as a vxds of the last stop wrote it: no shard lists its types."""
    header = read_lock(root / lock).header
    shards = {n: tuple(dataclasses.replace(s, types=()) for s in ls) for n, ls in header.shards.items()}
    (root / lock / "lock.toml").write_text(render_header(dataclasses.replace(header, shards=shards)))


@pytest.mark.parametrize("theirs_typed", [True, False])
def test_a_merge_whose_base_lists_no_types_gives_the_relocks_shard_lists(
    sharded: Path, invoke: Invoke, theirs_typed: bool
) -> None:
    """Base locked by a vxds of the last stop (no shard types); ours relocked (types); theirs
    relocked, or left as the last stop wrote it. Both sides change the basel lock apart, so
    the driver merges it: every split lists types or none consistently, as a relock does."""
    locks = ("locks/all_basel_data/1", VISEG)
    for lock in locks:
        _untyped(sharded, lock)
    git(sharded, "commit", "-q", "-am", "locks of the last stop")
    git(sharded, "checkout", "-q", "-b", "sidecar")
    _edit_sidecar(sharded, "Extra", 1)
    _commit(sharded, invoke, "sidecar edit")
    if not theirs_typed:
        for lock in locks:
            _untyped(sharded, lock)
        git(sharded, "commit", "-q", "-am", "their vxds is older")
    git(sharded, "checkout", "-q", "main")
    _bump(sharded, OTHER)
    _commit(sharded, invoke, "new bytes")

    result = merge(sharded, "sidecar")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = {lock: read_lock(sharded / lock, deep=True).header for lock in locks}  # it parses
    assert merged["locks/all_basel_data/1"].merged
    assert invoke("lock", "--all", "-q").exit_code == 0
    for lock, header in merged.items():
        assert read_lock(sharded / lock).header.shards == header.shards  # types included
