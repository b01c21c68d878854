"""vxds/locks/merge.py: three-way merges of split files and headers, by resource id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vxds.errors import LockError
from vxds.locks.format import Header
from vxds.locks.merge import merge_headers, merge_lines, merge_shard_lists
from vxds.locks.shards import Shard, ShardRule
from vxds.locks.splits import Split
from vxds.resource import Resource


def line(rid: str, version: int = 1) -> bytes:
    return Resource(rid, version).canonical_line()


def test_disjoint_changes_merge_cleanly_and_stay_sorted() -> None:
    base = [line("a"), line("b"), line("c")]
    ours = [line("a", 2), line("b"), line("c"), line("d")]  # change a, add d
    theirs = [line("a"), line("b"), line("bb"), line("c", 3)]  # add bb, change c
    merged = merge_lines(base, ours, theirs)
    assert merged.conflicts == []
    assert merged.data == b"".join(
        x + b"\n" for x in [line("a", 2), line("b"), line("bb"), line("c", 3), line("d")]
    )


def test_same_change_on_both_sides_is_taken_once() -> None:
    merged = merge_lines([line("a")], [line("a", 2)], [line("a", 2)])
    assert (merged.conflicts, merged.data) == ([], line("a", 2) + b"\n")


def test_removal_on_one_side() -> None:
    assert merge_lines([line("a"), line("b")], [line("b")], [line("a"), line("b")]).data == line("b") + b"\n"


def test_conflicts_are_marked_at_their_place() -> None:
    merged = merge_lines([line("a"), line("b")], [line("a", 2), line("b")], [line("a", 3)])
    assert merged.conflicts == ["a"]
    assert merged.data.decode().splitlines() == [
        "<<<<<<< ours (a)",
        line("a", 2).decode(),
        "=======",
        line("a", 3).decode(),
        ">>>>>>> theirs (a)",
    ]  # b: unchanged by us, removed by them


def test_modify_delete_is_a_conflict_with_an_empty_side() -> None:
    merged = merge_lines([line("a")], [line("a", 2)], [])
    assert merged.conflicts == ["a"]
    assert merged.data.decode().splitlines()[2:4] == ["=======", ">>>>>>> theirs (a)"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(LockError, match="theirs:2: id 'a' is out of order"):
        merge_lines([], [], [line("b"), line("a")])


HEADER = Header(
    name="d",
    version=1,
    script="r.py",
    entrypoint=None,
    params={},
    script_digest="blake3:s",
    entry_digest="blake3:e",
    source=".",
    snapshot="blake3:0",
    splits={"test": (1, "blake3:t"), "train": (2, "blake3:a")},
)


def test_headers_merge_field_by_field() -> None:
    ours = replace(
        HEADER, params={"k": 1}, splits={**HEADER.splits, "train": (3, "blake3:b")}, snapshot="blake3:1"
    )
    theirs = replace(HEADER, splits={**HEADER.splits, "train": (2, "blake3:c")}, snapshot="blake3:2")
    asked = []

    def merged_split(name: str, *infos: object) -> tuple[int, str]:
        asked.append((name, *infos))
        return (4, "blake3:m")

    result = merge_headers(HEADER, ours, theirs, merged_split)
    assert result.conflicts == []
    assert asked == [("train", (2, "blake3:a"), (3, "blake3:b"), (2, "blake3:c"))]
    assert result.header.params == {"k": 1}
    assert result.header.merged
    assert result.header.splits == {"test": (1, "blake3:t"), "train": (4, "blake3:m")}
    assert result.header.snapshot == "merged:blake3:1,blake3:2"


def test_header_conflicts_are_named() -> None:
    ours, theirs = replace(HEADER, params={"k": 1}), replace(HEADER, params={"k": 2})
    result = merge_headers(HEADER, ours, theirs, lambda *a: "unused")
    assert result.conflicts == ['\'params\' changed on both sides ({"k":1} and {"k":2})']


# --- properties --------------------------------------------------------------------------

IDS = [f"r{i:02}" for i in range(16)]
base_st = st.dictionaries(st.sampled_from(IDS), st.integers(1, 3))
edit_st = st.dictionaries(st.sampled_from(IDS), st.one_of(st.none(), st.integers(4, 6)))  # None: remove


def _lines(records: dict[str, int]) -> list[bytes]:
    return [line(rid, v) for rid, v in sorted(records.items())]


def _apply(base: dict[str, int], edits: dict[str, int | None]) -> dict[str, int]:
    out = dict(base)
    for rid, v in edits.items():
        if v is None:
            out.pop(rid, None)
        else:
            out[rid] = v
    return out


@settings(max_examples=300, deadline=None)
@given(base_st, edit_st, edit_st)
def test_disjoint_merges_are_order_independent(
    base: dict[str, int], a: dict[str, int | None], b: dict[str, int | None]
) -> None:
    b = {rid: v for rid, v in b.items() if rid not in a}  # disjoint by id
    ours, theirs = _apply(base, a), _apply(base, b)
    one = merge_lines(_lines(base), _lines(ours), _lines(theirs))
    two = merge_lines(_lines(base), _lines(theirs), _lines(ours))
    assert one.conflicts == two.conflicts == []
    assert one.data == two.data == b"".join(x + b"\n" for x in _lines(_apply(_apply(base, a), b)))


# --- shard lists (format 2) ------------------------------------------------------------------

SMALL_MERGE = ShardRule(256, 1024, 4096)
MERGE_IDS = [f"sub-{i:04d}/anat/f{i}.nii.gz" for i in range(800)]


def _shards_of(ids: Iterable[str], bumped: set[str], rule: ShardRule) -> tuple[Shard, ...]:
    lines = [
        Resource(rid, 2 if rid in bumped else 1, "File", attrs={"n": len(rid)}).canonical_line() + b"\n"
        for rid in sorted(ids)
    ]
    return Split.from_terminated(lines, rule).shards


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 780),
    st.integers(0, 20),
    st.integers(0, 780),
    st.integers(0, 20),
    st.sampled_from([ShardRule(256, 1024, 4096), ShardRule(256, 1024, 1500)]),
)
def test_merged_shard_lists_are_the_shards_of_the_merged_lines(
    a: int, a_len: int, b: int, b_len: int, rule: ShardRule
) -> None:
    ours, theirs = set(MERGE_IDS[a : a + a_len]), set(MERGE_IDS[b : b + b_len])
    base = _shards_of(MERGE_IDS, set(), rule)
    merged = merge_shard_lists(base, _shards_of(MERGE_IDS, ours, rule), _shards_of(MERGE_IDS, theirs, rule))
    if merged is not None:
        assert merged == _shards_of(MERGE_IDS, ours | theirs, rule)
    if abs(a - b) > 300:
        assert merged is not None  # changes far apart always merge


def test_shard_lists_changed_in_one_shard_on_both_sides_do_not_merge() -> None:
    base = _shards_of(MERGE_IDS, set(), SMALL_MERGE)
    ours = _shards_of(MERGE_IDS, {MERGE_IDS[100]}, SMALL_MERGE)
    theirs = _shards_of(MERGE_IDS, {MERGE_IDS[101]}, SMALL_MERGE)
    assert merge_shard_lists(base, ours, theirs) is None
    assert merge_shard_lists(base, ours, base) == ours
    assert merge_shard_lists(base, ours, ours) == ours
