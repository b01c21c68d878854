"""A lock folder, ``locks/<name>/<version>/``, read and written whole.

``read_lock`` and ``check_lock`` check the header's digests and counts against the split
files (``deep``: every line too) and read again when a concurrent ``vxds lock`` swapped the
folder meanwhile (``settled``). ``write_lock`` writes the new lock beside the old one with
``vxds.fs.atomic_write`` and swaps it in with two renames, holding the writers' advisory lock
(``guard_file``); what a killed write leaves is ``vxds.locks.recovery``'s. ``write_splits``
(``vxds.locks.bare``) writes bare split files (``vxds lock --file``).

A lock is *stale* when its recipe, params or manifest entry no longer match, *corrupt*
when it cannot be read or a digest does not match its content, *missing* when absent.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vxds.errors import LockError
from vxds.fs import atomic_write, exchange, exclusive, fsync_dir, make_dirs
from vxds.hashing import hash_file
from vxds.locks.bare import stale_split_files as stale_split_files  # re-exported
from vxds.locks.bare import write_splits as write_splits  # re-exported
from vxds.locks.digest_cache import ShardDigests, stat_key
from vxds.locks.format import HEADER, CorruptLock, Header, Problem, parse_header, render_header
from vxds.locks.recovery import leftovers, restore, restore_set_aside
from vxds.locks.shards import all_files, is_lock_file, listed_files
from vxds.locks.splits import (
    LazyChunks,
    Split,
    Twins,
    boundary_problems,
    line_problems,
    open_lock_file,
    read_split,
)
from vxds.resource import Resource

_T = TypeVar("_T")


@dataclass(frozen=True)
class Lock:
    header: Header
    splits: dict[str, Split] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.header.digest

    def resources(self, split: str | None = None) -> Iterator[Resource]:
        """Resources of one split, or of every split in name order."""
        names = [split] if split is not None else sorted(self.splits)
        for name in names:
            yield from self.splits[name].resources()


def lock_dir(locks: Path, name: str, version: int) -> Path:
    """Where the lock of ``name@version`` lives under the locks folder."""
    return locks / name / str(version)


def read_header(directory: Path) -> tuple[Header, str]:
    """``lock.toml`` of a lock folder, parsed: the header and the digest it claims."""
    try:
        with open_lock_file(directory / HEADER) as fh:
            text = fh.read().decode("utf-8")
    except FileNotFoundError:
        raise LockError(f"{directory}: no {HEADER}; the lock is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem(f"cannot read {HEADER}: {reason}", kind="unreadable")
        raise CorruptLock(directory, [problem]) from None
    return parse_header(text, directory)


def _checked(
    directory: Path, *, load: bool, deep: bool, digests: ShardDigests | None = None, parsed: bool = False
) -> tuple[Header, dict[str, Split]]:
    """The header, and (with ``load``) the splits, after every digest and count check
    (files ``digests`` vouches for are not read here, but when their bytes are used)."""
    header, claimed = read_header(directory)
    problems: list[Problem] = []
    if claimed != header.digest:
        problems.append(Problem("the lock digest does not match the header", kind="lock-digest"))
    problems += _unlisted(directory, header)
    splits: dict[str, Split] = {}
    for name in sorted(header.splits):
        split = _checked_split(
            directory, header, name, problems, load=load, deep=deep, digests=digests, parsed=parsed
        )
        if split is not None:
            splits[name] = split
    if problems:
        raise CorruptLock(directory, problems)
    return header, splits


def _unlisted(directory: Path, header: Header) -> list[Problem]:
    """Split and shard files in the folder that the header does not list."""
    listed = all_files(header)
    names = sorted(p.name for p in directory.iterdir() if is_lock_file(p.name) and p.name not in listed)
    return [Problem(f"{name} is not listed in {HEADER}", kind="unlisted-split", file=name) for name in names]


def _checked_split(
    directory: Path,
    header: Header,
    name: str,
    problems: list[Problem],
    *,
    load: bool,
    deep: bool,
    digests: ShardDigests | None = None,
    parsed: bool = False,
) -> Split | None:
    """One split's files checked against the header's counts and digests, their problems
    added to ``problems``; the split itself with ``load`` (None when a file cannot be read),
    holding the resources its lines were checked as with ``deep`` and ``parsed``."""
    parts: list[list[Any]] = []  # [path, bytes (None: vouched for, not read), digest]
    normalised: Twins = {}  # NFC twins are found across shards too
    resources: list[Resource] | None = [] if deep and parsed else None
    for file, listed in listed_files(header, name):
        path = directory / file
        if digests is not None and not deep and _vouched(digests, path, listed):
            parts.append([path, None if listed[0] else b"", listed[1]])
            continue
        readable, data = _checked_file(path, listed, problems, load=load, digests=digests)
        if not readable:
            return None
        if deep and data is not None:
            problems.extend(line_problems(name, data, file, normalised, resources))
        parts.append([path, data, listed[1]])
    if not load:
        return None
    count, digest = header.splits[name]
    kept = [part for part in parts if part[1] is None or part[1]]  # an empty file has no chunk
    chunks = LazyChunks(kept) if digests is not None else [part[1] for part in kept]
    if name not in header.shards:
        return Split(chunks, count, digest, parts[0][0], parsed=resources)
    shards = header.shards[name]
    if deep:
        problems.extend(boundary_problems(name, shards, chunks))
    paths = tuple(part[0] for part in parts)
    parts_at = tuple(range(len(shards)))
    return Split(
        chunks, count, digest, paths[0], shards=shards, parts=parts_at, paths=paths, parsed=resources
    )


def _vouched(digests: ShardDigests, path: Path, listed: tuple[int, str]) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and digests.vouches(path, st, listed)


def _checked_file(
    path: Path,
    listed: tuple[int, str],
    problems: list[Problem],
    *,
    load: bool,
    digests: ShardDigests | None = None,
) -> tuple[bool, bytes | None]:
    """Whether a lock file could be read and, with ``load``, its bytes, after its checks
    (a file that passed them is remembered in ``digests``)."""
    file = path.name
    try:
        before = os.lstat(path)
        data, facts = read_split(path, load=load)
        after = os.lstat(path)
    except FileNotFoundError:
        problems.append(Problem(f"{file} is missing", kind="missing-split", file=file))
        return False, None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problems.append(Problem(f"cannot read {file}: {reason}", kind="unreadable", file=file))
        return False, None
    found = list(facts.problems(file, *listed))
    if digests is not None and not found and stat_key(before) == stat_key(after):
        digests.remember(path, before, facts.count, facts.digest)
    problems.extend(found)
    return True, data


def lock_identity(directory: Path) -> tuple[int, ...] | None:
    """What changes when ``write_lock`` swaps the folder (its inode) or rewrites the header."""
    try:
        folder, header = os.stat(directory), os.stat(directory / HEADER)
    except OSError:
        return None
    return folder.st_dev, folder.st_ino, folder.st_ctime_ns, header.st_ino, header.st_mtime_ns


def settled(directory: Path, read: Callable[[], _T]) -> _T:
    """``read()``, once more when the lock was swapped while it was read.

    A ``vxds lock`` in another process replaces the whole folder: a read across the swap
    sees the old header with new splits (or no folder), which is not corruption.
    """
    restore_set_aside(directory)
    before = lock_identity(directory)
    try:
        return read()
    except (LockError, OSError):
        if before is not None and lock_identity(directory) == before:
            raise  # nothing moved: the lock is what was read
    restore_set_aside(directory)  # which also waits out a writer between its two renames
    before = lock_identity(directory)
    try:
        return read()
    except (LockError, OSError):
        if lock_identity(directory) == before:
            raise  # nothing moved (or there is no lock at all)
        raise LockError(
            f"{directory}: the lock changed while it was read (another 'vxds lock' is writing it)",
            hint="run the command again",
        ) from None


def read_lock(
    directory: Path, *, deep: bool = False, digests: ShardDigests | None = None, parsed: bool = False
) -> Lock:
    """Read and check a lock; ``CorruptLock`` lists every problem found.

    Digests and counts are always checked; ``deep`` also checks every line. A lock swapped
    by a concurrent ``vxds lock`` is read again; a lock set aside by a killed one is restored.
    With ``digests``, a file it knows unchanged (``vxds.locks.digest_cache``) is not read
    until its bytes are used, and each file read and found sound is remembered there.
    With ``deep`` and ``parsed``, each split keeps the resources its lines were checked as
    (``Split.parsed``): a reader of every resource does not parse the lines again.
    """
    return Lock(
        *settled(directory, lambda: _checked(directory, load=True, deep=deep, digests=digests, parsed=parsed))
    )


def check_lock(directory: Path, *, digests: ShardDigests | None = None) -> Header:
    """The same checks as ``read_lock`` (but not ``deep``), streaming the files: nothing is
    kept (files ``digests`` vouches for are not read)."""
    return settled(directory, lambda: _checked(directory, load=False, deep=False, digests=digests))[0]


# --- writing -----------------------------------------------------------------------------


def guard_file(cache_dir: Path, name: str, version: int) -> Path:
    """The advisory lock held while ``name@version`` is written: under the project's
    git-ignored ``.vxds/``, never in the committed lock folder."""
    return cache_dir / "writing" / f"{name}@{version}.lock"


def same_on_disk(lock: Lock, directory: Path) -> bool:
    """True when ``directory`` already holds exactly these bytes."""
    try:
        if (directory / HEADER).read_text(encoding="utf-8") != render_header(lock.header):
            return False
        names = {p.name for p in directory.iterdir() if is_lock_file(p.name)}
    except (OSError, UnicodeDecodeError):
        return False
    if names != set(all_files(lock.header)):
        return False
    try:
        return all(
            hash_file(directory / file) == digest
            for split in lock.header.splits
            for file, (_, digest) in listed_files(lock.header, split)
        )
    except OSError:
        return False


def write_lock(lock: Lock, directory: Path, *, guard: Path | None = None) -> bool:
    """Write a lock atomically and durably; return False when it was already identical on disk.

    With ``guard`` (``guard_file``) the write holds that advisory lock, so a second writer
    of the same lock waits for the first. Leftovers of killed writes are cleaned up first.
    On any failure the previous lock is left as it was; a failure of the file system is a
    ``LockError`` naming the dataset and the path.
    """
    import shutil  # only a write needs it (verify imports this module)

    try:
        with exclusive(guard):
            restore(directory)
            for path in leftovers(directory):
                shutil.rmtree(path, ignore_errors=True)
            if same_on_disk(lock, directory):
                return False
            _swap_in(lock, directory)
    except OSError as exc:
        raise LockError(
            f"{exc.filename or directory}: cannot write the lock of {lock.header.key}: {_reason(exc)}"
        ) from None
    return True


def _reason(exc: OSError) -> str:
    """What went wrong, without the path (the message names it once)."""
    return exc.strerror or (str(exc.args[0]) if exc.args else type(exc).__name__)


def _write_file(path: Path, chunks: Sequence[bytes]) -> None:
    """One file of the new folder: a hard link to the finished file that already holds
    exactly these bytes (``whole_file``, a shard ``vxds lock`` wrote in its workspace),
    flushed to the disk first, so a lock's lines are not copied again; else ``atomic_write``
    (which flushes the file and the folder). The header, written last, flushes the folder."""
    source = getattr(chunks, "whole_file", None)
    if not isinstance(source, Path):
        atomic_write(path, chunks)
        return
    try:
        os.link(source, path, follow_symlinks=False)
    except OSError:  # another file system, or one without hard links: copied instead
        atomic_write(path, chunks)
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_in(lock: Lock, directory: Path) -> None:
    """Write the lock beside ``directory`` and swap it in (in one step where the system can
    exchange two names, so a reader never finds the lock missing); an ``OSError`` names the
    file it was writing by its final path."""
    import shutil  # only a write needs it (verify imports this module)

    parent = directory.parent
    make_dirs(parent)
    tag = f"{os.getpid()}-{os.urandom(4).hex()}"
    tmp, old = parent / f".{directory.name}.tmp-{tag}", parent / f".{directory.name}.old-{tag}"
    files = [file for name, split in sorted(lock.splits.items()) for file in split.files(name)]
    files.append((HEADER, [render_header(lock.header).encode("utf-8")]))
    try:
        tmp.mkdir()
        for name, chunks in files:
            try:
                _write_file(tmp / name, chunks)
            except OSError as exc:
                exc.filename = str(directory / name)
                raise
        if directory.exists() and exchange(str(tmp), str(directory)):
            tmp, old = old, tmp  # one step, no instant without a lock: the old one is at tmp
        else:  # no exchange here: set the old lock aside, then rename (a reader may wait)
            if directory.exists():
                os.replace(directory, old)
            os.replace(tmp, directory)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)
