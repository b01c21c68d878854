"""Locking: run recipes and write their locks, as ``vxds lock`` and ``vxds.lock()`` do.

``lock_datasets`` resolves each manifest entry, compares the result with the lock on disk
and writes it when it differs (with ``dry_run``, it only says what would change). A dataset
whose recipe or source fails gets an outcome holding its error, and the others are still
locked. ``lock_script`` does the same for a recipe script outside the manifest, writing bare
``resources.<split>.jsonl`` files. Nothing here prints: callers render the outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from blake3 import blake3

from vxds.errors import LockError, UsageError, VxdsError
from vxds.hashing import PREFIX, hash_file
from vxds.locks.bare import bare_files, index_file
from vxds.locks.recovery import restore_set_aside
from vxds.locks.shards import SHARD_FILE_RE
from vxds.locks.splits import Split, digest_chunks, split_file, split_lines
from vxds.locks.store import (
    Lock,
    guard_file,
    lock_dir,
    read_lock,
    same_on_disk,
    stale_split_files,
    write_lock,
    write_splits,
)
from vxds.progress import NO_PROGRESS, Progress
from vxds.project.config import Config
from vxds.project.manifest import Entry, Manifest
from vxds.recipes import spill
from vxds.recipes.fingerprint import Recorded, Run, fingerprint_path, forget, load, record, stale
from vxds.recipes.resolver import Resolver
from vxds.recipes.upstream import Upstream

if TYPE_CHECKING:
    from vxds.locks.refs import LockRef

LockState = Literal["unchanged", "written", "would change", "missing", "error", "frozen"]
FileState = Literal["unchanged", "written", "would change", "removed", "would remove"]


@dataclass(frozen=True)
class Changes:
    """How a new lock differs from the lock it replaces, counted as ``vxds diff`` counts."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    metadata: int = 0  # attrs only
    moved: int = 0  # to another split
    merged: bool = False  # the lock replaced was written by the Git merge driver
    new_snapshot: bool = False  # the source is at another snapshot than the lock replaced

    @classmethod
    def between(cls, old: Lock | None, new: Lock) -> Changes:
        """The changes from ``old`` (None: no lock yet, every resource is added) to ``new``."""
        if old is None:
            return cls(added=sum(split.count for split in new.splits.values()))
        from vxds.locks.diff import diff_refs  # imported here: only a changed lock needs it

        counts = diff_refs(_shard_wise(old), _shard_wise(new)).counts()
        return cls(
            added=counts["added"],
            removed=counts["removed"],
            changed=counts["changed"],
            metadata=counts["metadata"],
            moved=counts["moved"],
            merged=old.header.merged,
            new_snapshot=old.header.snapshot != new.header.snapshot,
        )

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "metadata": self.metadata,
            "moved": self.moved,
        }


def _shard_wise(lock: Lock) -> LockRef:
    """``diff.lock_ref`` of an in-memory lock that also offers its files one at a time, so
    that the diff skips the shards both locks list with one file and digest
    (``locks.shard_join``): the counts of a relock that changed one shard read that shard."""
    from vxds.locks.diff import lock_ref
    from vxds.locks.shard_join import Shards, ShardTypes

    files = {file: chunks for name, split in lock.splits.items() for file, chunks in split.files(name)}

    @contextmanager
    def read(name: str, listed: tuple[int, str]) -> Iterator[Iterator[bytes]]:
        yield chain.from_iterable(map(split_lines, files[name]))

    return replace(lock_ref(lock), shards=Shards(lock.header, read, ShardTypes(None)))


@dataclass(frozen=True)
class LockOutcome:
    """What locking one dataset did, or would do with ``dry_run``.

    ``state`` is ``unchanged`` (the lock on disk already holds these bytes), ``written``,
    ``would change`` or ``missing`` (``dry_run``: a lock differs or there is none), or
    ``error`` (``error`` holds why; ``splits``, ``digest`` and ``changes`` are then empty),
    or ``frozen`` (the entry has ``frozen: true``: no recipe ran and the lock was left alone).
    ``warning`` says a lock that was rewritten is published on the upstream branch.
    ``recipe`` says whether the recipe ran and why (``ran: its script changed``) or was
    skipped (``SKIPPED``: nothing its last run read changed, see ``fingerprint``).
    """

    name: str
    version: int
    state: LockState
    path: Path  # the lock folder, locks/<name>/<version>/
    splits: Mapping[str, int] = field(default_factory=dict)  # split -> resource count
    digest: str | None = None  # the lock's digest
    changes: Changes | None = None  # None when nothing changed (or the recipe failed)
    error: VxdsError | None = None
    warning: str | None = None
    recipe: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def pending(self) -> bool:
        """True when a dry run found a lock missing or different: relocking would write it."""
        return self.state in ("would change", "missing")


OnOutcome = Callable[[LockOutcome], None]
SKIPPED = "skipped: nothing the recipe read changed"


def select_entries(
    config: Config, manifest: Manifest, names: Sequence[str], *, stale: bool = False
) -> list[Entry]:
    """The entries for ``NAME[@VERSION]`` specs (none: every entry); with ``stale``, only those
    whose lock is missing or stale, which is known without running a recipe. A frozen
    version named in ``names`` is a ``UsageError``: its lock is never rewritten."""
    entries = manifest.select(names) if names else list(manifest)
    for entry in entries if names else []:
        if entry.frozen:
            _refuse_frozen(config, manifest, entry)
    if not stale:
        return entries
    from vxds.locks.status import MISSING, STALE, lock_status

    return [entry for entry in entries if lock_status(entry, config).state in (MISSING, STALE)]


def _refuse_frozen(config: Config, manifest: Manifest, entry: Entry) -> None:
    latest = max(manifest.versions(entry.name))
    then = (
        f"'vxds lock {entry.name}@{latest}'" if latest > entry.version else f"'vxds bump {entry.name}' first"
    )
    raise UsageError(
        f"{entry.key} is frozen ('frozen: true' at {config.relative(entry.manifest)}:{entry.line}): "
        "its lock is kept as published and never rewritten",
        hint=f"lock the next version instead ({then})",
    )


def lock_datasets(
    config: Config,
    entries: Sequence[Entry],
    *,
    dry_run: bool = False,
    jobs: int | None = None,
    at: str | None = None,
    refresh: bool = False,
    progress: Progress = NO_PROGRESS,
    on_outcome: OnOutcome | None = None,
) -> list[LockOutcome]:
    """Lock each entry in turn; one outcome per entry, in order.

    A ``VxdsError`` while resolving or writing one entry becomes that entry's ``error``
    outcome and the next entry is locked; anything else (Ctrl-C) stops the run. ``at``
    resolves against that source snapshot, ``jobs`` sets the hashing threads, and
    ``on_outcome`` is called with each outcome as soon as it is known. A recipe whose
    fingerprint still holds is not run (``SKIPPED``) unless ``refresh`` is given.
    """
    resolver = Resolver(config, progress=progress, jobs=jobs, at=at)
    upstream = Upstream(config)
    outcomes = []
    for entry in entries:
        try:
            outcome = _lock_one(resolver, upstream, entry, dry_run=dry_run, refresh=refresh)
        except VxdsError as exc:
            path = lock_dir(config.locks, entry.name, entry.version)
            outcome = LockOutcome(entry.name, entry.version, "error", path, error=exc)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def _lock_one(
    resolver: Resolver, upstream: Upstream, entry: Entry, *, dry_run: bool, refresh: bool
) -> LockOutcome:
    config = resolver.config
    directory = lock_dir(config.locks, entry.name, entry.version)
    if entry.frozen:  # never resolved: a frozen version's lock is kept as it is
        note = "imported from a registry: no recipe here, verify checks its lock" if entry.imported else None
        return LockOutcome(entry.name, entry.version, "frozen", directory, recipe=note)
    restore_set_aside(directory)  # a lock a killed 'vxds lock' left aside is not missing
    fingerprint = fingerprint_path(config.cache_dir, entry.name, entry.version)
    reason = _why_run(resolver, entry, fingerprint, directory, refresh=refresh)
    if isinstance(reason, Recorded):
        return LockOutcome(
            entry.name, entry.version, "unchanged", directory, reason.splits, reason.digest, recipe=SKIPPED
        )
    forget(fingerprint)  # it describes a lock this run may replace
    # The lock's lines stay in files in the workspace until it is written (bounded memory).
    with spill.workspace(config.cache_dir) as work:
        try:
            resolved = resolver.resolve_recorded(entry, work)
        except OSError as exc:  # a workspace file that cannot be written (a full disk): this entry's error
            reason_text = exc.strerror or str(exc)
            raise LockError(f"{exc.filename or work}: cannot lock {entry.key}: {reason_text}") from None
        return _locked(resolver, upstream, entry, reason, *resolved, dry_run=dry_run)


def _locked(
    resolver: Resolver, upstream: Upstream, entry: Entry, reason: str, lock: Lock, run: Run, *, dry_run: bool
) -> LockOutcome:
    """The outcome of locking ``entry`` as ``lock`` (written unless ``dry_run``)."""
    config = resolver.config
    directory = lock_dir(config.locks, entry.name, entry.version)
    fingerprint = fingerprint_path(config.cache_dir, entry.name, entry.version)
    warning: str | None = None

    def outcome(state: LockState, changes: Changes | None = None) -> LockOutcome:
        splits = {name: split.count for name, split in lock.splits.items()}
        if state == "unchanged":  # the lock on disk is this run's: its fingerprint vouches for it
            record(fingerprint, run, lock_digest=lock.digest, splits=splits, lock_dir=directory)
        return LockOutcome(
            entry.name,
            entry.version,
            state,
            directory,
            splits,
            lock.digest,
            changes,
            warning=warning,
            recipe=f"ran: {reason}",
        )

    if dry_run:
        if same_on_disk(lock, directory):
            return outcome("unchanged")
        state: LockState = "would change" if (directory / "lock.toml").exists() else "missing"
        return outcome(state, Changes.between(_previous(directory), lock))
    previous = None if same_on_disk(lock, directory) else _previous(directory)
    if previous is not None:
        warning = upstream.warning(entry.name, entry.version)
    # Called for an unchanged lock too: the write also clears what a killed earlier one left.
    if not write_lock(lock, directory, guard=guard_file(config.cache_dir, entry.name, entry.version)):
        return outcome("unchanged")
    return outcome("written", Changes.between(previous, lock))


def _why_run(
    resolver: Resolver, entry: Entry, fingerprint: Path, directory: Path, *, refresh: bool
) -> str | Recorded:
    """Why the entry's recipe runs, or its fingerprint when nothing it read changed."""
    if refresh:
        return "--refresh"
    if entry.refresh == "always":
        return "refresh: always"
    if resolver.at is not None:
        return "--at"
    recorded = load(fingerprint)
    if recorded is None:
        return "no fingerprint of an earlier run"
    reason = stale(
        recorded,
        script=entry.script,
        params=entry.params,
        entry_digest=entry.digest(),
        source=lambda: resolver.listing_digest(entry.source),
        lock_dir=directory,
    )
    return recorded if reason is None else reason


def _previous(directory: Path) -> Lock | None:
    try:
        return read_lock(directory)
    except VxdsError:
        return None


@dataclass(frozen=True)
class SplitFileOutcome:
    """What ``lock_script`` did to one ``resources.<split>.jsonl`` file in the output folder.

    ``removed`` (``would remove`` with ``dry_run``) is an earlier run's split that this run
    did not produce; it has no ``count`` or ``digest``.
    """

    split: str
    path: Path  # under the ``out`` folder as given
    state: FileState
    count: int | None = None
    digest: str | None = None


def lock_script(
    config: Config,
    script: Path,
    *,
    out: Path,
    entrypoint: str | None = None,
    source: str | None = None,
    params: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    jobs: int | None = None,
    at: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> list[SplitFileOutcome]:
    """Run a recipe script outside the manifest and make ``out`` hold exactly its splits.

    Files already holding a split's bytes are left alone, and other splits' files (an
    earlier run's) are removed; with ``dry_run`` nothing is written or removed. Errors are
    raised (``RecipeError``, ``LockError`` naming the file that could not be written).
    """
    resolver = Resolver(config, progress=progress, jobs=jobs, at=at)
    with spill.workspace(config.cache_dir) as work:
        splits = resolver.resolve_script(
            script, entrypoint=entrypoint, source=source, params=params or {}, work=work
        )
        return _script_outcomes(splits, out, dry_run=dry_run)


def _script_outcomes(splits: Mapping[str, Split], out: Path, *, dry_run: bool) -> list[SplitFileOutcome]:
    """Make ``out`` hold exactly ``splits`` (unless ``dry_run``); what was done to each file."""
    changed = {name for name, split in splits.items() if not _files_match(out, name, split)}
    stale = stale_split_files(out, splits)  # an earlier run's splits: OUT holds this run's only
    if not dry_run and (changed or stale):
        write_splits(splits, out, unchanged=[name for name in splits if name not in changed])
    outcomes = [
        SplitFileOutcome(
            name,
            out / (index_file(name) if split.shards else split_file(name)),
            ("would change" if dry_run else "written") if name in changed else "unchanged",
            split.count,
            _content_digest(split),
        )
        for name, split in splits.items()
    ]
    gone: FileState = "would remove" if dry_run else "removed"
    # an earlier run's split, named by its file (or index); a shard of it, or a file of a
    # split this run wrote (cut otherwise now), goes with it unnamed
    named = [p for p in stale if _split_of(p) not in splits and not SHARD_FILE_RE.match(p.name)]
    outcomes += [SplitFileOutcome(_split_of(path), path, gone) for path in named]
    return outcomes


def _content_digest(split: Split) -> str:
    """blake3 of the split's lines as one file, hashed a chunk at a time: a spilled split's
    chunk is a shard read from its file (``spill.FileChunks``), so memory stays bounded."""
    if not split.shards:
        return split.digest
    hasher = blake3()
    for chunk in split.chunks:
        hasher.update(chunk)
    return PREFIX + hasher.hexdigest()


def _split_of(path: Path) -> str:
    return path.name.removeprefix("resources.").split(".")[0]


def _files_match(out: Path, name: str, split: Split) -> bool:
    """Whether ``out`` holds the split's bare files with these bytes (``vxds.locks.bare``)."""
    try:
        return all(hash_file(out / file) == digest_chunks(chunks) for file, chunks in bare_files(name, split))
    except OSError:
        return False
