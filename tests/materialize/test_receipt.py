"""The receipt's bytes: entries written straight from the dataclass, as their ``to_json``."""

from __future__ import annotations

from pathlib import Path

import orjson

from vxds.materialize.receipt import Entry, Journal, Receipt, read_journal

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
    assert (tmp_path / ".vxds-journal.jsonl").read_bytes().count(b"\n") == 4
