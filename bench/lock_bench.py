"""Lock a recipe that returns 1,000,000 resources, against plain orjson in the same run.

Both sides run in their own subprocess, so wall time and peak RSS are comparable:

* baseline: ``python benchdata.py baseline N OUT``: generate the records, sort them by id,
  write ``orjson.dumps(record, option=OPT_SORT_KEYS)`` lines, one file per split;
* vxds: ``vxds lock bench --root PROJECT`` on a temporary project whose recipe calls the
  same generator (``benchdata.records``) and returns its output; the source is a tiny
  folder the recipe does not read.

Targets (issue 2): vxds within 2x the baseline's wall time, and under 1.5 GB peak memory.

The streaming case (issue 13.4): dataset ``stream``, whose recipe returns one generator per
split (``benchdata.stream``, the same records yielded one at a time), locked with runs
spilled to ``.vxds/tmp``: under 600 MB peak, within 2x the baseline's wall time.

Then the skip of an unchanged recipe (issue 20.1), against ``vxds lock --refresh`` (the
recipe runs, as every relock did before) in the same run:

* relock of an unchanged 100,000-file tree (``hash_bench``'s tree): at most 0.5 s;
* the same with one file rewritten (the recipe runs): at most 2 s;
* ``vxds lock --check`` of the unchanged 1,000,000-resource dataset above: at most 1 s.

    python bench/lock_bench.py [--resources 1000000] [--repeat 1] [--profile] [--strict]
                               [--files 100000] [--no-skip | --skip-only]
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from benchlib import (
    BENCH_DIR,
    Report,
    Run,
    finish,
    fmt_mib,
    fmt_s,
    parser,
    profile_lock,
    run,
    vxds_argv,
    workdir,
)
from blake3 import blake3
from hash_bench import make_project as make_tree_project
from hash_bench import make_tree

TIME_RATIO = 2.0
SKIP_SECONDS = 0.5  # issue 20.1: unchanged 100,000-file relock
ONE_CHANGED_SECONDS = 2.0
CHECK_SECONDS = 1.0  # lock --check of an unchanged 1,000,000-resource dataset
RACY = 2.1  # seconds: a lock or file newer than 2 s before a run never vouches for itself
PEAK_BYTES = 1.5e9  # 1.5 GB
STREAM_PEAK_BYTES = 600e6  # issue 13.4: a generator recipe's lock
DATASET = "bench"
STREAM = "stream"
STREAM_RECIPE = '''"""Benchmark recipe: benchdata.records(n), yielded one at a time per split."""

import vxds

import benchdata


@vxds.recipe()
def stream(client: vxds.Client, n: int) -> dict:
    return {"train": benchdata.stream(n, "train"), "test": benchdata.stream(n, "test")}
'''

RECIPE = '''"""Benchmark recipe: returns benchdata.records(n), timing the generation."""

import os
import time

import orjson
import vxds

import benchdata


@vxds.recipe()
def bench(client: vxds.Client, n: int) -> dict:
    start = time.perf_counter()
    out = benchdata.records(n)
    where = os.environ.get("BENCH_TIMINGS")
    if where:
        with open(where, "wb") as fh:
            fh.write(orjson.dumps({"generate": time.perf_counter() - start}))
    return out
'''


def make_project(root: Path, n: int) -> None:
    """A vxds project with one dataset whose recipe returns ``n`` generated resources."""
    (root / "recipes").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "source" / "README.txt").write_text("A tiny source; the recipe does not read it.\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./source"\n')
    (root / "datasets.yaml").write_text(
        f"- name: {DATASET}\n  version: 1\n  description: {n} generated resources.\n"
        f"  script_location: ./recipes/bench.py\n  params: {{n: {n}}}\n  group_by: attrs.subject\n"
        f"- name: {STREAM}\n  version: 1\n  description: {n} generated resources, yielded.\n"
        f"  script_location: ./recipes/stream.py\n  params: {{n: {n}}}\n  group_by: attrs.subject\n"
    )
    (root / "recipes" / "bench.py").write_text(RECIPE)
    (root / "recipes" / "stream.py").write_text(STREAM_RECIPE)
    shutil.copy(BENCH_DIR / "benchdata.py", root / "recipes" / "benchdata.py")


def split_digests(folder: Path) -> dict[str, str]:
    """resources.<split>.jsonl -> blake3 of the split's lines (a lock's shards read in order)."""
    from vxds.locks.shards import split_file, split_files
    from vxds.locks.store import read_header

    if not (folder / "lock.toml").exists():
        return {p.name: blake3(p.read_bytes()).hexdigest() for p in sorted(folder.glob("resources.*.jsonl"))}
    header = read_header(folder)[0]
    return {
        split_file(split): blake3(
            b"".join((folder / f).read_bytes() for f in split_files(header, split))
        ).hexdigest()
        for split in sorted(header.splits)
    }


def timings(path: Path) -> dict[str, float]:
    try:
        data: dict[str, float] = orjson.loads(path.read_bytes())
    except OSError:
        return {}
    path.unlink()
    return data


def children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_baseline(root: Path, n: int, out: Path) -> tuple[Run, dict[str, float]]:
    shutil.rmtree(out, ignore_errors=True)
    times = root / "baseline-times.json"
    before = children_cpu()
    result = run(
        [sys.executable, str(root / "recipes" / "benchdata.py"), "baseline", str(n), str(out), str(times)]
    ).check()
    return result, {**timings(times), "cpu": children_cpu() - before}


def run_vxds(root: Path, *, fresh: bool, dataset: str = DATASET) -> tuple[Run, dict[str, float]]:
    if fresh:
        shutil.rmtree(root / "locks" / dataset, ignore_errors=True)
        shutil.rmtree(root / ".vxds", ignore_errors=True)  # no fingerprint: the recipe runs
    times = root / "vxds-times.json"
    before = children_cpu()
    result = run(
        [*vxds_argv(), "lock", dataset, "--root", str(root), "--quiet"], env={"BENCH_TIMINGS": str(times)}
    ).check()
    return result, {**timings(times), "cpu": children_cpu() - before}


def profile(scratch: Path, n: int, top: int) -> None:
    """Run ``vxds lock`` of ``n`` resources under cProfile and print where the time goes."""
    root = scratch / "profile-project"
    make_project(root, n)
    title = f"cProfile of vxds lock, {n:,} resources (cProfile slows Python code more than C)"
    profile_lock(DATASET, root, root / "lock.prof", title, top)


def phases(root: Path, n: int) -> None:
    """In a child: time and memory of each step of a lock, run through vxds' own functions."""
    run([sys.executable, __file__, "--_phases", str(root), str(n)]).check()
    print((root / "phases.txt").read_text())


def _phases_child(root: Path, n: int) -> None:
    sys.path.insert(0, str(root / "recipes"))
    import benchdata

    from vxds.locks.store import write_splits
    from vxds.recipes.resolver import build_splits

    page = os.sysconf("SC_PAGE_SIZE")

    def rss_mib() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page / 2**20

    def peak_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = [["start (vxds imported)", "", f"{rss_mib():.0f}", f"{peak_mib():.0f}"]]
    start = time.perf_counter()
    output: Any = benchdata.records(n)
    rows.append(
        [
            "recipe output (benchdata.records)",
            fmt_s(time.perf_counter() - start),
            f"{rss_mib():.0f}",
            f"{peak_mib():.0f}",
        ]
    )
    start = time.perf_counter()
    splits = build_splits(output, label="bench", group_by="attrs.subject")
    rows.append(
        ["resolver.build_splits", fmt_s(time.perf_counter() - start), f"{rss_mib():.0f}", f"{peak_mib():.0f}"]
    )
    start = time.perf_counter()
    write_splits(splits, root / "phases-out")
    rows.append(
        [
            "locks.store.write_splits",
            fmt_s(time.perf_counter() - start),
            f"{rss_mib():.0f}",
            f"{peak_mib():.0f}",
        ]
    )
    del output
    rows.append(["after dropping the recipe output", "", f"{rss_mib():.0f}", f"{peak_mib():.0f}"])
    from benchlib import _table

    text = "== phases of a lock, in one process (MiB) ==\n" + _table(
        ["phase", "seconds", "RSS after", "peak so far"], rows
    )
    (root / "phases.txt").write_text(text + "\n")


@dataclass(frozen=True)
class Timed:
    """A run with its CPU time (user + sys, the launcher's few ms included) and what the
    JSON output said of the recipe: CPU time is steadier than wall time on a shared machine."""

    run: Run
    cpu: float
    recipe: str


def timed(argv: list[str]) -> Timed:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run([*argv, "--format", "json"]).check()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    [dataset] = orjson.loads(result.stdout)["datasets"]
    return Timed(result, cpu, str(dataset.get("recipe")))


def median(runs: list[Timed]) -> Timed:
    return sorted(runs, key=lambda r: r.run.seconds)[len(runs) // 2]


def skip_row(report: Report, name: str, r: Timed, base: Timed | None) -> None:
    ratio = "1.00x" if base is None else f"{r.run.seconds / base.run.seconds:.2f}x"
    report.row(name, fmt_s(r.run.seconds), fmt_mib(r.run.peak_mib), fmt_s(r.cpu), r.recipe, ratio)


def expect(runs: list[Timed], prefix: str) -> None:
    wrong = [r.recipe for r in runs if not r.recipe.startswith(prefix)]
    if wrong:
        raise RuntimeError(f"expected every run to say {prefix!r}, got {wrong}")


def skip_tree(scratch: Path, files: int, report: Report) -> None:
    """The 100,000-file relock: cold, then (past the racy window) skipped, refreshed, one changed."""
    root = scratch / "tree-project"
    make_tree_project(root)
    start = time.perf_counter()
    make_tree(root / "data", files, 1024, 8192, 2)
    report.notes.append(f"tree: {files:,} files, generated in {time.perf_counter() - start:.1f} s")
    lock = [*vxds_argv(), "lock", "tree", "--root", str(root)]
    run(lock).check()  # cold: hashes every file, writes the lock
    time.sleep(RACY)
    expect([timed(lock)], "ran: no fingerprint")  # the lock is old enough: its fingerprint is kept
    skipped = [timed(lock) for _ in range(5)]
    refreshed = [timed([*lock, "--refresh"]) for _ in range(3)]
    changed = []
    for n in range(3):
        victim = root / "data" / "basel" / f"sub-{n * 5:05d}" / "ses-01" / "anat"
        target = sorted(victim.iterdir())[0]
        target.write_bytes(target.read_bytes()[::-1] + b"!")  # new bytes, new size
        changed.append(timed(lock))
        time.sleep(RACY)
        expect([timed(lock)], "ran: no fingerprint")  # the new lock keeps a fingerprint again
    expect(skipped, "skipped")
    expect(changed, "ran: its source changed")
    report.notes.append(same_as_from_scratch(root, lock))
    base, skip, one = median(refreshed), median(skipped), median(changed)
    skip_row(report, f"baseline: relock {files:,} files, --refresh", base, None)
    skip_row(report, f"relock {files:,} files, unchanged", skip, base)
    skip_row(report, f"relock {files:,} files, one file changed", one, base)
    secs = skip.run.seconds
    report.target(
        f"unchanged {files:,}-file relock <= {SKIP_SECONDS:g} s", f"{secs:.2f} s", secs <= SKIP_SECONDS
    )
    secs = one.run.seconds
    report.target(
        f"one file changed <= {ONE_CHANGED_SECONDS:g} s", f"{secs:.2f} s", secs <= ONE_CHANGED_SECONDS
    )


def same_as_from_scratch(root: Path, lock: list[str]) -> str:
    """Whether the lock the one-changed relocks left is byte for byte the lock of a cold
    ``--refresh`` with no ``.vxds/`` cache; raises when it is not."""
    shutil.rmtree(root / ".vxds")
    cold = timed([*lock, "--refresh"])
    state = orjson.loads(cold.run.stdout)["datasets"][0]["status"]
    if state != "unchanged":
        raise RuntimeError(f"a cold --refresh lock after the one-changed relocks was {state!r}")
    return f"the lock after the one-changed relocks is the cold --refresh lock (no .vxds/): {state}"


def skip_check(project: Path, n: int, report: Report) -> None:
    """``lock --check`` of the unchanged ``n``-resource dataset, once its fingerprint is kept."""
    check = [*vxds_argv(), "lock", DATASET, "--root", str(project), "--check"]
    time.sleep(RACY)
    run_vxds(project, fresh=False)  # keeps the fingerprint (the lock is old enough now)
    skipped = [timed(check) for _ in range(3)]
    expect(skipped, "skipped")
    base, skip = timed([*check, "--refresh"]), median(skipped)
    skip_row(report, f"baseline: lock --check --refresh, {n:,} resources", base, None)
    skip_row(report, f"lock --check, {n:,} resources unchanged", skip, base)
    secs = skip.run.seconds
    report.target(
        f"lock --check of unchanged {n:,} resources <= {CHECK_SECONDS:g} s",
        f"{secs:.2f} s",
        secs <= CHECK_SECONDS,
    )


def skip_part(scratch: Path, project: Path, args: Any) -> int:
    report = Report(
        "skip an unchanged recipe (issue 20.1)",
        ["run", "wall s", "peak MiB", "CPU s", "recipe", "vs baseline"],
    )
    skip_tree(scratch, args.files, report)
    skip_check(project, args.resources, report)
    report.notes.append("median by wall time of 5 unchanged, 3 --refresh and 3 one-changed runs")
    report.notes.append("each run its own process; CPU s = user + sys of the run (and its launcher)")
    return finish(report, args.strict)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--_phases"]:
        _phases_child(Path(argv[1]), int(argv[2]))
        return 0
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--resources", type=int, default=1_000_000, help="Resources the recipe returns.")
    p.add_argument(
        "--repeat", type=int, default=1, help="Runs of each side (in turns); the fastest is reported."
    )
    p.add_argument("--no-relock", action="store_true", help="Skip relocking the unchanged recipe.")
    p.add_argument("--files", type=int, default=100_000, help="Files in the tree of the skip part.")
    p.add_argument("--no-skip", action="store_true", help="Leave out the skip part (issue 20.1).")
    p.add_argument("--skip-only", action="store_true", help="Only the skip part (the 1M lock is still made).")
    p.add_argument(
        "--profile",
        action="store_true",
        help="Also print a per-phase time and memory table and a cProfile of vxds lock.",
    )
    p.add_argument(
        "--profile-resources",
        type=int,
        default=200_000,
        help="Resources for the cProfile run (cProfile is slow).",
    )
    args = p.parse_args(argv)
    report = Report(
        f"lock {args.resources:,} resources",
        [
            "run",
            "wall s",
            "peak MiB",
            "generate s",
            "excl. generate s",
            "vs baseline",
            "CPU s",
            "CPU vs baseline",
        ],
    )
    with workdir(args.workdir, args.keep, "vxds-lock-bench-") as root:
        make_project(root / "project", args.resources)
        project = root / "project"
        base: tuple[Run, dict[str, float]] | None = None
        lock: tuple[Run, dict[str, float]] | None = None
        streamed: tuple[Run, dict[str, float]] | None = None
        for _ in range(max(1, args.repeat)):  # the sides take turns, so drift hits each alike
            b = run_baseline(project, args.resources, root / "baseline")
            s = run_vxds(project, fresh=True, dataset=STREAM)
            v = run_vxds(project, fresh=True)  # last: the relock below follows it
            base = b if base is None or b[0].seconds < base[0].seconds else base
            lock = v if lock is None or v[0].seconds < lock[0].seconds else lock
            streamed = s if streamed is None or s[0].seconds < streamed[0].seconds else streamed
        assert base is not None
        assert lock is not None
        assert streamed is not None
        relock = None if args.no_relock else run_vxds(project, fresh=False)

        def add(name: str, r: tuple[Run, dict[str, float]], ref: tuple[Run, dict[str, float]] | None) -> None:
            gen, cpu = r[1].get("generate"), r[1]["cpu"]
            report.row(
                name,
                fmt_s(r[0].seconds),
                fmt_mib(r[0].peak_mib),
                "" if gen is None else fmt_s(gen),
                "" if gen is None else fmt_s(r[0].seconds - gen),
                "" if ref is None else f"{r[0].seconds / ref[0].seconds:.2f}x",
                fmt_s(cpu),
                "" if ref is None else f"{cpu / ref[1]['cpu']:.2f}x",
            )

        add("baseline: orjson sort + dumps + write", base, None)
        add("vxds lock (first lock)", lock, base)
        if relock is not None:
            add("vxds lock (relock, unchanged)", relock, base)
        add("vxds lock (generator recipe, spilled runs)", streamed, base)
        expected = split_digests(root / "baseline")
        same = expected == split_digests(project / "locks" / DATASET / "1")
        report.notes.append(
            "vxds' split files are byte-identical to the baseline's: " + ("yes" if same else "NO")
        )
        same = expected == split_digests(project / "locks" / STREAM / "1")
        report.notes.append("the generator recipe's split files too: " + ("yes" if same else "NO"))
        report.notes.append(
            f"fastest of {max(1, args.repeat)} run(s) per side; peak = the process' own max RSS;"
            " CPU s = its user + system time (steadier than wall time on a shared machine; the"
            " targets are on wall time)"
        )
        bg, lg = base[1].get("generate", 0.0), lock[1].get("generate", 0.0)
        excl = (lock[0].seconds - lg) / (base[0].seconds - bg)
        report.notes.append(f"excluding generation, vxds takes {excl:.2f}x the baseline")
        ratio = lock[0].seconds / base[0].seconds
        report.target(f"lock within {TIME_RATIO:g}x baseline time", f"{ratio:.2f}x", ratio <= TIME_RATIO)
        peak = lock[0].peak_mib * 2**20
        report.target(
            "lock peak memory < 1.5 GB",
            f"{peak / 1e9:.2f} GB ({lock[0].peak_mib:.0f} MiB)",
            peak < PEAK_BYTES,
        )
        ratio = streamed[0].seconds / base[0].seconds
        report.target(
            f"generator lock within {TIME_RATIO:g}x baseline time", f"{ratio:.2f}x", ratio <= TIME_RATIO
        )
        peak = streamed[0].peak_mib * 2**20
        report.target(
            "generator lock peak memory < 600 MB",
            f"{peak / 1e6:.0f} MB ({streamed[0].peak_mib:.0f} MiB)",
            peak < STREAM_PEAK_BYTES,
        )
        code = 0 if args.skip_only else finish(report, args.strict)
        if not args.no_skip:
            code = max(code, skip_part(root, project, args))
        if args.profile:
            phases(project, args.resources)
            profile(root, min(args.resources, args.profile_resources), 25)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
