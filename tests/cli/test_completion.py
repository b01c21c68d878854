"""``vxds completion``: click's completion scripts, and dataset names from the manifest.

Run as a shell runs them: the real ``vxds`` executable in a subprocess, with click's
protocol (``_VXDS_COMPLETE=bash_complete``, ``COMP_WORDS``, ``COMP_CWORD``), and the bash
script itself sourced by bash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Invoke

VXDS = str(Path(sys.executable).parent / "vxds")
EVERY_KEY = [
    "viseg_training",
    "viseg_training@1",
    "viseg_training@2",
    "all_basel_data",
    "all_basel_data@1",
    "clinical_cohort",
    "clinical_cohort@1",
]


def _complete(cwd: Path, line: str, shell: str = "bash") -> list[str]:
    """What ``vxds`` answers a shell asking to complete ``line`` (its last word, maybe empty)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {**os.environ, "_VXDS_COMPLETE": f"{shell}_complete", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    run = subprocess.run([VXDS], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    if shell == "zsh":  # three lines an item: type, value, help
        return run.stdout.splitlines()[1::3]
    return [answer.partition(",")[2] for answer in run.stdout.splitlines() if answer]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_is_clicks_for_the_shell(invoke: Invoke, shell: str) -> None:
    result = invoke("completion", shell)
    assert result.exit_code == 0
    assert f"_VXDS_COMPLETE={shell}_source" not in result.stdout
    assert f"{shell}_complete" in result.stdout  # calls vxds back with the protocol's variable
    assert "_VXDS_COMPLETE" in result.stdout
    env = {**os.environ, "_VXDS_COMPLETE": f"{shell}_source"}
    sourced = subprocess.run([VXDS], env=env, capture_output=True, text=True, check=True).stdout
    assert result.stdout == sourced  # what click's own `_VXDS_COMPLETE=..._source vxds` prints


def test_an_unknown_shell_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("completion", "tcsh")
    assert result.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr


def test_commands_and_options_complete(project: Path) -> None:
    assert _complete(project, "vxds st") == ["status"]
    assert "materialize" in _complete(project, "vxds ")
    assert "--data" in _complete(project, "vxds list --")


def test_dataset_names_and_versions_complete_from_the_manifest(project: Path) -> None:
    assert _complete(project, "vxds show ") == EVERY_KEY
    assert _complete(project, "vxds lock viseg") == EVERY_KEY[:3]
    assert _complete(project, "vxds materialize viseg_training@") == EVERY_KEY[1:3]
    assert _complete(project, "vxds verify all_basel_data clin") == EVERY_KEY[5:]
    assert _complete(project, "vxds log c", shell="zsh") == ["clinical_cohort", "clinical_cohort@1"]
    assert _complete(project, "vxds diff viseg_training@1 viseg_training@") == EVERY_KEY[1:3]


def test_the_project_is_found_from_a_subfolder_dash_c_and_root(project: Path) -> None:
    assert _complete(project / "recipes", "vxds show a") == EVERY_KEY[3:5]
    assert _complete(project.parent, f"vxds -C {project.name} show a") == EVERY_KEY[3:5]
    assert _complete(project.parent, f"vxds bump --root {project.name} a") == EVERY_KEY[3:5]


def test_outside_a_project_nothing_is_offered(tmp_path: Path) -> None:
    assert _complete(tmp_path, "vxds show ") == []


def test_the_bash_script_completes_in_bash(project: Path) -> None:
    body = "source <(vxds completion bash); COMP_WORDS=(vxds show viseg_training@); COMP_CWORD=2; "
    body += '_vxds_completion vxds; printf "%s\\n" "${COMPREPLY[@]}"'
    env = {**os.environ, "PATH": f"{Path(VXDS).parent}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", "-c", body], cwd=project, env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.splitlines() == EVERY_KEY[1:3]
