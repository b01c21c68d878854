"""Locks to compare, wherever they are: the working tree, a Git revision, or a path.

A ``LockRef`` is one lock that has not been read yet: its header (checked) and a way to
stream each split's lines. The lines are checked against the header's count and digest as
they are read, so a corrupt lock is an error even though it is never held in memory.
A ``Side`` is a set of them, one per ``name@version``, with the manifest that goes with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING

from vxds.errors import LockError, ManifestError, NotFoundError, UsageError
from vxds.git.repo import Blob, Repository
from vxds.locks.format import HEADER, CorruptLock, Header, Problem, parse_header
from vxds.locks.recovery import restore_set_aside
from vxds.locks.shard_join import Shards, shard_types
from vxds.locks.shards import is_lock_file, listed_files
from vxds.locks.splits import SPLIT_FILE_RE, Split, line_problems, open_lock_file
from vxds.locks.store import Lock, lock_identity, read_header, settled
from vxds.locks.stream_checks import check_header, checked_lines
from vxds.project.config import Config

if TYPE_CHECKING:  # the manifest module loads YAML: imported where a manifest is read
    from vxds.project.manifest import Entry, Manifest

VERSION_RE = re.compile(r"[1-9][0-9]*\Z")

Lines = Callable[[str], AbstractContextManager[Iterator[bytes]]]


@dataclass(frozen=True)
class LockRef:
    """One lock to read: ``header`` is None for a bare ``resources.<split>.jsonl``."""

    name: str
    version: int | None
    label: str  # where it is, for messages: a path, or REV:path
    header: Header | None
    splits: tuple[str, ...]
    lines: Lines = field(compare=False, repr=False)
    shards: Shards | None = field(default=None, compare=False, repr=False)  # read file by file

    @property
    def key(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass
class Side:
    """One side of a comparison."""

    label: str
    locks: dict[tuple[str, int | None], LockRef]
    manifest: Manifest | None = None
    single: bool = False  # one lock named on purpose: paired with the other side's one lock
    commit: str | None = None  # a revision's commit sha
    worktree: bool = False  # the project's own working tree (not a path given on the command line)
    specs: tuple[str, ...] = ()  # the NAME[@V] it was narrowed to ('select'); () for all

    def entry(self, name: str, version: int | None) -> Entry | None:
        if self.manifest is None or version is None:
            return None
        return next((e for e in self.manifest if e.name == name and e.version == version), None)


# --- the working tree and paths ----------------------------------------------------------


def _folder_header(directory: Path) -> Header:
    header, claimed = read_header(directory)
    files = {name for name in os.listdir(directory) if is_lock_file(name)}
    check_header(header, claimed, files, directory)
    return header


def folder_lock(directory: Path, label: str, cache_dir: Path | None = None) -> LockRef:
    """The lock in a folder holding ``lock.toml``.

    Its lines are read later, split by split: if a ``vxds lock`` in another process swaps
    the folder in between, reading them says so rather than calling the lock corrupt.
    """
    identity = lock_identity(directory)
    header = settled(directory, lambda: _folder_header(directory))

    def file_lines(name: str, listed: tuple[int, str]) -> Generator[bytes, None, None]:
        with open_lock_file(directory / name) as fh:
            yield from checked_lines(fh, f"{label}/{name}", listed)

    @contextmanager
    def read(name: str, listed: tuple[int, str]) -> Iterator[Iterator[bytes]]:
        with lines_of(file_lines(name, listed)) as found:
            yield found

    @contextmanager
    def lines_of(found: Generator[bytes, None, None]) -> Iterator[Iterator[bytes]]:
        try:
            yield found
        except (CorruptLock, OSError):
            if lock_identity(directory) != identity:
                raise LockError(
                    f"{label}: the lock changed while it was read (another 'vxds lock' is writing it)",
                    hint="run the command again",
                ) from None
            raise
        finally:
            found.close()  # closes the file being read, if the reader stopped early

    @contextmanager
    def lines(split: str) -> Iterator[Iterator[bytes]]:
        with lines_of(_chained(file_lines, listed_files(header, split))) as found:
            yield found

    shards = Shards(header, read, shard_types(cache_dir))
    return LockRef(header.name, header.version, label, header, tuple(sorted(header.splits)), lines, shards)


def file_lock(path: Path, label: str) -> LockRef:
    """A bare ``resources.<split>.jsonl``: one split, no header; named after its folder."""
    match = SPLIT_FILE_RE.match(path.name)
    if match is None:
        raise UsageError(f"{label}: not a lock folder or a resources.<split>.jsonl file")
    split = match.group(1)

    @contextmanager
    def lines(_: str) -> Iterator[Iterator[bytes]]:
        with open_lock_file(path) as fh:
            yield checked_lines(fh, label, None)

    return LockRef(path.resolve().parent.name or "lock", None, label, None, (split,), lines)


def worktree_side(config: Config, label: str = "working tree") -> Side:
    """Every lock under the project's locks folder, with the project's manifest."""
    locks: dict[tuple[str, int | None], LockRef] = {}
    if config.locks.is_dir():
        for folder in sorted(config.locks.iterdir()):
            _restore_set_aside(folder)
            for version_dir in sorted(folder.iterdir()) if folder.is_dir() else ():
                if VERSION_RE.match(version_dir.name) and (version_dir / HEADER).is_file():
                    ref = folder_lock(version_dir, config.relative(version_dir), config.cache_dir)
                    locks[(ref.name, ref.version)] = ref
    from vxds.project.manifest import load_manifest

    try:
        manifest = load_manifest(
            config.manifest, default_source=config.source, require_scripts=False, cache_dir=config.cache_dir
        )
    except ManifestError:
        manifest = None  # leak checks then use the default held-out splits and no group_by
    return Side(label, locks, manifest, worktree=True)


def _restore_set_aside(folder: Path) -> None:
    """Put back the locks of one dataset that a killed ``vxds lock`` left aside."""
    for aside in folder.glob(".*.old-*") if folder.is_dir() else ():
        version = aside.name[1:].partition(".old-")[0]
        if VERSION_RE.match(version):
            restore_set_aside(folder / version)


# --- a Git revision ----------------------------------------------------------------------


def revision_side(repo: Repository, config: Config, rev: str, label: str | None = None) -> Side:
    """Every lock under the locks folder at ``rev``, read from Git objects."""
    sha = repo.commit(rev)
    shown = label or rev
    locks_path = repo.relative(config.locks)
    locks: dict[tuple[str, int | None], LockRef] = {}
    for name, blob in sorted(repo.listdir(sha, locks_path).items()):
        if blob is not None:
            continue
        for version, vblob in sorted(repo.listdir(sha, _join(locks_path, name)).items()):
            if vblob is None and VERSION_RE.match(version):
                path = _join(locks_path, name, version)
                files = repo.listdir(sha, path)
                if HEADER in files:
                    ref = _revision_lock(repo, files, f"{shown}:{path}", config.cache_dir)
                    locks[(ref.name, ref.version)] = ref
    return Side(shown, locks, _revision_manifest(repo, config, sha), commit=sha)


def lock_in_tree(repo: Repository, sha: str, path: str, label: str) -> LockRef | None:
    """The lock in folder ``path`` at commit ``sha``, read from Git objects (None: none there)."""
    files = repo.listdir(sha, path)
    return _revision_lock(repo, files, label) if HEADER in files else None


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _revision_lock(
    repo: Repository, files: dict[str, Blob | None], label: str, cache_dir: Path | None = None
) -> LockRef:
    where = Path(label)
    header_blob = files[HEADER]
    assert header_blob is not None
    try:
        text = repo.read(header_blob).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptLock(where, [Problem(f"cannot read {HEADER}: {exc}", kind="unreadable")]) from None
    header, claimed = parse_header(text, where)
    blobs = {name: b for name, b in files.items() if b is not None and is_lock_file(name)}
    check_header(header, claimed, set(blobs), where)

    def file_lines(name: str, listed: tuple[int, str]) -> Generator[bytes, None, None]:
        with repo.stream(blobs[name]) as stream:
            yield from checked_lines(stream, f"{label}/{name}", listed)

    @contextmanager
    def read(name: str, listed: tuple[int, str]) -> Iterator[Iterator[bytes]]:
        found = file_lines(name, listed)
        try:
            yield found
        finally:
            found.close()  # closes the blob being read, if the reader stopped early

    @contextmanager
    def lines(split: str) -> Iterator[Iterator[bytes]]:
        chained = _chained(file_lines, listed_files(header, split))
        try:
            yield chained
        finally:
            chained.close()  # closes the blob being read, if the reader stopped early

    shards = Shards(header, read, shard_types(cache_dir))
    return LockRef(header.name, header.version, label, header, tuple(sorted(header.splits)), lines, shards)


def _chained(
    file_lines: Callable[[str, tuple[int, str]], Iterator[bytes]], files: list[tuple[str, tuple[int, str]]]
) -> Generator[bytes, None, None]:
    """The lines of a split's files one after another, each file checked as it ends."""
    for name, listed in files:
        yield from file_lines(name, listed)


def _revision_manifest(repo: Repository, config: Config, sha: str) -> Manifest | None:
    blob = repo.blob(sha, repo.relative(config.manifest))
    if blob is None:
        return None
    from vxds.project.manifest import load_manifest

    try:
        text = repo.read(blob).decode("utf-8")
        return load_manifest(config.manifest, default_source=config.source, require_scripts=False, text=text)
    except (UnicodeDecodeError, ManifestError):
        return None


def lock_at(config: Config, rev: str, spec: str) -> Lock:
    """The whole lock of ``NAME@V`` (or ``NAME``: its highest version) at a Git revision."""
    from vxds.project.manifest import parse_spec

    name, version = parse_spec(spec)
    side = revision_side(Repository(config.root), config, rev)
    refs = [r for (n, v), r in side.locks.items() if n == name and (version is None or v == version)]
    if not refs:
        raise NotFoundError(f"{rev}: no lock for {spec}")
    return whole_lock(max(refs, key=lambda r: r.version or 0))


def whole_lock(ref: LockRef) -> Lock:
    """A lock with a header, read whole and checked line by line as ``read_lock(deep=True)``."""
    assert ref.header is not None
    splits = {}
    problems: list[Problem] = []
    for split in ref.splits:
        with ref.lines(split) as lines:
            terminated = [line + b"\n" for line in lines]
        shards = tuple(ref.header.shards.get(split, ()))  # cut where the header cuts, not re-cut
        parts = tuple(accumulate((s.count for s in shards[:-1]), initial=0)) if shards else ()
        digest = ref.header.splits[split][1]  # the stream checked every file against it
        splits[split] = Split(terminated, len(terminated), digest, shards=shards, parts=parts)
        for file, chunks in splits[split].files(split):
            problems += line_problems(split, b"".join(chunks), file)
    if problems:
        raise CorruptLock(Path(ref.label), problems)
    return Lock(ref.header, splits)
