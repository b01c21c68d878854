"""A BIDS dataset's ``.bidsignore`` is locked and travels with ``-m bids``; other dot-files stay
hidden (vxds/sources/folder/listing.py), on a copy of a real example dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from tests.helpers import BIDS_EXAMPLES
from vxds.cli.main import cli
from vxds.locks.store import lock_dir, read_lock

from .test_bids_realdata import error_codes, source_codes

ALL = """\
import vxds


@vxds.recipe()
def real(client):
    return {"all": list(client.list())}
"""
IGNORE = b"extra\n"  # a folder the validator would otherwise reject


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    data = project / "data"
    shutil.copytree(BIDS_EXAMPLES / "asl003", data)
    (data / "extra").mkdir()
    (data / "extra/notes.txt").write_text("scanner notes, not BIDS\n")
    (data / ".bidsignore").write_bytes(IGNORE)
    (data / ".DS_Store").write_bytes(b"\0")  # any other dot-file stays hidden
    (data / "sub-Sub1/.bidsignore").write_bytes(IGNORE)  # not at a dataset's root: hidden
    (project / "recipes").mkdir()
    (project / "recipes/real.py").write_text(ALL)
    (project / "datasets.yaml").write_text(
        "- name: real\n  version: 1\n  script_location: ./recipes/real.py\n"
    )
    (project / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    return project


def test_a_dataset_root_bidsignore_is_locked_and_travels(tmp_path: Path) -> None:
    project = _project(tmp_path)
    data = project / "data"
    without = tmp_path / "without"
    shutil.copytree(data, without, ignore=shutil.ignore_patterns(".bidsignore"))
    assert "NOT_INCLUDED" in error_codes(without)  # extra/ is valid only through .bidsignore
    assert error_codes(data) <= source_codes("asl003")
    runner = CliRunner()
    locked = runner.invoke(cli, ["lock", "--all", "-q", "-C", str(project)], catch_exceptions=False)
    assert locked.exit_code == 0, locked.output
    lock = read_lock(lock_dir(project / "locks", "real", 1))
    ids = {r.id: r.type for r in lock.splits["all"].resources()}
    assert ids[".bidsignore"] == "File"
    assert not any(rid.endswith(".DS_Store") or rid == "sub-Sub1/.bidsignore" for rid in ids)
    out = project / "OUT"
    args = ["materialize", "real@1", "-o", str(out), "-m", "bids", "-q", "-C", str(project)]
    done = runner.invoke(cli, args, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    root = out / "bids/all"
    assert (root / ".bidsignore").read_bytes() == IGNORE
    assert (root / "extra/notes.txt").is_file()
    assert not (root / ".DS_Store").exists()
    assert error_codes(root) <= source_codes("asl003")
