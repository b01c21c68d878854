"""vxds/locks/shard_merge.py: a sharded split both sides changed merges by id and is cut
again, as a relock of the merged resources would cut it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vxds.locks.shard_merge import git_outcome, merge_in_git, merge_split
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split
from vxds.resource import Resource

RULE = ShardRule(min_bytes=256, target_bytes=1024, max_bytes=4096)  # lines are ~60-90 bytes
Model = dict[str, int]  # id -> version


def _files(model: Model) -> dict[str, bytes]:
    """The files a lock of these resources has, cut by ``RULE``."""
    lines = [
        Resource(rid, v, "File", attrs={"n": len(rid)}).canonical_line() + b"\n"
        for rid, v in sorted(model.items())
    ]
    split = Split.from_terminated(lines, RULE)
    return {name: b"".join(chunks) for name, chunks in split.files("all")}


ids = st.text(alphabet="abcdefgh/", min_size=1, max_size=12).filter(
    lambda s: not s.startswith("/") and not s.endswith("/") and "//" not in s
)
edits = st.dictionaries(ids, st.one_of(st.none(), st.integers(1, 3)), max_size=30)  # None: removed


def _apply(model: Model, edit: dict[str, int | None]) -> Model:
    out = dict(model)
    for rid, version in edit.items():
        if version is None:
            out.pop(rid, None)
        else:
            out[rid] = version
    return out


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(ids, st.just(1), min_size=0, max_size=200), edits, edits)
def test_the_merge_is_the_relock_of_the_resources_merged_by_id(
    base: Model, ours_edit: dict[str, int | None], theirs_edit: dict[str, int | None]
) -> None:
    ours, theirs = _apply(base, ours_edit), _apply(base, theirs_edit)
    merged = merge_split("all", _files(base), _files(ours), _files(theirs), RULE)
    # the model: each id as the side that changed it has it; changed differently: a conflict
    clash = sorted(
        r
        for r in {*base, *ours, *theirs}
        if ours.get(r) != base.get(r) and theirs.get(r) != base.get(r) and ours.get(r) != theirs.get(r)
    )
    assert list(merged.conflicts) == clash
    if not clash:
        expected = base
        for side in (ours, theirs):  # each side's own changes, applied in turn
            expected = _apply(
                expected, {r: side.get(r) for r in {*base, *side} if side.get(r) != base.get(r)}
            )
        assert merged.files == _files(expected)  # byte for byte, shard for shard
        assert (merged.count, len(merged.shards) or 1) == (len(expected), len(_files(expected)))


def test_a_shard_one_side_removed_and_the_other_changed_stops_git() -> None:
    base, ours, theirs = {"a": b"1", "b": b"2"}, {"a": b"1"}, {"a": b"1", "b": b"3"}
    assert git_outcome(base, ours, theirs, {"b": b"3"}.get) is None
    assert git_outcome(base, ours, {"a": b"1", "b": b"2"}, {}.get) == {"a": b"1"}  # removed


BASE = {f"r{i:03d}/x": 1 for i in range(150)}


def test_two_changes_in_one_shard_merge_to_the_relock() -> None:
    ours, theirs = {**BASE, "r010/x": 2}, {**BASE, "r011/x": 3}
    sides = [_files(m) for m in (BASE, ours, theirs)]
    assert sum(a != b for a, b in zip(sides[1].values(), sides[2].values(), strict=True)) == 1
    result = merge_in_git("all", *sides, RULE)
    assert not isinstance(result, str)
    assert result.files == _files({**BASE, "r010/x": 2, "r011/x": 3})


def test_a_file_git_cannot_leave_is_left_to_a_relock() -> None:
    ours = {**BASE, **{f"r{i:03d}/y": 1 for i in range(0, 150, 2)}}  # new lines: new boundaries
    theirs = {**BASE, **{f"r{i:03d}/z": 1 for i in range(1, 150, 2)}}
    sides = [_files(m) for m in (BASE, ours, theirs)]
    relock = _files({**ours, **theirs})
    assert merge_split("all", *sides, RULE).files == relock
    # Git takes each new shard file from the side that added it, which the relock does not
    # cut alike: a clean merge would leave files the relock does not have
    assert git_outcome(*sides, relock.get) != relock
    assert merge_in_git("all", *sides, RULE) == (
        "split all: the merged resources are cut into shards that Git's file by file "
        "merge cannot leave; relock to finish the merge"
    )
