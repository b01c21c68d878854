"""The placement helper every materializer uses: copy (or link), verify, rename, record.

A ``Placer`` owns one output folder for one run. Materializers call ``place`` for a
resource's bytes, ``place_series`` for a DICOM series (a folder), ``write`` for a file they
generate and ``fetch`` for a small resource's verified bytes. A resource that fails is
recorded with the reason and the run goes on; only files whose bytes were checked ever get a
final name, and nothing is written outside OUT: targets are validated like resource ids,
and a folder on the way that is a symlink (or not a folder) is refused. Paths from the
previous run's receipt and journal are removed or read only through ``inside`` (no symlink
followed). A full disk stops the run (``DiskFull``): every later resource would fail too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vxds.errors import SourceError, UsageError, VxdsError
from vxds.hashing import PREFIX, SMALL_FILE, digest_bytes, digest_json, hash_file
from vxds.locks.verified_read import IntegrityError, VerifiedReader, expected
from vxds.materialize.durable import DISK_FULL, DiskFull, check_not_symlink, write_error
from vxds.materialize.inside import SymlinkOnTheWay, member_problem, open_file, remove_file, remove_folder
from vxds.materialize.receipt import OWN, TMP_DIR, Entry, Journal
from vxds.materialize.transfer import (
    StatKey,
    Unsupported,
    copy_file,
    copy_stream,
    hash_with,
    link_file,
    reflink_file,
)
from vxds.progress import NO_PROGRESS, Task
from vxds.resource import InvalidResource, Resource, check_id
from vxds.sources.base import Source


@dataclass(frozen=True)
class Failure:
    resource: str | None
    path: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "path": self.path, "message": self.message}


@dataclass
class Outcome:
    """What a run did, for the summary a command prints."""

    placed: int = 0
    unchanged: int = 0
    removed: int = 0
    failures: list[Failure] = field(default_factory=list)
    fallbacks: dict[tuple[str, str], int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


def _stat_key(path: str | Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _plain_path(rel: str) -> bool:
    """A quick yes for ordinary relative paths; anything else goes through ``check_id``."""
    return (
        rel.isprintable()
        and rel[:1] not in ("", "/", ".")
        and "\\" not in rel
        and "//" not in rel
        and "/." not in rel
        and rel[-1] != "/"
        and rel[1:2] != ":"
    )


def _oserror_text(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


class SourceAccess:
    """The source as materializing sees it: local paths where there are any, else streams."""

    def __init__(self, source: Source | None) -> None:
        self.source = source

    def _need(self) -> Source:
        if self.source is None:
            raise SourceError("no source to read from; pass --source or set [tool.vxds] source")
        return self.source

    @property
    def is_local(self) -> bool:
        """True for a source with files on this machine (a folder)."""
        return hasattr(self.source, "local_path")

    def local_path(self, resource: Resource) -> str | None:
        finder = getattr(self.source, "local_path", None)
        if finder is None or resource.type == "ClinicalRecord":
            return None
        path: str = finder(resource)
        return path

    def open(self, resource: Resource) -> BinaryIO:
        return self._need().open(resource)

    def cached(self, resource: Resource) -> Callable[[StatKey], str | None] | None:
        """A lookup of the source's hash cache for this resource's file, if it keeps one."""
        lookup = getattr(self.source, "cached_digest", None)
        if lookup is None:
            return None
        return lambda key: lookup(resource, key)

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        lister = getattr(self._need(), "members", None)
        if lister is None:
            raise SourceError(f"{resource.id}: this source cannot list the files of a {resource.type}")
        found: list[tuple[str, str]] = lister(resource)
        return found


class Placer:
    """Places files under ``out`` for one run; thread-safe where it needs to be."""

    def __init__(
        self,
        out: Path,
        access: SourceAccess,
        *,
        mode: str = "copy",
        jobs: int | None = None,
        previous: dict[str, Entry] | None = None,
        task: Task | None = None,
    ) -> None:
        self.out = out
        self.access = access
        self.mode = mode
        self.previous = previous or {}
        self.entries: dict[str, Entry] = {}
        self.outcome = Outcome()
        self.task = task or NO_PROGRESS.task("")
        self._claimed: dict[str, str] = {}  # path -> what claimed it (for clear collisions)
        self._claimed_dirs: set[str] = set()
        self._safe_dirs: set[str] = {""}
        self._lock = threading.Lock()
        self._counter = 0
        self._out_str = str(out)
        self._tmp = out / TMP_DIR
        _fresh_folder(self._tmp)
        self._journal = Journal(out)
        workers = jobs if jobs is not None else min(8, (os.cpu_count() or 1) * 2)
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self._pending: list[Future[None]] = []
        self._full: VxdsError | None = None  # the first full-disk error; the run stops on it

    # --- what materializers call -------------------------------------------------------

    def place(self, resource: Resource, rel: str, *, module: str) -> None:
        """Put ``resource``'s bytes at ``OUT/rel`` (in the background when --jobs > 1).

        Small local files and links are placed on the calling thread: their cost is Python's
        and the file system's metadata, which threads only fight over (measured in
        bench/materialize_bench.py); large files and remote streams go to the pool.
        """
        if not self._claim(rel, resource.id, module):
            return
        if self.access.is_local and (
            self.mode in ("hardlink", "symlink") or (resource.size or 0) < SMALL_FILE
        ):
            self._place_one(resource, rel, module)
        else:
            self._submit(lambda: self._place_one(resource, rel, module))

    def place_series(self, resource: Resource, rel: str, *, module: str) -> None:
        """Put a DICOM series' files in the folder ``OUT/rel``, checked as one listing."""
        if not self._claim(rel, resource.id, module):
            return
        self._submit(lambda: self._place_series(resource, rel, module))

    def write(self, rel: str, data: bytes, *, module: str) -> None:
        """Write a file a materializer generated (derived from the checked lock)."""
        if not self._claim(rel, None, module):
            return
        self._guard(None, rel, lambda: self._write_one(rel, data, module))

    def fetch(self, resource: Resource, *, module: str) -> bytes | None:
        """A small resource's bytes, checked against the lock; None (and a failure) if not."""
        try:
            with VerifiedReader(resource, self.access.open(resource)) as reader:
                return reader.read()
        except (VxdsError, OSError) as exc:
            self._fail(resource.id, f"({module})", exc)
            return None

    def existing(self, rel: str) -> bytes | None:
        """The bytes a previous run recorded at ``rel``, if still there unchanged (a file
        vxds generated: read without following any symlink)."""
        entry = self.previous.get(rel)
        if entry is None:
            return None
        try:
            fd = open_file(self.out, rel, follow_last=False)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if entry.stat != (st.st_size, st.st_mtime_ns, st.st_ino):
                return None
            return fh.read()

    def finish(self) -> Outcome:
        """Wait for every placement; remove files of the previous run no longer wanted."""
        for future in self._pending:
            future.result()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown()
        self._remove_unwanted()
        self._journal.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
        for (mode, reason), count in sorted(self.outcome.fallbacks.items()):
            self.outcome.notices.append(
                f"{mode} was not possible for {count} file(s) ({reason}); copied them"
            )
        return self.outcome

    def abort(self) -> None:
        """Stop after an interruption: pending work is cancelled, temporary files removed."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        with contextlib.suppress(VxdsError):  # a full disk: the lines that fit are kept
            self._journal.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # --- claiming and safety -----------------------------------------------------------

    def _claim(self, rel: str, rid: str | None, module: str) -> bool:
        what = f"{module}: {rid}" if rid is not None else f"{module}: generated file"
        try:
            if not _plain_path(rel):
                check_id(rel)
        except InvalidResource as exc:
            self._fail(rid, rel, VxdsError(f"cannot place it at {rel!r}: {exc}"))
            return False
        top = rel.split("/", 1)[0]
        if top in OWN:
            self._fail(rid, rel, VxdsError(f"{rel!r} is a name vxds keeps for itself in OUT"))
            return False
        parts = rel.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        with self._lock:
            clash = self._claimed.get(rel) or next(
                (self._claimed[p] for p in parents if p in self._claimed), None
            )
            if clash is None and rel in self._claimed_dirs:
                clash = "files placed inside it"
            if clash is not None:
                self._fail_locked(rid, rel, f"{what} and {clash} would both be placed at {rel}")
                return False
            self._claimed[rel] = what
            self._claimed_dirs.update(parents)
        return True

    def _parent(self, rel: str) -> str:
        """Create (or check) the folders above ``OUT/rel``; refuse symlinks and files there."""
        folder, _, _ = rel.rpartition("/")
        if folder not in self._safe_dirs:
            parts = folder.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub in self._safe_dirs:
                    continue
                path = f"{self._out_str}/{sub}"
                try:
                    os.mkdir(path)
                except FileExistsError:
                    if os.path.islink(path) or not os.path.isdir(path):
                        kind = "a symlink" if os.path.islink(path) else "not a folder"
                        raise VxdsError(f"OUT/{sub} is {kind}; refusing to write through it") from None
                with self._lock:
                    self._safe_dirs.add(sub)
        return f"{self._out_str}/{rel}"

    def _tmp_name(self, rel: str) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        return f"{self._tmp}/{n}-{rel.rsplit('/', 1)[-1][:80]}"

    # --- doing the work ----------------------------------------------------------------

    def _submit(self, work: Callable[[], None]) -> None:
        if self._pool is None:
            work()
        else:
            self._pending.append(self._pool.submit(work))

    def _guard(self, rid: str | None, rel: str, work: Callable[[], None]) -> None:
        try:
            if self._full is not None:  # queued work after the disk filled up: stop at once
                raise self._full
            work()
        except DiskFull:
            raise
        except OSError as exc:
            if exc.errno in DISK_FULL:
                self._full = write_error(f"{self._out_str}/{rel}", exc, rid)
                raise self._full from None
            self._fail(rid, rel, exc)
        except VxdsError as exc:
            self._fail(rid, rel, exc)
        finally:
            if rid is not None:  # the bar counts resources, not the files generated beside them
                self.task.advance()

    def _fail(self, rid: str | None, rel: str, exc: BaseException) -> None:
        if isinstance(exc, VxdsError):
            text = exc.message
        elif isinstance(exc, OSError):
            text = _oserror_text(exc)
        else:
            text = str(exc)
        with self._lock:
            self._fail_locked(rid, rel, text)

    def _fail_locked(self, rid: str | None, rel: str, text: str) -> None:
        self.outcome.failures.append(Failure(rid, rel, text))

    def _record(self, rel: str, entry: Entry, *, placed: bool) -> None:
        with self._lock:
            self.entries[rel] = entry
            if placed:
                self.outcome.placed += 1
                self._journal.add(rel, entry)
            else:
                self.outcome.unchanged += 1

    def _in_place(
        self, rel: str, target: str, locked: str | None, check: Callable[[str], bool]
    ) -> bool | None:
        """True when ``OUT/rel`` already holds the right bytes (recorded, or re-hashed);
        False when something else is there; None when nothing is."""
        try:
            st = os.stat(target)
        except FileNotFoundError:  # (a dangling link too: creating over it fails, then it is replaced)
            return None
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return False
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        entry = self.previous.get(rel)
        if entry is not None and entry.locked == locked and entry.stat == key:
            self._record(rel, entry, placed=False)
            return True
        if not check(target):
            return False
        digest = hash_file(target)
        self._record(
            rel, Entry(digest, key[0], (entry.resource if entry else None), locked, None, key), placed=False
        )
        return True

    def _matches_lock(self, resource: Resource) -> Callable[[str], bool]:
        want = expected(resource)

        def check(path: str) -> bool:
            if want is None:
                return False
            if resource.size is not None and os.stat(path).st_size != resource.size:
                return False
            return hash_with(path, want[0]) == want[1]

        return check

    def _place_one(self, resource: Resource, rel: str, module: str) -> None:
        def work() -> None:
            target = self._parent(rel)
            # A path no run recorded is written straight away (one system call less per
            # file in a fresh OUT); whatever is there is replaced by checked bytes.
            state = (
                self._in_place(rel, target, resource.hash, self._matches_lock(resource))
                if rel in self.previous
                else None
            )
            if state:
                self._fix_module(rel, resource, module)
                return
            digest, size, key = self._transfer(resource, target, free=state is None)
            self._record(rel, Entry(digest, size, resource.id, resource.hash, module, key), placed=True)

        self._guard(resource.id, rel, work)

    def _fix_module(self, rel: str, resource: Resource, module: str) -> None:
        with self._lock:
            entry = self.entries[rel]
            if entry.resource != resource.id or entry.module != module:
                self.entries[rel] = Entry(
                    entry.hash, entry.size, resource.id, entry.locked, module, entry.stat
                )

    def _transfer(self, resource: Resource, target: str, *, free: bool) -> tuple[str, int, StatKey]:
        """Put checked bytes at ``target``: a new link directly (links appear whole), else
        through a temporary name that is renamed once the bytes are checked."""
        src = self.access.local_path(resource)
        if src is None and self.mode != "copy":
            self._fallback(self.mode, "the source has no local file for it")
        try:
            return self._transfer_from(resource, src, target, free=free)
        except FileNotFoundError as exc:
            if src is not None and exc.filename in (src, str(src)):
                raise SourceError(
                    f"{resource.id} is missing from the source ({src} does not exist)"
                ) from None
            raise

    def _transfer_from(
        self, resource: Resource, src: str | None, target: str, *, free: bool
    ) -> tuple[str, int, StatKey]:
        if src is not None and self.mode in ("hardlink", "symlink") and free:
            try:
                return link_file(resource, src, target, self.mode, self.access.cached(resource))
            except Unsupported as exc:
                self._fallback(exc.mode, exc.reason)
                src_mode = "copy"
            except FileExistsError:  # appeared meanwhile: replace it through a temporary name
                src_mode = self.mode
        else:
            src_mode = self.mode
        tmp = self._tmp_name(rel=os.path.basename(target))
        try:
            result = self._to_tmp(resource, src, tmp, src_mode)
            os.replace(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return result

    def _to_tmp(self, resource: Resource, src: str | None, tmp: str, mode: str) -> tuple[str, int, StatKey]:
        if src is None:
            with self.access.open(resource) as raw:
                return copy_stream(resource, raw, tmp)
        if mode == "copy":
            return copy_file(resource, src, tmp)
        try:
            if mode == "reflink":
                return reflink_file(resource, src, tmp)
            return link_file(resource, src, tmp, mode, self.access.cached(resource))
        except Unsupported as exc:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            self._fallback(exc.mode, exc.reason)
            return copy_file(resource, src, tmp)

    def _fallback(self, mode: str, reason: str) -> None:
        with self._lock:
            self.outcome.fallbacks[(mode, reason)] = self.outcome.fallbacks.get((mode, reason), 0) + 1

    def _place_series(self, resource: Resource, rel: str, module: str) -> None:
        def work() -> None:
            target = self._parent(rel)
            members = self.access.members(resource)
            _check_members(resource, members)  # before anything is written
            if self._series_in_place(resource, rel, members, module):
                return
            folder = self._tmp_name(rel)
            os.mkdir(folder)
            try:
                placed: list[tuple[str, str, int, StatKey]] = []
                listing: list[list[str]] = []
                for name, src in members:
                    member = Resource(id=f"{resource.id}/{name}", version=0)
                    digest, size, key = self._transfer_member(member, src, f"{folder}/{name}")
                    placed.append((name, digest, size, key))
                    listing.append([name, digest])
                if resource.hash is not None and digest_json(sorted(listing)) != resource.hash:
                    raise IntegrityError(f"{resource.id}: the series' files do not match the locked hash")
                aside = None
                if os.path.lexists(target):
                    aside = self._tmp_name(rel + ".old")
                    os.replace(target, aside)
                os.replace(folder, target)
                if aside is not None:
                    shutil.rmtree(aside, ignore_errors=True)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            for name, digest, size, key in placed:  # a renamed folder keeps its files' stats
                entry = Entry(digest, size, resource.id, resource.hash, module, key)
                self._record(f"{rel}/{name}", entry, placed=True)

        self._guard(resource.id, rel, work)

    def _transfer_member(self, member: Resource, src: str, dest: str) -> tuple[str, int, StatKey]:
        return self._to_tmp(member, src, dest, self.mode)

    def _series_in_place(
        self, resource: Resource, rel: str, members: list[tuple[str, str]], module: str
    ) -> bool:
        if os.path.islink(self.out / rel):  # replaced (the link itself), never looked into
            return False
        entries = {}
        for name, _ in members:
            entry = self.previous.get(f"{rel}/{name}")
            try:
                if (
                    entry is None
                    or entry.locked != resource.hash
                    or entry.stat != _stat_key(self.out / rel / name)
                ):
                    return False
            except OSError:
                return False
            entries[f"{rel}/{name}"] = entry
        try:
            on_disk = sorted(os.listdir(self.out / rel))
        except OSError:
            return False
        if on_disk != sorted(name for name, _ in members):
            return False
        for path, entry in entries.items():
            self._record(
                path,
                Entry(entry.hash, entry.size, resource.id, entry.locked, module, entry.stat),
                placed=False,
            )
        return True

    def _write_one(self, rel: str, data: bytes, module: str) -> None:
        target = self._parent(rel)
        digest = digest_bytes(data)

        def same(path: str) -> bool:
            return os.stat(path).st_size == len(data) and hash_file(path) == digest

        if self._in_place(rel, target, digest, same):
            with self._lock:
                entry = self.entries[rel]
                self.entries[rel] = Entry(entry.hash, entry.size, None, digest, module, entry.stat)
            return
        tmp = self._tmp_name(rel)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        self._record(rel, Entry(digest, len(data), None, digest, module, _stat_key(target)), placed=True)

    def _remove_unwanted(self) -> None:
        """Files the previous run placed that this run does not want, or that failed now.

        Their paths come from the receipt and journal (checked to stay inside OUT when read);
        nothing is removed through a symlinked folder, one note per such folder."""
        refused: set[str] = set()
        for rel in sorted(self.previous):
            if rel in self.entries:
                continue
            try:
                if remove_file(self.out, rel):
                    self.outcome.removed += 1
            except SymlinkOnTheWay as exc:
                refused.add(exc.folder)
                continue
            except OSError:
                continue
            self._prune(rel)
        for folder in sorted(refused):
            self.outcome.notices.append(
                f"{self._out_str}/{folder} is a symlink; nothing was removed through it"
            )

    def _prune(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        while parts:
            try:
                remove_folder(self.out, "/".join(parts))
            except OSError:
                return
            parts.pop()


def _fresh_folder(path: Path) -> None:
    """An empty temporary folder: a killed run's leftovers removed, a symlink refused."""
    check_not_symlink(path)
    try:
        if path.is_dir():
            shutil.rmtree(path)  # never follows a symlink inside it
        elif os.path.lexists(path):
            os.unlink(path)
        os.mkdir(path)
    except OSError as exc:
        raise write_error(path, exc) from None


def _check_members(resource: Resource, members: list[tuple[str, str]]) -> None:
    """Every member of a series is a plain file name, once: placed only inside its folder."""
    seen: set[str] = set()
    for name, _ in members:
        problem = member_problem(name) or ("listed twice" if name in seen else None)
        if problem is not None:
            raise IntegrityError(f"{resource.id}: the series lists {name!r}, not a file of it ({problem})")
        seen.add(name)


def prepare_out(out: Path) -> Path:
    """Create ``out`` if needed and return its real path; a file there is a usage error."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {out}: {_oserror_text(exc)}") from None
    return out.resolve()


__all__ = ["PREFIX", "Failure", "Outcome", "Placer", "SourceAccess", "prepare_out"]
