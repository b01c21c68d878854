"""vxds/locks/status.py: fresh, stale, missing and corrupt, answered without running a recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from vxds.locks.status import CORRUPT, FRESH, MISSING, STALE, LockStatus, lock_status
from vxds.locks.store import write_lock
from vxds.project.config import load_config
from vxds.project.manifest import Entry, load_manifest
from vxds.recipes.resolver import Resolver


def _entry(project: Path) -> Entry:
    config = load_config(project)
    return load_manifest(config.manifest, default_source=config.source).find("demo")


def _status(project: Path) -> LockStatus:
    return lock_status(_entry(project), load_config(project), deep=True)


@pytest.fixture
def locked(project: Path) -> Path:
    config = load_config(project)
    write_lock(Resolver(config).resolve(_entry(project)), config.locks / "demo" / "1")
    return project


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_missing(project: Path) -> None:
    status = _status(project)
    assert (status.state, status.reasons, status.header) == (
        MISSING,
        ("no lock at locks/demo/1",),
        None,
    )


def test_fresh(locked: Path) -> None:
    status = _status(locked)
    assert (status.state, status.reasons) == (FRESH, ())
    assert status.header is not None
    assert status.header.key == "demo@1"
    assert status.path == locked / "locks" / "demo" / "1"


def test_description_change_is_not_stale(locked: Path) -> None:
    _edit(locked / "datasets.yaml", "T2w volumes of three subjects.", "Reworded prose.")
    assert _status(locked).state == FRESH


def test_script_text_change_is_stale(locked: Path) -> None:
    _edit(locked / "recipes" / "demo.py", 'test_subject="02"', 'test_subject="03"')
    status = _status(locked)
    assert (status.state, status.reasons) == (
        STALE,
        ("the recipe script ./recipes/demo.py changed",),
    )


def test_line_endings_alone_are_not_stale(locked: Path) -> None:
    script = locked / "recipes" / "demo.py"
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))
    assert _status(locked).state == FRESH


def test_params_change_is_stale(locked: Path) -> None:
    (locked / "datasets.yaml").write_text(
        (locked / "datasets.yaml").read_text() + "  params: {test_subject: '01'}\n"
    )
    status = _status(locked)
    assert status.state == STALE
    assert status.reasons == ("the recipe params changed", "the manifest entry changed")


def test_entry_change_is_stale(locked: Path) -> None:
    _edit(locked / "datasets.yaml", "group_by: attrs.subject", "group_by: attrs.session")
    status = _status(locked)
    assert (status.state, status.reasons) == (STALE, ("the manifest entry changed",))


def test_unreadable_script_is_stale(locked: Path) -> None:
    (locked / "recipes" / "demo.py").write_bytes(b"\xff\xfe not utf-8")
    status = _status(locked)
    assert (status.state, status.reasons) == (
        STALE,
        ("the recipe script ./recipes/demo.py cannot be read",),
    )


def test_corrupt(locked: Path) -> None:
    split = locked / "locks" / "demo" / "1" / "resources.test.jsonl"
    split.write_bytes(split.read_bytes().replace(b"sub-02", b"sub-09"))
    status = _status(locked)
    assert (status.state, status.reasons, status.header) == (
        CORRUPT,
        ("resources.test.jsonl does not match its digest",),
        None,
    )


def test_corrupt_when_the_header_names_another_dataset(locked: Path) -> None:
    old, new = locked / "locks" / "demo" / "1", locked / "locks" / "demo" / "2"
    manifest = locked / "datasets.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1", "version: 2"))
    old.rename(new)
    status = _status(locked)
    assert (status.state, status.reasons) == (CORRUPT, ("lock.toml names demo@1, not demo@2",))


def test_corrupt_when_the_header_cannot_be_parsed(locked: Path) -> None:
    (locked / "locks" / "demo" / "1" / "lock.toml").write_bytes(b"\xff not utf-8")
    status = _status(locked)
    assert status.state == CORRUPT
    assert status.reasons[0].startswith("cannot read lock.toml")
