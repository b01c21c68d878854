"""Through the CLI: a recipe that has vxds hash a large file (in vxds' own memory-mapping
child process) is skipped when nothing it read changed; one that runs a subprocess of its
own never is. The file counts as a read: changing it reruns the recipe."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vxds import filehash
from vxds.cli.main import cli

RECIPE = """\
from pathlib import Path

import vxds
from vxds.hashing import hash_file

BIG = Path(__file__).resolve().parent.parent / "config" / "big.bin"


@vxds.recipe()
def demo(client):
    attrs = {"big": hash_file(BIG)}
    return {"train": [vxds.Resource(id="all", version=1, attrs=attrs)]}
"""
OWN_CHILD = RECIPE.replace(
    "    attrs =", '    import subprocess\n    subprocess.run(["true"], check=True)\n    attrs ='
)
SKIPPED = "skipped: nothing the recipe read changed"


def _age(*paths: Path) -> None:
    then = time.time() - 60
    for root in paths:
        for here, _dirs, names in sorted(os.walk(root), reverse=True):  # files, then their folder
            for name in names:
                os.utime(Path(here) / name, (then, then))
            os.utime(here, (then, then))


def _lock(root: Path) -> str:
    result = CliRunner().invoke(
        cli, ["lock", "demo", "--root", str(root), "--format", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)["datasets"][0]
    return str(report["recipe"])


def _project(tmp_path: Path, recipe: str) -> Path:
    root = tmp_path / "project"
    (root / "recipes").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("a\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (root / "datasets.yaml").write_text("- name: demo\n  version: 1\n  script_location: recipes/demo.py\n")
    (root / "recipes" / "demo.py").write_text(recipe)
    (root / "config" / "big.bin").write_bytes(os.urandom(3 << 20))
    _age(root)
    assert _lock(root) == "ran: no fingerprint of an earlier run"
    _age(root / "locks")  # a lock this new cannot vouch for itself: the next run keeps one
    return root


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """vxds' hashing child takes files of 2 MiB and more here; each digest it gave."""
    monkeypatch.setattr(filehash, "MAP_IN_CHILD", 2 << 20)
    given: list[str | None] = []
    mapped = filehash._mapped_digest
    monkeypatch.setattr(filehash, "_mapper", lambda fd: given.append(mapped(fd)) or given[-1])
    return given


def test_a_recipe_whose_large_file_vxds_hashes_is_skipped(tmp_path: Path, children: list[str | None]) -> None:
    root = _project(tmp_path, RECIPE)
    assert _lock(root) == "ran: no fingerprint of an earlier run"
    assert children  # the child hashed the file on every run
    assert None not in children
    assert _lock(root) == SKIPPED
    (root / "config" / "big.bin").write_bytes(os.urandom(3 << 20))
    _age(root / "config")
    assert _lock(root) == f"ran: {root / 'config' / 'big.bin'}, which it read, changed"


def test_a_recipe_that_runs_its_own_subprocess_is_never_skipped(
    tmp_path: Path, children: list[str | None]
) -> None:
    root = _project(tmp_path, OWN_CHILD)
    _lock(root)
    unrepeatable = "ran: its last run did what cannot be repeated (subprocess.Popen)"
    assert _lock(root) == unrepeatable
    assert _lock(root) == unrepeatable
    assert children
    assert None not in children
