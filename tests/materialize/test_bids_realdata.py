"""``-m bids`` on the real BIDS datasets in tests/data/realdata/bids-examples, through the CLI.

One test per dataset folder (a new folder is tested without code changes), each judged by
the BIDS validator (``bids-validator-deno``, in the dev extra) with the examples' own config:
the output of every split may have no error code the source does not have itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import BIDS_EXAMPLES
from vxds.cli.main import cli
from vxds.locks.store import lock_dir, read_lock
from vxds.materialize.receipt import read_receipt

DATASETS = sorted(p.name for p in BIDS_EXAMPLES.iterdir() if p.is_dir())
CONFIG = BIDS_EXAMPLES / "default-config.json"

# Every file of the dataset; a subject's files by subject (the last subject is held out).
EVERYTHING = """\
import vxds


@vxds.recipe()
def real(client):
    resources = list(client.list())
    subjects = sorted({r.attrs["subject"] for r in resources if isinstance(r.attrs.get("subject"), str)})
    splits = {"train": [], "test": []}
    for resource in resources:
        splits["test" if resource.attrs.get("subject") == subjects[-1] else "train"].append(resource)
    return splits
"""
# Only the data files (images, recordings, Zarr stores), by subject: the rest must come along.
DATA_ONLY = """\
import vxds

COMPANION = (".json", ".tsv", ".bval", ".bvec")


@vxds.recipe()
def real(client):
    splits = {"train": [], "test": []}
    for resource in client.list():
        subject = resource.attrs.get("subject")
        if resource.type == "ClinicalRecord" or subject is None or resource.id.endswith(COMPANION):
            continue
        splits["test" if subject == "%s" else "train"].append(resource)
    return splits
"""


def _validator() -> str:
    beside = Path(sys.executable).parent / "bids-validator-deno"
    found = str(beside) if beside.exists() else shutil.which("bids-validator-deno")
    assert found is not None, "bids-validator-deno is in the dev extra: pip install -e '.[dev]'"
    return found


def error_codes(folder: Path) -> set[str]:
    run = subprocess.run(
        [_validator(), "--format", "json", "--config", str(CONFIG), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    issues = json.loads(run.stdout)["issues"]["issues"]
    return {i["code"] for i in issues if i["severity"] == "error"}


@cache
def source_codes(dataset: str) -> frozenset[str]:
    return frozenset(error_codes(BIDS_EXAMPLES / dataset))


def _materialize(tmp_path: Path, dataset: str, recipe: str) -> Path:
    """Lock ``recipe`` over the dataset and write ``-m bids`` to ``OUT``; the project's path."""
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    (project / "recipes/real.py").write_text(recipe)
    (project / "datasets.yaml").write_text(
        "- name: real\n  version: 1\n  script_location: ./recipes/real.py\n  group_by: attrs.subject\n"
    )
    (project / "pyproject.toml").write_text(f'[tool.vxds]\nsource = "{BIDS_EXAMPLES / dataset}"\n')
    runner = CliRunner()
    locked = runner.invoke(cli, ["lock", "--all", "-q", "-C", str(project)], catch_exceptions=False)
    assert locked.exit_code == 0, locked.output
    out = project / "OUT"
    args = ["materialize", "real@1", "-o", str(out), "-m", "bids", "-q", "-C", str(project)]
    done = runner.invoke(cli, args, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return project


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _copied(folder: Path) -> set[str]:
    """The files placed as the source's bytes (descriptions and row tables are edited)."""
    edited = ("dataset_description.json", "participants.tsv", "samples.tsv")
    return {rel for rel in _files(folder) if not rel.endswith(edited) and rel != "README"}


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_file_by_subject_validates_as_the_source_does(tmp_path: Path, dataset: str) -> None:
    project = _materialize(tmp_path, dataset, EVERYTHING)
    lock = read_lock(lock_dir(project / "locks", "real", 1))
    source = BIDS_EXAMPLES / dataset
    for split in lock.splits:
        out = project / "OUT/bids" / split
        assert error_codes(out) <= source_codes(dataset), split
        # Raw files and derivatives keep their source paths; nothing gets an invented name.
        for resource in lock.splits[split].resources():
            if resource.attrs.get("subject") is not None and resource.type != "ClinicalRecord":
                assert (out / resource.id).exists(), resource.id
        assert _files(out) <= _files(source) | {"README"}
        for rel in _copied(out):
            assert (out / rel).read_bytes() == (source / rel).read_bytes(), rel


@pytest.mark.parametrize("dataset", DATASETS)
def test_companions_come_from_the_source_checked_and_listed(tmp_path: Path, dataset: str) -> None:
    subjects = sorted(p.name[4:] for p in (BIDS_EXAMPLES / dataset).glob("sub-*"))
    project = _materialize(tmp_path, dataset, DATA_ONLY % subjects[-1])
    receipt = read_receipt(project / "OUT")
    assert receipt is not None
    lock = read_lock(lock_dir(project / "locks", "real", 1))
    locked = {r.id for split in lock.splits.values() for r in split.resources()}
    carried = {p: e.resource for p, e in receipt.files.items() if e.resource not in locked | {None}}
    assert carried, "every dataset has files beside its data (a description at least)"
    for path, rid in carried.items():
        assert path.split("/", 2)[2] == rid  # bids/<split>/<its path in the source>
    source = BIDS_EXAMPLES / dataset
    for split in (name for name, split in lock.splits.items() if split.count):
        out = project / "OUT/bids" / split
        assert error_codes(out) <= source_codes(dataset), split
        for rel in _copied(out):
            assert (out / rel).read_bytes() == (source / rel).read_bytes(), rel
