"""A folder store's batches: a push killed before or inside a batch's flush leaves whole
objects only, and the next push sends exactly what was not made an object."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from blake3 import blake3

import vxds.store.folder as folder_module
from tests.helpers import commit_all, git
from tests.store.conftest import objects, vxds
from vxds.locks.verified_read import IntegrityError
from vxds.store.cas import open_store

# A push in a child process with batches of 30 objects, killed (SIGKILL) at the point named:
# at its last flush, before anything of it is done, or at the 40th rename.
CHILD = """
import os, signal, sys
import vxds.store.folder as folder

folder.BATCH_OBJECTS, folder.BATCH_SECONDS = 30, 1e9
where, argv = sys.argv[1], sys.argv[2:]
flush, rename = folder.FolderBackend.flush, folder.rename_new
counts = {"flush": 0, "rename": 0}

def killed(kind, at, call):
    def wrapper(*args):
        counts[kind] += 1
        if where == kind and counts[kind] == at:
            os.kill(os.getpid(), signal.SIGKILL)
        return call(*args)
    return wrapper

folder.FolderBackend.flush = killed("flush", 2, flush)
folder.rename_new = killed("rename", 40, rename)
from vxds.cli.main import cli
cli(argv, prog_name="vxds")
"""


@pytest.fixture
def fifty(project: Path) -> Path:
    """The demo project with 47 more small files: 50 objects to push, locked and committed."""
    for n in range(4, 51):
        folder = project / f"data/sub-{n:02d}/anat"
        folder.mkdir(parents=True)
        (folder / f"sub-{n:02d}_T2w.nii.gz").write_bytes(os.urandom(1000 + n))
    git(project, "init", "-q", "-b", "main")
    assert vxds(project, "lock", "--all").exit_code == 0
    commit_all(project, "lock")
    return project


def _temporaries(store: Path) -> list[Path]:
    return [p for p in (store / "blake3").rglob(".*") if p.is_file()]


@pytest.mark.parametrize(("where", "whole"), [("flush", 30), ("rename", 39)])
def test_a_push_killed_in_a_batch_leaves_whole_objects_and_resumes(
    fifty: Path, tmp_path: Path, where: str, whole: int
) -> None:
    store = tmp_path / "store"
    argv = ["push", "--all", "-j", "1", "-q", "--store", str(store), "--root", str(fifty)]
    child = subprocess.run([sys.executable, "-c", CHILD, where, *argv], capture_output=True, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr
    before = objects(store)
    assert len(before) == whole
    for rel in before:  # every visible object is whole: its bytes hash to its name
        assert blake3((store / "blake3" / rel).read_bytes()).hexdigest() == rel.replace("/", "")
    left = _temporaries(store)
    assert len(left) == 50 - whole  # checked, never renamed: not objects
    assert all(p.name.endswith(".tmp") for p in left)
    assert len(open_store(str(store), base=fifty, options={}).digests()) == whole
    again = vxds(fifty, "push", "--all", "--store", str(store))
    assert again.exit_code == 0, again.output
    assert f"{50 - whole} uploaded" in again.output
    assert f"{whole} already in the store" in again.output
    after = objects(store)
    assert len(after) == 50
    for rel in after:
        assert blake3((store / "blake3" / rel).read_bytes()).hexdigest() == rel.replace("/", "")
    assert len(_temporaries(store)) == 50 - whole  # the killed push's, for gc a day later


def test_a_kernel_copy_shorter_than_its_source_is_never_an_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path / "store"), base=tmp_path, options={})
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(33 << 20))
    digest = blake3(big.read_bytes()).hexdigest()
    real = folder_module.copy_fd

    def short(src: int, dst: int) -> int:
        real(src, dst)
        os.ftruncate(dst, 1 << 20)  # as a kernel copy that stopped early would leave it
        return 1 << 20

    monkeypatch.setattr(folder_module, "copy_fd", short)
    with pytest.raises(IntegrityError, match="read 1048576 bytes, the lock says 34603008"):
        store.put_file(digest, str(big), 33 << 20, what="big.bin")
    store.flush()
    assert store.listing() == {}
    assert not any((tmp_path / "store").rglob("*.tmp"))
