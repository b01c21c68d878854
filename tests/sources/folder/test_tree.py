"""vxds/sources/folder/tree.py on real BIDS datasets, locked through the CLI in a project:
which tables give records, what a Zarr is, and whose sidecars apply to what."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.helpers import BIDS_EXAMPLES, git
from vxds.cli.main import cli
from vxds.hashing import digest_json, hash_file
from vxds.sources.folder.tree import is_record_table

REAL = BIDS_EXAMPLES
ZARR = "sub-01/ses-01/micr/sub-01_ses-01_sample-A_SPIM.ome.zarr"
RECIPE = """\
import vxds


@vxds.recipe()
def everything(client: vxds.Client) -> dict[str, list[vxds.Resource]]:
    return {"all": list(client.query())}
"""


def _project(root: Path, data: Path, extra: str = "") -> Path:
    """A project in Git whose one dataset is every resource of ``data``."""
    root.mkdir()
    (root / "recipes").mkdir()
    (root / "recipes/everything.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        "- name: everything\n  version: 1\n  script_location: ./recipes/everything.py\n"
    )
    (root / "pyproject.toml").write_text(f'[tool.vxds]\nsource = "{data}"\n{extra}')
    (root / ".gitignore").write_text(".vxds/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def _run(root: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, [args[0], "-C", str(root), *args[1:]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _locked(root: Path) -> dict[str, dict[str, Any]]:
    _run(root, "lock", "--all", "-q")
    lines = (root / "locks/everything/1/resources.all.jsonl").read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


@pytest.mark.parametrize(
    ("dataset", "records"),
    [("ds001", 16), ("ds114", 10), ("eeg_matchingpennies", 7), ("micr_SEMzarr", 1), ("asl003", 0)],
)
def test_only_participants_rows_are_records(tmp_path: Path, dataset: str, records: int) -> None:
    found = _locked(_project(tmp_path / "p", REAL / dataset))
    kinds = Counter(row["type"] for row in found.values())
    assert kinds["ClinicalRecord"] == records
    assert all(
        rid.startswith("participants.tsv#") for rid, r in found.items() if r["type"] == "ClinicalRecord"
    )
    # Every other table is a file of its own, with no rows read into it.
    tables = [r for r in found.values() if r["type"] == "Table" and not r["id"].endswith("participants.tsv")]
    assert all("columns" not in r["attrs"] for r in tables)
    assert len(found) == len(set(found))


def test_configured_tables_give_records_with_the_subject_from_their_path(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "p", REAL / "micr_SEMzarr", 'record_tables = ["*_sessions.tsv", "samples.tsv"]\n'
    )
    found = _locked(root)
    sessions = [r for rid, r in found.items() if rid.startswith("sub-01/sub-01_sessions.tsv#")]
    assert [r["attrs"]["session"] for r in sessions] == ["01", "02"]
    assert {r["attrs"]["subject"] for r in sessions} == {"01"}  # no participant_id column: the path
    samples = [r for rid, r in found.items() if rid.startswith("samples.tsv#")]
    assert samples
    assert all(r["attrs"]["subject"] == "01" for r in samples)  # its participant_id column


def test_a_tables_json_describes_columns_not_attrs(tmp_path: Path) -> None:
    found = _locked(_project(tmp_path / "p", REAL / "eeg_matchingpennies"))
    events = [r for rid, r in found.items() if rid.endswith("_events.tsv")]
    assert events
    for row in events:
        assert "sample" not in row["attrs"]  # events.json describes a column named "sample"
        assert "onset" not in row["attrs"]
        assert row["attrs"]["descriptions"]["sample"]["Description"]  # kept, as descriptions
    eeg = next(r for rid, r in found.items() if rid.endswith("_eeg.vhdr"))
    assert "SamplingFrequency" in eeg["attrs"]  # the data file's own sidecar still applies


def test_a_zarr_is_one_resource_hashed_over_every_member(tmp_path: Path) -> None:
    found = _locked(_project(tmp_path / "p", REAL / "micr_SEMzarr"))
    assert not [rid for rid in found if rid.startswith(ZARR + "/")]
    zarr = found[ZARR]
    assert zarr["type"] == "Zarr"
    attrs = zarr["attrs"]
    assert (attrs["subject"], attrs["session"], attrs["sample"]) == ("01", "01", "A")
    assert (attrs["suffix"], attrs["extension"], attrs["files"]) == ("SPIM", ".ome.zarr", 4)
    assert attrs["PixelSizeUnits"] == "um"  # its sidecar, SPIM.json, applies to it
    folder = REAL / "micr_SEMzarr" / ZARR
    members = [".zattrs", ".zgroup", "0/.zarray", "0/0/0"]
    assert zarr["hash"] == digest_json([[m, hash_file(folder / m)] for m in members])
    assert zarr["size"] == sum((folder / m).stat().st_size for m in members)


def test_materialized_files_hold_every_zarr_member(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", REAL / "micr_SEMzarr")
    _locked(root)
    out = tmp_path / "out"
    for _ in range(2):  # the second run finds the copy in place
        _run(root, "materialize", "everything", "-o", str(out), "-m", "files", "-q")
        copied = out / "all" / ZARR
        listing = sorted(
            os.path.relpath(Path(here) / name, copied) for here, _, names in os.walk(copied) for name in names
        )
        assert listing == [".zattrs", ".zgroup", "0/.zarray", "0/0/0"]
        for name in listing:
            assert (copied / name).read_bytes() == (REAL / "micr_SEMzarr" / ZARR / name).read_bytes()


def test_a_changed_member_changes_the_zarr_and_a_copy_is_checked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REAL / "micr_SEMzarr", data)
    root = _project(tmp_path / "p", data)
    before = _locked(root)[ZARR]["hash"]
    (data / ZARR / "0/.zarray").write_text('{"changed": true}')  # a dot-file, in a folder
    runner = CliRunner()
    verify = runner.invoke(cli, ["verify", "-C", str(root), "--data", "-q"], catch_exceptions=False)
    assert verify.exit_code == 1
    assert ZARR in verify.output
    out = str(tmp_path / "out")
    placed = runner.invoke(
        cli, ["materialize", "-C", str(root), "-o", out, "-m", "files", "-q", "everything"]
    )
    assert placed.exit_code != 0
    assert "do not match the locked hash" in placed.output
    assert _locked(root)[ZARR]["hash"] != before
    _run(root, "verify", "--data", "-q")


@pytest.mark.parametrize(
    ("rel", "patterns", "expected"),
    [
        ("participants.tsv", [], True),
        ("derivatives/x/participants.tsv", [], True),
        ("sub-01/sub-01_sessions.tsv", [], False),
        ("sub-01/sub-01_sessions.tsv", ["*_sessions.tsv"], True),
        ("clinical/visits.csv", ["clinical/*.csv"], True),
        ("other/clinical/visits.csv", ["clinical/*.csv"], False),
        ("sub-01/func/sub-01_task-x_events.tsv", ["participants.*"], False),
    ],
)
def test_record_tables(rel: str, patterns: list[str], expected: bool) -> None:
    assert is_record_table(rel, patterns) is expected
