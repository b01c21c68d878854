"""Options before the subcommand (vxds -C DIR -q -v --color), JSON errors, recipe prints."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Invoke
from vxds.cli.output import color_choice


def test_dash_c_runs_in_another_folder(
    project: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = invoke("list")
    monkeypatch.chdir(project.parent)
    there = invoke("-C", "project", "list")
    assert there.exit_code == 0, there.output
    assert there.stdout == here.stdout
    assert invoke("-C", "nowhere", "list").exit_code == 2


def test_dash_v_is_the_version(invoke: Invoke) -> None:
    assert invoke("-V").stdout == invoke("--version").stdout


def test_global_quiet_and_verbose_reach_the_subcommand(project: Path, invoke: Invoke) -> None:
    assert invoke("-q", "lock", "--all").stdout == invoke("lock", "--all", "-q").stdout
    assert invoke("-v", "lock", "--all").stdout == invoke("lock", "--all", "-v").stdout
    assert invoke("-v", "lock", "--all").stdout != invoke("lock", "--all").stdout
    timed = invoke("-vv", "list")
    assert timed.exit_code == 0
    assert timed.stderr.startswith("vxds: ")
    assert timed.stderr.rstrip().endswith(" s")
    both = invoke("-q", "-v", "list")
    assert both.exit_code == 2
    assert "-q and -v" in both.stderr


def test_color_choice() -> None:
    assert color_choice("always", {"NO_COLOR": "1"}) is True
    assert color_choice("never", {}) is False
    assert color_choice("auto", {"NO_COLOR": "1"}) is False
    assert color_choice("auto", {"NO_COLOR": ""}) is None
    assert color_choice("auto", {}) is None


def _on_a_terminal(project: Path, *args: str, no_color: bool = False) -> bytes:
    """What ``python -m vxds ARGS list`` writes to a pseudo-terminal."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vxds", *args, "list"], cwd=project, env=env, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait() == 0
    return b"".join(chunks)


def test_colour_on_a_terminal_follows_color_and_no_color(project: Path) -> None:
    assert b"\x1b[" in _on_a_terminal(project)
    assert b"\x1b[" not in _on_a_terminal(project, no_color=True)
    assert b"\x1b[" not in _on_a_terminal(project, "--color", "never")
    assert b"\x1b[" in _on_a_terminal(project, "--color", "always", no_color=True)


def test_color_always_in_a_pipe(project: Path, invoke: Invoke) -> None:
    assert "\x1b[" not in invoke("list").stdout
    assert "\x1b[" in invoke("--color", "always", "list").stdout


def test_a_recipes_print_goes_to_stderr(project: Path, invoke: Invoke) -> None:
    recipe = project / "recipes/basel.py"
    text = recipe.read_text().replace(
        '    """Returns all data associated with the Basel trial."""\n',
        '    """Returns all data associated with the Basel trial."""\n    print("hello from the recipe")\n',
    )
    recipe.write_text('print("imported")\n' + text)
    result = invoke("lock", "all_basel_data", "--format", "json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    assert "hello from the recipe" in result.stderr
    assert "imported" in result.stderr


def test_a_json_error_is_json_on_stdout(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "no_such_dataset", "--format", "json")
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["code"] == 2
    assert "no_such_dataset" in body["error"]
    assert "no_such_dataset" in result.stderr


def test_global_quiet_reaches_commands_without_their_own(project: Path, invoke: Invoke) -> None:
    """``vxds -q`` drops the notes on standard error of a command that has no -q (catalog ls)."""
    catalog = ["--catalog", "cat.db"]
    assert invoke("catalog", "init", *catalog).exit_code == 0
    assert invoke("catalog", "ingest", "sample-data/zurich", *catalog, "-q").exit_code == 0
    loud, quiet = invoke("catalog", "ls", *catalog), invoke("-q", "catalog", "ls", *catalog)
    assert loud.exit_code == quiet.exit_code == 0
    assert loud.stderr.endswith(" resources at snapshot 1\n")
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout != ""
