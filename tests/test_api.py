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
    assert ids == sorted(ids)
    assert len(ids) == lock.splits["test"].count == 4
    assert all(isinstance(r, vxds.Resource) for r in lock.resources())
    highest = vxds.load_lock("viseg_training", root=REPO)
    assert highest.header.version == 2
    assert vxds.load_lock(REPO / "locks/viseg_training/1").digest == lock.digest


def test_load_lock_unknown_dataset() -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        vxds.load_lock("nope", root=REPO)


def _project_copy(tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "project"
    root.mkdir()
    for name in ("datasets.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("locks", "sample-data", "recipes"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_open_streams_verified_bytes_and_to_records(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    lock = vxds.load_lock("viseg_training@1", root=root)
    first = next(iter(lock))
    with lock.open(first) as fh:
        assert fh.read() == (root / "sample-data" / first.id).read_bytes()
    with lock.open(first.id) as fh:
        assert b"".join(fh) == (root / "sample-data" / first.id).read_bytes()
    records = lock.to_records("test")
    assert len(records) == 4
    assert records[0]["split"] == "test"
    assert set(records[0]) >= {"id", "hash", "attrs"}
    assert len(lock.to_records()) == len(lock) == 26
    with pytest.raises(NotFoundError, match="no split 'val'"):
        lock.to_records("val")
    clinical = vxds.load_lock(root / "locks/clinical_cohort/1")
    record = next(iter(clinical))
    with clinical.open(record) as fh:
        assert b'"participant_id"' in fh.read()


def test_open_raises_when_the_bytes_changed(tmp_path: Path) -> None:
    from vxds.locks.verified_read import IntegrityError

    root = _project_copy(tmp_path)
    lock = vxds.load_lock("viseg_training@1", root=root)
    first = next(iter(lock))
    path = root / "sample-data" / first.id
    path.write_bytes(path.read_bytes()[::-1])
    with lock.open(first) as fh, pytest.raises(IntegrityError, match="does not match the locked hash"):
        fh.read()


def test_loading_a_lock_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vxds\n"
        f"lock = vxds.load_lock('viseg_training@1', root={str(REPO)!r})\n"
        "with lock.open(next(iter(lock))) as fh: fh.read()\n"
        "heavy = {'git', 'rich', 'pyarrow', 'fsspec', 'click', 'numpy', 'pandas', 'jsonschema'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
