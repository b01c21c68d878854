"""vxds/diff.py: what changed between two locks, split by split."""

from __future__ import annotations

from vxds.diff import LockDiff, diff_locks, diff_split
from vxds.lockfile import Header, Lock, Split
from vxds.resource import Resource


def _split(*resources: tuple[str, int]) -> Split:
    return Split.from_lines([Resource(rid, version).canonical_line() for rid, version in sorted(resources)])


def _lock(**splits: Split) -> Lock:
    header = Header(
        name="d",
        version=1,
        script="r.py",
        entrypoint=None,
        params={},
        script_digest="x:0",
        entry_digest="x:0",
        source=".",
        snapshot="x:0",
        splits={name: (split.count, split.digest) for name, split in splits.items()},
    )
    return Lock(header, dict(splits))


OLD = _lock(train=_split(("a", 1), ("b", 1), ("c", 1), ("m", 1)), test=_split(("t", 1), ("u", 1)))
NEW = _lock(
    train=_split(("a", 1), ("b", 2), ("n", 1), ("u", 1)),
    test=_split(("t", 1), ("m", 1)),
    val=_split(("v", 1)),
)


def test_counts() -> None:
    diff = diff_locks(OLD, NEW)
    assert diff.counts() == {"added": 2, "removed": 1, "changed": 1, "moved": 2, "unchanged": 2}
    assert not diff.empty


def test_details_per_split() -> None:
    diff = diff_locks(OLD, NEW)
    assert list(diff.splits) == ["test", "train", "val"]
    train, test, val = diff.splits["train"], diff.splits["test"], diff.splits["val"]
    assert (train.added, train.removed, train.changed, train.unchanged) == (["n"], ["c"], ["b"], 1)
    assert (test.added, test.removed, test.changed, test.unchanged) == ([], [], [], 1)
    assert (val.added, val.removed) == (["v"], [])
    assert diff.moved == [("m", "train", "test"), ("u", "test", "train")]


def test_identical_locks() -> None:
    diff = diff_locks(OLD, OLD)
    assert diff.empty
    assert diff.counts() == {"added": 0, "removed": 0, "changed": 0, "moved": 0, "unchanged": 6}


def test_against_nothing() -> None:
    assert diff_locks(None, NEW).counts()["added"] == 7
    assert diff_locks(OLD, None).counts()["removed"] == 6
    assert diff_locks(None, None) == LockDiff()


def test_diff_split_merge_join() -> None:
    diff = diff_split(_split(("a", 1), ("c", 1), ("e", 1)), _split(("b", 1), ("c", 2), ("e", 1), ("f", 1)))
    assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (["b", "f"], ["a"], ["c"], 1)
    assert diff_split(None, None).unchanged == 0
