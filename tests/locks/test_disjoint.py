"""vxds/locks/disjoint.py: when a header claims ``disjoint_by``, how the claim reads back and
is covered by the digest, what a merge keeps of it, and the diff that trusts it reading only
the shards that differ."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.locks.test_disjoint_property import _lock, _placed
from tests.locks.test_shard_join import _recording
from tests.locks.test_shards import SMALL_RULE, _header
from vxds.locks.diff import diff_refs
from vxds.locks.disjoint import claimed, claims, merged_claim
from vxds.locks.format import HEADER, CorruptLock, Header, parse_header, render_header
from vxds.locks.merge import merge_headers
from vxds.locks.refs import folder_lock
from vxds.locks.splits import Split
from vxds.locks.store import write_lock
from vxds.resource import Resource

POOL = [f"sub-{i // 10:03d}/f{i:04d}.nii.gz" for i in range(1000)]


def _split(ids: list[str], subject: int = 0) -> Split:
    lines = [Resource(r, 1, "File", attrs={"g": subject}).canonical_line() + b"\n" for r in sorted(ids)]
    return Split.from_terminated(lines, SMALL_RULE)


def _two(train: int, test: int) -> Header:
    splits = {"train": _split(POOL[:train]), "test": _split(POOL[500 : 500 + test])}
    return _header({k: v for k, v in splits.items() if v.count})


@pytest.mark.parametrize(
    ("header", "group_by", "overlap", "claim"),
    [
        (_two(400, 200), "attrs.g", False, "attrs.g"),  # two splits, sharded: claimed
        (_two(400, 200), None, False, None),  # no group_by
        (_two(400, 200), "attrs.g", True, None),  # groups may overlap: nothing was checked
        (_two(400, 0), "attrs.g", False, None),  # one split: nothing to be disjoint from
        (_two(3, 2), "attrs.g", False, None),  # no split of several shards: nothing to skip
    ],
)
def test_a_lock_claims_disjoint_by_only_when_it_saves_a_reader_work(
    header: Header, group_by: str | None, overlap: bool, claim: str | None
) -> None:
    assert claimed(header, group_by, overlap).disjoint_by == claim


def test_the_claim_reads_back_and_the_digest_covers_it_only_when_present() -> None:
    plain = _two(400, 200)
    claim = dataclasses.replace(plain, disjoint_by="attrs.subject")
    text = render_header(claim)
    assert "[lock]\n# No value of attrs.subject is in two splits" in text
    assert '\ndisjoint_by = "attrs.subject"\ndigest = ' in text
    assert parse_header(text, Path(HEADER)) == (claim, claim.digest)
    assert "disjoint_by" not in render_header(plain)
    assert claim.digest != plain.digest
    assert "disjoint_by" not in plain.body()  # no digest of a lock without it changes
    for bad in ('""', "1", "true"):
        edited = text.replace('disjoint_by = "attrs.subject"', f"disjoint_by = {bad}")
        with pytest.raises(CorruptLock, match=r"'lock\.disjoint_by' is not a field name"):
            parse_header(edited, Path(HEADER))


def test_a_merge_keeps_the_claim_only_of_a_side_whose_resources_it_holds() -> None:
    base = claimed(_two(400, 200), "attrs.g", False)
    ours = dataclasses.replace(base, params={"x": 1})  # the header alone changed
    theirs = claimed(_two(401, 200), "attrs.g", False)  # a resource added
    merged = merge_headers(base, ours, theirs, lambda *_: None)
    assert merged.header.splits == theirs.splits
    assert merged.header.disjoint_by == "attrs.g"
    both = claimed(_two(400, 201), "attrs.g", False)  # a resource added on our side too
    apart = dataclasses.replace(both, splits={**theirs.splits, "test": both.splits["test"]})
    assert merged_claim(both, theirs, apart) is None  # no side's resources: not proven
    unclaimed = dataclasses.replace(theirs, disjoint_by=None)
    assert merge_headers(base, ours, unclaimed, lambda *_: None).header.disjoint_by is None


def test_a_missing_side_claims_any_field() -> None:
    assert claims(None, "attrs.g")


def _diff_reads(a: Path, b: Path, cache: Path) -> tuple[list[str], list[dict[str, object]]]:
    seen: list[str] = []
    diff = diff_refs(
        _recording(folder_lock(a, "old", cache), seen),
        _recording(folder_lock(b, "new", cache), seen),
        group_by="attrs.g",
    )
    return seen, [w.to_json() for w in diff.warnings]


@pytest.mark.parametrize(
    ("old_claim", "new_claim"), [("attrs.g", "attrs.g"), (None, None), ("attrs.g", None), ("attrs.g", "x")]
)
def test_a_first_diff_of_claimed_locks_reads_only_the_shards_that_differ(
    tmp_path: Path, old_claim: str | None, new_claim: str | None
) -> None:
    """Two splits by subject; subject 3 moves from test to train. Both sides claiming the
    diff's group_by: the changed shards alone are read, and the warning is found; else every
    equal shard is read too, as before."""
    home = {g: ("test" if g % 10 == 3 else "train") for g in range(100)}
    records = {rid: ("File", 1, i // 10) for i, rid in enumerate(POOL)}
    old, new = _placed(records, home), _placed(records, {**home, 3: "train"})
    write_lock(_lock(old, SMALL_RULE, old_claim), tmp_path / "a")
    write_lock(_lock(new, SMALL_RULE, new_claim), tmp_path / "b")
    files = [p.name for p in (tmp_path / "b").iterdir() if p.name != HEADER]
    assert len(files) > 30
    seen, warnings = _diff_reads(tmp_path / "a", tmp_path / "b", tmp_path / "cache")
    assert [(w["kind"], w["subject"]) for w in warnings] == [("held-out-to-training", 3)]
    if old_claim == new_claim == "attrs.g":
        assert 2 <= len(seen) <= 8  # around the moved subject in each split, on each side
        assert not (tmp_path / "cache" / "shard-tallies").exists()
    else:
        assert len(seen) >= len(files)
