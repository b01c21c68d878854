"""Attacks on ``vxds materialize`` and ``verify --materialized`` (issue 10, items 1-3, 12, 13, 16).

Every test drives the real CLI over the example project: forged receipts and journals,
symlinks planted in OUT, a crafted catalog listing, a full disk, overlapping bare split
files. The property tests at the end feed arbitrary bytes to the receipt and journal parsers.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import invoke, project  # noqa: F401 (fixtures)
from tests.helpers import REPO, Invoke
from vxds.hashing import PREFIX, canonical_json, digest_bytes
from vxds.locks.splits import Split
from vxds.materialize import Target, materialize
from vxds.materialize.check import check_output
from vxds.materialize.receipt import (
    JOURNAL,
    LOCK_FILE,
    OWN,
    RECEIPT,
    TMP_DIR,
    ReceiptError,
    read_journal,
    read_receipt,
)
from vxds.resource import Resource

MASK = "basel/derivatives/lesions/sub-BS01/ses-01/anat/sub-BS01_ses-01_desc-lesion_mask.nii.gz"
SERIES = "basel/sourcedata/sub-BS01/ses-01/dicom/T2w"
MATERIALIZE = ("materialize", "viseg_training@1", "-o", "out", "-m", "files")


@pytest.fixture
def locked(project: Path) -> Path:  # noqa: F811 (the imported fixture)
    """The example project with the repository's locks."""
    shutil.copytree(REPO / "locks", project / "locks")
    return project


@pytest.fixture
def materialized(locked: Path, invoke: Invoke) -> Path:  # noqa: F811
    """``locked`` with viseg_training@1 materialized into ``out`` (26 files)."""
    result = invoke(*MATERIALIZE)
    assert result.exit_code == 0, result.output
    return locked


def _receipt(root: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / "out" / RECEIPT).read_text())
    return data


def _write_receipt(root: Path, data: dict[str, object]) -> None:
    (root / "out" / RECEIPT).write_text(json.dumps(data))


def _victim(path: Path) -> Path:
    path.write_text("keep me")
    return path


# --- item 1: forged receipts and journals ----------------------------------------------


def test_a_forged_receipt_removes_nothing_outside_out(
    materialized: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
) -> None:
    absolute, relative = _victim(tmp_path / "victim_abs"), _victim(materialized / "victim_rel")
    receipt = _receipt(materialized)
    files = receipt["files"]
    assert isinstance(files, dict)
    entry = next(iter(files.values()))
    files[str(absolute)] = entry
    files["../victim_rel"] = entry
    _write_receipt(materialized, receipt)
    result = invoke(*MATERIALIZE)
    assert absolute.read_text() == "keep me"
    assert relative.read_text() == "keep me"
    assert result.exit_code == 0, result.output
    assert "removed" not in result.stdout
    assert "is not a path inside OUT" in result.output


def test_a_forged_journal_line_removes_nothing_outside_out(
    materialized: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
) -> None:
    victim = _victim(tmp_path / "victim")
    receipt = _receipt(materialized)
    files = receipt["files"]
    assert isinstance(files, dict)
    line = {"path": str(victim), "entry": next(iter(files.values()))}
    (materialized / "out" / JOURNAL).write_bytes(orjson.dumps(line) + b"\n")
    result = invoke(*MATERIALIZE)
    assert victim.read_text() == "keep me"
    assert "removed" not in result.stdout
    assert f"{JOURNAL}, line 1" in result.output


def test_a_symlinked_folder_inside_out_is_never_emptied(
    materialized: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = materialized / "out"
    outside = tmp_path / "outside_basel"
    shutil.copytree(out / "train/basel", outside)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    assert len([p for p in outside.rglob("*") if p.is_file()]) == 14
    shutil.rmtree(out / "train/basel")
    (out / "train/basel").symlink_to(outside, target_is_directory=True)
    result = invoke(
        "materialize", "viseg_training@1", "-o", "out", "-m", "files", "--split", "test", "--prune"
    )
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before
    assert result.exit_code == 0, result.output
    assert f"note: {out}/train/basel is a symlink; nothing was removed through it" in result.output


def test_verify_never_reads_a_receipt_path_outside_out(
    materialized: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
) -> None:
    secret = tmp_path / "shadow"
    secret.write_bytes(b"s" * 12345)
    receipt = _receipt(materialized)
    files = receipt["files"]
    assert isinstance(files, dict)
    files[str(secret)] = {**next(iter(files.values())), "size": 1}
    files["/etc/shadow"] = {**next(iter(files.values())), "size": 1}
    _write_receipt(materialized, receipt)
    result = invoke("verify", "--materialized", "out")
    assert result.exit_code == 1
    assert "12345" not in result.output
    assert "VX701" in result.output
    assert "is not a path inside OUT" in result.output


def test_verify_never_reads_through_a_symlinked_folder(
    materialized: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = materialized / "out"
    outside = tmp_path / "outside_basel"
    shutil.copytree(out / "train/basel", outside)
    (outside / MASK.split("/", 1)[1]).write_bytes(b"x" * 4321)  # a size verify must not print
    shutil.rmtree(out / "train/basel")
    (out / "train/basel").symlink_to(outside, target_is_directory=True)
    result = invoke("verify", "--materialized", "out")
    assert result.exit_code == 1
    assert "4321" not in result.output
    assert "train/basel is a symlink" in result.output


def test_a_receipt_naming_a_lock_outside_the_locks_folder_is_refused(
    materialized: Path,
    invoke: Invoke,  # noqa: F811
) -> None:
    shutil.copytree(materialized / "locks/viseg_training/1", materialized / "evil/1")
    receipt = _receipt(materialized)
    receipt["dataset"] = "../evil@1"
    _write_receipt(materialized, receipt)
    result = invoke("verify", "--materialized", "out")
    assert result.exit_code == 1
    assert "VX701" in result.output
    assert "'../evil@1'" in result.output


# --- item 2: vxds' own files in OUT that are symlinks ----------------------------------


@pytest.mark.parametrize("name", [JOURNAL, TMP_DIR, LOCK_FILE])
def test_own_files_that_are_symlinks_are_never_followed(
    locked: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
    name: str,
) -> None:
    out = locked / "out"
    out.mkdir()
    outside = tmp_path / f"outside{name}"
    if name == TMP_DIR:
        outside.mkdir()
    elif name == JOURNAL:
        outside.write_bytes(b"")
    (out / name).symlink_to(outside)
    mtime = outside.stat().st_mtime_ns if outside.exists() else None
    result = invoke(*MATERIALIZE)
    assert result.exit_code == 2
    assert result.output == f"error: {out / name} is a symlink; vxds never follows one of its own files\n"
    if name == LOCK_FILE:
        assert not outside.exists()
    else:
        assert outside.stat().st_mtime_ns == mtime
        assert outside.is_dir() or outside.read_bytes() == b""


def test_a_leftover_temp_folder_is_created_fresh(locked: Path, invoke: Invoke) -> None:  # noqa: F811
    first = json.loads((locked / "locks/viseg_training/1/resources.test.jsonl").read_text().splitlines()[0])
    tmp = locked / "out" / TMP_DIR
    tmp.mkdir(parents=True)
    # What a killed run left under the name this run's first temporary file gets.
    (tmp / f"1-{first['id'].rsplit('/', 1)[-1]}").write_bytes(b"from a killed run")
    result = invoke(*MATERIALIZE)
    assert result.exit_code == 0, result.output
    assert "26 placed" in result.stdout
    assert not tmp.exists()


# --- item 3: a crafted catalog listing -------------------------------------------------


@pytest.fixture
def catalog_locked(locked: Path, invoke: Invoke) -> Path:  # noqa: F811
    """The example project reading from catalog.db, with all_basel_data locked from it."""
    pyproject = locked / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('source = "./sample-data"', 'source = "catalog:catalog.db"')
    )
    assert invoke("catalog", "init").exit_code == 0
    assert invoke("catalog", "ingest", "sample-data").exit_code == 0
    return locked


def _store(root: Path, data: bytes) -> str:
    digest = digest_bytes(data)
    blob = root / "catalog.objects/blake3" / digest[len(PREFIX) :][:2] / digest[len(PREFIX) :][2:]
    blob.parent.mkdir(exist_ok=True)
    if blob.exists():
        blob.chmod(0o644)
    blob.write_bytes(data)
    return digest


def _set_series_hash(root: Path, digest: str) -> None:
    db = sqlite3.connect(root / "catalog.db")
    with db:
        db.execute("UPDATE versions SET hash = ? WHERE id = ?", (digest, SERIES))
    db.close()


def _member_digest(root: Path) -> str:
    db = sqlite3.connect(root / "catalog.db")
    (digest,) = db.execute("SELECT hash FROM versions WHERE id = ?", (SERIES,)).fetchone()
    db.close()
    blob = root / "catalog.objects/blake3" / digest[len(PREFIX) :][:2] / digest[len(PREFIX) :][2:]
    listing: list[list[str]] = orjson.loads(blob.read_bytes())
    return listing[0][1]


def test_a_crafted_catalog_listing_writes_nothing_outside_out(
    catalog_locked: Path,
    invoke: Invoke,  # noqa: F811
    tmp_path: Path,
) -> None:
    root = catalog_locked
    crafted = canonical_json([["../../../ESCAPED_series.dcm", _member_digest(root)]])
    _set_series_hash(root, _store(root, crafted))
    assert invoke("lock", "all_basel_data").exit_code == 0
    result = invoke("materialize", "all_basel_data@1", "-o", "out", "-m", "files")
    assert not [p for p in tmp_path.rglob("ESCAPED*")]
    assert result.exit_code == 1
    assert f"error: {SERIES}: " in result.output
    assert "'../../../ESCAPED_series.dcm'" in result.output


def test_verify_data_reports_a_crafted_catalog_listing(
    catalog_locked: Path,
    invoke: Invoke,  # noqa: F811
) -> None:
    root = catalog_locked
    crafted = canonical_json([["../../../ESCAPED_series.dcm", _member_digest(root)]])
    _set_series_hash(root, _store(root, crafted))
    assert invoke("lock", "all_basel_data").exit_code == 0
    assert invoke("verify", "--no-exec", "all_basel_data").exit_code == 0  # the lock itself is sound
    result = invoke("verify", "--no-exec", "--data", "all_basel_data")
    assert result.exit_code == 1
    assert "VX504" in result.output
    assert "'../../../ESCAPED_series.dcm'" in result.output


def test_a_listing_that_does_not_match_its_hash_is_refused_before_writing(
    catalog_locked: Path,
    invoke: Invoke,  # noqa: F811
) -> None:
    root = catalog_locked
    assert invoke("lock", "all_basel_data").exit_code == 0
    locked_hash = next(
        json.loads(line)["hash"]
        for line in (root / "locks/all_basel_data/1/resources.all.jsonl").read_text().splitlines()
        if json.loads(line)["id"] == SERIES
    )
    blob = root / "catalog.objects/blake3" / locked_hash[len(PREFIX) :][:2] / locked_hash[len(PREFIX) :][2:]
    listing = orjson.loads(blob.read_bytes())
    blob.chmod(0o644)
    blob.write_bytes(canonical_json(listing[:1]))  # swapped in the store: one member left
    result = invoke("materialize", "all_basel_data@1", "-o", "out", "-m", "files")
    assert result.exit_code == 1
    assert f"error: {SERIES}: " in result.output
    assert "the stored listing of" in result.output
    assert "does not match its hash" in result.output


# --- item 12: a full disk --------------------------------------------------------------


def _full_for(
    monkeypatch: pytest.MonkeyPatch, resource_id: str
) -> Callable[[Resource, str, str], tuple[str, int, tuple[int, int, int]]]:
    from vxds.materialize import place

    real = place.copy_file

    def full(resource: Resource, src: str, tmp: str) -> tuple[str, int, tuple[int, int, int]]:
        if resource.id == resource_id:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(resource, src, tmp)

    monkeypatch.setattr(place, "copy_file", full)
    return real


def test_a_full_disk_stops_the_run_naming_the_path_and_resource(
    locked: Path,
    invoke: Invoke,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = _full_for(monkeypatch, MASK)
    result = invoke(*MATERIALIZE, "--jobs", "1")
    assert result.exit_code == 2
    out = locked / "out"
    assert result.output == (
        f"error: no space left on the device writing {out}/train/{MASK} (resource {MASK});"
        " free some space and run again: what was placed is kept\n"
    )
    assert not (out / "train" / MASK).exists()
    assert not (out / TMP_DIR).exists()
    assert (out / JOURNAL).is_file()
    assert not (out / RECEIPT).exists()
    from vxds.materialize import place

    monkeypatch.setattr(place, "copy_file", real)
    again = invoke(*MATERIALIZE, "--jobs", "1")
    assert again.exit_code == 0, again.output
    placed = int(again.stdout.split(": ", 1)[1].split(" placed")[0])
    assert placed < 26  # the files journalled before the disk filled were kept
    assert check_output(out) == []


def test_a_full_disk_when_the_receipt_is_written_names_it(
    locked: Path,
    invoke: Invoke,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vxds.fs import StagedFile

    real = StagedFile.write

    def full(self: StagedFile, data: bytes) -> None:
        if RECEIPT in self.path.name:  # the receipt's temporary file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, data)

    monkeypatch.setattr(StagedFile, "write", full)
    result = invoke(*MATERIALIZE)
    out = locked / "out"
    assert result.exit_code == 2
    assert result.output.startswith(f"error: no space left on the device writing {out / RECEIPT}")
    assert not (out / RECEIPT).exists()
    assert (out / JOURNAL).is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [JOURNAL, LOCK_FILE]


# --- item 13: an id in two bare split files --------------------------------------------


def test_an_id_in_two_bare_split_files_is_refused(locked: Path, invoke: Invoke) -> None:  # noqa: F811
    for folder, split in (("a", "train"), ("b", "val")):
        (locked / folder).mkdir()
        shutil.copy(
            locked / "locks/viseg_training/1/resources.train.jsonl",
            locked / folder / f"resources.{split}.jsonl",
        )
    first = json.loads((locked / "a/resources.train.jsonl").read_text().splitlines()[0])["id"]
    result = invoke(
        "materialize",
        "-f",
        "a/resources.train.jsonl",
        "-f",
        "b/resources.val.jsonl",
        "-o",
        "out",
        "-m",
        "files",
    )
    assert result.exit_code == 2
    assert result.output == (
        f"error: a/resources.train.jsonl and b/resources.val.jsonl both hold {first!r} (and 21 more);"
        " a resource belongs to one split\n"
    )
    assert not (locked / "out").exists()


def test_one_split_given_twice_is_refused(locked: Path, invoke: Invoke) -> None:  # noqa: F811
    for folder in ("a", "b"):
        (locked / folder).mkdir()
        shutil.copy(locked / "locks/viseg_training/1/resources.test.jsonl", locked / folder)
    result = invoke(
        "materialize",
        "-f",
        "a/resources.test.jsonl",
        "-f",
        "b/resources.test.jsonl",
        "-o",
        "out",
        "-m",
        "files",
    )
    assert result.exit_code == 2
    assert result.output == "error: a/resources.test.jsonl and b/resources.test.jsonl are both split 'test'\n"


# --- item 16: the journal and the receipt reach the disk -------------------------------


def test_the_journal_and_the_receipt_are_fsynced_with_their_folder(
    locked: Path,
    invoke: Invoke,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    assert invoke(*MATERIALIZE).exit_code == 0
    out = str(locked / "out")
    assert f"{out}/{JOURNAL}" in synced
    assert any(path.startswith(f"{out}/.{RECEIPT}") for path in synced)  # the temporary name
    receipt_at = next(i for i, path in enumerate(synced) if path.startswith(f"{out}/.{RECEIPT}"))
    assert out in synced[receipt_at:]  # the rename made durable
    assert synced.count(out) >= 2  # the journal's creation, the receipt's rename (and its removal)


# --- properties: any bytes in, a receipt inside OUT or one clean error out -------------

# Paths a forger would try, mixed with ordinary ones (no U+2028 and the like: whether those
# are ids is decided by the id rules, not by the receipt).
SEGMENTS = st.sampled_from(["a", "b.nii.gz", "..", ".", "", "C:", "x\\y", "n\x00", "t\nu", "é", *OWN])
PATHS = st.one_of(
    st.lists(SEGMENTS, min_size=1, max_size=4).map("/".join),
    st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    st.text(max_size=12),
)


def _inside(rel: str) -> bool:
    """The reference: a relative path of ordinary segments, not one of vxds' own names."""
    parts = rel.split("/")
    return (
        bool(rel)
        and not rel.startswith("/")
        and not (len(rel) > 1 and rel[1] == ":" and rel[0].isalpha())
        and "\\" not in rel
        and not any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029" for ch in rel)
        and all(part not in ("", ".", "..") for part in parts)
        and parts[0] not in OWN
    )


ENTRY = {
    "hash": "blake3:" + "0" * 64,
    "size": 3,
    "resource": "a",
    "locked": None,
    "module": "files",
    "stat": None,
}


def _receipt_bytes(paths: list[str]) -> bytes:
    body = {
        "format": 1,
        "generator": "vxds",
        "dataset": None,
        "lock_digest": "blake3:" + "1" * 64,
        "source": None,
        "splits": {},
        "modules": ["files"],
        "files": {path: ENTRY for path in paths},
        "failed": [],
    }
    return orjson.dumps(body)


@settings(max_examples=200, deadline=None)
@given(st.lists(PATHS, max_size=4))
def test_a_receipt_is_accepted_exactly_when_every_path_stays_inside_out(paths: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            receipt = read_receipt(_write(Path(tmp), RECEIPT, _receipt_bytes(paths)))
        except ReceiptError as exc:
            assert "\n" not in str(exc)
            assert not all(_inside(p) for p in paths)
        else:
            assert receipt is not None
            assert set(receipt.files) == set(paths)
            assert all(_inside(p) for p in paths)


@settings(max_examples=200, deadline=None)
@given(st.lists(PATHS, max_size=4))
def test_a_journal_is_accepted_exactly_when_every_path_stays_inside_out(paths: list[str]) -> None:
    lines = b"".join(orjson.dumps({"path": p, "entry": ENTRY}) + b"\n" for p in paths)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            found = read_journal(_write(Path(tmp), JOURNAL, lines))
        except ReceiptError as exc:
            assert "\n" not in str(exc)
            assert not all(_inside(p) for p in paths)
        else:
            assert set(found) == set(paths)
            assert all(_inside(p) for p in paths)


def _write(folder: Path, name: str, data: bytes) -> Path:
    (folder / name).write_bytes(data)
    return folder


BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(PATHS, max_size=3).map(_receipt_bytes),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=12,
    ).map(
        lambda value: orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS) if value is not None else b"null"
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BYTES, BYTES)
def test_any_bytes_give_findings_inside_out_never_an_exception(receipt: bytes, journal: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        _write(out, RECEIPT, receipt)
        _write(out, JOURNAL, journal)
        try:
            read_journal(out)
        except ReceiptError as exc:
            assert "\n" not in str(exc)
        for finding in check_output(out):
            assert finding.file is not None
            assert finding.file.startswith(out.as_posix())
            assert "\n" not in finding.message


def _tiny_target(base: Path) -> Target:
    (base / "src").mkdir()
    (base / "src/a.txt").write_bytes(b"abc")
    line = orjson.dumps(
        {
            "attrs": {},
            "hash": digest_bytes(b"abc"),
            "id": "a.txt",
            "size": 3,
            "type": "File",
            "uri": "a.txt",
            "version": 1,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return Target("tiny", None, None, {"train": Split.from_lines([line])}, "./src", base)


@settings(max_examples=60, deadline=None)
@given(st.lists(PATHS, max_size=3), st.lists(PATHS, max_size=3))
def test_a_forged_receipt_or_journal_never_removes_a_file_outside_out(
    receipt_paths: list[str], journal_paths: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        target = _tiny_target(base)
        victims = [_victim(base / "victim"), _victim(base / "src/victim")]
        out = base / "out"
        out.mkdir()
        keys = [*receipt_paths, str(base / "victim"), "../victim"]
        _write(out, RECEIPT, _receipt_bytes(keys))
        lines = [{"path": p, "entry": ENTRY} for p in [*journal_paths, "../src/victim"]]
        _write(out, JOURNAL, b"".join(orjson.dumps(line) + b"\n" for line in lines))
        report = materialize(target, out, ["files"], jobs=1)
        assert report.ok
        assert report.removed == 0
        assert all(v.read_text() == "keep me" for v in victims)


class _ListingSource:
    """A third-party source whose series listing names a path, not a file name."""

    def __init__(self, member: Path, name: str) -> None:
        self.member, self.name = member, name

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        return [("ok.dcm", str(self.member)), (self.name, str(self.member))]


@pytest.mark.parametrize("name", ["../../escaped.dcm", "sub/escaped.dcm", "/tmp/escaped.dcm", "ok.dcm"])
def test_any_source_s_series_members_are_placed_only_inside_the_series(tmp_path: Path, name: str) -> None:
    member = _victim(tmp_path / "member.dcm")
    line = orjson.dumps(
        {
            "attrs": {},
            "hash": None,
            "id": "s/series",
            "size": None,
            "type": "DICOMSeries",
            "uri": None,
            "version": 1,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    target = Target("t", None, None, {"train": Split.from_lines([line])}, None, tmp_path)
    out = tmp_path / "out"
    report = materialize(target, out, ["files"], source=_ListingSource(member, name))
    assert [(f.resource, f.message) for f in report.failures] == [
        ("s/series", f"the series lists {name!r}, not a file of it ({_problem(name)})")
    ]
    assert sorted(p.name for p in tmp_path.rglob("*escaped*")) == []
    assert not (out / "train/s/series").exists()


def _problem(name: str) -> str:
    from vxds.materialize.inside import member_problem

    return member_problem(name) or "listed twice"
