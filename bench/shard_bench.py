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

import argparse
import os
import shutil
import time
from collections.abc import Sequence

import orjson
from benchlib import Report, finish, fmt_s, parser, workdir
from blake3 import blake3
from shard_readers import Sides, diff_times, git_diff, project, verify_times

from vxds.locks.shards import MAX_FILE, RULE, ShardRule, starts
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


def sides(n: int) -> Sides:
    """``n`` sorted lines; 200 neighbouring ones changed in the middle; one changed in every shard."""
    base = sorted((line(i) for i in range(n)), key=lambda b: orjson.loads(b)["id"])
    middle = n // 2
    changed = [*base[:middle], *(line_of(b, 2) for b in base[middle : middle + 200]), *base[middle + 200 :]]
    spread = list(base)
    for start in starts(base):
        spread[start] = line_of(base[start], 2)
    return Sides(base, changed, spread)


def readers(args: argparse.Namespace, report: Report) -> None:
    """diff and verify at each size, format 2 against format 1, with their targets."""
    with workdir(args.workdir, args.keep, "vxds-shard-bench-") as scratch:
        lock = project(scratch / "project")
        shutil.copytree(lock, scratch / "template")
        diffs = {}
        for n in args.diff_sizes:
            made = sides(n)
            diffs[n] = diff_times(scratch, made, RULE, ONE_FILE)
            t = diffs[n]
            report.row(
                f"diff {n:,}, 200 clustered",
                f"{fmt_s(t['changed 2 warm'])} (cold {fmt_s(t['changed 2 cold'])})",
                fmt_s(t["changed 1"]),
            )
            report.row(
                f"diff {n:,}, one change per shard",
                f"{fmt_s(t['spread 2 warm'])} (cold {fmt_s(t['spread 2 cold'])})",
                fmt_s(t["spread 1"]),
            )
        small, large = min(diffs), max(diffs)
        ratio = diffs[large]["changed 2 warm"] / diffs[small]["changed 2 warm"]
        report.target(
            f"diff {large:,} clustered <= 3x {small:,} (tallies cached)", f"{ratio:.1f}x", ratio <= 3
        )
        cold = diffs[large]["changed 2 cold"] / diffs[small]["changed 2 cold"]
        report.target("  the same, first diff (no .vxds/shard-tallies)", f"{cold:.1f}x", cold <= 3)
        spread = diffs[large]["spread 2 warm"] / diffs[large]["spread 1"]
        report.target(
            f"diff {large:,}, change in every shard: no slower than format 1 (+10% noise)",
            f"{spread:.2f}x",
            spread <= 1.1,
        )
        made = sides(args.resources)
        root = scratch / "project"
        git_cold, git_warm = git_diff(root, lock, made, RULE)
        report.row(
            f"vxds diff HEAD~1 HEAD {args.resources:,}, 200 clustered (CLI)",
            f"{fmt_s(git_warm)} (cold {fmt_s(git_cold)})",
            "-",
        )
        two = verify_times(lock, root, made, RULE)
        one = verify_times(lock, root, made, ONE_FILE)
        for name in two:
            report.row(f"verify --no-exec {args.resources:,}: {name}", fmt_s(two[name]), fmt_s(one[name]))
        report.target(
            f"verify --no-exec {args.resources:,} cold < 3 s on {os.cpu_count()} cores",
            f"{two['cold']:.2f} s",
            two["cold"] < 3,
        )
        report.target(
            f"verify --no-exec {args.resources:,} warm < 1 s", f"{two['warm']:.2f} s", two["warm"] < 1
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--resources", type=int, default=1_000_000, help="Resources in the split.")
    p.add_argument(
        "--diff-sizes", type=int, nargs="+", default=[20_000, 1_000_000], help="Diff at these sizes."
    )
    p.add_argument("--no-readers", action="store_true", help="Only the file sizes, no diff or verify.")
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
    report.print()
    readers_report = Report(
        "readers of format 2 (diff, verify)", ["measure", "format 2", "format 1 (baseline)"]
    )
    if not args.no_readers:
        readers(args, readers_report)
    for name in ("diff 10,000,000 clustered", "verify --no-exec 10,000,000 warm < 2 s"):
        readers_report.target(
            name, "not run: 4.5 GB of lines do not fit this session's machine and time", None
        )
    for size, limit in (("1M", "600 MB"), ("10M", "1 GB")):
        readers_report.target(
            f"lock {size} peak < {limit}, time <= 2x orjson",
            "not built: streaming lock (item 4) is not done",
            None,
        )
    report.notes.append(
        f"rule: min {mib(RULE.min_bytes)}, target {mib(RULE.target_bytes)}, max {mib(RULE.max_bytes)}"
    )
    return finish(readers_report, args.strict) or (1 if args.strict and report.failed else 0)


if __name__ == "__main__":
    raise SystemExit(main())
