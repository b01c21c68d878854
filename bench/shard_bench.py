"""Lock format 2's shards at 1,000,000 resources, against format 1 (one file per split) in
the same run: the largest file, and the files and bytes a change rewrites (new Git blobs).

Lines are generated, about 445 bytes each like a real lock line, sorted by id; no recipe
runs. Two changes are measured: 200 neighbouring resources changed (a new version) in the
middle of the split, and one resource inserted before every other id.

Targets (issue 13): every file at most 16 MiB; the clustered change and the front insert
each rewrite at most 3 files (the shard(s) they fall in) and at most 3 x 8 MiB.

    python bench/shard_bench.py [--resources 1000000] [--strict]
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
from benchlib import Report, finish, fmt_s, parser
from blake3 import blake3

from vxds.locks.shards import MAX_FILE, RULE, ShardRule
from vxds.locks.splits import Split

PAD = "x" * 170  # brings a line to about 445 bytes, as measured on real locks
MAX_FILES = 3
MAX_BYTES = 3 * RULE.max_bytes
ONE_FILE = ShardRule(1 << 40, 2 << 40, 4 << 40)  # format 1: the split is one file


def line(i: int, version: int = 1, prefix: str = "sub") -> bytes:
    record = {
        "attrs": {
            "datatype": "anat",
            "session": f"ses-{i % 3:02d}",
            "subject": f"{i // 10:06d}",
            "suffix": "T1w",
            "task": PAD,
        },
        "hash": "blake3:" + f"{i:064x}",
        "id": f"{prefix}-{i // 10:06d}/ses-{i % 3:02d}/anat/{prefix}-{i // 10:06d}_run-{i % 10}_T1w.nii.gz",
        "size": 1000 + i,
        "type": "Volume",
        "uri": None,
        "version": version,
    }
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"


def files(split: Split) -> dict[str, tuple[str, int]]:
    """file -> (digest, bytes) of a split's files, as Git would store them."""
    out = {}
    for name, chunks in split.files("train"):
        data = b"".join(chunks)
        out[name] = (blake3(data).hexdigest(), len(data))
    return out


def rewritten(old: dict[str, tuple[str, int]], new: dict[str, tuple[str, int]]) -> tuple[int, int]:
    """Files (and their bytes) in ``new`` that ``old`` does not hold with the same bytes."""
    changed = [size for name, (digest, size) in new.items() if old.get(name, ("", 0))[0] != digest]
    return len(changed), sum(changed)


def build(lines: list[bytes], rule: ShardRule) -> tuple[Split, float]:
    start = time.perf_counter()
    split = Split.from_terminated(lines, rule)
    return split, time.perf_counter() - start


def measure(report: Report, n: int, rule: ShardRule, label: str) -> dict[str, float]:
    lines = sorted((line(i) for i in range(n)), key=lambda b: orjson.loads(b)["id"])
    base, seconds = build(lines, rule)
    old = files(base)
    middle = n // 2
    clustered = [
        *lines[:middle],
        *(line_of(b, 2) for b in lines[middle : middle + 200]),
        *lines[middle + 200 :],
    ]
    front = [line(0, prefix="aaa"), *lines]
    results = {"largest": max(size for _, size in old.values()), "files": len(old), "seconds": seconds}
    for name, changed in (("clustered", clustered), ("front", front)):
        count, size = rewritten(old, files(build(changed, rule)[0]))
        results[f"{name}_files"], results[f"{name}_bytes"] = count, size
    report.row(
        label,
        f"{results['files']:,}",
        mib(results["largest"]),
        fmt_s(seconds),
        f"{results['clustered_files']:.0f} / {mib(results['clustered_bytes'])}",
        f"{results['front_files']:.0f} / {mib(results['front_bytes'])}",
    )
    return results


def line_of(old: bytes, version: int) -> bytes:
    record = orjson.loads(old)
    record["version"] = version
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"


def mib(size: float) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--resources", type=int, default=1_000_000, help="Resources in the split.")
    args = p.parse_args(argv)
    n = args.resources
    report = Report(
        f"lock shards at {n:,} resources",
        [
            "format",
            "files",
            "largest file",
            "cut + digest",
            "200 clustered: files / bytes",
            "front insert: files / bytes",
        ],
    )
    measure(report, n, ONE_FILE, "1 (baseline: one file)")
    sharded = measure(report, n, RULE, "2 (shards)")
    report.target("largest file <= 16 MiB", mib(sharded["largest"]), sharded["largest"] <= MAX_FILE)
    for name, words in (("clustered", "200 clustered changes"), ("front", "an insert at the front")):
        count, size = sharded[f"{name}_files"], sharded[f"{name}_bytes"]
        detail = f"{count:.0f} files, {mib(size)}"
        report.target(
            f"{words} rewrite <= {MAX_FILES} files, <= {mib(MAX_BYTES)}",
            detail,
            count <= MAX_FILES and size <= MAX_BYTES,
        )
    report.notes.append(
        f"rule: min {mib(RULE.min_bytes)}, target {mib(RULE.target_bytes)}, max {mib(RULE.max_bytes)}"
    )
    return finish(report, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
