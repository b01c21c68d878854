"""Leak warnings of a lock diff: a group in two splits, and held-out data now trained on.

Both take the group keys each split holds (``split_diff.Tally.groups``): a ``group_by`` key
in two splits of the new lock, and an id or group that was in a held-out split (``test``,
``val``, ...) before and is in a training split now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from vxds.hashing import canonical_json
from vxds.locks.changes import GROUP_IN_TWO_SPLITS, HELD_OUT_TO_TRAINING, MOVED, Change, Leak, Record
from vxds.locks.split_diff import group_key
from vxds.resource import lookup

Groups = Mapping[str, Mapping[Any, str]]  # split -> group key -> an id in it


def _show_key(key: Any) -> str:
    return (canonical_json(key) if isinstance(key, str) else key).decode()


def _raw(key: Any) -> Any:
    """A group key as the value it was in the lock (for JSON)."""
    return orjson.loads(key) if isinstance(key, bytes) else key


def _key_of(record: Record, group_by: str) -> Any:
    value = lookup(record, group_by)
    return None if value is None else group_key(value)


def group_leaks(group_by: str, groups: Groups) -> list[Leak]:
    """Group keys found in more than one split."""
    seen: dict[Any, list[str]] = {}
    for split in sorted(groups):
        for key in groups[split]:
            seen.setdefault(key, []).append(split)
    return [
        Leak(
            GROUP_IN_TWO_SPLITS,
            _show_key(key),
            tuple(splits),
            f"{group_by} {_show_key(key)} is in splits {', '.join(splits)}",
            _raw(key),
        )
        for key, splits in sorted(seen.items(), key=lambda kv: _show_key(kv[0]))
        if len(splits) > 1
    ]


def held_out_leaks(
    held_out: Sequence[str],
    changes: Iterable[Change],
    group_by: str | None,
    old: Groups,
    new: Groups,
) -> list[Leak]:
    """Ids, and groups, that were in a held-out split before and are in a training split now.

    With ``group_by``, an id is reported through its group only.
    """
    leaks: list[Leak] = []
    leaked: set[Any] = set()
    if group_by is not None:
        for before in sorted(s for s in old if s in held_out):
            for after in sorted(s for s in new if s not in held_out):
                for key in sorted(set(old[before]) & set(new[after]), key=_show_key):
                    leaked.add(key)
                    shown_key = _show_key(key)
                    message = f"{group_by} {shown_key} was in held-out split {before} and is now in {after}"
                    leaks.append(Leak(HELD_OUT_TO_TRAINING, shown_key, (before, after), message, _raw(key)))
    for c in changes:
        if c.kind != MOVED or c.from_split not in held_out or c.split in held_out:
            continue
        if group_by is not None and c.old is not None and _key_of(c.old, group_by) in leaked:
            continue
        message = f"{c.id} was in held-out split {c.from_split} and is now in {c.split}"
        leaks.append(Leak(HELD_OUT_TO_TRAINING, c.id, (str(c.from_split), c.split), message))
    return leaks
