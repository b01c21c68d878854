"""vxds/locks/changes.py: the values a lock diff is made of."""

from __future__ import annotations

from typing import get_args

from vxds.locks.changes import KINDS, ChangeKind, DatasetDiff, Status


def test_kinds_are_the_literal_type_in_its_order() -> None:
    # KINDS orders the summary counts and report columns; it must name every kind once
    assert get_args(ChangeKind) == KINDS


def test_counts_name_every_kind_and_the_unchanged() -> None:
    diff = DatasetDiff("d", 1, 2, "changed", unchanged=3)
    assert diff.counts() == {
        "added": 0,
        "removed": 0,
        "changed": 0,
        "metadata": 0,
        "moved": 0,
        "unchanged": 3,
    }
    assert set(get_args(Status)) == {"added", "removed", "changed", "unchanged"}
