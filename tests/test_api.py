from __future__ import annotations

from pathlib import Path

import pytest

import vxds
from vxds.errors import NotFoundError

REPO = Path(__file__).resolve().parents[1]


def test_public_api_is_small_and_lazy() -> None:
    assert sorted(vxds.__all__) == sorted(
        ["Client", "Resource", "__version__", "dataset_compilation_entrypoint", "load_lock", "recipe"]
    )
    assert vxds.dataset_compilation_entrypoint is vxds.recipe
    with pytest.raises(AttributeError):
        vxds.nothing  # noqa: B018


def test_load_lock_by_name_version_and_path() -> None:
    lock = vxds.load_lock("viseg_training@1", root=REPO)
    assert lock.header.key == "viseg_training@1"
    assert sorted(lock.splits) == ["test", "train"]
    ids = [r.id for r in lock.resources("test")]
    assert ids == sorted(ids) and len(ids) == lock.splits["test"].count == 4
    assert all(isinstance(r, vxds.Resource) for r in lock.resources())
    highest = vxds.load_lock("viseg_training", root=REPO)
    assert highest.header.version == 2
    assert vxds.load_lock(REPO / "locks/viseg_training/1").digest == lock.digest


def test_load_lock_unknown_dataset() -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        vxds.load_lock("nope", root=REPO)
