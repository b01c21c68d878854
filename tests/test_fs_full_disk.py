"""A full disk during ``vxds lock``, through the real command line: the one error line names
the file that could not be written, the exit code is 2, there is no traceback, and nothing
half-written stays (no temporary file, no new or changed lock).

In-process (click's runner) the disk is made full by making ``os.write`` or ``os.fsync``
fail with ENOSPC: every vxds write goes through them (``vxds.fs.writer``). In a real process
the kernel itself refuses the writes (a file size limit, ``RLIMIT_FSIZE``: the write fails
with EFBIG), which does not depend on how vxds writes.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vxds.cli.main import cli

VXDS = str(Path(sys.executable).with_name("vxds"))
N = 3000  # about 800 KB of lock lines: a run of shards well past any buffer
RECIPE = f"""\
import vxds


@vxds.recipe()
def big(client):
    items = [{{"id": f"r/{{i:07d}}", "version": 1, "attrs": {{"pad": "x" * 200}}}} for i in range({N})]
    return {{"train": items[: {N} // 2], "test": items[{N} // 2 :]}}
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    (root / "recipes").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("a\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (root / "datasets.yaml").write_text("- name: big\n  version: 1\n  script_location: ./recipes/big.py\n")
    (root / "recipes" / "big.py").write_text(RECIPE)
    monkeypatch.chdir(root)
    return root


def _lock() -> Result:
    return CliRunner().invoke(cli, ["lock", "big"], catch_exceptions=False)


def _no_space(*args: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but vxds' caches in ``.vxds/`` (written before the failure;
    ``_leftovers`` looks there)."""
    skip = (".vxds/", "recipes/__pycache__/")
    files = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_file() and not name.startswith(skip):
            files[name] = path.read_bytes()
    return files


def _leftovers(root: Path) -> list[str]:
    """Temporary files (``.name.pid-random.tmp``), lock folders being written, workspaces."""
    found = [p.relative_to(root).as_posix() for p in root.rglob("*") if ".tmp" in p.name]
    work = root / ".vxds" / "tmp"
    return found + ([f".vxds/tmp/{name}" for name in os.listdir(work)] if work.is_dir() else [])


def _error_line(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("existing", [False, True], ids=["first-lock", "relock"])
def test_a_write_that_fails_names_the_file_and_leaves_nothing_half_written(
    proj: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    if existing:
        assert _lock().exit_code == 0
        (proj / "recipes" / "big.py").write_text(RECIPE.replace('"x" * 200', '"y" * 200'))
    before = _tree(proj)
    monkeypatch.setattr(os, "write", _no_space)
    result = _lock()
    assert result.exit_code == 2
    line = _error_line(result.output)
    work = proj / ".vxds" / "tmp"
    assert line.startswith(f"error: {work}{os.sep}lock-"), line  # the shard being written, by name
    assert line.endswith(": cannot lock big@1: No space left on device")
    assert _tree(proj) == before  # no lock written, the old one (if any) untouched
    assert _leftovers(proj) == []


def test_a_flush_that_fails_names_the_lock_file_by_its_final_name(
    proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fsync

    def no_space_for_files(fd: int) -> None:  # a folder's flush has no bytes to place
        if stat.S_ISREG(os.fstat(fd).st_mode):
            _no_space()
        real(fd)

    monkeypatch.setattr(os, "fsync", no_space_for_files)
    result = _lock()
    assert result.exit_code == 2
    line = _error_line(result.output)
    assert f"{proj / 'locks' / 'big' / '1'}{os.sep}" in line  # not the folder's temporary name
    assert "big@1" in line
    assert line.endswith(": No space left on device")
    assert not (proj / "locks" / "big").exists() or os.listdir(proj / "locks" / "big") == []
    assert _leftovers(proj) == []


def _limit_file_size() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))


def test_a_write_the_kernel_refuses_names_the_file(proj: Path) -> None:
    """A real process (Python ignores SIGXFSZ, so the write fails with EFBIG)."""
    before = _tree(proj)
    result = subprocess.run(
        [VXDS, "lock", "big"], capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size
    )
    assert result.returncode == 2, result.stderr
    line = _error_line(result.stdout + result.stderr)
    assert line.startswith(f"error: {proj / '.vxds' / 'tmp'}{os.sep}lock-"), line
    assert line.endswith(": cannot lock big@1: File too large")
    assert _tree(proj) == before
    assert _leftovers(proj) == []


def test_a_dataset_that_cannot_be_written_does_not_stop_the_next(
    proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed write is that dataset's error (docs/api.md); ``lock --all`` goes on."""
    (proj / "recipes" / "other.py").write_text(
        RECIPE.replace('{"train": items[', '{"all": items[').replace("def big", "def other")
    )
    with (proj / "datasets.yaml").open("a") as manifest:
        manifest.write("- name: other\n  version: 1\n  script_location: ./recipes/other.py\n")
    real = os.write

    def full_for_train(fd: int, data: bytes) -> int:  # only big@1 has a split named train
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("shard.train."):
            _no_space()
        return real(fd, data)

    monkeypatch.setattr(os, "write", full_for_train)
    result = CliRunner().invoke(cli, ["lock", "--all"], catch_exceptions=False)
    assert result.exit_code == 2
    assert _error_line(result.output).endswith(": cannot lock big@1: No space left on device")
    assert "written  other@1: all 1500" in result.output
    assert sorted(os.listdir(proj / "locks")) == ["other"]
    assert _leftovers(proj) == []
