"""Hostile recipes, manifests and ``[tool.vxds]`` tables (issue 10, items 5 to 7).

A recipe that ends any way other than returning, and a manifest or pyproject.toml built to
crash, hang or exhaust the loader, must each end in a sentence naming the file (and line),
exit 2 (a finding and exit 1 in ``verify``), with nothing written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vxds.cli.main import cli

RECIPE = """\
import os
import sys

import vxds


class Escape(BaseException):
    pass


def escape():
    kind = os.environ.get("HOSTILE_ESCAPE")
    if kind == "exit0":
        sys.exit(0)
    if kind == "exit-text":
        sys.exit("bye")
    if kind == "base":
        raise Escape("gone")
    if kind == "interrupt":
        raise KeyboardInterrupt


if os.environ.get("HOSTILE_WHERE") == "import":
    escape()


def lazily(items):
    escape()
    yield from items


@vxds.recipe()
def demo(client):
    if os.environ.get("HOSTILE_WHERE") == "call":
        escape()
    files = sorted(client.list(), key=lambda r: r.id)
    if os.environ.get("HOSTILE_WHERE") == "split":
        return {"train": lazily(files)}
    return {"train": files}
"""

MANIFEST = """\
- name: demo
  version: 1
  script_location: ./recipes/demo.py
"""

# How each escape shows in the error: the recipe's own words are not enough on their own.
SAYS = {"exit0": "sys.exit(0)", "exit-text": "sys.exit('bye')", "base": "Escape: gone"}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of one recipe over two small files; the current folder."""
    root = tmp_path / "project"
    for rel, text in {
        "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
        "datasets.yaml": MANIFEST,
        "recipes/demo.py": RECIPE,
        "data/a.txt": "a",
        "data/b.txt": "b",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.delenv("HOSTILE_ESCAPE", raising=False)
    monkeypatch.delenv("HOSTILE_WHERE", raising=False)
    return root


def _escape(monkeypatch: pytest.MonkeyPatch, kind: str, where: str) -> None:
    monkeypatch.setenv("HOSTILE_ESCAPE", kind)
    monkeypatch.setenv("HOSTILE_WHERE", where)


# --- item 5: a recipe that does not return ------------------------------------------------

LOCK_COMMANDS = [
    ["lock", "demo"],
    ["lock", "--all", "--check"],
    ["lock", "--stale", "--exit-code"],  # the vxds-lock pre-commit hook
]


@pytest.mark.parametrize("where", ["import", "call", "split"])
@pytest.mark.parametrize("kind", sorted(SAYS))
@pytest.mark.parametrize("args", LOCK_COMMANDS, ids=" ".join)
def test_a_recipe_that_exits_fails_the_lock_and_writes_nothing(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], kind: str, where: str
) -> None:
    _escape(monkeypatch, kind, where)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: dataset demo@1 (datasets.yaml:1): "), result.output
    assert "demo.py" in result.output
    assert SAYS[kind] in result.output
    if where != "import":
        assert "demo()" in result.output  # the recipe, not only its script
    assert "Traceback" not in result.output
    assert not (tiny / "locks").exists()


@pytest.mark.parametrize("where", ["import", "call", "split"])
@pytest.mark.parametrize("kind", sorted(SAYS))
def test_a_recipe_that_exits_fails_lock_file_and_writes_nothing(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, kind: str, where: str
) -> None:
    _escape(monkeypatch, kind, where)
    result = run("lock", "--file", "recipes/demo.py", "-o", "out")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: recipe script recipes/demo.py: "), result.output
    assert SAYS[kind] in result.output
    assert not (tiny / "out").exists()


@pytest.mark.parametrize("where", ["import", "call", "split"])
@pytest.mark.parametrize("kind", sorted(SAYS))
def test_a_recipe_that_exits_is_a_reproduce_finding(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, kind: str, where: str
) -> None:
    assert run("lock", "demo").exit_code == 0
    before = {p: p.read_bytes() for p in (tiny / "locks").rglob("*") if p.is_file()}
    _escape(monkeypatch, kind, where)
    result = run("verify", "--reproduce")
    assert result.exit_code == 1, result.output
    assert "VX602" in result.output
    assert "demo@1" in result.output
    assert SAYS[kind] in result.output
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in (tiny / "locks").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("where", ["import", "call", "split"])
def test_ctrl_c_in_a_recipe_is_still_an_interrupt(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    _escape(monkeypatch, "interrupt", where)
    result = run("lock", "demo")
    assert result.exit_code == 130
    assert result.output == "Interrupted.\n"
    assert not (tiny / "locks").exists()


def test_a_recipe_that_exits_fails_a_real_process(tiny: Path) -> None:
    """Outside click's test runner too: a real ``vxds`` process, its real exit status."""
    env = {"PATH": "/usr/bin:/bin", "HOSTILE_ESCAPE": "exit0", "HOSTILE_WHERE": "call"}
    done = subprocess.run(
        [sys.executable, "-m", "vxds", "lock", "demo"], cwd=tiny, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: dataset demo@1 (datasets.yaml:1): recipe demo()"), done.stderr
    assert not (tiny / "locks").exists()
