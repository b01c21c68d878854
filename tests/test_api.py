from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import vxds
from vxds.errors import NotFoundError

REPO = Path(__file__).resolve().parents[1]


def test_public_api_is_small_and_lazy() -> None:
    assert sorted(vxds.__all__) == sorted(
        [
            "Client",
            "Resource",
            "__version__",
            "dataset_compilation_entrypoint",
            "load_lock",
            "lock",
            "query",
            "recipe",
        ]
    )
    assert vxds.dataset_compilation_entrypoint is vxds.recipe
    with pytest.raises(AttributeError):
        vxds.nothing  # noqa: B018


def test_load_lock_by_name_version_and_path() -> None:
    lock = vxds.load_lock("viseg_training@1", root=REPO)
    assert lock.header.key == "viseg_training@1"
    assert sorted(lock.splits) == ["test", "train"]
    ids = [r.id for r in lock.resources("test")]
    assert ids == sorted(ids)
    assert len(ids) == lock.splits["test"].count == 4
    assert all(isinstance(r, vxds.Resource) for r in lock.resources())
    highest = vxds.load_lock("viseg_training", root=REPO)
    assert highest.header.version == 2
    assert vxds.load_lock(REPO / "locks/viseg_training/1").digest == lock.digest


def test_load_lock_unknown_dataset() -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        vxds.load_lock("nope", root=REPO)


def _project_copy(tmp_path: Path, *, locks: bool = True) -> Path:
    import shutil

    root = tmp_path / "project"
    root.mkdir()
    for name in ("datasets.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("locks", "sample-data", "recipes") if locks else ("sample-data", "recipes"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_open_streams_verified_bytes_and_to_records(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    lock = vxds.load_lock("viseg_training@1", root=root)
    first = next(iter(lock))
    with lock.open(first) as fh:
        assert fh.read() == (root / "sample-data" / first.id).read_bytes()
    with lock.open(first.id) as fh:
        assert b"".join(fh) == (root / "sample-data" / first.id).read_bytes()
    records = lock.to_records("test")
    assert len(records) == 4
    assert records[0]["split"] == "test"
    assert set(records[0]) >= {"id", "hash", "attrs"}
    assert len(lock.to_records()) == len(lock) == 26
    with pytest.raises(NotFoundError, match="no split 'val'"):
        lock.to_records("val")
    clinical = vxds.load_lock(root / "locks/clinical_cohort/1")
    record = next(iter(clinical))
    with clinical.open(record) as fh:
        assert b'"participant_id"' in fh.read()


def test_open_raises_when_the_bytes_changed(tmp_path: Path) -> None:
    from vxds.locks.verified_read import IntegrityError

    root = _project_copy(tmp_path)
    lock = vxds.load_lock("viseg_training@1", root=root)
    first = next(iter(lock))
    path = root / "sample-data" / first.id
    path.write_bytes(path.read_bytes()[::-1])
    with lock.open(first) as fh, pytest.raises(IntegrityError, match="does not match the locked hash"):
        fh.read()


SERIES = "basel/sourcedata/sub-BS01/ses-01/dicom/T2w"


def test_open_of_a_dicom_series_gives_its_files_checked(tmp_path: Path) -> None:
    import pydicom

    from vxds.api import SeriesFiles
    from vxds.locks.verified_read import IntegrityError

    root = _project_copy(tmp_path)
    (root / "sample-data" / SERIES / "notes.txt").write_text("not a member")  # a stray file
    lock = vxds.load_lock("all_basel_data@1", root=root)
    with lock.open(SERIES) as series:
        assert isinstance(series, SeriesFiles)
        assert series.names == [f"IM{k:04d}.dcm" for k in range(1, 11)]
        numbers = []
        for _, fh in series:
            with fh:  # pydicom seeks: it reads the checked bytes from memory
                numbers.append(int(pydicom.dcmread(io.BytesIO(fh.read())).InstanceNumber))
        assert series.read("IM0001.dcm") == (root / "sample-data" / SERIES / "IM0001.dcm").read_bytes()
    assert sorted(numbers) == list(range(1, 11))
    member = root / "sample-data" / SERIES / "IM0003.dcm"
    member.write_bytes(member.read_bytes()[:-1] + b"\1")
    with pytest.raises(IntegrityError, match=f"{SERIES}: content does not match the locked hash"):
        lock.open(SERIES)


def test_loading_a_lock_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vxds\n"
        f"lock = vxds.load_lock('viseg_training@1', root={str(REPO)!r})\n"
        "with lock.open(next(iter(lock))) as fh: fh.read()\n"
        "heavy = {'git', 'rich', 'pyarrow', 'fsspec', 'click', 'numpy', 'pandas', 'jsonschema'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


# --- vxds.lock -----------------------------------------------------------------------------


def _doc_example() -> tuple[str, str]:
    """The example in docs/api.md and the output the page says it prints."""
    text = (REPO / "docs/api.md").read_text(encoding="utf-8")
    section = text.split("## Locking from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/api.md: the locking example or its output block is gone"
    return match[1], match[2]


def test_the_locking_example_in_docs_api_runs_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, printed = _doc_example()
    root = _project_copy(tmp_path, locks=False)
    monkeypatch.chdir(root)
    exec(compile(code, "docs/api.md", "exec"), {})
    assert capsys.readouterr().out == printed
    for rel in ("viseg_training/1", "clinical_cohort/1"):  # the locks committed in this repository
        assert (root / "locks" / rel / "lock.toml").read_bytes() == (
            REPO / "locks" / rel / "lock.toml"
        ).read_bytes()
    assert not (root / "locks/viseg_training/2").exists()


def test_lock_every_dataset_and_nothing_twice(tmp_path: Path) -> None:
    from vxds.recipes.locking import Changes

    root = _project_copy(tmp_path, locks=False)
    first = vxds.lock(root=root)
    assert [(o.key, o.state) for o in first] == [
        ("viseg_training@1", "written"),
        ("viseg_training@2", "written"),
        ("all_basel_data@1", "written"),
        ("clinical_cohort@1", "written"),
    ]
    assert first[0].changes == Changes(added=26)
    assert first[0].path == root / "locks/viseg_training/1"
    again = vxds.lock(root=str(root))
    assert [o.state for o in again] == ["unchanged"] * 4
    assert [o.changes for o in again] == [None] * 4
    assert [o.digest for o in again] == [o.digest for o in first]


def test_lock_dry_run_and_stale(tmp_path: Path) -> None:
    root = _project_copy(tmp_path, locks=False)
    [missing] = vxds.lock(["clinical_cohort@1"], root=root, dry_run=True)
    assert (missing.state, missing.pending) == ("missing", True)
    assert not (root / "locks").exists()
    vxds.lock("clinical_cohort", root=root)
    assert [o.key for o in vxds.lock(root=root, stale=True)] == [
        "viseg_training@1",
        "viseg_training@2",
        "all_basel_data@1",
    ]
    assert vxds.lock(root=root, stale=True) == []


def test_lock_collects_a_failing_recipe_and_raises_for_a_bad_name(tmp_path: Path) -> None:
    from vxds.errors import RecipeError

    root = _project_copy(tmp_path, locks=False)
    (root / "recipes/clinical.py").write_text("import vxds\n\n\n@vxds.recipe()\ndef c(client):\n    1 / 0\n")
    failed, written = vxds.lock(["clinical_cohort", "all_basel_data"], root=root)
    assert failed.state == "error"
    assert isinstance(failed.error, RecipeError)
    assert "raised ZeroDivisionError" in str(failed.error)
    assert (failed.splits, failed.digest, failed.changes) == ({}, None, None)
    assert written.state == "written"
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        vxds.lock("nope", root=root)


def test_locking_from_python_imports_no_click(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = _project_copy(tmp_path, locks=False)
    code = (
        "import sys, vxds\n"
        f"[outcome] = vxds.lock('clinical_cohort', root={str(root)!r})\n"
        "assert outcome.state == 'written', outcome\n"
        "print(sorted({'click', 'rich'} & {m.split('.')[0] for m in sys.modules}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
