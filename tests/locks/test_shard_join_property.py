"""vxds/locks/shard_join.py against the whole join, as a property: for random locks of two
splits and random edits, the shard-wise diff says exactly what the diff of the same lines
unsharded says (changes, counts by type and field, leak warnings), whether the equal shards'
types come from lock.toml, from a cold or a warm tally cache, or (a lock listing no types)
from reading the shards."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.locks.test_shard_join import _untyped
from tests.locks.test_shards import ONE_SHARD, SMALL_RULE, _header
from vxds.locks import shard_join
from vxds.locks.changes import Change, DatasetDiff
from vxds.locks.diff import HELD_OUT, diff_refs
from vxds.locks.leaks import group_leaks, held_out_leaks
from vxds.locks.refs import folder_lock
from vxds.locks.shards import ShardRule
from vxds.locks.split_diff import group_key
from vxds.locks.splits import Split
from vxds.locks.store import Lock, write_lock
from vxds.resource import Resource

POOL = [f"sub-{i // 8:02d}/f{i:03d}.nii.gz" for i in range(320)]
# split, type, version, group (attrs.g): groups shared across splits make leak warnings
RECORD = st.tuples(
    st.sampled_from(["train", "test"]),
    st.sampled_from(["File", "Volume"]),
    st.integers(1, 2),
    st.integers(0, 12),
)
Records = dict[str, tuple[str, str, int, int]]


def _lock(records: Records, rule: ShardRule) -> Lock:
    lines: dict[str, list[bytes]] = {}
    for rid in sorted(records):
        split, kind, version, group = records[rid]
        line = Resource(rid, version, kind, attrs={"g": group}).canonical_line() + b"\n"
        lines.setdefault(split, []).append(line)
    splits = {name: Split.from_terminated(found, rule) for name, found in sorted(lines.items())}
    return Lock(_header(splits), splits)


def _run(old: Path, new: Path, cache: Path | None, by: tuple[str, ...]) -> DatasetDiff:
    shard_join.shard_types.cache_clear()  # the tally cache as a new process reads it
    return diff_refs(
        folder_lock(old, "old", cache), folder_lock(new, "new", cache), by=by, group_by="attrs.g"
    )


def _diff(old: Path, new: Path, cache: Path | None, by: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = _run(old, new, cache, by).to_json()
    return found


def _groups(records: Records) -> dict[str, dict[Any, str]]:
    """Every split's group keys, each with its first id, as a diff tallying every line has them."""
    out: dict[str, dict[Any, str]] = {}
    for rid in sorted(records):
        split, _, _, group = records[rid]
        out.setdefault(split, {}).setdefault(group_key(group), rid)
    return out


def _warnings(old: Records, new: Records, changes: list[Change]) -> list[dict[str, Any]]:
    """The leak warnings from every split's whole group keys (the oracle: no split skipped)."""
    before, after = _groups(old), _groups(new)
    held = {s: g for s, g in before.items() if s in HELD_OUT}
    found = group_leaks("attrs.g", after) + held_out_leaks(HELD_OUT, changes, "attrs.g", held, after)
    return [w.to_json() for w in found]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.sampled_from(POOL), RECORD, min_size=1, max_size=240),
    st.dictionaries(st.sampled_from(POOL), st.none() | RECORD, max_size=30),
    st.sampled_from([(), ("attrs.g",)]),
    st.sampled_from([None, "test", "train"]),
)
def test_a_shard_wise_diff_is_the_unsharded_diff_cached_or_not(
    old: Records, edits: dict[str, tuple[str, str, int, int] | None], by: tuple[str, ...], dropped: str | None
) -> None:
    """``dropped``: a split the new lock no longer has (leaks then hang on one side's groups)."""
    new = {rid: r for rid, r in {**old, **edits}.items() if r is not None and r[0] != dropped}
    if not new:
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, records, rule in (
            ("flat-a", old, ONE_SHARD),
            ("flat-b", new, ONE_SHARD),
            ("a", old, SMALL_RULE),
            ("b", new, SMALL_RULE),
        ):
            write_lock(_lock(records, rule), root / name)
        whole = _run(root / "flat-a", root / "flat-b", None, by)
        assert whole.to_json()["warnings"] == _warnings(old, new, whole.changes)
        flat = whole.to_json()
        listed = _diff(root / "a", root / "b", root / "typed", by)  # no tallies cached
        assert listed == flat
        assert _diff(root / "a", root / "b", root / "typed", by) == flat  # with what that diff cached
        _untyped(root / "a")
        _untyped(root / "b")
        assert _diff(root / "a", root / "b", root / "untyped", by) == flat  # every equal shard read
        assert _diff(root / "a", root / "b", root / "untyped", by) == flat  # from the cache alone


def test_the_property_sees_sharded_locks_with_equal_shards_and_warnings(tmp_path: Path) -> None:
    """The property's locks are cut into many shards, and its diffs warn: it can fail."""
    old = {rid: ("test" if i % 5 == 0 else "train", "File", 1, i // 40) for i, rid in enumerate(POOL)}
    new = {**old, POOL[5]: ("train", "Volume", 2, 3)}  # from test to train
    for name, records in (("a", old), ("b", new)):
        write_lock(_lock(records, SMALL_RULE), tmp_path / name)
    lock = _lock(old, SMALL_RULE)
    assert len(lock.splits["train"].shards) > 10
    found = _diff(tmp_path / "a", tmp_path / "b", tmp_path / "cache", ())
    assert found["summary"]["moved"] == 1
    assert {w["kind"] for w in found["warnings"]} == {"group-in-two-splits", "held-out-to-training"}
    assert found["summary"]["unchanged"] == len(POOL) - 1
