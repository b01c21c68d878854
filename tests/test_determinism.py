"""Locking the repository's own sample datasets is byte-identical whatever the hash seed
or working directory, and identical to the committed locks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("datasets.yaml", "recipes", "sample-data", "pyproject.toml")


def _copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def _lock_all(project: Path, cwd: Path, seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed, "NO_COLOR": "1"}
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "vxds", "lock", "--all", "--root", str(project)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_locks_are_byte_identical_across_seeds_folders_and_the_repository(tmp_path: Path) -> None:
    one = _copy_project(tmp_path / "one")
    two = _copy_project(tmp_path / "deeper" / "two")
    _lock_all(one, cwd=one, seed="0")
    _lock_all(two, cwd=tmp_path / "elsewhere", seed="4242")
    first, second, committed = _files(one / "locks"), _files(two / "locks"), _files(ROOT / "locks")
    assert len(committed) >= 4 * 2
    assert sorted(first) == sorted(second) == sorted(committed)
    assert [name for name in first if first[name] != second[name]] == []
    assert [name for name in first if first[name] != committed[name]] == []
