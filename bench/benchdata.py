"""Deterministic data for the benchmarks, shared by vxds' side and the baseline's side.

``records(n)`` is the recipe output of ``lock_bench.py``: ``{split: [record, ...]}`` with
BIDS-like ids, blake3 hashes, sizes, URIs and 5-6 attributes. The vxds recipe and the
baseline process both call it, so generating the records costs the same on both sides.

Run as a script it is the baseline of ``lock_bench.py``::

    python bench/benchdata.py baseline N OUT_DIR [TIMINGS_JSON]

which generates the same records, sorts each split by id and writes it as lines of
``orjson.dumps(record, option=OPT_SORT_KEYS)``, one ``resources.<split>.jsonl`` per split.
(Sorting the records first and dumping while writing keeps no line alive: that is the
plainest way to write them, and the lightest on memory.)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from blake3 import blake3

TRIALS = ("basel", "zurich", "geneva", "bern", "lausanne")
SESSIONS = ("01", "02", "03", "04")
# (datatype, suffix, extra name entity, resource type, extra attrs)
MODALITIES: tuple[tuple[str, str, str, str, dict[str, str]], ...] = (
    ("anat", "T1w", "", "Volume", {}),
    ("anat", "T2w", "", "Volume", {}),
    ("anat", "FLAIR", "", "Volume", {}),
    ("anat", "PDw", "", "Volume", {}),
    ("anat", "mask", "_desc-lesion", "Mask", {"desc": "lesion"}),
)
PER_SUBJECT = len(SESSIONS) * len(MODALITIES)
TEST_EVERY = 5  # every fifth subject goes to the test split


def records(n: int) -> dict[str, list[dict[str, Any]]]:
    """``n`` resource records split into train and test by subject, in a non-sorted order.

    Subjects cycle through the trials, so consecutive records are far apart in id order
    and sorting does real work. Labels shared by many records are shared string objects,
    as a recipe reading them from a source would mostly have them.
    """
    out: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    subject = session = trial = ""
    split = out["train"]
    for i in range(n):
        modality = i % len(MODALITIES)
        if modality == 0:
            subject_no, rest = divmod(i, PER_SUBJECT)
            session = SESSIONS[rest // len(MODALITIES)]
            if rest == 0:
                subject = f"{subject_no:05d}"
                trial = TRIALS[subject_no % len(TRIALS)]
                split = out["test"] if subject_no % TEST_EVERY == 0 else out["train"]
        datatype, suffix, entity, rtype, extra = MODALITIES[modality]
        rid = (
            f"{trial}/sub-{subject}/ses-{session}/{datatype}/"
            f"sub-{subject}_ses-{session}{entity}_{suffix}.nii.gz"
        )
        raw = blake3(rid.encode()).digest()
        digest = "blake3:" + raw.hex()
        split.append(
            {
                "attrs": {
                    "datatype": datatype,
                    "session": session,
                    "site": trial,
                    "subject": subject,
                    "suffix": suffix,
                    **extra,
                },
                "hash": digest,
                "id": rid,
                "size": 200_000 + int.from_bytes(raw[:3], "little"),
                "type": rtype,
                "uri": "s3://trial-imaging/" + rid,
                "version": digest,
            }
        )
    return out


def stream(n: int, split: str) -> Iterator[dict[str, Any]]:
    """The records of one split of ``records(n)``, in the same order, yielded one at a time
    (a generator recipe: ``lock_bench.py``'s streaming case). Other splits' subjects are
    skipped whole, so generating both splits costs about what ``records(n)`` does."""
    for subject_no in range(-(-n // PER_SUBJECT)):
        if ("test" if subject_no % TEST_EVERY == 0 else "train") != split:
            continue
        subject, trial = f"{subject_no:05d}", TRIALS[subject_no % len(TRIALS)]
        for i in range(subject_no * PER_SUBJECT, min(n, (subject_no + 1) * PER_SUBJECT)):
            session = SESSIONS[(i % PER_SUBJECT) // len(MODALITIES)]
            datatype, suffix, entity, rtype, extra = MODALITIES[i % len(MODALITIES)]
            name = f"sub-{subject}_ses-{session}{entity}_{suffix}.nii.gz"
            rid = f"{trial}/sub-{subject}/ses-{session}/{datatype}/{name}"
            raw = blake3(rid.encode()).digest()
            digest = "blake3:" + raw.hex()
            attrs = {"datatype": datatype, "session": session, "site": trial, "subject": subject}
            yield {
                "attrs": {**attrs, "suffix": suffix, **extra},
                "hash": digest,
                "id": rid,
                "size": 200_000 + int.from_bytes(raw[:3], "little"),
                "type": rtype,
                "uri": "s3://trial-imaging/" + rid,
                "version": digest,
            }


def baseline(n: int, out_dir: Path) -> dict[str, float]:
    """Generate, sort by id, dump with sorted keys while writing lines; return phase times."""
    t0 = time.perf_counter()
    splits = records(n)
    t1 = time.perf_counter()
    option = orjson.OPT_SORT_KEYS
    for name, items in sorted(splits.items()):
        items.sort(key=itemgetter("id"))
        with open(out_dir / f"resources.{name}.jsonl", "wb") as fh:
            fh.writelines(orjson.dumps(item, option=option) + b"\n" for item in items)
    t2 = time.perf_counter()
    return {"generate": t1 - t0, "work": t2 - t1}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "baseline":
        print("usage: benchdata.py baseline N OUT_DIR [TIMINGS_JSON]", file=sys.stderr)
        return 2
    out = Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    timings = baseline(int(argv[1]), out)
    if len(argv) > 3:
        Path(argv[3]).write_bytes(orjson.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
