"""The receipt's bytes: entries written straight from the dataclass, as their ``to_json``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from vxds.materialize.receipt import Entry, Journal, Receipt, ReceiptError, read_journal

DIGEST = "blake3:" + "3" * 64
ENTRIES = {
    "train/b.nii": Entry("blake3:" + "1" * 64, 7, "b.nii", "md5:" + "2" * 32, "files", (7, 123, 4)),
    "bids/train/dataset_description.json": Entry(DIGEST, 12, None, DIGEST, "bids"),
    "train/a.nii": Entry(hash=DIGEST, size=0, resource="a.nii", module="files", stat=(0, 1, 2)),
}


def test_entries_are_written_as_their_to_json_with_sorted_keys() -> None:
    splits = {"train": (2, "blake3:" + "6" * 64)}
    receipt = Receipt("tree@1", "blake3:" + "5" * 64, "./source", splits, ["files"], files=ENTRIES)
    as_json = {path: entry.to_json() for path, entry in ENTRIES.items()}
    body = orjson.loads(receipt.to_bytes())
    assert body["files"] == orjson.loads(orjson.dumps(as_json))
    for entry in body["files"].values():
        assert list(entry) == sorted(entry)
    expected = orjson.dumps({**body, "files": as_json}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    assert receipt.to_bytes() == expected + b"\n"


def test_a_batch_of_journal_lines_reads_back_as_added(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.add_all(list(ENTRIES.items()))
    journal.add("train/c.nii", ENTRIES["train/a.nii"])
    journal.close()
    assert read_journal(tmp_path) == {**ENTRIES, "train/c.nii": ENTRIES["train/a.nii"]}
    lines = (tmp_path / ".vxds-journal.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    batches = [
        [[path, entry.to_json()] for path, entry in ENTRIES.items()],
        [["train/c.nii", ENTRIES["train/a.nii"].to_json()]],
    ]
    assert [orjson.loads(line) for line in lines[:-1]] == orjson.loads(orjson.dumps(batches))


def test_a_journal_of_one_file_a_line_is_read_too(tmp_path: Path) -> None:
    """As vxds wrote it before batches: ``{"path": ..., "entry": ...}`` lines, mixed with batches."""
    old = [orjson.dumps({"path": path, "entry": entry.to_json()}) for path, entry in ENTRIES.items()]
    batch = orjson.dumps([["train/c.nii", ENTRIES["train/a.nii"]]])
    (tmp_path / ".vxds-journal.jsonl").write_bytes(b"\n".join([*old, batch, b'[["torn", {"ha']))
    assert read_journal(tmp_path) == {**ENTRIES, "train/c.nii": ENTRIES["train/a.nii"]}


@pytest.mark.parametrize("rel", ["../x.nii", "/etc/passwd", ".vxds-receipt.json"])
def test_a_batch_with_a_path_outside_out_is_refused_naming_the_line(tmp_path: Path, rel: str) -> None:
    good = orjson.dumps([["train/a.nii", ENTRIES["train/a.nii"]]])
    bad = orjson.dumps([["train/b.nii", ENTRIES["train/b.nii"]], [rel, ENTRIES["train/a.nii"]]])
    (tmp_path / ".vxds-journal.jsonl").write_bytes(good + b"\n" + bad + b"\n")
    with pytest.raises(ReceiptError, match=r"\.vxds-journal\.jsonl, line 2: .* is not a path inside OUT"):
        read_journal(tmp_path)


@pytest.mark.parametrize("line", [b"[1]", b'[["a.nii"]]', b'[["a.nii", {"size": 1}]]', b"[[1, {}]]"])
def test_a_batch_that_is_not_pairs_of_path_and_entry_is_refused(tmp_path: Path, line: bytes) -> None:
    (tmp_path / ".vxds-journal.jsonl").write_bytes(line + b"\n")
    with pytest.raises(ReceiptError, match="line 1"):
        read_journal(tmp_path)
