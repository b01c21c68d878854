"""VX403: a lock whose ``lock.toml`` claims ``disjoint_by`` a field that has a value in two
splits, checked on hand-edited locks whatever the manifest's ``group_by`` says, and cached as
the leak checks are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from tests.verify.test_verify import LOCK, _codes, _edit, _lines, _rewrite, _verify, locked
from vxds.locks.store import Lock, read_lock, write_lock
from vxds.verify.findings import Finding

__all__ = ["locked"]  # the fixture, shared with test_verify.py


def _claim(project: Path, field: str | None) -> None:
    """The demo lock's header edited to claim ``disjoint_by = field``, its digest made to match."""
    lock = read_lock(project / LOCK)
    write_lock(Lock(dataclasses.replace(lock.header, disjoint_by=field), lock.splits), project / LOCK)


def _vx403(findings: list[Finding]) -> list[str]:
    return [f.message for f in findings if f.code == "VX403"]


def test_a_true_claim_verifies_and_is_remembered(locked: Path) -> None:
    _claim(locked, "attrs.subject")
    assert _verify(locked) == []
    cached = orjson.loads((locked / ".vxds" / "verified.json").read_bytes())
    assert _verify(locked) == []  # from the cache now
    assert orjson.loads((locked / ".vxds" / "verified.json").read_bytes()) == cached


def test_a_claim_on_a_field_with_a_value_in_two_splits_is_vx403(locked: Path) -> None:
    assert _verify(locked) == []  # the lock's leak check passed and is remembered
    _claim(locked, "attrs.suffix")  # T2w in train and in test
    findings = _verify(locked)
    assert _codes(findings) == ["VX403"]
    assert findings[0].file == "locks/demo/1/lock.toml"
    message = findings[0].message
    assert message.startswith("lock.toml claims disjoint_by attrs.suffix, but 1 value(s) of it are in more")
    assert '"T2w" (test: sub-02/anat/sub-02_T2w.nii.gz, train: sub-01/anat/sub-01_T2w.nii.gz)' in message
    assert message.endswith("relock it ('vxds lock demo@1')")
    assert _codes(_verify(locked)) == ["VX403"]  # a failing check is never remembered


@pytest.mark.parametrize(
    ("manifest", "codes"),
    [
        ("group_by: attrs.subject", ["VX402", "VX403"]),  # the entry's rule and the claim
        ("group_by: attrs.subject\n  allow_group_overlap: true", ["VX203", "VX403"]),
        ("group_by: attrs.nothing", ["VX203", "VX403"]),  # the claim is not the group_by (VX402 scans that)
        ("", ["VX203", "VX403"]),  # no group_by at all
    ],
)
def test_a_subject_in_two_splits_breaks_the_claim_whatever_the_manifest(
    locked: Path, manifest: str, codes: list[str]
) -> None:
    train, test = _lines(locked, "train"), _lines(locked, "test")
    moved = orjson.loads(train[0])
    moved["id"] = "sub-zz/" + moved["id"]  # a resource of subject 01, in test too
    line = orjson.dumps(moved, option=orjson.OPT_SORT_KEYS)
    _rewrite(locked, {"train": train, "test": sorted([*test, line], key=lambda b: orjson.loads(b)["id"])})
    _claim(locked, "attrs.subject")
    _edit(locked / "datasets.yaml", "group_by: attrs.subject", manifest)
    findings = _verify(locked)
    assert sorted(_codes(findings)) == codes
    assert _vx403(findings) == [
        "lock.toml claims disjoint_by attrs.subject, but 1 value(s) of it are in more than one split: "
        '"01" (test: sub-zz/sub-01/anat/sub-01_T2w.nii.gz, train: sub-01/anat/sub-01_T2w.nii.gz); '
        "relock it ('vxds lock demo@1')"
    ]
    _claim(locked, None)  # the same lines without the claim: no VX403
    assert "VX403" not in _codes(_verify(locked))
