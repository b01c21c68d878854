"""The readers of lock format 2 at scale, for ``shard_bench.py``: ``vxds diff`` and
``vxds verify --no-exec`` of generated locks, each against format 1 (one file per split) in
the same run. Run alone, the micro benchmark of reading the two headers of a first diff:

    python bench/shard_readers.py [--rounds 15]

Locks are written directly (no recipe runs): a one-resource ``vxds lock`` gives a fresh
header, whose split is then replaced by the generated lines, so ``verify`` sees a fresh lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import Report, fmt_s, run, vxds_argv

from vxds.locks import shard_join
from vxds.locks import shards as sharding
from vxds.locks.diff import diff_refs
from vxds.locks.format import Header, parse_header, render_header
from vxds.locks.refs import folder_lock
from vxds.locks.shards import RULE, Shard, ShardRule, split_digest
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


def put_splits(folder: Path, lines: dict[str, list[bytes]], rule: ShardRule, claim: str | None) -> None:
    """Replace the splits of the lock in ``folder`` by ``lines`` (split -> its lines), cut by
    ``rule``, its header claiming ``disjoint_by = claim`` (none: as a lock of the last stop)."""
    header = read_lock(folder).header
    splits = {name: Split.from_terminated(found, rule) for name, found in sorted(lines.items())}
    header = dataclasses.replace(
        header,
        splits={n: (s.count, s.digest) for n, s in splits.items()},
        shards=header_shards(splits),
        disjoint_by=claim,
    )
    write_lock(Lock(header, splits), folder)


def claim(folder: Path, field: str | None) -> None:
    """Rewrite ``folder``'s lock.toml to claim ``disjoint_by = field`` (or nothing)."""
    header = read_lock(folder).header
    (folder / "lock.toml").write_text(render_header(dataclasses.replace(header, disjoint_by=field)))


GROUP_BY = "attrs.subject"
Lines = dict[str, list[bytes]]  # split -> its lines


def group_locks(root: Path, template: Path, n: int, old: Lines, new: Lines) -> tuple[Path, Path]:
    """The two locks of a group_by row (split -> lines each), their headers claiming
    ``disjoint_by = GROUP_BY``."""
    folders = root / f"group-{n}-a", root / f"group-{n}-b"
    for folder, lines in zip(folders, (old, new), strict=True):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(template, folder)
        put_splits(folder, lines, RULE, GROUP_BY)
    return folders


def group_diff_times(
    root: Path, pairs: dict[int, tuple[Path, Path]], rounds: int
) -> dict[int, dict[str, float]]:
    """First diffs (no ``.vxds/``) with ``group_by`` of each size's two locks, the sizes in
    turns (neither gets a quieter moment of the shared machine), after the writes are
    flushed: medians of ``rounds`` runs with both headers claiming ``disjoint_by`` (wall
    and CPU seconds), then of fewer with neither claiming it (every equal shard read once
    for its group keys, as before the claim)."""
    os.sync()
    cache = root / "group-cache"
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in pairs}
    for _ in range(rounds):
        for n, (a, b) in pairs.items():
            folder_diff(a, b, cache, cold=True, group_by=GROUP_BY, warm_up=False)  # the page cache, untimed
            cpu = time.process_time()
            wall = folder_diff(a, b, cache, cold=True, group_by=GROUP_BY, warm_up=False)
            runs[n].append((wall, time.process_time() - cpu))
    out = {}
    for n, (a, b) in pairs.items():
        walls, cpus = (sorted(x) for x in zip(*runs[n], strict=True))
        out[n] = {"claimed": walls[rounds // 2], "claimed cpu": cpus[rounds // 2]}
        for folder in (a, b):
            claim(folder, None)
        out[n]["unclaimed"] = folder_diff(a, b, cache, max(1, rounds // 4), cold=True, group_by=GROUP_BY)
        shutil.rmtree(a)
        shutil.rmtree(b)
    shutil.rmtree(cache, ignore_errors=True)
    return out


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def folder_diff(
    old: Path,
    new: Path,
    cache: Path,
    repeat: int = 1,
    cold: bool = False,
    group_by: str | None = None,
    warm_up: bool = True,
) -> float:
    """In-process ``diff_refs`` of two lock folders, the shard tallies cached under ``cache``
    (the median of ``repeat`` runs: the machine is shared); ``cold``: the cache removed
    before each run, as in a fresh clone.

    An untimed run of the same diff comes first (unless ``warm_up`` is False), so the files
    it reads are in the page cache, as for every other row of the bench. Without it a 10M
    row measured whatever the rows before it left there: the two 10M locks and their
    format-1 copies hold ~18 GB, more than the page cache keeps, and a format-1 diff read
    between two format-2 ones evicted the shards the second one read (0.030 s in one run,
    0.046-0.064 s in another).
    """

    def diff() -> object:
        return diff_refs(folder_lock(old, "old", cache), folder_lock(new, "new", cache), group_by=group_by)

    def once() -> float:
        shard_join.shard_types.cache_clear()  # read the cache from disk, as a new process does
        if cold:
            shutil.rmtree(cache, ignore_errors=True)
        return timed(diff)

    if warm_up:
        once()  # the page cache filled with what this diff reads, not timed
    return sorted(once() for _ in range(repeat))[repeat // 2]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@dataclasses.dataclass
class Sides:
    """Two versions of one lock, written in both formats, plus a change over every shard."""

    base: list[bytes]
    changed: list[bytes]
    spread: list[bytes]


def untyped(folder: Path) -> None:
    """Rewrite ``folder``'s lock.toml as a vxds of the last stop wrote it: no shard lists its
    types (only the header changes; the lock digest is recomputed)."""
    header = read_lock(folder).header
    shards = {
        n: tuple(dataclasses.replace(s, types=()) for s in listed) for n, listed in header.shards.items()
    }
    (folder / "lock.toml").write_text(render_header(dataclasses.replace(header, shards=shards)))


class Folders:
    """The lock folders a diff row reads, each written once: under ``store`` they are kept and
    reused by a later run (``--locks``: 10M lines take minutes to write), else under
    ``scratch`` and removed. A shard equal to the base's is a hard link to it (as Git stores
    it once), so the clustered change costs one shard of disk."""

    def __init__(self, scratch: Path, store: Path | None, n: int, sides: Callable[[], Sides]) -> None:
        self.root = store / str(n) if store is not None else scratch / "diff"
        self.keep = store is not None
        self.sides = sides
        self.template = scratch / "template"

    def get(self, name: str, lines: str, rule: ShardRule, like: Path | None = None) -> Path:
        folder = self.root / name
        if (folder / ".written").exists():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(self.template, folder)
        put(folder, getattr(self.sides(), lines), rule)
        for path in folder.glob("*.jsonl") if like is not None else ():
            twin = like / path.name
            if (
                twin.exists()
                and twin.stat().st_size == path.stat().st_size
                and twin.read_bytes() == path.read_bytes()
            ):
                path.unlink()
                os.link(twin, path)
        (folder / ".written").touch()
        return folder

    def done(self, *folders: Path) -> None:
        for folder in folders if not self.keep else ():
            shutil.rmtree(folder)


def diff_times(
    folders: Folders, sharded: ShardRule, one_file: ShardRule, repeat: int = REPEAT
) -> dict[str, float]:
    """Diff seconds: format 2 cold (no tally cache: the types come from lock.toml), warm (the
    cache filled), cold with lock.toml listing no types (a lock of the last stop), and format
    1; both for the clustered change, then for a change in every shard. The warm clustered
    diff is the median of ``REPEAT`` runs; the others of ``repeat`` (fewer at 10M)."""
    out: dict[str, float] = {}
    base2 = folders.get("base-2", "base", sharded)
    base1 = folders.get("base-1", "base", one_file)
    for change in ("changed", "spread"):
        new2 = folders.get(f"{change}-2", change, sharded, like=base2)
        new1 = folders.get(f"{change}-1", change, one_file)
        cache = folders.root / f"cache-{change}"
        shutil.rmtree(cache, ignore_errors=True)
        out[f"{change} 2 cold"] = folder_diff(base2, new2, cache, repeat, cold=True)
        warm = REPEAT if change == "changed" else repeat
        runs: dict[str, list[float]] = {"2": [], "1": []}
        for i in range(max(warm, repeat)):  # alternated: neither format gets the warmer page cache
            if i < warm:
                runs["2"].append(folder_diff(base2, new2, cache))
            if i < repeat:
                runs["1"].append(folder_diff(base1, new1, folders.root / "no-cache"))
        out[f"{change} 2 warm"], out[f"{change} 1"] = (sorted(r)[len(r) // 2] for r in runs.values())
        out[f"{change} 2 untyped"] = _untyped_diff(base2, new2, folders.root / f"cache-{change}-untyped")
        folders.done(new1, new2)
    folders.done(base1, base2)
    return out


def _untyped_diff(old: Path, new: Path, cache: Path) -> float:
    """The first diff (no tally cache) with lock.toml listing no types; the headers are put back."""
    headers = {folder: (folder / "lock.toml").read_bytes() for folder in (old, new)}
    try:
        for folder in headers:
            untyped(folder)
        shutil.rmtree(cache, ignore_errors=True)
        return folder_diff(old, new, cache)
    finally:
        for folder, text in headers.items():
            (folder / "lock.toml").write_bytes(text)


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


# --- the headers of a first diff ----------------------------------------------------------

HEADER_SHARDS = {20_000: 3, 10_000_000: 1_157}  # shards of a split of 445-byte lines (issue 13)


def header_texts(shards: int) -> tuple[str, str]:
    """Two lock.toml texts of a split of ``shards`` typed shards, as vxds writes them, the
    second with 200 resources of two neighbouring shards changed (their lines differ)."""

    def text(changed: bool) -> str:
        listed = tuple(
            Shard(
                f"sub-{i:07d}/ses-01/anat/sub-{i:07d}_T1w.nii.gz",
                8643,
                f"blake3:{i + (changed and i in (shards // 2, shards // 2 + 1)) * 2**200:064x}",
                (("File", 43), ("Volume", 8600)),
            )
            for i in range(shards)
        )
        count = sum(s.count for s in listed)
        header = Header(
            name="big",
            version=1,
            script="recipes/big.py",
            entrypoint=None,
            params={},
            script_digest="blake3:" + "0" * 64,
            entry_digest="blake3:" + "1" * 64,
            source="./source",
            snapshot="blake3:" + "2" * 64,
            splits={"train": (count, split_digest(listed))},
            shards={"train": listed},
        )
        return render_header(header)

    return text(False), text(True)


def header_read_times(rounds: int) -> dict[int, tuple[float, float]]:
    """Wall and CPU seconds (medians of ``rounds``) to parse both headers of each size's
    diff and check their digests, as ``read_header`` does, the sizes in turns, each run
    with the per-process caches empty, as in a new ``vxds diff``."""
    texts = {n: header_texts(shards) for n, shards in HEADER_SHARDS.items()}
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in texts}
    for _ in range(rounds):
        for n, pair in texts.items():
            sharding.shard_key.cache_clear()
            sharding._PROVEN.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            for text in pair:
                header, claimed = parse_header(text, Path("lock.toml"))
                assert claimed == header.digest
            runs[n].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {n: tuple(sorted(x)[rounds // 2] for x in zip(*found, strict=True)) for n, found in runs.items()}  # type: ignore[misc]


def header_report(rounds: int) -> Report:
    report = Report(
        "the two headers of a first diff (parse + digest check)", ["lock", "shards", "wall ms", "cpu ms"]
    )
    times = header_read_times(rounds)
    for n, (wall, cpu) in times.items():
        report.row(f"{n:,}", HEADER_SHARDS[n], f"{wall * 1000:.2f}", f"{cpu * 1000:.2f}")
    small, big = times[min(times)], times[max(times)]
    report.row("10M - 20k", "", f"{(big[0] - small[0]) * 1000:.2f}", f"{(big[1] - small[1]) * 1000:.2f}")
    report.notes.append(f"medians of {rounds} runs, the sizes in turns; load: {os.getloadavg()[0]:.1f}")
    whole = "the whole first diff's target: shard_bench.py --diff-only"
    report.target("diff 10M <= 3x 20k (issue 13; the headers are part of it)", whole, None)
    return report


def main() -> int:
    args = argparse.ArgumentParser(description="The headers of a first diff, 20k against 10M.")
    args.add_argument("--rounds", type=int, default=15)
    header_report(args.parse_args().rounds).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
