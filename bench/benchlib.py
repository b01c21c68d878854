"""Helpers shared by the benchmark scripts: timed subprocesses, tables, targets."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


@dataclass
class Run:
    """One finished subprocess: wall time, its own peak RSS, exit code and output."""

    argv: list[str]
    seconds: float
    peak_mib: float
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Run:
        """Raise with the process' output when it failed."""
        if self.returncode != 0:
            raise RuntimeError(
                f"command failed with exit code {self.returncode}: {' '.join(self.argv)}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
            )
        return self


# Runs the command in a forked child and reports that child's own wall time and peak RSS.
# A child started straight from the benchmark would not do: Linux carries the RSS of the
# process that execs into the new program's ru_maxrss, and Python's subprocess uses vfork,
# so every child would report at least the benchmark's own RSS. This launcher is a bare
# interpreter (``-S``), so the floor is a few MiB. RUSAGE_CHILDREN would not do either: it
# is the maximum over every child waited for so far.
LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(out, "w") as fh:
    fh.write(f"{seconds!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Run:
    """Run ``argv``; measure its wall time and its own peak RSS (see ``LAUNCHER``)."""
    merged = {**os.environ, **(env or {})}
    os.sync()  # flush what earlier steps wrote, so their write-back does not slow this run
    with tempfile.TemporaryDirectory(prefix="vxds-bench-run-") as tmp:
        result = Path(tmp) / "result"
        with open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
            code = subprocess.call(
                [sys.executable, "-S", "-c", LAUNCHER, str(result), *argv],
                cwd=cwd,
                env=merged,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        if code != 0 or not result.exists():
            raise RuntimeError(f"the launcher failed ({code}) for {' '.join(argv)}:\n{stderr[-4000:]}")
        seconds, maxrss, returncode = result.read_text().split()
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return Run(list(argv), float(seconds), int(maxrss) / scale, int(returncode), stdout, stderr)


def vxds_argv() -> list[str]:
    """The ``vxds`` console script beside this interpreter, else ``python -m vxds``."""
    script = Path(sys.executable).parent / "vxds"
    if script.is_file():
        return [str(script)]
    found = shutil.which("vxds")
    return [found] if found else [sys.executable, "-m", "vxds"]


@dataclass
class Report:
    """Rows of a results table plus targets, printed together at the end."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    targets: list[tuple[str, str, bool | None]] = field(default_factory=list)  # name, detail, ok
    notes: list[str] = field(default_factory=list)

    def row(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def target(self, name: str, detail: str, ok: bool | None) -> None:
        """``ok`` None means the target could not be measured (SKIP)."""
        self.targets.append((name, detail, ok))

    def print(self) -> None:
        print()
        print(f"== {self.title} ==")
        print(f"machine: {machine()}")
        print(_table(self.headers, self.rows))
        for note in self.notes:
            print(f"note: {note}")
        print()
        print(
            _table(
                ["target", "measured", "result"],
                [
                    [name, detail, "SKIP" if ok is None else "PASS" if ok else "FAIL"]
                    for name, detail, ok in self.targets
                ],
            )
        )

    @property
    def failed(self) -> bool:
        return any(ok is False for _, _, ok in self.targets)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    numeric = [
        all(_is_number(r[i]) or r[i] in ("", "-") for r in rows) and bool(rows) for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x%").replace(",", ""))
    except ValueError:
        return False
    return True


def machine() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, vxds at {revision()}"
    )


def revision() -> str:
    """The commit of the vxds checkout, with '+changes' when vxds/ has uncommitted edits."""
    repo = BENCH_DIR.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "vxds"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return head + ("+changes" if dirty else "")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Folder for generated data (default: a new temporary folder).",
    )
    p.add_argument("--keep", action="store_true", help="Keep the generated data afterwards.")
    p.add_argument("--strict", action="store_true", help="Exit 1 when a target fails.")
    return p


@contextmanager
def workdir(path: Path | None, keep: bool, prefix: str) -> Iterator[Path]:
    """A fresh folder under ``path`` (or the system temp folder), removed unless ``keep``."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=path))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def finish(report: Report, strict: bool) -> int:
    report.print()
    return 1 if strict and report.failed else 0


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds >= 0.995 else f"{seconds:.3f}"


def fmt_mib(mib: float) -> str:
    return f"{mib:.0f}"


def profile_lock(dataset: str, root: Path, out: Path, title: str, top: int) -> None:
    """Run ``vxds lock DATASET --root ROOT`` under cProfile and print the top functions."""
    import pstats

    argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "vxds", "lock", dataset]
    run([*argv, "--root", str(root), "--quiet"]).check()
    stats = pstats.Stats(str(out))
    print(f"\n== {title} ==")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
