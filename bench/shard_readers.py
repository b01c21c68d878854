"""The readers of lock format 2 at scale, for ``shard_bench.py``: ``vxds diff`` and
``vxds verify --no-exec`` of generated locks, each against format 1 (one file per split) in
the same run.

Locks are written directly (no recipe runs): a one-resource ``vxds lock`` gives a fresh
header, whose split is then replaced by the generated lines, so ``verify`` sees a fresh lock.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import Report, fmt_s, run, vxds_argv

from vxds.locks import shard_join
from vxds.locks.diff import diff_refs
from vxds.locks.refs import folder_lock
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock, read_lock, write_lock

RECIPE = "import vxds\n\n\n@vxds.recipe()\ndef big(client):\n    return {'train': list(client.list())}\n"
MANIFEST = "- name: big\n  version: 1\n  script_location: ./recipes/big.py\n"
REPEAT = 5  # warm diffs: the median of this many
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
}


def project(root: Path) -> Path:
    """A project with one dataset, big@1, locked from a one-file source: its lock folder."""
    (root / "recipes").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "source" / "README.txt").write_text("one file\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./source"\n')
    (root / "recipes" / "big.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(MANIFEST)
    (root / ".gitignore").write_text(".vxds/\n")
    run([*vxds_argv(), "lock", "--all", "--quiet", "--root", str(root)]).check()
    return root / "locks" / "big" / "1"


def put(folder: Path, lines: list[bytes], rule: ShardRule) -> None:
    """Replace the split of the lock in ``folder`` by ``lines``, cut by ``rule``."""
    header = read_lock(folder).header
    splits = {"train": Split.from_terminated(lines, rule)}
    header = dataclasses.replace(
        header, splits={n: (s.count, s.digest) for n, s in splits.items()}, shards=header_shards(splits)
    )
    write_lock(Lock(header, splits), folder)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def folder_diff(old: Path, new: Path, cache: Path, repeat: int = 1) -> float:
    """In-process ``diff_refs`` of two lock folders, the shard tallies cached under ``cache``
    (the median of ``repeat`` runs: the machine is shared)."""

    def once() -> float:
        shard_join.shard_types.cache_clear()  # read the cache from disk, as a new process does
        return timed(lambda: diff_refs(folder_lock(old, "old", cache), folder_lock(new, "new", cache)))

    return sorted(once() for _ in range(repeat))[repeat // 2]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@dataclasses.dataclass
class Sides:
    """Two versions of one lock, written in both formats, plus a change over every shard."""

    base: list[bytes]
    changed: list[bytes]
    spread: list[bytes]


def diff_times(
    scratch: Path, sides: Sides, sharded: ShardRule, one_file: ShardRule, repeat: int = REPEAT
) -> dict[str, float]:
    """Diff seconds: format 2 cold (no tally cache) and warm, format 1; both for the
    clustered change, then for a change in every shard. The warm clustered diff is the
    median of ``REPEAT`` runs; the others of ``repeat`` (fewer at 10M: each reads it all)."""
    out: dict[str, float] = {}
    for change in ("changed", "spread"):
        folders = {}
        for fmt, rule in (("2", sharded), ("1", one_file)):
            for side, lines in (("a", sides.base), ("b", getattr(sides, change))):
                folder = scratch / f"{change}-{fmt}{side}"
                shutil.copytree(scratch / "template", folder)
                put(folder, lines, rule)
                folders[fmt + side] = folder
        cache = scratch / f"cache-{change}"
        out[f"{change} 2 cold"] = folder_diff(folders["2a"], folders["2b"], cache)
        warm = REPEAT if change == "changed" else repeat
        out[f"{change} 2 warm"] = folder_diff(folders["2a"], folders["2b"], cache, warm)
        out[f"{change} 1"] = folder_diff(folders["1a"], folders["1b"], scratch / "no-cache", repeat)
        for folder in folders.values():
            shutil.rmtree(folder)
    return out


def git_diff(root: Path, lock: Path, sides: Sides, rule: ShardRule) -> tuple[float, float]:
    """``vxds diff HEAD~1 HEAD`` of the clustered change committed in Git: cold, warm."""
    git(root, "init", "-q", "-b", "main")
    put(lock, sides.base, rule)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    put(lock, sides.changed, rule)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "changed")
    argv = [*vxds_argv(), "diff", "HEAD~1", "HEAD", "--stat", "--root", str(root)]
    shutil.rmtree(root / ".vxds" / "shard-tallies", ignore_errors=True)
    cold = run(argv).seconds
    return cold, run(argv).seconds


RACY = 2.1  # seconds: a lock file changed less than 2 s before a read never vouches for itself


def verify_times(lock: Path, root: Path, sides: Sides, rule: ShardRule) -> dict[str, float]:
    """``vxds verify --no-exec`` seconds: cold (no .vxds/ caches: every shard read, hashed
    and parsed), warm (as in CI with .vxds/ restored, or a second run), after a clustered
    change. The lock files are older than 2 s when verify reads them, as a checkout's are."""
    argv = [*vxds_argv(), "verify", "--no-exec", "--root", str(root)]
    caches = [root / ".vxds" / "verified.json", root / ".vxds" / "shard-digests.json"]
    put(lock, sides.base, rule)
    for cache in caches:
        cache.unlink(missing_ok=True)
    time.sleep(RACY)
    out = {"cold": run(argv).check().seconds, "warm": run(argv).check().seconds}
    put(lock, sides.changed, rule)
    time.sleep(RACY)
    out["after change"] = run(argv).check().seconds
    return out


def verify_rows(report: Report, n: int, results: dict[str, float]) -> None:
    for name, seconds in results.items():
        report.row(f"verify --no-exec {n:,}: {name}", fmt_s(seconds))
