"""The ``disjoint_by`` claim in a diff, as a property: for random locks of two or three
splits that are disjoint by a group (every resource of a group in its group's split), and
random edits (resources added, removed, changed, given another group; whole groups moved
to another split), the shard-wise diff with both headers claiming ``disjoint_by`` and with
neither, each with a cold and a warm tally cache, and of locks listing no types, claimed and
not, all say what the unsharded diff says, warnings included."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.locks.test_shard_join import _untyped
from tests.locks.test_shard_join_property import _diff, _run, _warnings
from tests.locks.test_shards import ONE_SHARD, SMALL_RULE, _header
from vxds.locks.format import HEADER, render_header
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split
from vxds.locks.store import Lock, read_header, write_lock
from vxds.resource import Resource

POOL = [f"sub-{i // 8:02d}/f{i:03d}.nii.gz" for i in range(320)]
GROUPS = range(16)
# type, version, group (attrs.g); the split is the group's
RECORD = st.tuples(st.sampled_from(["File", "Volume"]), st.integers(1, 2), st.sampled_from(GROUPS))
Records = dict[str, tuple[str, int, int]]
Placed = dict[str, tuple[str, str, int, int]]  # id -> split, type, version, group


def _placed(records: Records, home: dict[int, str]) -> Placed:
    return {rid: (home[g], kind, version, g) for rid, (kind, version, g) in records.items()}


def _lock(records: Placed, rule: ShardRule, claim: str | None) -> Lock:
    lines: dict[str, list[bytes]] = {}
    for rid in sorted(records):
        split, kind, version, group = records[rid]
        line = Resource(rid, version, kind, attrs={"g": group}).canonical_line() + b"\n"
        lines.setdefault(split, []).append(line)
    splits = {name: Split.from_terminated(found, rule) for name, found in sorted(lines.items())}
    return Lock(dataclasses.replace(_header(splits), disjoint_by=claim), splits)


def _claim(folder: Path, claim: str | None) -> None:
    header = read_header(folder)[0]
    (folder / HEADER).write_text(render_header(dataclasses.replace(header, disjoint_by=claim)))


def _homes(splits: list[str]) -> st.SearchStrategy[dict[int, str]]:
    return st.fixed_dictionaries({g: st.sampled_from(splits) for g in GROUPS})


@st.composite
def _cases(draw: st.DrawFn) -> tuple[Placed, Placed]:
    splits = draw(st.sampled_from([["train", "test"], ["train", "test", "val"]]))
    home = draw(_homes(splits))
    moved = {**home, **draw(st.dictionaries(st.sampled_from(GROUPS), st.sampled_from(splits), max_size=4))}
    old = draw(st.dictionaries(st.sampled_from(POOL), RECORD, min_size=1, max_size=240))
    edits = draw(st.dictionaries(st.sampled_from(POOL), st.none() | RECORD, max_size=30))
    new = {rid: r for rid, r in {**old, **edits}.items() if r is not None} or dict(list(old.items())[:1])
    return _placed(old, home), _placed(new, moved)


def _check(root: Path, old: Placed, new: Placed, by: tuple[str, ...]) -> None:
    for name, records, rule, claim in (
        ("flat-a", old, ONE_SHARD, None),
        ("flat-b", new, ONE_SHARD, None),
        ("a", old, SMALL_RULE, "attrs.g"),
        ("b", new, SMALL_RULE, "attrs.g"),
    ):
        write_lock(_lock(records, rule, claim), root / name)
    unsharded = _run(root / "flat-a", root / "flat-b", None, by)
    whole: dict[str, Any] = unsharded.to_json()
    assert whole["warnings"] == _warnings(old, new, unsharded.changes)  # every split's keys
    assert "group-in-two-splits" not in {w["kind"] for w in whole["warnings"]}  # disjoint, as built
    for claim in ("attrs.g", None):  # both headers claiming disjoint_by, then neither
        for side in ("a", "b"):
            _claim(root / side, claim)
        cache = root / f"cache-{claim}"
        assert _diff(root / "a", root / "b", cache, by) == whole  # no tally cached
        assert _diff(root / "a", root / "b", cache, by) == whole  # with what it cached
    _untyped(root / "a")
    _untyped(root / "b")
    assert _diff(root / "a", root / "b", root / "untyped", by) == whole  # as a lock of the last stop
    for side in ("a", "b"):
        _claim(root / side, "attrs.g")
    assert _diff(root / "a", root / "b", root / "untyped-claimed", by) == whole  # no types, claimed


@settings(max_examples=40, deadline=None)
@given(_cases(), st.sampled_from([(), ("attrs.g",)]))
def test_a_diff_trusting_disjoint_by_is_the_unsharded_diff(
    case: tuple[Placed, Placed], by: tuple[str, ...]
) -> None:
    old, new = case
    with tempfile.TemporaryDirectory() as tmp:
        _check(Path(tmp), old, new, by)


def test_the_property_sees_held_out_groups_now_trained_on(tmp_path: Path) -> None:
    """Its locks are cut into many shards, and a group moved from test to train warns: the
    property can fail."""
    home = {g: ("test" if g % 4 == 0 else "train") for g in GROUPS}
    old = _placed({rid: ("File", 1, i // 20) for i, rid in enumerate(POOL)}, home)
    new = _placed({rid: ("File", 1, i // 20) for i, rid in enumerate(POOL)}, {**home, 4: "train"})
    assert len(_lock(old, SMALL_RULE, None).splits["train"].shards) > 10
    _check(tmp_path, old, new, ())
    found = _diff(tmp_path / "a", tmp_path / "b", tmp_path / "again", ())
    assert found["summary"]["moved"] == 20
    assert [w["kind"] for w in found["warnings"]] == ["held-out-to-training"]
    assert found["warnings"][0]["subject"] == 4
