"""vxds/locks/diff.py: what changed between two locks, split by split."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import NEW, OLD, R, make_lock, make_split
from vxds.errors import LockError
from vxds.locks.diff import diff_locks, header_changes
from vxds.locks.split_diff import apply
from vxds.locks.splits import Split
from vxds.locks.store import Lock
from vxds.resource import Resource


def _kinds(diff: Any) -> list[tuple[str, str, str]]:
    return [(c.kind, c.id, c.split) for c in diff.changes]


def test_counts_and_kinds() -> None:
    diff = diff_locks(OLD, NEW)
    assert diff.counts() == {
        "added": 2,
        "removed": 1,
        "changed": 1,
        "metadata": 1,
        "moved": 2,
        "unchanged": 2,
    }
    assert sorted(_kinds(diff)) == [
        ("added", "n", "train"),
        ("added", "v", "val"),
        ("changed", "b", "train"),
        ("metadata", "a", "train"),
        ("moved", "m", "test"),
        ("moved", "u", "train"),
        ("removed", "c", "train"),
    ]
    assert diff.status == "changed"
    assert not diff.empty


def test_fields_that_changed() -> None:
    changes = {c.id: c for c in diff_locks(OLD, NEW).changes}
    assert changes["a"].fields == ("attrs.site",)
    assert changes["b"].fields == ("version",)
    assert changes["m"].from_split == "train"
    assert changes["m"].split == "test"
    assert changes["b"].to_json() == {
        "id": "b",
        "kind": "changed",
        "split": "train",
        "fields": ["version"],
        "values": {"version": {"old": 1, "new": 2}},
        "old": R("b").to_record(),
        "new": R("b", 2).to_record(),
    }
    assert changes["u"].to_json()["from"] == "test"
    assert changes["u"].to_json()["to"] == "train"


def test_counts_by_type_and_attribute() -> None:
    diff = diff_locks(OLD, NEW, by=["attrs.site"])
    train = diff.splits["train"]
    assert (train.old, train.new) == (5, 5)
    assert train.by["type"] == {"Mask": [1, 3], "Volume": [4, 2]}
    assert train.by["attrs.site"] == {"basel": [2, 1], "null": [3, 3], "zurich": [0, 1]}
    assert diff.splits["val"].by["type"] == {"Mask": [0, 1]}


def test_same_lock_is_empty() -> None:
    diff = diff_locks(OLD, OLD)
    assert diff.changes == []
    assert diff.header == []
    assert diff.empty
    assert diff.counts()["unchanged"] == 7


def test_added_and_removed_locks() -> None:
    added, removed = diff_locks(None, NEW), diff_locks(OLD, None)
    assert added.status == "added"
    assert added.counts()["added"] == 8
    assert removed.status == "removed"
    assert removed.counts()["removed"] == 7
    assert (added.old_version, added.new_version, removed.old_version, removed.new_version) == (
        None,
        1,
        1,
        None,
    )


def test_header_changes() -> None:
    header = replace(OLD.header, params={"k": 1}, snapshot="x:1")
    changes = {c.field: (c.old, c.new) for c in header_changes(OLD.header, header)}
    assert changes["params"] == ({}, {"k": 1})
    assert changes["snapshot"] == ("x:0", "x:1")
    assert "recipe_digest" in changes
    assert "source" not in changes
    diff = diff_locks(OLD, Lock(header, OLD.splits))
    assert diff.status == "changed"
    assert diff.changes == []
    assert not diff.empty


def test_group_leak_in_new_lock() -> None:
    new = make_lock(
        train=make_split(R("a", subject="01"), R("b", subject="02")), test=make_split(R("c", subject="01"))
    )
    warnings = diff_locks(OLD, new, group_by="attrs.subject").warnings
    assert [w.to_json()["subject"] for w in warnings] == ["01"]  # the value, not JSON in JSON
    assert [(w.kind, w.subject, w.splits) for w in warnings] == [
        ("group-in-two-splits", '"01"', ("test", "train"))
    ]


def test_held_out_to_training() -> None:
    old = make_lock(
        train=make_split(R("a", subject="01")), test=make_split(R("b", subject="02"), R("c", subject="03"))
    )
    new = make_lock(train=make_split(R("a", subject="01"), R("b", subject="02"), R("d", subject="03")))
    kinds = [(w.kind, w.subject, w.splits) for w in diff_locks(old, new, group_by="attrs.subject").warnings]
    assert kinds == [
        ("held-out-to-training", '"02"', ("test", "train")),  # b moved, reported through its group
        ("held-out-to-training", '"03"', ("test", "train")),  # the group, through a new id
    ]
    # without group_by only the id is seen; a split the manifest holds out counts too
    assert [(w.subject, w.splits) for w in diff_locks(old, new).warnings] == [("b", ("test", "train"))]
    custom = make_lock(train=make_split(R("a")), holdout=make_split(R("b")))
    assert diff_locks(custom, make_lock(train=make_split(R("a"), R("b"))), held_out=["holdout"]).warnings


def test_a_line_that_is_not_a_record_names_its_line() -> None:
    bad = Split.from_bytes(R("a").canonical_line() + b"\nnot json\n")
    with pytest.raises(LockError, match=r":2: not a resource record"):
        diff_locks(OLD, make_lock(train=bad))


# --- properties --------------------------------------------------------------------------

ids = st.sampled_from([f"r{i:02}" for i in range(12)])
records = st.builds(
    lambda rid, version, site: R(rid, version, site=site),
    ids,
    st.integers(1, 3),
    st.sampled_from(["basel", "zurich"]),
)
splits = st.dictionaries(
    st.sampled_from(["train", "test", "val"]), st.lists(records, unique_by=lambda r: r.id), max_size=3
)


def _as_lock(content: dict[str, list[Resource]]) -> Lock:
    seen: set[str] = set()
    out = {}
    for name, resources in sorted(content.items()):
        kept = [r for r in resources if r.id not in seen]  # an id lives in one split
        seen.update(r.id for r in kept)
        out[name] = make_split(*kept)
    return make_lock(**out)


def _records(lock: Lock) -> dict[str, list[dict[str, Any]]]:
    return {name: [r.to_record() for r in split.resources()] for name, split in lock.splits.items()}


def _nonempty(splits: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {name: records for name, records in splits.items() if records}


@settings(max_examples=200, deadline=None)
@given(splits, splits)
def test_applying_the_diff_gives_the_new_lock(
    a: dict[str, list[Resource]], b: dict[str, list[Resource]]
) -> None:
    old, new = _as_lock(a), _as_lock(b)
    diff = diff_locks(old, new)
    assert _nonempty(apply(_records(old), diff.changes)) == _nonempty(_records(new))
    counts = diff.counts()
    assert sum(counts.values()) - counts["removed"] == sum(s.count for s in new.splits.values())


@settings(max_examples=100, deadline=None)
@given(splits)
def test_diff_with_itself_is_empty(a: dict[str, list[Resource]]) -> None:
    lock = _as_lock(a)
    assert diff_locks(lock, lock).empty
