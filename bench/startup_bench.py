"""Start-up time of ``vxds --help``, against ``python -c pass`` in the same run.

Each command runs ``--runs`` times (after two warm-up runs), interleaved so that drift on
the machine hits every row alike; the median wall time is reported. ``--profile`` adds the
slowest imports of ``vxds --help`` from ``python -X importtime``.

Target (issue 2): ``vxds --help`` under 0.15 s.

    python bench/startup_bench.py [--runs 15] [--profile] [--strict]
"""

from __future__ import annotations

import statistics
import sys

from benchlib import Report, finish, fmt_mib, parser, run, vxds_argv

TARGET_SECONDS = 0.15
WARMUP = 2


def import_profile(top: int) -> None:
    """The slowest imports (cumulative) of ``vxds --help``."""
    result = run([sys.executable, "-X", "importtime", "-m", "vxds", "--help"]).check()
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    print("\n== slowest imports of python -m vxds --help (cumulative microseconds) ==")
    for micros, name in rows[:top]:
        print(f"{micros:>9}  {name}")


def main(argv: list[str]) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15, help="Timed runs per command.")
    p.add_argument("--profile", action="store_true", help="Also print the slowest imports.")
    args = p.parse_args(argv)
    commands = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "vxds --help": [*vxds_argv(), "--help"],
        "vxds --version": [*vxds_argv(), "--version"],
        "python -m vxds --help": [sys.executable, "-m", "vxds", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, float] = dict.fromkeys(commands, 0.0)
    for i in range(WARMUP + max(1, args.runs)):
        for name, argv_ in commands.items():
            result = run(argv_).check()
            if i >= WARMUP:
                times[name].append(result.seconds)
                peaks[name] = max(peaks[name], result.peak_mib)
    report = Report(
        "vxds start-up", ["command", "median s", "min s", "max s", "peak MiB", "minus baseline s"]
    )
    base = statistics.median(times["python -c pass (baseline)"])
    for name, values in times.items():
        median = statistics.median(values)
        report.row(
            name,
            f"{median:.3f}",
            f"{min(values):.3f}",
            f"{max(values):.3f}",
            fmt_mib(peaks[name]),
            f"{median - base:.3f}",
        )
    report.notes.append(f"median of {len(times['vxds --help'])} runs each, after {WARMUP} warm-up runs")
    helped = statistics.median(times["vxds --help"])
    report.target(f"vxds --help < {TARGET_SECONDS:g} s", f"{helped:.3f} s", helped < TARGET_SECONDS)
    code = finish(report, args.strict)
    if args.profile:
        import_profile(15)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
