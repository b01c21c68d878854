"""The skip rule: a recipe runs again when something its last run read changed, and only then.

Every case is a real project in a temporary folder, locked through the CLI. Files are aged
past the racy window first (a file modified in the last two seconds never vouches for
itself), as they are in any project a person relocks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.helpers import BIDS_EXAMPLES
from vxds.cli.main import cli
from vxds.locks.format import FORMAT
from vxds.recipes import fingerprint

SKIPPED = "skipped: nothing the recipe read changed"

RECIPE = """import os
from pathlib import Path

import helper
import vxds

HERE = Path(__file__).resolve().parent


@vxds.recipe()
def demo(client, label: str = "x"):
    words = (HERE.parent / "config" / "words.txt").read_text().split()
    extras = sorted(os.listdir(HERE.parent / "extras"))
    attrs = {"label": label, "tag": helper.TAG, "words": words, "extras": extras}
    return {"train": [vxds.Resource(id="all", version=1, attrs=attrs), *client.list()]}
"""

MANIFEST = """- name: demo
  version: 1
  description: A dataset.
  script_location: recipes/demo.py
  params: {label: x}
"""


def age(root: Path) -> None:
    """Every file and folder under ``root`` modified a minute ago."""
    then = time.time() - 60
    for here, _dirs, names in os.walk(root):
        for name in names:
            os.utime(Path(here) / name, (then, then))
    for here, _dirs, _names in sorted(os.walk(root), reverse=True):  # folders after their files
        os.utime(here, (then, then))


def lock(root: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["lock", "demo", "--root", str(root), "--format", "json", *args], catch_exceptions=False
    )
    assert result.exit_code in (0, 1), result.output
    report: dict[str, Any] = json.loads(result.output)["datasets"][0]
    return report


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project whose recipe imports a module, reads a file and lists a folder, locked until
    its fingerprint is kept (the first lock is too recent to vouch for itself)."""
    root = tmp_path / "project"
    files = {
        "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
        "datasets.yaml": MANIFEST,
        "recipes/demo.py": RECIPE,
        "recipes/helper.py": 'TAG = "one"\n',
        "config/words.txt": "alpha beta\n",
        "extras/a.txt": "a\n",
        "data/sub-01/anat/sub-01_T1w.nii.gz": "volume one",
        "data/sub-02/anat/sub-02_T1w.nii.gz": "volume two",
        "notes.txt": "not read by the recipe\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    age(root)
    assert lock(root)["recipe"] == "ran: no fingerprint of an earlier run"
    age(root / "locks")
    assert lock(root)["recipe"] == "ran: no fingerprint of an earlier run"
    assert lock(root)["recipe"] == SKIPPED
    return root


def aged(*paths: Path) -> None:
    then = time.time() - 60
    for path in paths:
        os.utime(path, (then, then))


def edit(path: Path, text: str) -> None:
    """Write ``path``, then age it and its folder (and nothing else)."""
    path.write_text(text)
    aged(path, path.parent)


def add_param(root: Path) -> None:
    edit(root / "datasets.yaml", MANIFEST.replace("{label: x}", "{label: y}"))


def change_entry(root: Path) -> None:
    edit(root / "datasets.yaml", MANIFEST + "  held_out: [test, val]\n")


RERUNS: dict[str, tuple[Callable[[Path], None], str]] = {
    "script": (lambda r: edit(r / "recipes/demo.py", RECIPE + "\n# edited\n"), "its script changed"),
    "imported module": (lambda r: edit(r / "recipes/helper.py", 'TAG = "two"\n'), "module helper changed"),
    "param": (add_param, "its params changed"),
    "entry": (change_entry, "its manifest entry changed"),
    "source file content": (
        lambda r: edit(r / "data/sub-01/anat/sub-01_T1w.nii.gz", "volume ONE"),
        "its source changed",
    ),
    "source listing": (lambda r: edit(r / "data/sub-01/anat/sub-01_T2w.nii.gz", "new"), "its source changed"),
    "opened file": (lambda r: edit(r / "config/words.txt", "alpha gamma\n"), "which it read, changed"),
    "listed folder": (lambda r: edit(r / "extras/b.txt", "b\n"), "which it read, changed"),
    "lock on disk": (
        lambda r: edit(r / "locks/demo/1/resources.train.jsonl", "{}\n"),
        "ran: the lock on disk is not the one it wrote",
    ),
}


@pytest.mark.parametrize("case", sorted(RERUNS))
def test_a_change_to_what_the_recipe_read_reruns_it(root: Path, case: str) -> None:
    change, reason = RERUNS[case]
    change(root)
    outcome = lock(root)
    assert outcome["recipe"].startswith("ran: ")
    assert reason in outcome["recipe"]


def test_a_new_lock_format_reruns_it(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint, "FORMAT", FORMAT + 1)
    assert lock(root)["recipe"] == "ran: vxds' lock format or version, or Python's, changed"


def test_locks_kept_elsewhere_rerun_it(root: Path) -> None:
    edit(root / "pyproject.toml", '[tool.vxds]\nsource = "./data"\nlocks = "other-locks"\n')
    outcome = lock(root)
    assert outcome["recipe"] == "ran: the lock on disk is not the one it wrote"
    assert outcome["status"] == "written"
    assert (root / "other-locks/demo/1/lock.toml").is_file()


def touch(path: Path) -> None:
    path.write_bytes(path.read_bytes())  # a new mtime, the same bytes


NOTHING: dict[str, Callable[[Path], None]] = {
    "an unrelated file touched": lambda r: touch(r / "notes.txt"),
    "an unrelated file added": lambda r: edit(r / "more-notes.txt", "new\n"),
    "an unrelated file edited": lambda r: edit(r / "notes.txt", "other words\n"),
    "the read file touched, its bytes unchanged": lambda r: touch(r / "config/words.txt"),
    "the imported module touched": lambda r: touch(r / "recipes/helper.py"),
    "the description edited": lambda r: edit(r / "datasets.yaml", MANIFEST.replace("A dataset", "Prose")),
}


@pytest.mark.parametrize("case", sorted(NOTHING))
def test_nothing_else_reruns_it(root: Path, case: str) -> None:
    NOTHING[case](root)
    outcome = lock(root)
    assert outcome["recipe"] == SKIPPED
    assert outcome["status"] == "unchanged"
    assert outcome["splits"] == {"train": 3}


def test_check_skips_too_and_reports_unchanged(root: Path) -> None:
    result = CliRunner().invoke(cli, ["lock", "demo", "--root", str(root), "--check", "-v"])
    assert result.exit_code == 0
    assert result.output == f"unchanged  demo@1: train 3  ({SKIPPED})\n"


def test_refresh_forces_a_run(root: Path) -> None:
    assert lock(root, "--refresh")["recipe"] == "ran: --refresh"


def test_refresh_always_in_the_manifest_forces_a_run(root: Path) -> None:
    edit(root / "datasets.yaml", MANIFEST + "  refresh: always\n")
    assert lock(root)["recipe"] == "ran: refresh: always"
    assert lock(root)["recipe"] == "ran: refresh: always"


def test_a_recipe_that_ran_a_subprocess_is_never_skipped(root: Path) -> None:
    script = root / "recipes/demo.py"
    edit(
        script,
        RECIPE.replace("import os\n", "import os\nimport subprocess\n").replace(
            "    words =", '    subprocess.run(["true"], check=True)\n    words ='
        ),
    )
    assert lock(root)["status"] == "written"
    age(root / "locks")
    lock(root)
    again = lock(root)
    assert again["recipe"] == "ran: its last run did what cannot be repeated (subprocess.Popen)"
    assert lock(root)["recipe"] == again["recipe"]


def test_a_lock_written_just_now_is_checked_by_running(root: Path) -> None:
    edit(root / "config/words.txt", "new words\n")
    assert lock(root)["status"] == "written"
    assert lock(root)["recipe"] == "ran: no fingerprint of an earlier run"


def test_the_api_takes_refresh_and_says_what_the_recipe_did(root: Path) -> None:
    import vxds

    [skipped] = vxds.lock("demo", root=root)
    assert (skipped.state, skipped.recipe, dict(skipped.splits)) == ("unchanged", SKIPPED, {"train": 3})
    [ran] = vxds.lock("demo", root=root, refresh=True)
    assert (ran.state, ran.recipe, ran.digest) == ("unchanged", "ran: --refresh", skipped.digest)


RECIPE_WITH_HELPER = """import helper
import vxds


@vxds.recipe()
def r(client):
    return {"all": [vxds.Resource(id="t", version=1, attrs={"tag": helper.TAG})]}
"""


def test_each_recipe_imports_its_own_neighbour_and_the_callers_module_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import sys

    import vxds

    root = tmp_path / "two"
    files = {
        "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
        "datasets.yaml": "- name: one\n  version: 1\n  script_location: a/r.py\n"
        "- name: two\n  version: 1\n  script_location: b/r.py\n",
        "a/r.py": RECIPE_WITH_HELPER,
        "a/helper.py": 'TAG = "a"\n',
        "b/r.py": RECIPE_WITH_HELPER,
        "b/helper.py": 'TAG = "b"\n',
        "data/f.txt": "x",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    spec = importlib.util.spec_from_file_location("helper", root / "b/helper.py")
    assert spec is not None
    mine = importlib.util.module_from_spec(spec)  # the caller's own "helper", b's
    monkeypatch.setitem(sys.modules, "helper", mine)
    vxds.lock(root=root)
    assert sys.modules["helper"] is mine
    locks = [vxds.load_lock(name, root=root) for name in ("one", "two")]
    tags = [next(lock.splits["all"].resources()).attrs["tag"] for lock in locks]
    assert tags == ["a", "b"]  # not b's for both, nor a's


def test_refresh_takes_auto_or_always(root: Path) -> None:
    edit(root / "datasets.yaml", MANIFEST + "  refresh: sometimes\n")
    result = CliRunner().invoke(cli, ["lock", "demo", "--root", str(root)])
    assert result.exit_code == 2
    assert "datasets.yaml:6: dataset 'demo': field 'refresh'" in result.output
    assert "is not one of ['auto', 'always']" in result.output
    assert "Traceback" not in result.output
    edit(root / "datasets.yaml", MANIFEST + "  refresh: auto\n")
    assert lock(root)["recipe"] == SKIPPED  # auto is the default, and not part of the entry digest


TREE_MANIFEST = """- name: demo
  version: 1
  description: Every resource of a BIDS tree.
  script_location: recipes/tree.py
"""
TREE_RECIPE = """import vxds


@vxds.recipe()
def tree(client):
    return {"all": list(client.list())}
"""
BOLD_SIDECAR = "data/task-balloonanalogrisktask_bold.json"
SOURCE_CHANGES: dict[str, Callable[[Path], list[Path]]] = {
    "edit a file": lambda r: _written(r / "data/sub-01/anat/sub-01_T1w.nii.gz", b"new bytes"),
    "add a file": lambda r: _written(r / "data/sub-02/anat/sub-02_notes.txt", b"new"),
    "remove a file": lambda r: _gone(r / "data/sub-03/anat/sub-03_inplaneT2.nii.gz"),
    "rename a file": lambda r: _renamed(r / "data/sub-04/anat/sub-04_T1w.nii.gz", "sub-04_run-2_T1w.nii.gz"),
    "edit a sidecar (a neighbour's attrs)": lambda r: _written(r / BOLD_SIDECAR, b'{"RepetitionTime": 7}'),
    "add a folder": lambda r: _written(r / "data/sub-99/anat/sub-99_T1w.nii.gz", b"x"),
    "remove a folder": lambda r: _gone(r / "data/sub-05/func"),
}


def _written(path: Path, data: bytes) -> list[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return [path, path.parent, path.parent.parent]


def _gone(path: Path) -> list[Path]:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    return [path.parent]


def _renamed(path: Path, name: str) -> list[Path]:
    path.rename(path.with_name(name))
    return [path.with_name(name), path.parent]


def _lock_bytes(root: Path) -> dict[str, bytes]:
    folder = root / "locks" / "demo" / "1"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(SOURCE_CHANGES))
def test_a_relock_after_a_source_change_is_the_lock_made_from_scratch(tmp_path: Path, name: str) -> None:
    root = tmp_path / "project"
    shutil.copytree(BIDS_EXAMPLES / "ds001", root / "data")
    (root / "recipes").mkdir()
    (root / "recipes/tree.py").write_text(TREE_RECIPE)
    (root / "datasets.yaml").write_text(TREE_MANIFEST)
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    age(root)
    lock(root)
    age(root / "locks")
    assert lock(root)["recipe"] == "ran: no fingerprint of an earlier run"
    assert lock(root)["recipe"] == SKIPPED
    aged(*(p for p in SOURCE_CHANGES[name](root) if p.exists()))
    assert lock(root)["recipe"] == "ran: its source changed"
    relocked = _lock_bytes(root)
    shutil.rmtree(root / ".vxds")
    assert lock(root, "--refresh")["status"] == "unchanged"  # from scratch: the same bytes
    assert _lock_bytes(root) == relocked
