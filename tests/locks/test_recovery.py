"""vxds/locks/recovery.py: a lock a killed write left aside is put back, and only then."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import make_lock, make_resource, make_split
from vxds.locks.recovery import recover
from vxds.locks.store import lock_dir, write_lock


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    directory = lock_dir(tmp_path / "locks", "d", 1)
    assert write_lock(make_lock(train=make_split(make_resource("a"), make_resource("b"))), directory)
    return directory


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_recover_puts_back_a_lock_left_aside(locked: Path) -> None:
    before = _snapshot(locked)
    aside = locked.parent / ".1.old-4242"
    os.replace(locked, aside)
    recover(locked)
    assert _snapshot(locked) == before
    assert not aside.exists()


def test_recover_leaves_an_existing_lock_alone(locked: Path) -> None:
    stray = locked.parent / ".1.old-4242"
    stray.mkdir()
    recover(locked)
    assert stray.is_dir()
    assert (locked / "lock.toml").is_file()
