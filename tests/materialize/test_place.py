"""Placing bytes: verification, atomic names, the receipt, reruns, modes and bad input."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from vxds.errors import UsageError
from vxds.locks.splits import Split
from vxds.materialize import Target, materialize, transfer
from vxds.materialize.check import check_output
from vxds.materialize.durable import DiskFull
from vxds.materialize.receipt import JOURNAL, RECEIPT, TMP_DIR, read_journal, read_receipt
from vxds.resource import Resource

MakeTarget = Callable[..., Target]
MASK = "basel/derivatives/lesions/sub-BS01/ses-01/anat/sub-BS01_ses-01_desc-lesion_mask.nii.gz"
T2W = "basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz"


def _files(out: Path) -> set[str]:
    return {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if (p.is_file() or p.is_symlink()) and not p.name.startswith(".vxds")
    }


def test_files_layout_places_every_resource_with_its_bytes(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    report = materialize(t, out, ["files"], jobs=1)
    assert report.ok
    assert report.placed == 26
    assert report.unchanged == 0
    expected = {f"{s}/{r.id}" for s, split in t.splits.items() for r in split.resources()}
    assert _files(out) == expected
    for rel in expected:
        rid = rel.split("/", 1)[1]
        assert (out / rel).read_bytes() == (sample / "sample-data" / rid).read_bytes()
    receipt = read_receipt(out)
    assert receipt is not None
    assert receipt.dataset == "viseg_training@1"
    assert receipt.lock_digest == t.lock_digest
    assert set(receipt.files) == expected
    entry = receipt.files[f"train/{MASK}"]
    assert entry.resource == MASK
    assert entry.hash.startswith("blake3:")
    assert entry.module == "files"
    assert not (out / TMP_DIR).exists()
    assert not (out / JOURNAL).exists()
    assert check_output(out, None) == []


def test_rerun_skips_what_is_in_place_and_replaces_what_changed(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    materialize(t, out, ["files"])
    again = materialize(t, out, ["files"])
    assert (again.placed, again.unchanged) == (0, 26)
    (out / "train" / MASK).write_bytes(b"tampered")
    fixed = materialize(t, out, ["files"])
    assert (fixed.placed, fixed.unchanged) == (1, 25)
    assert (out / "train" / MASK).read_bytes() == (sample / "sample-data" / MASK).read_bytes()


def test_a_changed_byte_fails_that_resource_only(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    source = sample / "sample-data" / T2W
    data = bytearray(source.read_bytes())
    data[10] ^= 0xFF
    source.write_bytes(bytes(data))
    out = sample / "out"
    report = materialize(t, out, ["files"], jobs=1)
    assert [(f.resource, f.path) for f in report.failures] == [(T2W, f"train/{T2W}")]
    assert "does not match the locked hash" in report.failures[0].message
    assert report.placed == 25
    assert not (out / "train" / T2W).exists()
    assert not list((out / "train").rglob("*.tmp*"))
    assert not (out / TMP_DIR).exists()
    receipt = read_receipt(out)
    assert receipt is not None
    assert f"train/{T2W}" not in receipt.files
    codes = [f.code for f in check_output(out, None)]
    assert codes == ["VX705"]


def test_a_resource_missing_from_the_source(sample: Path, target: MakeTarget) -> None:
    (sample / "sample-data" / MASK).unlink()
    report = materialize(target("viseg_training", 1), sample / "out", ["files"])
    assert [f.resource for f in report.failures] == [MASK]
    assert "missing from the source" in report.failures[0].message
    assert report.placed == 25


def test_output_that_is_a_file_is_refused(sample: Path, target: MakeTarget) -> None:
    out = sample / "out"
    out.write_text("not a folder")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        materialize(target("viseg_training", 1), out, ["files"])
    assert out.read_text() == "not a folder"


def _one_split_target(sample: Path, ids: list[str]) -> Target:
    lines = [
        orjson.dumps(
            {"attrs": {}, "hash": None, "id": rid, "size": None, "type": "File", "uri": T2W, "version": 1},
            option=orjson.OPT_SORT_KEYS,
        )
        for rid in ids
    ]
    return Target("evil", None, None, {"train": Split.from_lines(lines)}, "./sample-data", sample)


def test_ids_that_would_escape_out_are_refused(sample: Path) -> None:
    out = sample / "out"
    t = _one_split_target(sample, ["../../escaped", "/abs/path", "ok/file"])
    report = materialize(t, out, ["files"])
    assert sorted(f.resource or "" for f in report.failures) == ["../../escaped", "/abs/path"]
    assert all("cannot place it" in f.message for f in report.failures)
    assert not (sample / "escaped").exists()
    assert not Path("/abs/path").exists()
    assert (out / "train/ok/file").is_file()


def test_symlinked_folders_inside_out_are_not_written_through(sample: Path, target: MakeTarget) -> None:
    out = sample / "out"
    out.mkdir()
    elsewhere = sample / "elsewhere"
    elsewhere.mkdir()
    (out / "train").symlink_to(elsewhere)
    report = materialize(target("viseg_training", 1), out, ["files"])
    assert len(report.failures) == 22
    assert all("symlink" in f.message for f in report.failures)
    assert list(elsewhere.iterdir()) == []
    assert report.placed == 4  # the test split


def test_an_interrupted_run_is_finished_by_the_next(
    sample: Path, target: MakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    real = transfer.copy_file
    calls = []

    def flaky(resource: Resource, src: str, tmp: str) -> tuple[str, int, tuple[int, int, int]]:
        calls.append(resource.id)
        if len(calls) == 10:
            Path(tmp).write_bytes(b"half")
            raise KeyboardInterrupt
        return real(resource, src, tmp)

    monkeypatch.setattr("vxds.materialize.place.copy_file", flaky)
    with pytest.raises(KeyboardInterrupt):
        materialize(t, out, ["files"], jobs=1)
    assert not (out / RECEIPT).exists()
    assert (out / JOURNAL).exists()
    assert not (out / TMP_DIR).exists()
    assert len(_files(out)) == 9
    monkeypatch.setattr("vxds.materialize.place.copy_file", real)
    report = materialize(t, out, ["files"], jobs=1)
    assert (report.placed, report.unchanged) == (17, 9)
    assert check_output(out, None) == []


def test_no_space_left_stops_the_run_naming_the_resource(
    sample: Path, target: MakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = transfer.copy_file

    def full(resource: Resource, src: str, tmp: str) -> tuple[str, int, tuple[int, int, int]]:
        if resource.id == MASK:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(resource, src, tmp)

    monkeypatch.setattr("vxds.materialize.place.copy_file", full)
    out = sample / "out"
    with pytest.raises(
        DiskFull, match=f"no space left on the device writing .*/train/{MASK} \\(resource {MASK}\\)"
    ):
        materialize(target("viseg_training", 1), out, ["files"], jobs=1)
    assert not (out / "train" / MASK).exists()
    assert not (out / TMP_DIR).exists()
    assert not (out / RECEIPT).exists()
    assert read_journal(out)


def test_hardlink_and_symlink_modes(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    hard = materialize(t, sample / "hard", ["files"], mode="hardlink")
    assert hard.ok
    assert not hard.notices
    placed, original = sample / "hard/train" / MASK, sample / "sample-data" / MASK
    assert placed.stat().st_ino == original.stat().st_ino
    soft = materialize(t, sample / "soft", ["files"], mode="symlink")
    assert soft.ok
    link = sample / "soft/train" / MASK
    assert link.is_symlink()
    assert Path(os.readlink(link)) == original.resolve()
    assert check_output(sample / "soft", None) == []


def test_a_mode_the_file_system_cannot_do_falls_back_to_copy(
    sample: Path, target: MakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", cross_device)
    report = materialize(target("viseg_training", 1), sample / "out", ["files"], mode="hardlink")
    assert report.ok
    assert report.placed == 26
    assert report.notices == [
        "hardlink was not possible for 26 file(s) (invalid cross-device link); copied them"
    ]
    placed = sample / "out/train" / MASK
    assert placed.stat().st_ino != (sample / "sample-data" / MASK).stat().st_ino


def test_reflink_places_checked_bytes_whether_or_not_the_file_system_shares_blocks(
    sample: Path, target: MakeTarget
) -> None:
    report = materialize(target("viseg_training", 1), sample / "out", ["files"], mode="reflink")
    assert report.ok
    assert report.placed == 26
    assert all(n.startswith("reflink was not possible") for n in report.notices)
    assert check_output(sample / "out", None) == []


def test_a_dicom_series_is_placed_as_a_checked_folder(sample: Path, target: MakeTarget) -> None:
    t = target("all_basel_data", 1)
    series = "basel/sourcedata/sub-BS01/ses-01/dicom/T2w"
    report = materialize(t, sample / "out", ["files"])
    assert report.ok
    names = sorted(p.name for p in (sample / "out/all" / series).iterdir())
    assert names == sorted(p.name for p in (sample / "sample-data" / series).iterdir())
    assert len(names) == 10
    first = sample / "sample-data" / series / names[0]
    first.write_bytes(first.read_bytes() + b"x")
    other = sample / "other"
    broken = materialize(t, other, ["files"])
    assert [f.resource for f in broken.failures] == [series]
    assert "series' files do not match" in broken.failures[0].message
    assert not (other / "all" / series).exists()


def test_previous_files_no_longer_wanted_are_kept_without_prune(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    materialize(t, out, ["files"])
    before = _files(out)
    assert len(before) == 26
    report = materialize(t, out, ["files"], splits=["test"])
    assert (report.removed, report.kept, report.unchanged) == (0, 22, 4)
    assert _files(out) == before
    receipt = read_receipt(out)
    assert receipt is not None
    assert set(receipt.files) == before  # still recorded: a later --prune knows them
    again = materialize(t, out, ["files"], splits=["test"])
    assert (again.removed, again.kept) == (0, 22)


def test_prune_removes_previous_files_no_longer_wanted(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    materialize(t, out, ["files"])
    materialize(t, out, ["files"], splits=["test"])  # kept, then removed by the pruning run
    report = materialize(t, out, ["files"], splits=["test"], prune=True)
    assert (report.removed, report.kept) == (22, 0)
    assert not (out / "train").exists()
    assert _files(out) == {f"test/{r.id}" for r in t.splits["test"].resources()}


def test_a_kept_file_deleted_by_hand_is_forgotten(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    out = sample / "out"
    materialize(t, out, ["files"])
    (out / "train" / MASK).unlink()
    report = materialize(t, out, ["files"], splits=["test"])
    assert report.kept == 21
    receipt = read_receipt(out)
    assert receipt is not None
    assert f"train/{MASK}" not in receipt.files


def test_another_dataset_into_the_folder_is_refused_unless_forced(sample: Path, target: MakeTarget) -> None:
    out = sample / "out"
    materialize(target("viseg_training", 1), out, ["files"])
    before = _files(out)
    for other in (target("viseg_training", 2), target("all_basel_data", 1)):
        with pytest.raises(
            UsageError, match=rf"holds viseg_training@1; not materializing {other.key}"
        ) as exc:
            materialize(other, out, ["files"])
        assert exc.value.hint is not None
        assert "--force" in exc.value.hint
        assert _files(out) == before
    forced = materialize(target("viseg_training", 2), out, ["files"], force=True)
    assert forced.ok
    assert forced.removed == 0
    assert before <= _files(out)
    receipt = read_receipt(out)
    assert receipt is not None
    assert receipt.dataset == "viseg_training@2"


def test_bare_lockfiles_differ_by_their_digest(sample: Path, target: MakeTarget) -> None:
    one, two = target("viseg_training", 1), target("viseg_training", 2)
    bare = Target("dataset", None, None, two.splits, "./sample-data", sample)
    out = sample / "out"
    materialize(one, out, ["files"])
    with pytest.raises(UsageError, match=r"holds viseg_training@1; not materializing lockfiles blake3:"):
        materialize(bare, out, ["files"])
    assert materialize(bare, sample / "bare", ["files"]).ok
    assert materialize(bare, sample / "bare", ["files"]).unchanged == 39
    other = Target("dataset", None, None, one.splits, "./sample-data", sample)
    with pytest.raises(UsageError, match=r"holds lockfiles blake3:\S+; not materializing lockfiles blake3:"):
        materialize(other, sample / "bare", ["files"])


def test_jobs_give_the_same_receipt(sample: Path, target: MakeTarget) -> None:
    t = target("all_basel_data", 1)
    materialize(t, sample / "one", ["files"], jobs=1)
    materialize(t, sample / "four", ["files"], jobs=4)
    one, four = read_receipt(sample / "one"), read_receipt(sample / "four")
    assert one is not None
    assert four is not None
    assert {p: e.hash for p, e in one.files.items()} == {p: e.hash for p, e in four.files.items()}


def test_unknown_module_and_split(sample: Path, target: MakeTarget) -> None:
    t = target("viseg_training", 1)
    with pytest.raises(UsageError, match="no materializer named 'nope'; known: bids, clinical-csv"):
        materialize(t, sample / "out", ["nope"])
    with pytest.raises(UsageError, match="no split named 'val'; the lock has test, train"):
        materialize(t, sample / "out", ["files"], splits=["val"])


def test_two_resources_at_one_path_fail_the_later_one(sample: Path) -> None:
    out = sample / "out"
    report = materialize(_one_split_target(sample, ["a", "a/b"]), out, ["files"])
    assert [(f.resource, f.message) for f in report.failures] == [
        ("a/b", "files: a/b and files: a would both be placed at train/a/b")
    ]
    assert (out / "train/a").is_file()


def test_placing_in_small_batches_places_the_same_files(
    sample: Path, target: MakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.materialize import place

    whole = materialize(target("viseg_training", 1), sample / "whole", ["files"], jobs=1)
    monkeypatch.setattr(place, "PLACE_BATCH", 3)
    batched = materialize(target("viseg_training", 1), sample / "batched", ["files"], jobs=1)
    assert batched.ok
    assert (batched.placed, batched.failures) == (whole.placed, whole.failures)
    assert _files(sample / "batched") == _files(sample / "whole")
