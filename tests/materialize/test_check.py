"""``check_output``: a materialized folder against its receipt and lock (VX701-VX707)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vxds.locks.store import lock_dir, read_lock
from vxds.materialize import Target, materialize
from vxds.materialize.check import check_output, receipt_dataset
from vxds.materialize.receipt import JOURNAL, RECEIPT
from vxds.verify.findings import ERROR, WARNING

MakeTarget = Callable[..., Target]
MASK = "basel/derivatives/lesions/sub-BS01/ses-01/anat/sub-BS01_ses-01_desc-lesion_mask.nii.gz"


def _out(sample: Path, target: MakeTarget) -> Path:
    out = sample / "out"
    assert materialize(target("viseg_training", 1), out, ["files", "bids"]).ok
    return out


def _codes(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.code, f.severity) for f in findings]


def test_a_clean_output_against_its_lock(sample: Path, target: MakeTarget) -> None:
    out = _out(sample, target)
    lock = read_lock(lock_dir(sample / "locks", "viseg_training", 1))
    assert check_output(out, lock) == []
    assert receipt_dataset(out) == "viseg_training@1"


def test_no_folder_or_no_receipt(sample: Path) -> None:
    missing = check_output(sample / "nothing")
    assert _codes(missing) == [("VX701", ERROR)]
    assert "is not a folder" in missing[0].message
    (sample / "empty").mkdir()
    assert "has no receipt" in check_output(sample / "empty")[0].message
    (sample / "empty" / RECEIPT).write_text("{not json")
    assert "cannot read the receipt" in check_output(sample / "empty")[0].message


def test_another_lock(sample: Path, target: MakeTarget) -> None:
    out = _out(sample, target)
    other = read_lock(lock_dir(sample / "locks", "viseg_training", 2))
    findings = check_output(out, other)
    assert _codes(findings) == [("VX702", ERROR)]
    assert findings[0].dataset == "viseg_training@2"
    assert "(viseg_training@1)" in findings[0].message


def test_missing_changed_and_extra_files(sample: Path, target: MakeTarget) -> None:
    out = _out(sample, target)
    (out / "train" / MASK).unlink()
    t2w = next((out / "test").rglob("*_T2w.nii.gz"))
    data = bytearray(t2w.read_bytes())
    data[0] ^= 1
    t2w.write_bytes(bytes(data))
    (out / "bids/train/participants.tsv").write_text("participant_id\n")
    (out / "bids/train/notes.txt").write_text("mine")
    findings = check_output(out)
    assert sorted(_codes(findings)) == [
        ("VX703", ERROR),
        ("VX704", ERROR),
        ("VX704", ERROR),
        ("VX706", WARNING),
    ]
    by_code = {f.code: f for f in findings}
    assert by_code["VX703"].file == f"{out.as_posix()}/train/{MASK}"
    assert by_code["VX706"].message == "bids/train/notes.txt is not in the receipt"
    # Without re-hashing only the size change is seen.
    assert sorted(_codes(check_output(out, rehash=False))) == [
        ("VX703", ERROR),
        ("VX704", ERROR),
        ("VX706", WARNING),
    ]


def test_failed_resources_and_an_interrupted_run(sample: Path, target: MakeTarget) -> None:
    (sample / "sample-data" / MASK).unlink()
    out = sample / "out"
    assert not materialize(target("viseg_training", 1), out, ["files"]).ok
    (out / JOURNAL).write_text("")
    findings = check_output(out)
    assert _codes(findings) == [("VX705", ERROR), ("VX707", WARNING)]
    assert findings[0].message.startswith(f"{MASK} was not placed: {MASK} is missing from the source")
