"""Is each lock on the new side of a diff what its recipe says? The no-exec freshness check.

A pull request whose recipe, params or manifest entry changed without a relock has locks
that are byte for byte those of its target: a diff of the locks alone says "no dataset
changed". ``with_freshness`` sets each ``DatasetDiff``'s ``state`` from the new side's
manifest and recipes (read from Git objects for a revision, from the working tree
otherwise; no recipe runs), and adds the datasets the manifest declares that have no lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from vxds.git.repo import Repository
from vxds.locks.changes import DatasetDiff, State
from vxds.locks.refs import Side
from vxds.locks.status import MERGED_REASON, staleness
from vxds.locks.store import lock_dir
from vxds.project.config import Config
from vxds.project.manifest import Entry, parse_spec


def _reader(config: Config, side: Side) -> Callable[[Path], str] | None:
    """How the side's recipe scripts are read: at its commit, or (None) from the working tree."""
    if side.commit is None:
        return None
    repo, sha = Repository(config.root), side.commit

    def read(path: Path) -> str:
        blob = repo.blob(sha, repo.relative(path))
        if blob is None:
            raise FileNotFoundError(path)
        return repo.read(blob).decode("utf-8")

    return read


def _wanted(entry: Entry, specs: Sequence[str]) -> bool:
    return not specs or any(
        name == entry.name and version in (None, entry.version) for name, version in map(parse_spec, specs)
    )


def _state(diff: DatasetDiff, entry: Entry, side: Side, read: Callable[[Path], str] | None) -> None:
    ref = side.locks.get((diff.name, diff.new_version))
    if ref is None or ref.header is None:
        return
    if entry.frozen and diff.old_version == diff.new_version and not diff.empty:
        diff.state = "frozen-changed"
        diff.reasons = ("frozen version changed: put its published lock back and lock the next version",)
        return
    reasons = staleness(entry, ref.header, read)
    state: State = "frozen" if entry.frozen else "fresh"
    if reasons or ref.header.merged:
        state = "stale" if reasons else "merged"
    relock = f"the lock was not relocked: run 'vxds lock {entry.key}'"
    diff.state = state
    diff.reasons = (*reasons, relock) if reasons else (MERGED_REASON,) if state == "merged" else ()


def with_freshness(config: Config, new: Side, diffs: list[DatasetDiff]) -> list[DatasetDiff]:
    """``diffs`` with the new side's freshness set, and a ``missing`` one per lock not written.

    A side given as a path has no recipes of its own: it is returned as it is.
    """
    if new.manifest is None or not (new.worktree or new.commit):
        return diffs
    read = _reader(config, new)
    entries = [e for e in new.manifest if _wanted(e, new.specs)]
    for diff in diffs:
        entry = new.entry(diff.name, diff.new_version)
        if entry is not None:
            _state(diff, entry, new, read)
    return diffs if new.single else diffs + _missing(config, entries, diffs)


def _missing(config: Config, entries: list[Entry], diffs: list[DatasetDiff]) -> list[DatasetDiff]:
    """A ``missing`` state on each entry without a lock: on its removal, or a diff of its own."""
    locked = {(d.name, d.new_version) for d in diffs if d.new_version is not None}
    removed = {(d.name, d.old_version): d for d in diffs if d.new_version is None}
    added = []
    for entry in (e for e in entries if (e.name, e.version) not in locked):
        where = config.relative(lock_dir(config.locks, entry.name, entry.version))
        diff = removed.get((entry.name, entry.version))
        if diff is None:
            diff = DatasetDiff(entry.name, None, entry.version, "unchanged")
            added.append(diff)
        diff.state, diff.reasons = "missing", (f"no lock at {where}; run 'vxds lock {entry.key}'",)
    return added
