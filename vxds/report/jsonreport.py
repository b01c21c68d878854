"""``vxds diff --format json``: one stable document; see docs/diff.md for its fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vxds.locks.changes import DatasetDiff

FORMAT = 2  # 2: a leak's subject is the group's own value, not that value as JSON


def document(diffs: Sequence[DatasetDiff], *, old: str, new: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "old": old,
        "new": new,
        "differs": any(not d.empty for d in diffs),
        "datasets": [d.to_json() for d in diffs],
    }
