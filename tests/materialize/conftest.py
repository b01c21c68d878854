"""Fixtures for materialize tests: the example project's locks and sample data in a temp folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from vxds.locks.store import lock_dir, read_lock
from vxds.materialize import Target

REPO = Path(__file__).resolve().parents[2]

MakeTarget = Callable[..., Target]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the repository's locks and sample data (safe to change)."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "sample-data", root / "sample-data")
    shutil.copytree(REPO / "locks", root / "locks")
    return root


@pytest.fixture
def target(sample: Path) -> MakeTarget:
    """``target("viseg_training", 1)``: a Target over the copied lock and sample data."""

    def make(name: str, version: int) -> Target:
        lock = read_lock(lock_dir(sample / "locks", name, version))
        return Target(name, version, lock.header, lock.splits, "./sample-data", sample)

    return make
