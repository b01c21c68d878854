"""The ``vxds-push-check`` hook, run by the real pre-commit framework on ``pre-push``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import GIT_ENV, commit_all
from tests.store.conftest import vxds
from vxds.templates import read

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def _push_check(root: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **GIT_ENV,
        "HOME": str(root),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PRE_COMMIT_HOME": str(root / ".pre-commit-home"),
        **{k: v for k, v in os.environ.items() if k in ("TMPDIR", "LANG")},
    }
    argv = [str(PRE_COMMIT), "run", "vxds-push-check", "--hook-stage", "pre-push", "--all-files"]
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, env=env)


def test_the_hook_fails_until_the_locks_are_pushed(locked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (locked / ".pre-commit-config.yaml").write_text(read("pre-commit-config.yaml.txt"))
    (locked / ".gitignore").write_text(".vxds/\n.pre-commit-home/\n")
    pyproject = locked / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.vxds.store]\nurl = "{store.as_posix()}"\n')
    commit_all(locked, "store and hooks")
    before = _push_check(locked)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "VX801" in before.stdout
    assert vxds(locked, "push", "--all").exit_code == 0
    after = _push_check(locked)
    assert after.returncode == 0, after.stdout + after.stderr
