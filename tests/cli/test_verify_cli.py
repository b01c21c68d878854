"""``vxds verify`` on the example project: output, exit codes, and it never writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.helpers import Invoke, git


@pytest.fixture
def locked(project: Path, invoke: Invoke) -> Path:
    assert invoke("lock", "--all", "--quiet").exit_code == 0
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "locks")
    return project


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _tree(root: Path) -> dict[str, str]:
    """Every file outside .git and .vxds, with its digest."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in (".git", ".vxds")
    }


def test_clean_project(locked: Path, invoke: Invoke) -> None:
    result = invoke("verify")
    assert (result.exit_code, result.output) == (0, "verified 4 locks, 180 resources: 0 errors, 0 warnings\n")
    assert invoke("verify", "--quiet").output == ""


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--no-exec"],
        ["--no-cache"],
        ["--data"],
        ["--data", "--sample", "5%", "--seed", "7"],
        ["--reproduce"],
        ["--reproduce", "--no-exec", "--data"],
        ["--manifest-only"],
        ["--format", "json"],
    ],
)
def test_verify_never_writes_to_the_repository(locked: Path, invoke: Invoke, args: list[str]) -> None:
    before = _tree(locked)
    assert invoke("verify", *args).exit_code == 0
    assert git(locked, "status", "--porcelain") == ""
    assert _tree(locked) == before


def test_stale_lock_text_output_and_exit_code(locked: Path, invoke: Invoke) -> None:
    _edit(locked / "recipes" / "clinical.py", "require_edss: bool = True", "require_edss: bool = False")
    result = invoke("verify", "--no-exec")
    assert result.exit_code == 1
    assert result.output == (
        "clinical_cohort@1\n"
        "  error   VX203 locks/clinical_cohort/1/lock.toml: stale:"
        " the recipe script ./recipes/clinical.py changed; run 'vxds lock clinical_cohort@1'\n"
        "verified 4 locks, 180 resources: 1 error, 0 warnings\n"
    )


def test_json_output(locked: Path, invoke: Invoke) -> None:
    (locked / "locks" / "clinical_cohort" / "1" / "resources.cohort.jsonl").write_bytes(b"")
    result = invoke("verify", "clinical_cohort", "--format", "json")
    assert result.exit_code == 1
    data = orjson.loads(result.output)
    assert data["summary"] == {
        "datasets": 1,
        "resources": 0,
        "data_checked": 0,
        "errors": 2,
        "warnings": 0,
        "skipped": 0,
    }
    assert [(f["code"], f["dataset"], f["file"]) for f in data["findings"]] == [
        ("VX304", "clinical_cohort@1", "locks/clinical_cohort/1/resources.cohort.jsonl"),
        ("VX304", "clinical_cohort@1", "locks/clinical_cohort/1/resources.cohort.jsonl"),
    ]


def test_warnings_fail_only_with_strict(locked: Path, invoke: Invoke) -> None:
    manifest = locked / "datasets.yaml"
    text = manifest.read_text()
    start = text.index("- name: all_basel_data")
    manifest.write_text(text[:start] + text[text.index("- name: clinical_cohort") :])
    result = invoke("verify")
    assert result.exit_code == 0
    assert result.output == (
        "all_basel_data@1\n"
        "  warning VX202 locks/all_basel_data/1/lock.toml: the lock locks/all_basel_data/1 has no dataset"
        " all_basel_data@1 in datasets.yaml\n"
        "verified 4 locks, 180 resources: 0 errors, 1 warning\n"
    )
    assert invoke("verify", "--strict").exit_code == 1


def test_usage_errors(locked: Path, invoke: Invoke) -> None:
    assert invoke("verify", "--sample", "5%").exit_code == 2
    assert invoke("verify", "--data", "--sample", "lots").exit_code == 2
    assert invoke("verify", "no_such_dataset").exit_code == 2


@pytest.mark.parametrize(
    ("file", "old", "new", "stale"),
    [
        (
            "recipes/clinical.py",
            "require_edss: bool = True",
            "require_edss: bool = False",
            ["clinical_cohort@1"],
        ),
        (
            "datasets.yaml",
            "params: {test_every: 3, with_flair: true}",
            "params: {test_every: 2}",
            ["viseg_training@2"],
        ),
        (
            "recipes/viseg.py",
            "test_every: int = 4",
            "test_every: int = 2",
            ["viseg_training@1", "viseg_training@2"],
        ),
        ("datasets.yaml", "script_location: ./recipes/basel.py", "script_location: recipes/basel.py", []),
        ("datasets.yaml", "Everything from the Basel trial", "All of Basel", []),
    ],
)
def test_lock_check_and_verify_agree_on_staleness(
    locked: Path, invoke: Invoke, file: str, old: str, new: str, stale: list[str]
) -> None:
    _edit(locked / file, old, new)
    found = orjson.loads(invoke("verify", "--format", "json").output)["findings"]
    assert sorted(f["dataset"] for f in found if f["code"] == "VX203") == stale
    listed = orjson.loads(invoke("list", "--format", "json").output)["datasets"]
    assert sorted(f"{d['name']}@{d['version']}" for d in listed if d["state"] == "stale") == stale
    checked = invoke("lock", "--all", "--check", "--format", "json")
    would = [
        f"{d['name']}@{d['version']}"
        for d in orjson.loads(checked.output)["datasets"]
        if d["status"] != "unchanged"
    ]
    assert sorted(would) == stale  # every stale lock would change when relocked; a fresh one would not
    assert checked.exit_code == (1 if stale else 0)


def test_changed_data_is_found_by_reproduce_and_data_not_by_staleness(locked: Path, invoke: Invoke) -> None:
    table = locked / "sample-data" / "zurich" / "participants.tsv"
    table.write_bytes(table.read_bytes().replace(b"sub-ZH01\t45", b"sub-ZH01\t46"))
    assert invoke("verify").exit_code == 0  # no recipe, params or entry changed
    reproduced = invoke("verify", "--reproduce", "clinical_cohort")
    assert reproduced.exit_code == 1
    assert (
        "VX601 locks/clinical_cohort/1/lock.toml: re-running the recipe gives another lock:"
        " 1 changed; header: snapshot (12 unchanged)\n" in reproduced.output
    )
    # the drift as vxds diff shows it, under the finding
    assert "      ~ zurich/participants.tsv#sub-ZH01  (version blake3:" in reproduced.output
    assert ", attrs.age 45 -> 46)\n" in reproduced.output
    doc = json.loads(invoke("verify", "--reproduce", "clinical_cohort", "--format", "json").output)
    [change] = doc["drift"]["clinical_cohort@1"]["changes"]
    assert (change["kind"], change["fields"]) == ("changed", ["version", "hash", "attrs.age"])
    data = invoke("verify", "--data", "clinical_cohort")
    assert data.exit_code == 1
    assert (
        "VX502 locks/clinical_cohort/1/resources.cohort.jsonl:8: zurich/participants.tsv#sub-ZH01:"
        " changed in the source (hash differs)" in data.output
    )


def test_lock_stale_relocks_only_what_changed(locked: Path, invoke: Invoke) -> None:
    result = invoke("lock", "--stale", "--exit-code")
    assert (result.exit_code, result.output) == (0, "")
    _edit(locked / "recipes" / "clinical.py", "require_edss: bool = True", "require_edss: bool = False")
    result = invoke("lock", "--stale", "--exit-code")
    assert result.exit_code == 1  # a lock was written
    assert result.output.startswith("written  clinical_cohort@1: cohort ")
    assert git(locked, "status", "--porcelain").split()[1::2] == [
        "locks/clinical_cohort/1/lock.toml",
        "locks/clinical_cohort/1/resources.cohort.jsonl",
        "recipes/clinical.py",
    ]
    assert invoke("verify").exit_code == 0
    assert invoke("lock", "--stale", "--exit-code").exit_code == 0  # nothing left to write


# Run in a fresh interpreter: verify forks workers only while no other thread runs, and
# other tests leave threads behind in this process (fsspec's event loop, a moto server).
WORKERS_SCRIPT = """
import json, sys
from pathlib import Path
from vxds import verify as verify_module
from vxds.project.config import load_config
from vxds.verify import integrity, model, project

root, data = Path(sys.argv[1]), sys.argv[2] == "1"
config = load_config(root)
alone = verify_module.verify(config, jobs=1, data=data, use_cache=False)
integrity.PARALLEL_BYTES = 0
options = model.Options(jobs=2, data=data, use_cache=False)
ctx = model.Context(config, options, model.ResultCache(None))
targets, _ = project.find_targets(config, None, ())
prechecked = len(integrity.precheck(ctx, targets))
together = verify_module.verify(config, jobs=2, data=data, use_cache=False)
print(json.dumps({
    "prechecked": prechecked,
    "alone": [f.to_json() for f in alone],
    "together": [f.to_json() for f in together],
}))
"""


@pytest.mark.parametrize("data", [False, True])
def test_worker_processes_find_what_one_process_finds(locked: Path, data: bool) -> None:
    path = locked / "locks" / "viseg_training" / "1" / "resources.test.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"size":', b'"size":1', 1))
    _edit(locked / "recipes" / "clinical.py", "require_edss: bool = True", "require_edss: bool = False")
    (locked / "sample-data" / "basel" / "participants.tsv").unlink()
    result = subprocess.run(
        [sys.executable, "-c", WORKERS_SCRIPT, str(locked), "1" if data else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(result.stdout)
    assert found["prechecked"] == 4  # the work really went to workers
    alone, together = found["alone"], found["together"]
    assert together == alone
    assert {f["code"] for f in alone} == (
        {"VX203", "VX304", "VX501", "VX503"} if data else {"VX203", "VX304"}
    )
