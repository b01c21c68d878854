"""Hash a 100,000-file tree with vxds, cold then warm, beside ``dvc add`` of the same tree.

The tree is BIDS-like (``trial/sub-XXXXX/ses-YY/<datatype>/<file>``), small files of
random bytes (1-8 KiB by default), generated deterministically. Every run is a subprocess:

* vxds cold: ``vxds lock tree --root PROJECT`` with no ``.vxds/`` hash cache and no lock; the
  recipe returns every file (``client.list()``), so this hashes every byte and writes the lock;
* vxds warm: the same command again, nothing changed (median of three runs): the caches answer,
  no bytes are read;
* dvc add: ``dvc add data`` in the same folder after ``git init`` and ``dvc init`` (when DVC is
  installed; ``--dvc`` names its executable), then again unchanged for reference.

The OS page cache is warm for every run (the files were just written); both tools get the
same advantage. Targets (issue 2): cold hashing at least 5x faster than ``dvc add``, and
relocking the unchanged tree under 2 s.

    python bench/hash_bench.py [--files 100000] [--dvc /path/to/dvc] [--strict]
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchlib import Report, Run, finish, fmt_mib, fmt_s, parser, profile_lock, run, vxds_argv, workdir

COLD_RATIO = 5.0
WARM_SECONDS = 2.0
TRIALS = ("basel", "zurich", "geneva", "bern", "lausanne")
# (datatype, name part after sub-X_ses-Y_) : ten files per session, two sessions per subject.
SESSION_FILES = (
    ("anat", "T1w.nii.gz"),
    ("anat", "T2w.nii.gz"),
    ("anat", "FLAIR.nii.gz"),
    ("anat", "PDw.nii.gz"),
    ("dwi", "dwi.nii.gz"),
    ("dwi", "dwi.bval"),
    ("dwi", "dwi.bvec"),
    ("func", "task-rest_bold.nii.gz"),
    ("func", "task-motor_bold.nii.gz"),
    ("fmap", "magnitude1.nii.gz"),
)
SESSIONS = ("01", "02")

RECIPE = '''"""Every file of the source, in one split."""

import vxds


@vxds.recipe()
def tree(client: vxds.Client) -> dict:
    return {"all": list(client.list())}
'''


def tree_paths(count: int) -> Iterator[str]:
    """``count`` relative paths of a BIDS-like tree, subjects cycling through the trials."""
    made = 0
    subject = 0
    while True:
        label = f"{subject:05d}"
        trial = TRIALS[subject % len(TRIALS)]
        for session in SESSIONS:
            for datatype, name in SESSION_FILES:
                if made == count:
                    return
                yield f"{trial}/sub-{label}/ses-{session}/{datatype}/sub-{label}_ses-{session}_{name}"
                made += 1
        subject += 1


def make_tree(data: Path, count: int, low: int, high: int, seed: int) -> int:
    """Write the tree; return its size in bytes. Same arguments, same bytes."""
    rng = random.Random(seed)
    total = 0
    made_dirs: set[str] = set()
    for rel in tree_paths(count):
        folder, _, _ = rel.rpartition("/")
        if folder not in made_dirs:
            (data / folder).mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        size = rng.randint(low, high)
        (data / rel).write_bytes(rng.randbytes(size))
        total += size
    return total


def make_project(root: Path) -> None:
    (root / "recipes").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (root / "datasets.yaml").write_text(
        "- name: tree\n  version: 1\n  description: Every file of the generated tree.\n"
        "  script_location: ./recipes/tree.py\n"
    )
    (root / "recipes" / "tree.py").write_text(RECIPE)


def find_dvc(given: str | None) -> list[str] | None:
    """The command that runs DVC: ``--dvc``, else ``dvc`` on PATH, else ``python -m dvc``."""
    if given:
        return [given]
    found = shutil.which("dvc")
    if found:
        return [found]
    if importlib.util.find_spec("dvc") is not None:
        return [sys.executable, "-m", "dvc"]
    return None


def dvc_runs(dvc: list[str], root: Path, scratch: Path) -> tuple[Run, Run, str]:
    """``dvc add data`` cold, then again unchanged; DVC's state and config stay in scratch."""
    env = {
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(scratch / "site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(scratch / "global-config"),
        "DVC_SYSTEM_CONFIG_DIR": str(scratch / "system-config"),
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    run(["git", "init", "-q"], cwd=root, env=env).check()
    run([*dvc, "init", "-q"], cwd=root, env=env).check()
    run([*dvc, "config", "core.analytics", "false"], cwd=root, env=env).check()
    run([*dvc, "config", "core.check_update", "false"], cwd=root, env=env).check()
    version = run([*dvc, "--version"], cwd=root, env=env).check().stdout.strip()
    cold = run([*dvc, "add", "-q", "data"], cwd=root, env=env).check()
    warm = run([*dvc, "add", "-q", "data"], cwd=root, env=env).check()
    return cold, warm, version


def profile(root: Path, top: int) -> None:
    """cProfile of a warm ``vxds lock`` (the main thread only)."""
    profile_lock("tree", root, root.parent / "warm.prof", "cProfile of a warm vxds lock", top)


def main(argv: list[str]) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=100_000, help="Files in the tree.")
    p.add_argument("--min-size", type=int, default=1024, help="Smallest file, bytes.")
    p.add_argument("--max-size", type=int, default=8192, help="Largest file, bytes.")
    p.add_argument("--seed", type=int, default=2, help="Seed of the generated bytes.")
    p.add_argument("--dvc", default=None, help="DVC executable (default: dvc on PATH, or python -m dvc).")
    p.add_argument("--no-dvc", action="store_true", help="Do not run DVC even when it is installed.")
    p.add_argument(
        "--jobs",
        type=int,
        nargs="*",
        default=[1],
        metavar="N",
        help="Extra cold runs with 'vxds lock --jobs N' (default: 1; none: --jobs).",
    )
    p.add_argument("--profile", action="store_true", help="Also print a cProfile of the warm relock.")
    args = p.parse_args(argv)
    report = Report(
        f"hash a tree of {args.files:,} files", ["run", "wall s", "peak MiB", "files/s", "vs dvc add"]
    )
    with workdir(args.workdir, args.keep, "vxds-hash-bench-") as scratch:
        root = scratch / "project"
        make_project(root)
        start = time.perf_counter()
        total = make_tree(root / "data", args.files, args.min_size, args.max_size, args.seed)
        report.notes.append(
            f"tree: {args.files:,} files, {total / 2**20:.0f} MiB, "
            f"generated in {time.perf_counter() - start:.1f} s"
        )
        lock = [*vxds_argv(), "lock", "tree", "--root", str(root), "--quiet"]
        cold = run(lock).check()
        lines = (root / "locks" / "tree" / "1" / "resources.all.jsonl").read_bytes().count(b"\n")
        if lines != args.files:
            raise RuntimeError(f"the lock has {lines} resources, expected {args.files}")
        # The median of three warm runs: one run on this shared VM varies by a few tenths.
        warm = sorted((run(lock).check() for _ in range(3)), key=lambda r: r.seconds)[1]
        by_jobs = {}
        for jobs in args.jobs:
            shutil.rmtree(root / ".vxds")
            shutil.rmtree(root / "locks")
            by_jobs[jobs] = run([*lock, "--jobs", str(jobs)]).check()
        dvc = None if args.no_dvc else find_dvc(args.dvc)
        dvc_cold = dvc_warm = None
        if dvc is not None:
            dvc_cold, dvc_warm, version = dvc_runs(dvc, root, scratch)
            report.notes.append(f"DVC: {version} ({' '.join(dvc)})")

        def add(name: str, r: Run | None) -> None:
            if r is None:
                report.row(f"{name}: dvc not installed: skipped", "-", "-", "-", "-")
                return
            speed = "" if dvc_cold is None else f"{dvc_cold.seconds / r.seconds:.1f}x"
            report.row(name, fmt_s(r.seconds), fmt_mib(r.peak_mib), f"{args.files / r.seconds:,.0f}", speed)

        add("vxds lock, cold (no .vxds cache)", cold)
        for jobs, r in by_jobs.items():
            add(f"vxds lock --jobs {jobs}, cold", r)
        add("vxds lock, warm (unchanged)", warm)
        add("dvc add, cold", dvc_cold)
        add("dvc add, again (unchanged)", dvc_warm)
        report.notes.append("'vs dvc add' is how many times faster than a cold dvc add")
        if dvc_cold is None:
            report.target(f"cold hashing >= {COLD_RATIO:g}x faster than dvc add", "dvc not installed", None)
        else:
            ratio = dvc_cold.seconds / cold.seconds
            report.target(
                f"cold hashing >= {COLD_RATIO:g}x faster than dvc add", f"{ratio:.2f}x", ratio >= COLD_RATIO
            )
        report.target(
            f"relock unchanged < {WARM_SECONDS:g} s", f"{warm.seconds:.2f} s", warm.seconds < WARM_SECONDS
        )
        code = finish(report, args.strict)
        if args.profile:
            profile(root, 25)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
