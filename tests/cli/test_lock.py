from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import vxds.locks.store
from tests.helpers import REPO, Invoke, git
from vxds.hashing import hash_file

LOCKS = sorted(p.relative_to(REPO) for p in (REPO / "locks").rglob("*") if p.is_file())


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "locks").rglob("*")) if p.is_file()
    }


def test_lock_all_reproduces_the_committed_locks_byte_for_byte(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "--all")
    assert result.exit_code == 0, result.output
    assert "written  viseg_training@1: test 4, train 22  (26 added)" in result.output
    for rel in LOCKS:
        assert (project / rel).read_bytes() == (REPO / rel).read_bytes(), rel


def test_relock_unchanged_rewrites_nothing(project: Path, invoke: Invoke) -> None:
    invoke("lock", "--all")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "locks")
    mtimes = {p: p.stat().st_mtime_ns for p in (project / "locks").rglob("*") if p.is_file()}
    result = invoke("lock", "--all")
    assert result.exit_code == 0
    assert result.output.count("unchanged") == 4
    assert git(project, "status", "--porcelain") == ""
    assert mtimes == {p: p.stat().st_mtime_ns for p in (project / "locks").rglob("*") if p.is_file()}


def test_check_exits_1_when_missing_and_writes_nothing(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "--all", "--check")
    assert result.exit_code == 1
    assert "missing  viseg_training@1" in result.output
    assert not (project / "locks").exists()


def test_check_detects_changed_data(project: Path, invoke: Invoke) -> None:
    invoke("lock", "--all")
    assert invoke("lock", "--all", "--check").exit_code == 0
    mask = next((project / "sample-data/basel/derivatives").rglob("sub-BS01_ses-01_desc-lesion_mask.nii.gz"))
    mask.write_bytes(mask.read_bytes() + b"\0")
    before = snapshot(project)
    result = invoke("lock", "--all", "--check")
    assert result.exit_code == 1
    assert "would change  viseg_training@1: test 4, train 22  (1 changed; new snapshot)" in result.output
    assert "would change  all_basel_data@1" in result.output
    # The resources did not change, but the lock records the source's new snapshot.
    assert "would change  clinical_cohort@1: cohort 13  (new snapshot)" in result.output
    assert snapshot(project) == before


def test_dry_run_shows_changes_and_writes_nothing(project: Path, invoke: Invoke) -> None:
    invoke("lock", "viseg_training@1")
    manifest = project / "datasets.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "  group_by: attrs.subject\n\n- name: viseg_training\n  version: 2",
            "  params: {test_every: 2}\n  group_by: attrs.subject\n\n- name: viseg_training\n  version: 2",
            1,
        )
    )
    before = snapshot(project)
    result = invoke("lock", "viseg_training@1", "--dry-run")
    assert result.exit_code == 0
    assert "would change  viseg_training@1" in result.output
    assert "moved)" in result.output  # subjects moved between splits
    assert snapshot(project) == before


def test_name_without_version_locks_the_highest(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "viseg_training")
    assert result.exit_code == 0
    assert (project / "locks/viseg_training/2/lock.toml").exists()
    assert not (project / "locks/viseg_training/1").exists()


def test_json_format(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "clinical_cohort", "--format", "json")
    data = json.loads(result.stdout)
    [entry] = data["datasets"]
    assert entry["name"] == "clinical_cohort"
    assert entry["status"] == "written"
    assert entry["splits"] == {"cohort": 13}
    assert entry["digest"].startswith("blake3:")


def test_file_mode_writes_split_files_like_the_lock(project: Path, invoke: Invoke, tmp_path: Path) -> None:
    invoke("lock", "viseg_training@1")
    out = tmp_path / "out"
    result = invoke("lock", "--file", "recipes/viseg.py", "-o", str(out))
    assert result.exit_code == 0, result.output
    for split in ("train", "test"):
        assert (out / f"resources.{split}.jsonl").read_bytes() == (
            project / f"locks/viseg_training/1/resources.{split}.jsonl"
        ).read_bytes()
    assert invoke("lock", "--file", "recipes/viseg.py", "-o", str(out), "--check").exit_code == 0
    result = invoke(
        "lock", "--file", "recipes/viseg.py", "-o", str(out), "--param", "test_every=2", "--check"
    )
    assert result.exit_code == 1


def test_usage_errors(project: Path, invoke: Invoke) -> None:
    result = invoke("lock")
    assert result.exit_code == 2
    assert "name the datasets to lock, or use --all" in result.output
    result = invoke("lock", "nope")
    assert result.exit_code == 2
    assert "no dataset named 'nope' in datasets.yaml" in result.output
    result = invoke("lock", "viseg_training@7")
    assert result.exit_code == 2
    assert "has no version 7" in result.output
    assert "(versions: 1, 2)" in result.output


RECIPE_FAILURES = {
    "raises": ("    raise ValueError('no masks today')\n", "raised ValueError: no masks today"),
    "shape": ("    return [1, 2]\n", "the recipe returned list; expected a dict"),
    "no_version": ("    return {'train': [{'id': 'a/b'}]}\n", "resource 'a/b' has no 'version'"),
    "absolute": ("    return {'train': [{'id': '/etc/passwd', 'version': 1}]}\n", "must be a relative path"),
    "dotdot": ("    return {'train': [{'id': 'a/../b', 'version': 1}]}\n", "'..' segments"),
    "two_splits": (
        "    a = {'id': 'a', 'version': 1, 'type': 'File'}  # the recipe's own, not a source file\n"
        "    return {'train': [a], 'test': [a]}\n",
        "ids in more than one split: a (test, train)",
    ),
}


@pytest.mark.parametrize("case", sorted(RECIPE_FAILURES))
def test_bad_recipe_leaves_the_previous_lock(project: Path, invoke: Invoke, case: str) -> None:
    invoke("lock", "clinical_cohort")
    before = snapshot(project)
    body, message = RECIPE_FAILURES[case]
    (project / "recipes/clinical.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef clinical_cohort(client):\n" + body
    )
    result = invoke("lock", "clinical_cohort")
    assert result.exit_code == 2
    assert "dataset clinical_cohort@1 (datasets.yaml:24)" in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if case == "raises":
        assert "recipes/clinical.py:6 in clinical_cohort" in result.output
    assert snapshot(project) == before


def test_one_failing_dataset_does_not_stop_the_others(project: Path, invoke: Invoke) -> None:
    (project / "recipes/clinical.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef c(client):\n    1 / 0\n"
    )
    result = invoke("lock", "--all")
    assert result.exit_code == 2
    assert "raised ZeroDivisionError" in result.output
    assert (project / "locks/all_basel_data/1/lock.toml").exists()
    assert not (project / "locks/clinical_cohort").exists()


@pytest.mark.parametrize("fail_at", [1, 2])
def test_interrupted_write_keeps_the_previous_lock(
    project: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """Ctrl-C before the old lock is set aside (1) or between the two renames (2), where the
    folders cannot be exchanged in one step (``test_interrupted_exchange...``: where they can)."""
    monkeypatch.setattr(vxds.locks.store, "exchange", lambda a, b: False)
    invoke("lock", "viseg_training@1")
    before = snapshot(project)
    (project / "recipes/viseg.py").write_text((project / "recipes/viseg.py").read_text() + "\n# changed\n")
    real_replace = os.replace
    calls = []

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append((src, dst))
        if len(calls) == fail_at:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(vxds.locks.store.os, "replace", replace)
    result = invoke("lock", "viseg_training@1")
    assert result.exit_code == 130
    assert len(calls) >= fail_at
    monkeypatch.undo()
    assert snapshot(project) == before
    assert not [p for p in (project / "locks/viseg_training").iterdir() if p.name.startswith(".")]


def test_interrupted_exchange_keeps_the_previous_lock(
    project: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C as the new lock folder is to be exchanged with the old one (Linux)."""
    invoke("lock", "viseg_training@1")
    before = snapshot(project)
    (project / "recipes/viseg.py").write_text((project / "recipes/viseg.py").read_text() + "\n# changed\n")
    calls = []

    def exchange(a: str, b: str) -> bool:
        calls.append((a, b))
        raise KeyboardInterrupt

    monkeypatch.setattr(vxds.locks.store, "exchange", exchange)
    result = invoke("lock", "viseg_training@1")
    assert result.exit_code == 130
    assert len(calls) == 1
    monkeypatch.undo()
    assert snapshot(project) == before
    assert not [p for p in (project / "locks/viseg_training").iterdir() if p.name.startswith(".")]


def test_missing_script_and_bad_yaml(project: Path, invoke: Invoke) -> None:
    (project / "recipes/basel.py").unlink()
    result = invoke("lock", "--all")
    assert result.exit_code == 2
    assert (
        "datasets.yaml:22: dataset all_basel_data@1: field 'script_location': script './recipes/basel.py'"
        " does not exist" in result.output
    )
    (project / "datasets.yaml").write_text("- name: [broken\n")
    result = invoke("lock", "--all")
    assert result.exit_code == 2
    assert "datasets.yaml:2: not valid YAML" in result.output


def test_file_options_need_file(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "viseg_training@1", "--param", "test_every=2")
    assert result.exit_code == 2
    assert "--param go with --file SCRIPT" in result.output.replace(",", "").replace(" and", "")
    assert not (project / "locks").exists()


def test_unwritable_lock_folder_is_a_one_line_error(project: Path, invoke: Invoke) -> None:
    (project / "locks").mkdir()
    (project / "locks/clinical_cohort").write_text("not a folder")
    result = invoke("lock", "clinical_cohort")
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "locks/clinical_cohort: cannot write the lock of clinical_cohort@1: File exists" in result.output
    assert "Traceback" not in result.output


# --- the output of every mode, pinned (built from vxds.recipes.locking's outcomes) ----------


def _committed_digest(key: str) -> str:
    import vxds

    return vxds.load_lock(key, root=REPO).digest


def test_check_json_is_pinned(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "clinical_cohort", "--check", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "datasets": [
            {
                "changes": "13 added",
                "counts": {"added": 13, "removed": 0, "changed": 0, "metadata": 0, "moved": 0},
                "digest": _committed_digest("clinical_cohort@1"),
                "name": "clinical_cohort",
                "path": "locks/clinical_cohort/1",
                "recipe": "ran: no fingerprint of an earlier run",
                "splits": {"cohort": 13},
                "status": "missing",
                "version": 1,
            }
        ]
    }
    assert result.stderr == ""  # the "would change" line is for text output only


def test_unchanged_has_no_changes_in_json_or_text(project: Path, invoke: Invoke) -> None:
    invoke("lock", "clinical_cohort")
    result = invoke("lock", "clinical_cohort", "--format", "json")
    [entry] = json.loads(result.stdout)["datasets"]
    assert sorted(entry) == ["digest", "name", "path", "recipe", "splits", "status", "version"]
    assert entry["status"] == "unchanged"
    assert invoke("lock", "clinical_cohort").stdout == "unchanged  clinical_cohort@1: cohort 13\n"


def test_check_text_and_its_summary_on_stderr(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "clinical_cohort", "viseg_training@1", "--check")
    assert result.exit_code == 1
    assert result.stdout == (
        "missing  clinical_cohort@1: cohort 13  (13 added)\n"
        "missing  viseg_training@1: test 4, train 22  (26 added)\n"
    )
    assert result.stderr == "2 lock(s) would change; run 'vxds lock' to update them.\n"
    dry = invoke("lock", "clinical_cohort", "viseg_training@1", "--dry-run")
    assert (dry.exit_code, dry.stdout, dry.stderr) == (0, result.stdout, "")


def test_a_failed_dataset_in_json_and_text(project: Path, invoke: Invoke) -> None:
    (project / "recipes/clinical.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef c(client):\n    1 / 0\n"
    )
    result = invoke("lock", "clinical_cohort", "all_basel_data", "--format", "json")
    assert result.exit_code == 2
    failed, written = json.loads(result.stdout)["datasets"]
    assert sorted(failed) == ["error", "name", "status", "version"]
    assert (failed["name"], failed["version"], failed["status"]) == ("clinical_cohort", 1, "error")
    assert failed["error"].startswith("dataset clinical_cohort@1 (datasets.yaml:24): recipe c() in ")
    assert "raised ZeroDivisionError: division by zero" in failed["error"]
    assert written["status"] == "written"
    assert result.stderr == ""
    text = invoke("lock", "clinical_cohort", "all_basel_data")
    assert text.exit_code == 2
    assert text.stdout == "unchanged  all_basel_data@1: all 102\n"
    assert text.stderr.startswith("error: dataset clinical_cohort@1 (datasets.yaml:24): recipe c() in ")
    assert invoke("lock", "clinical_cohort", "-q").stdout == ""


def test_exit_code_is_1_only_when_a_lock_was_written(project: Path, invoke: Invoke) -> None:
    first = invoke("lock", "clinical_cohort", "--exit-code")
    assert (first.exit_code, first.stdout) == (1, "written  clinical_cohort@1: cohort 13  (13 added)\n")
    assert invoke("lock", "clinical_cohort", "--exit-code").exit_code == 0


def test_relocking_a_merged_lock_says_so(project: Path, invoke: Invoke) -> None:
    import dataclasses

    from vxds.locks.store import read_lock, write_lock

    invoke("lock", "clinical_cohort")
    folder = project / "locks/clinical_cohort/1"
    lock = read_lock(folder)
    write_lock(dataclasses.replace(lock, header=dataclasses.replace(lock.header, merged=True)), folder)
    result = invoke("lock", "clinical_cohort", "--dry-run", "--format", "json")
    assert json.loads(result.stdout)["datasets"][0]["changes"] == "relocks a Git merge"
    result = invoke("lock", "clinical_cohort")
    assert result.stdout == "written  clinical_cohort@1: cohort 13  (relocks a Git merge)\n"


def test_file_mode_json_and_text_are_pinned(project: Path, invoke: Invoke) -> None:
    invoke("lock", "viseg_training@1")
    locked = project / "locks/viseg_training/1"
    digests = {split: hash_file(locked / f"resources.{split}.jsonl") for split in ("test", "train")}
    (project / "out").mkdir()
    (project / "out/resources.extra.jsonl").write_text("")
    result = invoke("lock", "--file", "recipes/viseg.py", "-o", "out", "--check", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "files": [
            {
                "count": 4,
                "digest": digests["test"],
                "path": "out/resources.test.jsonl",
                "split": "test",
                "status": "would change",
            },
            {
                "count": 22,
                "digest": digests["train"],
                "path": "out/resources.train.jsonl",
                "split": "train",
                "status": "would change",
            },
            {"path": "out/resources.extra.jsonl", "split": "extra", "status": "would remove"},
        ]
    }
    result = invoke("lock", "--file", "recipes/viseg.py", "-o", "out")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "written  out/resources.test.jsonl: 4 resources\n"
        "written  out/resources.train.jsonl: 22 resources\n"
        "removed  out/resources.extra.jsonl: a split this run did not write\n"
    )
    again = invoke("lock", "--file", "recipes/viseg.py", "-o", "out", "--check")
    assert again.exit_code == 0
    assert again.stdout == (
        "unchanged  out/resources.test.jsonl: 4 resources\n"
        "unchanged  out/resources.train.jsonl: 22 resources\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--file", "recipes/viseg.py", "--all"),
            "--file locks one script; do not name datasets or use --all",
        ),
        (("--file", "recipes/viseg.py", "clinical_cohort"), "--file locks one script"),
        (("--file", "recipes/viseg.py", "--stale"), "--file locks one script"),
        (
            ("clinical_cohort", "--all"),
            "name the datasets to lock, or use --all or --stale (or --file SCRIPT)",
        ),
        (("clinical_cohort", "--all", "--stale"), "name the datasets to lock"),
        (("--param", "x=1"), "name the datasets to lock"),  # that rule is checked first
        (
            ("clinical_cohort", "-o", "out"),
            "--output, --entrypoint, --source and --param go with --file SCRIPT",
        ),
        (("clinical_cohort", "--entrypoint", "f"), "go with --file SCRIPT"),
        (("--all", "--source", "./sample-data"), "go with --file SCRIPT"),
    ],
)
def test_which_options_go_together(
    project: Path, invoke: Invoke, args: tuple[str, ...], message: str
) -> None:
    result = invoke("lock", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not (project / "locks").exists()


def test_options_at_their_default_are_not_given(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "clinical_cohort", "-o", ".")  # the default, so not a --file option
    assert result.exit_code == 0, result.output
    result = invoke("lock", "--stale", "--all", "--check")  # --stale narrows --all
    assert result.exit_code == 1
    assert "clinical_cohort" not in result.stdout
    assert result.stdout.count("missing  ") == 3


def test_file_mode_dry_run_writes_nothing(project: Path, invoke: Invoke) -> None:
    result = invoke("lock", "--file", "recipes/viseg.py", "-o", "out", "--dry-run")
    assert result.exit_code == 0  # only --check fails on a difference
    assert result.stdout == (
        "would change  out/resources.test.jsonl: 4 resources\n"
        "would change  out/resources.train.jsonl: 22 resources\n"
    )
    assert not (project / "out").exists()
