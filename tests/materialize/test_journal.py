"""The journal: lines handed to the system in batches, fsynced seldom, and a killed run recovered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vxds.materialize.check import check_output
from vxds.materialize.receipt import JOURNAL, RECEIPT, Entry, Journal, read_journal

ENTRY = Entry("blake3:" + "0" * 64, 1, "a", "blake3:" + "0" * 64, "files", (1, 2, 3))


def _synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return synced


def test_a_batch_of_lines_reaches_the_system_without_an_fsync_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced(monkeypatch)
    journal = Journal(tmp_path)
    for i in range(Journal.FLUSH_EVERY * 3):
        journal.add(f"all/{i}.nii", ENTRY)
    # A killed process loses only what is still in its buffer: these lines are readable now.
    assert len(read_journal(tmp_path)) == Journal.FLUSH_EVERY * 3
    assert synced.count(str(tmp_path / JOURNAL)) == 0  # within SYNC_SECONDS of opening
    journal.close()
    assert synced.count(str(tmp_path / JOURNAL)) == 1


def test_the_journal_is_fsynced_again_once_sync_seconds_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced(monkeypatch)
    monkeypatch.setattr(Journal, "SYNC_SECONDS", 0.0)
    journal = Journal(tmp_path)
    for i in range(Journal.FLUSH_EVERY * 2):
        journal.add(f"all/{i}.nii", ENTRY)
    assert synced.count(str(tmp_path / JOURNAL)) == 2
    journal.close()


RECIPE = """import vxds


@vxds.recipe()
def tree(client):
    return {"all": list(client.list())}
"""


def _vxds(*args: str) -> list[str]:
    return [sys.executable, "-m", "vxds", *args]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """A locked project over 4,000 small files in 400 folders."""
    root = tmp_path / "project"
    (root / "recipes").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./source"\n')
    (root / "datasets.yaml").write_text("- name: tree\n  version: 1\n  script_location: ./recipes/tree.py\n")
    (root / "recipes/tree.py").write_text(RECIPE)
    for i in range(4000):
        path = root / f"source/sub-{i // 10:04d}/anat/f{i % 10}.nii"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}".encode() * 20)
    subprocess.run(_vxds("lock", "tree", "--root", str(root), "--quiet"), check=True)
    return root


def test_a_run_killed_mid_way_is_finished_by_the_next_from_its_journal(many: Path) -> None:
    out = many / "out"
    argv = _vxds("materialize", "tree", "-o", str(out), "-m", "files", "--mode", "hardlink", "-q")
    proc = subprocess.Popen([*argv, "--root", str(many)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / JOURNAL).is_file() and len(read_journal(out)) >= Journal.FLUSH_EVERY:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journalled = read_journal(out)
    if not journalled or (out / RECEIPT).exists():  # pragma: no cover - the run was too quick
        pytest.fail("the run finished before it could be killed: make the tree larger")
    for rel, entry in journalled.items():  # every journalled file is there, as journalled
        st = (out / rel).stat()
        assert entry.stat == (st.st_size, st.st_mtime_ns, st.st_ino)
    again = subprocess.run([*argv[:-1], "--root", str(many)], capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert check_output(out) == []
    assert not (out / JOURNAL).exists()
    placed = int(again.stdout.split(": ", 1)[1].split(" placed")[0])
    assert placed <= 4000 - len(journalled)  # the journalled files were not placed again
    assert len(list((out / "all").rglob("*.nii"))) == 4000
