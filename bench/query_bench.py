"""A group-by over a 1,000,000-resource lock: ``vxds query`` against plain orjson in the same run.

The lock is written once by ``vxds lock`` (lock_bench.py's project: ``benchdata.records``,
five attributes per resource, train and test). Then each side runs in its own process, so
wall time and peak RSS are comparable, and both print the same rows as JSON:

* vxds: ``vxds query "SELECT split, site, suffix, count(*), sum(size) ... GROUP BY ALL"
  --format json``, which also checks every split file's digest and count against the header;
  once cold (``.vxds/query`` removed: each shard is converted to Parquet first), then warm
  (the Parquet copies are read);
* baseline: a Python script that reads each split file, ``orjson.loads`` every line into a
  dict and adds it to a dict keyed by (split, site, suffix).

Targets (issue 18): vxds at least 3x faster than the baseline, and under 1 GB peak memory.

    python bench/query_bench.py [--resources 1000000] [--repeat 3] [--strict]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import orjson
from benchlib import BENCH_DIR, Report, Run, finish, fmt_mib, fmt_s, parser, run, vxds_argv, workdir

SPEEDUP = 3.0
PEAK_BYTES = 1e9  # 1 GB
DATASET = "bench"
SQL = f"""
SELECT split, attrs->>'site' AS site, attrs->>'suffix' AS suffix, count(*) AS resources, sum(size) AS bytes
FROM "{DATASET}@1"
GROUP BY ALL
ORDER BY ALL
"""

BASELINE = """
import sys
from pathlib import Path

import orjson

groups = {}
for path in sorted(Path(sys.argv[1]).glob("resources.*.jsonl")):
    split = path.name.split(".")[1]
    with open(path, "rb") as fh:
        for line in fh:
            record = orjson.loads(line)
            attrs = record["attrs"]
            key = (split, attrs.get("site"), attrs.get("suffix"))
            total = groups.get(key)
            if total is None:
                groups[key] = [1, record["size"] or 0]
            else:
                total[0] += 1
                total[1] += record["size"] or 0
rows = [
    {"split": k[0], "site": k[1], "suffix": k[2], "resources": n, "bytes": b}
    for k, (n, b) in sorted(groups.items(), key=lambda kv: tuple("" if v is None else v for v in kv[0]))
]
sys.stdout.buffer.write(orjson.dumps(rows))
"""

RECIPE = """import vxds

import benchdata


@vxds.recipe()
def bench(client: vxds.Client, n: int) -> dict:
    return benchdata.records(n)
"""


def make_lock(root: Path, n: int) -> Run:
    """A project whose one lock holds ``n`` generated resources, written by ``vxds lock``."""
    (root / "recipes").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "source" / "README.txt").write_text("A tiny source; the recipe does not read it.\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./source"\n')
    (root / "datasets.yaml").write_text(
        f"- name: {DATASET}\n  version: 1\n  script_location: ./recipes/bench.py\n  params: {{n: {n}}}\n"
    )
    (root / "recipes" / "bench.py").write_text(RECIPE)
    shutil.copy(BENCH_DIR / "benchdata.py", root / "recipes" / "benchdata.py")
    return run([*vxds_argv(), "lock", DATASET, "--root", str(root), "--quiet"]).check()


def turns(first: list[str], second: list[str], repeat: int) -> tuple[Run, Run]:
    """The fastest of ``repeat`` runs of each command (each its own process), taking turns so
    that the machine's load hits both alike; each peak is that run's."""
    runs = [(run(first).check(), run(second).check()) for _ in range(repeat)]
    return min((a for a, _ in runs), key=lambda r: r.seconds), min(
        (b for _, b in runs), key=lambda r: r.seconds
    )


def main(argv: list[str]) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--resources", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3, help="Runs per side; the fastest is reported.")
    args = p.parse_args(argv)
    with workdir(args.workdir, args.keep, "vxds-query-bench-") as scratch:
        root = scratch / "project"
        locked = make_lock(root, args.resources)
        folder = root / "locks" / DATASET / "1"
        files = sorted(folder.glob("resources.*.jsonl"))
        size = sum(p.stat().st_size for p in files)
        script = scratch / "baseline.py"
        script.write_text(BASELINE)
        baseline = [sys.executable, str(script), str(folder)]
        command = [*vxds_argv(), "query", SQL, "--format", "json", "--root", str(root)]
        shutil.rmtree(root / ".vxds" / "query", ignore_errors=True)
        load_before = os.getloadavg()[0]
        cold = run(command).check()  # converts each shard to Parquet under .vxds/query, then reads it
        base, vxds = turns(baseline, command, args.repeat)
        same = orjson.loads(vxds.stdout) == orjson.loads(base.stdout) == orjson.loads(cold.stdout)
        groups = len(orjson.loads(vxds.stdout))
        report = Report(
            f"query: group-by over {args.resources:,} resources",
            ["run", "wall s", "peak MiB", "detail"],
        )
        report.row("vxds lock (setup)", fmt_s(locked.seconds), fmt_mib(locked.peak_mib), "")
        detail = f"{len(files)} files, {size / 2**20:.0f} MiB"
        report.row("baseline: orjson.loads + dict", fmt_s(base.seconds), fmt_mib(base.peak_mib), detail)
        report.row(
            "vxds query, cold (writes .vxds/query)",
            fmt_s(cold.seconds),
            fmt_mib(cold.peak_mib),
            f"{groups} groups",
        )
        report.row(
            "vxds query, warm (Parquet)", fmt_s(vxds.seconds), fmt_mib(vxds.peak_mib), f"{groups} groups"
        )
        report.notes.append(
            f"fastest of {args.repeat} runs per side, in turns; all print the same rows: {same}"
        )
        report.notes.append(f"cold vs baseline: {base.seconds / cold.seconds:.1f}x")
        load = f"{load_before:.1f} before the runs, {os.getloadavg()[0]:.1f} after"
        report.notes.append(f"load average (1 min): {load}")
        speedup = base.seconds / vxds.seconds
        report.target(
            f"at least {SPEEDUP:g}x faster than the baseline", f"{speedup:.1f}x", speedup >= SPEEDUP
        )
        peak = vxds.peak_mib * 2**20
        report.target("under 1 GB peak", f"{peak / 1e9:.2f} GB", peak < PEAK_BYTES)
        report.target("the same rows as the baseline", str(same), same)
        identical = vxds.stdout == cold.stdout
        report.target("warm prints the bytes cold prints", str(identical), identical)
    return finish(report, args.strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
