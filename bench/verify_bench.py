"""``vxds verify`` against peers in the same run: locks, the pre-commit hook, and --data.

Three parts (``--part``, default all), each in its own temporary project:

* ``locks``: 50 datasets holding 1,000,000 resources in all (``benchdata.records``, ids
  prefixed per dataset so no two locks share content), locked once by ``vxds lock --all``.
  Runs: ``b3sum`` of every lock file (the floor: read and hash every byte), ``vxds list``
  (digests only), ``vxds verify --no-exec --no-cache`` (every line parsed and checked) and
  ``vxds verify --no-exec`` with its results kept in ``.vxds/`` (the second run onwards).
  Then the pre-commit hook: ``pre-commit run vxds-verify --all-files`` on the example project
  in a Git repository (a local hook with the entry of ``.pre-commit-hooks.yaml``).
* ``large``: ``vxds verify --data`` of one 1 GiB file against ``b3sum`` of the same file
  (``b3sum`` must be on PATH, e.g. Debian's ``apt-get install b3sum``; without it the row
  says so and has no baseline: the ``blake3`` Python package has no command line).
* ``small``: ``vxds verify --data`` of 100,000 small files against ``dvc status`` after its
  state database is removed (when DVC is installed; ``--dvc`` names it).

Every command is its own process; the page cache is warm for all of them (the files were
just written and locked). Timings are the median of ``--repeat`` runs (3).

Targets (issue 4): verify --no-exec under 2 s; the hook under 0.5 s; --data of 1 GiB at
least 80% of b3sum's throughput; of 100,000 files at least 5x faster than dvc status.

    python bench/verify_bench.py [--part locks|large|small] [--dvc PATH] [--strict]
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import BENCH_DIR, Report, Run, finish, fmt_mib, fmt_s, parser, run, vxds_argv, workdir
from hash_bench import dvc_runs, find_dvc, make_tree
from hash_bench import make_project as make_tree_project

REPO = BENCH_DIR.parent
LOCKS_SECONDS = 2.0
HOOK_SECONDS = 0.5
LARGE_RATIO = 0.8
SMALL_RATIO = 5.0

RECIPE = '''"""Benchmark recipe: benchdata.records(n) with ids under a per-dataset prefix."""

import vxds

import benchdata


@vxds.recipe()
def bench(client: vxds.Client, n: int, prefix: str) -> dict:
    out = benchdata.records(n)
    for items in out.values():
        for record in items:
            record["id"] = f"{prefix}/{record['id']}"
    return out
'''


def median_run(
    argv: list[str], repeat: int, *, cwd: Path | None = None, before: Callable[[], None] | None = None
) -> Run:
    runs = []
    _become_subreaper()
    for _ in range(repeat):
        if before is not None:
            before()
        runs.append(run(argv, cwd=cwd).check())
        _reap_orphans()  # a hashing child still unmapping its files ends before the next run
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def cpu_ms(argv: list[str], repeat: int, *, cwd: Path | None = None) -> float:
    """Median user + system CPU of ``repeat`` runs (ms), every process the command started
    included: the load moves it less than the wall time. ``verify --data`` does not wait for
    its hashing child to unmap its files, so on Linux this process becomes the subreaper of
    what the command leaves behind and waits for it, counting its CPU too."""
    import resource
    import subprocess

    _become_subreaper()
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        _reap_orphans()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return sorted(times)[len(times) // 2] * 1000


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_orphans() -> None:
    """Wait for every child left (a command's own children, given to this process)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def b3sum() -> str | None:
    return shutil.which("b3sum")


# --- locks: 50 datasets, 1,000,000 resources ----------------------------------------------------


def make_locks_project(root: Path, datasets: int, resources: int) -> None:
    (root / "recipes").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "source" / "README.txt").write_text("A tiny source; the recipe does not read it.\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./source"\n')
    (root / "recipes" / "bench.py").write_text(RECIPE)
    shutil.copy(BENCH_DIR / "benchdata.py", root / "recipes" / "benchdata.py")
    each = resources // datasets
    entries = [
        f"- name: ds{i:02d}\n  version: 1\n  script_location: ./recipes/bench.py\n"
        f"  params: {{n: {each}, prefix: ds{i:02d}}}\n  group_by: attrs.subject\n"
        for i in range(datasets)
    ]
    (root / "datasets.yaml").write_text("\n".join(entries))
    run([*vxds_argv(), "lock", "--all", "--quiet", "--root", str(root)]).check()


def hook_project(root: Path) -> None:
    """The example project in a Git repository, with vxds-verify as a local pre-commit hook."""
    root.mkdir(parents=True)
    for name in ("datasets.yaml", "pyproject.toml", ".gitattributes"):
        shutil.copy(REPO / name, root / name)
    for name in ("recipes", "locks", "sample-data"):
        shutil.copytree(REPO / name, root / name)
    (root / ".gitignore").write_text(".vxds/\n")
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: local\n    hooks:\n      - id: vxds-verify\n        name: vxds verify\n"
        f"        entry: {vxds_argv()[0]} verify --no-exec --quiet\n        language: system\n"
        "        pass_filenames: false\n        files: ^(datasets\\.yaml|pyproject\\.toml|recipes/|locks/)\n"
    )
    env = {
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "example"]):
        run(argv, cwd=root, env=env).check()


def part_locks(scratch: Path, report: Report, args: object) -> None:
    datasets, resources, repeat = args.datasets, args.resources, args.repeat  # type: ignore[attr-defined]
    root = scratch / "locks-project"
    start = time.perf_counter()
    make_locks_project(root, datasets, resources)
    files = sorted(str(p) for p in (root / "locks").rglob("resources.*.jsonl"))
    size = sum(os.path.getsize(p) for p in files)
    report.notes.append(
        f"locks: {datasets} datasets, {resources:,} resources, {size / 2**20:.0f} MiB of lock lines"
        f" (made in {time.perf_counter() - start:.0f} s)"
    )
    vxds = [*vxds_argv()]
    tool = b3sum()
    rows: list[tuple[str, Run | None]] = [
        (
            "b3sum of every lock file (read + hash floor)",
            median_run([tool, "--no-names", *files], repeat) if tool else None,
        ),
        ("vxds list (header and split digests)", median_run([*vxds, "list", "--root", str(root)], repeat)),
    ]
    cache = root / ".vxds" / "verified.json"
    cold = median_run([*vxds, "verify", "--no-exec", "--no-cache", "--root", str(root)], repeat)
    first = median_run(
        [*vxds, "verify", "--no-exec", "--root", str(root)], 1, before=lambda: cache.unlink(missing_ok=True)
    )
    warm = median_run([*vxds, "verify", "--no-exec", "--root", str(root)], repeat)
    rows += [
        ("vxds verify --no-exec --no-cache (every line)", cold),
        ("vxds verify --no-exec, first run (fills .vxds/)", first),
        ("vxds verify --no-exec, unchanged locks", warm),
    ]
    hook_root = scratch / "hook-project"
    hook_project(hook_root)
    pre_commit = Path(sys.executable).parent / "pre-commit"
    hook = median_run([str(pre_commit), "run", "vxds-verify", "--all-files"], max(repeat, 5), cwd=hook_root)
    bare = median_run([*vxds, "verify", "--no-exec", "--quiet", "--root", str(hook_root)], max(repeat, 5))
    rows += [
        ("pre-commit run vxds-verify --all-files (example repo)", hook),
        ("  its entry alone: vxds verify --no-exec --quiet", bare),
    ]
    for name, r in rows:
        if r is None:
            report.row(f"{name}: b3sum not installed", "-", "-", "-")
        else:
            report.row(name, fmt_s(r.seconds), fmt_mib(r.peak_mib), f"{resources / r.seconds:,.0f}")
    report.target(
        f"verify --no-exec, 1M resources < {LOCKS_SECONDS:g} s (unchanged)",
        f"{warm.seconds:.2f} s",
        warm.seconds < LOCKS_SECONDS,
    )
    report.target(
        f"verify --no-exec, 1M resources < {LOCKS_SECONDS:g} s (--no-cache)",
        f"{cold.seconds:.2f} s",
        cold.seconds < LOCKS_SECONDS,
    )
    report.target(
        f"pre-commit hook, unchanged repo < {HOOK_SECONDS:g} s",
        f"{hook.seconds:.2f} s",
        hook.seconds < HOOK_SECONDS,
    )


# --- data: one 1 GiB file ---------------------------------------------------------------------


def part_large(scratch: Path, report: Report, args: object) -> None:
    repeat, gib = args.repeat, args.large_mib  # type: ignore[attr-defined]
    root = scratch / "large-project"
    (root / "data").mkdir(parents=True)
    (root / "recipes").mkdir()
    big = root / "data" / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(gib):
            fh.write(os.urandom(1 << 20))
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (root / "datasets.yaml").write_text("- name: big\n  version: 1\n  script_location: ./recipes/big.py\n")
    (root / "recipes" / "big.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef big(client):\n    return {'all': list(client.list())}\n"
    )
    run([*vxds_argv(), "lock", "--all", "--quiet", "--root", str(root)]).check()
    size = big.stat().st_size
    tool = b3sum()
    load = os.getloadavg()[0]
    base = median_run([tool, "--no-names", str(big)], repeat) if tool else None
    mine = median_run([*vxds_argv(), "verify", "--data", "--root", str(root)], repeat)
    # The same command without --data: start-up and the lock checks, the fixed part.
    fixed = median_run([*vxds_argv(), "verify", "--root", str(root)], repeat)
    for name, r in (
        ("b3sum", base),
        ("vxds verify --data", mine),
        ("vxds verify, no --data (start-up, lock checks)", fixed),
    ):
        if r is None:
            report.row(f"{name} of {gib} MiB: b3sum not installed", "-", "-", "-")
        else:
            report.row(
                f"{name} of a {gib} MiB file" if r is not fixed else name,
                fmt_s(r.seconds),
                fmt_mib(r.peak_mib),
                f"{size / r.seconds / 2**20:,.0f} MiB/s",
            )
    cpu = {
        "b3sum": cpu_ms([tool, "--no-names", str(big)], repeat) if tool else None,
        "vxds verify --data": cpu_ms([*vxds_argv(), "verify", "--data", "--root", str(root)], repeat),
        "vxds verify": cpu_ms([*vxds_argv(), "verify", "--root", str(root)], repeat),
        "vxds --version": cpu_ms([*vxds_argv(), "--version"], repeat),
    }
    shown = ", ".join(f"{name} {ms:.0f} ms" for name, ms in cpu.items() if ms is not None)
    report.notes.append(f"large: CPU (user + system, median of {repeat}): {shown}")
    report.notes.append(f"large: load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    hashing = mine.seconds - fixed.seconds
    report.row(
        "  vxds' hashing alone (the difference)", fmt_s(hashing), "-", f"{size / hashing / 2**20:,.0f} MiB/s"
    )
    if base is None:
        report.notes.append(
            "no b3sum on PATH, so the 1 GiB row has no baseline:"
            " install it (Debian: apt-get install b3sum; or cargo install b3sum)"
        )
        report.target(f"--data of 1 GiB >= {LARGE_RATIO:.0%} of b3sum", "b3sum not installed", None)
        return
    ratio = base.seconds / mine.seconds
    report.target(
        f"--data of 1 GiB >= {LARGE_RATIO:.0%} of b3sum's throughput (whole command)",
        f"{ratio:.0%}",
        ratio >= LARGE_RATIO,
    )
    ratio = base.seconds / hashing
    report.target(
        f"--data of 1 GiB >= {LARGE_RATIO:.0%} of b3sum's throughput (hashing, start-up excluded)",
        f"{ratio:.0%}",
        ratio >= LARGE_RATIO,
    )


# --- data: 100,000 small files ------------------------------------------------------------------


def part_small(scratch: Path, report: Report, args: object) -> None:
    repeat, count = args.repeat, args.files  # type: ignore[attr-defined]
    root = scratch / "small-project"
    make_tree_project(root)
    total = make_tree(root / "data", count, 1024, 8192, 2)
    run([*vxds_argv(), "lock", "--all", "--quiet", "--root", str(root)]).check()
    mine = median_run([*vxds_argv(), "verify", "--data", "--root", str(root)], repeat)
    dvc = None if args.no_dvc else find_dvc(args.dvc)  # type: ignore[attr-defined]
    status: Run | None = None
    if dvc is not None:
        dvc_scratch = scratch / "dvc"
        _, _, version = dvc_runs(dvc, root, dvc_scratch)
        report.notes.append(f"DVC: {version}; its state database is removed before each dvc status")

        def forget() -> None:
            for folder in (root / ".dvc" / "tmp", dvc_scratch / "site-cache"):
                shutil.rmtree(folder, ignore_errors=True)

        env_argv = [*dvc, "status", "-q"]
        status = median_run(env_argv, repeat, cwd=root, before=forget)
    report.notes.append(f"tree: {count:,} files, {total / 2**20:.0f} MiB")
    for name, r in (("dvc status (state db removed)", status), ("vxds verify --data", mine)):
        if r is None:
            report.row(f"{name}: dvc not installed: skipped", "-", "-", "-")
        else:
            report.row(
                f"{name}, {count:,} files",
                fmt_s(r.seconds),
                fmt_mib(r.peak_mib),
                f"{count / r.seconds:,.0f} files/s",
            )
    if status is None:
        report.target(
            f"--data of 100k files >= {SMALL_RATIO:g}x faster than dvc status", "dvc not installed", None
        )
    else:
        ratio = status.seconds / mine.seconds
        report.target(
            f"--data of 100k files >= {SMALL_RATIO:g}x faster than dvc status",
            f"{ratio:.1f}x",
            ratio >= SMALL_RATIO,
        )


def main(argv: list[str]) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["locks", "large", "small", "all"], default="all")
    p.add_argument("--datasets", type=int, default=50)
    p.add_argument("--resources", type=int, default=1_000_000)
    p.add_argument("--large-mib", type=int, default=1024, help="Size of the large file, MiB.")
    p.add_argument("--files", type=int, default=100_000, help="Small files for --data.")
    p.add_argument("--repeat", type=int, default=3, help="Runs per command; the median is reported.")
    p.add_argument("--dvc", default=None, help="DVC executable (default: dvc on PATH, or python -m dvc).")
    p.add_argument("--no-dvc", action="store_true")
    args = p.parse_args(argv)
    report = Report("vxds verify", ["run", "wall s", "peak MiB", "rate (resources/s, MiB/s, files/s)"])
    with workdir(args.workdir, args.keep, "vxds-verify-bench-") as scratch:
        parts = {"locks": part_locks, "large": part_large, "small": part_small}
        for name, part in parts.items():
            if args.part in (name, "all"):
                part(scratch, report, args)
    report.notes.append(f"median of {args.repeat} runs per command (the hook: of {max(args.repeat, 5)})")
    return finish(report, args.strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
