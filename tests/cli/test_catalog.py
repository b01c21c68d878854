"""``vxds catalog`` and ``vxds lock --at``: a lock resolved at a snapshot stays byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import REMOVED_T2, Invoke

T2 = "sample-data/basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz"


def lock_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "locks").rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def catalog_project(project: Path, invoke: Invoke) -> Path:
    """The example project with its sample data ingested into catalog.db as snapshot 1."""
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('source = "./sample-data"', 'source = "catalog:catalog.db"')
    )
    assert invoke("catalog", "init").exit_code == 0
    result = invoke("catalog", "ingest", "sample-data")
    assert result.exit_code == 0
    assert result.output.startswith("snapshot 1: ")
    return project


def change_data(root: Path) -> None:
    t2 = root / T2
    t2.write_bytes(t2.read_bytes() + b"\0")
    (root / REMOVED_T2).unlink()


def test_lock_at_a_snapshot_is_byte_identical_after_later_ingests(
    catalog_project: Path, invoke: Invoke
) -> None:
    root = catalog_project
    assert invoke("lock", "--all").exit_code == 0
    first = lock_bytes(root)
    assert 'snapshot = "1"' in first["locks/viseg_training/1/lock.toml"].decode()

    change_data(root)
    result = invoke("catalog", "ingest", "sample-data")
    assert result.output == "snapshot 2: 178 resources (+0 ~1 -1)\n"
    assert invoke("lock", "--all", "--check").exit_code == 1
    assert invoke("lock", "--all", "--check", "--at", "1").exit_code == 0

    assert invoke("lock", "--all").exit_code == 0
    assert lock_bytes(root) != first
    assert 'snapshot = "2"' in (root / "locks/viseg_training/1/lock.toml").read_text()
    relock = invoke("lock", "--all", "--at", "1")
    assert relock.exit_code == 0
    assert lock_bytes(root) == first


def test_catalog_ls_and_log(catalog_project: Path, invoke: Invoke) -> None:
    change_data(catalog_project)
    invoke("catalog", "ingest", "sample-data")
    rid = T2.removeprefix("sample-data/")
    log = invoke("catalog", "log", rid, "--format", "json")
    versions = json.loads(log.output)["versions"]
    assert [(v["version"], v["added_at"], v["removed_at"]) for v in versions] == [(1, 1, 2), (2, 2, None)]
    text = invoke("catalog", "log", REMOVED_T2.removeprefix("sample-data/"))
    assert text.output.splitlines()[1].split()[:4] == ["1", "1", "deleted", "at"]
    snapshots = json.loads(invoke("catalog", "log", "--format", "json").output)["snapshots"]
    assert [(s["id"], s["added"], s["changed"], s["deleted"]) for s in snapshots] == [
        (1, 179, 0, 0),
        (2, 0, 1, 1),
    ]
    then = json.loads(invoke("catalog", "ls", "--at", "1", "--prefix", rid, "--format", "json").output)
    assert [(r["id"], r["version"]) for r in then["resources"]] == [(rid, 1)]
    now = invoke("catalog", "ls", "--prefix", rid)
    assert now.stdout.splitlines()[1].split()[:2] == [rid, "2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["lock", "viseg_training", "--at", "7"],
            "error: source 'catalog:catalog.db': no snapshot '7' (snapshots are 0 to 1)",
        ),
        (["catalog", "ls", "--at", "x"], "error: catalog "),
        (["catalog", "log", "no/such/id"], "no resource 'no/such/id'"),
        (["catalog", "init"], "already exists"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    catalog_project: Path, invoke: Invoke, args: list[str], message: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (catalog_project / "locks").exists()


def test_a_folder_source_refuses_another_snapshot(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "viseg_training", "--at", "blake3:0000")
    assert result.exit_code == 2
    assert "keeps no history" in result.output
    assert not (project / "locks").exists()


def test_a_missing_or_malformed_catalog(project: Path, invoke: Invoke) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('source = "./sample-data"', 'source = "catalog:catalog.db"')
    )
    missing = invoke("lock", "--all")
    assert missing.exit_code == 2
    assert "error: source 'catalog:catalog.db': " in missing.output
    assert "does not exist" in missing.output
    (project / "catalog.db").write_bytes(b"garbage")
    malformed = invoke("lock", "--all")
    assert malformed.exit_code == 2
    assert "is not a vxds catalog" in malformed.output
    assert not (project / "locks").exists()


def test_verify_reproduce_resolves_at_the_locks_snapshot(catalog_project: Path, invoke: Invoke) -> None:
    root = catalog_project
    assert invoke("lock", "--all").exit_code == 0
    change_data(root)
    assert invoke("catalog", "ingest", "sample-data").exit_code == 0
    result = invoke("verify", "--reproduce")
    assert result.exit_code == 0, result.output  # snapshot 1 still gives exactly the locks
    assert "VX601" not in result.output


def test_an_old_lock_materializes_and_verifies_from_the_catalog(
    catalog_project: Path, invoke: Invoke, tmp_path: Path
) -> None:
    root = catalog_project
    assert invoke("lock", "all_basel_data").exit_code == 0
    old = (root / T2).read_bytes()
    change_data(root)  # T2 rewritten, another T2 removed
    assert invoke("catalog", "ingest", "sample-data").exit_code == 0
    assert invoke("verify", "--data", "all_basel_data").exit_code == 0  # the store keeps old bytes
    out = tmp_path / "out"
    result = invoke("materialize", "all_basel_data", "-o", str(out), "-m", "files", "-q")
    assert result.exit_code == 0, result.output
    assert (out / "all" / T2.removeprefix("sample-data/")).read_bytes() == old
    assert (out / "all" / REMOVED_T2.removeprefix("sample-data/")).is_file()
