"""``vxds.load_lock(..., rev=)``: a lock as it was at a Git revision, read from Git objects."""

from __future__ import annotations

from pathlib import Path

import pytest

import vxds
from tests.helpers import REMOVED_T2, Invoke, git
from vxds.errors import NotFoundError
from vxds.locks.verified_read import IntegrityError


def test_lock_at_a_revision(history: Path, invoke: Invoke) -> None:
    now = vxds.load_lock("all_basel_data@1", root=history)
    then = vxds.load_lock("all_basel_data@1", root=history, rev="v1")
    assert then.digest != now.digest
    assert len(then) == len(now) + 1
    removed = REMOVED_T2.removeprefix("sample-data/")
    assert removed in {r.id for r in then}
    assert removed not in {r.id for r in now}
    git(history, "checkout", "-q", "v1")
    assert then == vxds.load_lock("all_basel_data@1", root=history)  # what a checkout would read
    git(history, "checkout", "-q", "main")
    assert vxds.load_lock("viseg_training", root=history, rev="HEAD").header.version == 2


def test_bytes_of_an_old_lock_are_still_checked(history: Path) -> None:
    then = vxds.load_lock("all_basel_data@1", root=history, rev="v1")
    unchanged = then.get("basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T2w.nii.gz")
    with then.open(unchanged) as fh:
        assert fh.read() == (history / "sample-data" / unchanged.id).read_bytes()
    rewritten = then.get("basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz")
    with pytest.raises(IntegrityError), then.open(rewritten) as fh:  # the folder holds new bytes now
        fh.read()


def test_unknown_lock_or_revision(history: Path) -> None:
    with pytest.raises(NotFoundError, match="v1: no lock for nope@1"):
        vxds.load_lock("nope@1", root=history, rev="v1")
    with pytest.raises(vxds.errors.VxdsError, match="unknown revision 'v9'"):
        vxds.load_lock("all_basel_data@1", root=history, rev="v9")
