"""The placement helper every materializer uses: copy (or link), verify, rename, record.

A ``Placer`` owns one output folder for one run. Materializers call ``place`` for a
resource's bytes, ``place_series`` for a DICOM series (a folder), ``write`` for a file they
generate and ``fetch`` for a small resource's verified bytes. A resource that fails is
recorded with the reason and the run goes on; only files whose bytes were checked ever get a
final name. Where a file may go is decided by ``claims`` (nothing is written outside OUT),
what was placed is kept by ``ledger`` (entries, journal, outcome), and the bytes are moved by
``transfer``; this module is the flow between them, on a thread pool where it pays. A full
disk stops the run (``DiskFull``): every later resource would fail too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from vxds.errors import SourceError, VxdsError
from vxds.hashing import SMALL_FILE, digest_bytes, digest_json, hash_file
from vxds.locks.verified_read import IntegrityError, expected
from vxds.materialize.access import SourceAccess
from vxds.materialize.claims import Claims
from vxds.materialize.durable import DISK_FULL, DiskFull, write_error
from vxds.materialize.inside import check_members
from vxds.materialize.ledger import Ledger, Outcome, stat_key
from vxds.materialize.links import Linker
from vxds.materialize.receipt import Entry
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
from vxds.resource import Resource

if TYPE_CHECKING:
    from vxds.materialize.remote import RemoteCopies

SERIES_TYPES = ("DICOMSeries", "Zarr")  # placed as a folder of files
LINK_MODES = ("hardlink", "symlink")
PLACE_BATCH = 10_000  # resources claimed (and their folders made) at a time


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
        executor: str | None = None,
    ) -> None:
        self.out = out
        self.access = access
        self.mode = mode
        self.task = task or NO_PROGRESS.task("")
        self.claims = Claims(out)
        self.remote: RemoteCopies | None = None
        if executor is not None:  # --executor URL (imported only then: it costs start-up)
            from vxds.materialize.remote import remote_copies

            self.remote = remote_copies(executor, out, self.claims.tmp, access)
        self.ledger = Ledger(out, previous or {})
        workers = jobs if jobs is not None else min(8, (os.cpu_count() or 1) * 2)
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self._pending: list[Future[None]] = []
        self._full: VxdsError | None = None  # the first full-disk error; the run stops on it

    @property
    def outcome(self) -> Outcome:
        return self.ledger.outcome

    @property
    def entries(self) -> dict[str, Entry]:
        """What this run placed (or found in place), by path in OUT: the receipt's files."""
        return self.ledger.entries

    # --- what materializers call -------------------------------------------------------

    def place(self, resource: Resource, rel: str, *, module: str) -> None:
        """Put ``resource``'s bytes at ``OUT/rel`` (in the background when --jobs > 1).

        Small local files and links are placed on the calling thread: their cost is Python's
        and the file system's metadata, which threads only fight over (measured in
        bench/materialize_bench.py); large files and remote streams go to the pool.
        """
        if self._claim(rel, resource.id, module):
            self._place_claimed(resource, rel, module)

    def _place_claimed(self, resource: Resource, rel: str, module: str) -> None:
        if self.remote is not None and self.remote.take(self, resource, rel, module):
            return
        if self.access.is_local and (self.mode in LINK_MODES or (resource.size or 0) < SMALL_FILE):
            self._place_one(resource, rel, module)
        else:
            self._submit(lambda: self._place_one(resource, rel, module))

    def place_all(self, placements: Iterable[tuple[Resource, str]], *, module: str) -> None:
        """``place`` (or ``place_series``) each ``(resource, rel)``, in order, ``PLACE_BATCH``
        at a time: the paths are claimed first, then the folders above them made at once,
        parents first, then the files placed (one ``mkdir`` per folder in a fresh OUT, none
        interleaved with links); new links the hash cache vouches for are a ``Linker``'s."""
        pending = iter(placements)
        linker = Linker(self) if Linker.usable(self) else None
        try:
            while batch := list(islice(pending, PLACE_BATCH)):  # not every resource of a lock at once
                claimed = [(r, rel) for r, rel in batch if self._claim(rel, r.id, module)]
                self.claims.make_folders(rel for _, rel in claimed)
                for resource, rel in claimed:
                    if linker is not None and linker.link(resource, rel, module):
                        continue
                    if resource.type in SERIES_TYPES:
                        self._submit(partial(self._place_series, resource, rel, module))
                    else:
                        self._place_claimed(resource, rel, module)
        finally:
            if linker is not None:
                linker.flush()

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
            return self.access.read_checked(resource)
        except (VxdsError, OSError) as exc:
            self.ledger.fail(resource.id, f"({module})", exc)
            return None

    def existing(self, rel: str) -> bytes | None:
        """The bytes a previous run recorded at ``rel``, if still there unchanged."""
        return self.ledger.existing(rel)

    def finish(self) -> Outcome:
        """Wait for every placement; remove files of the previous run no longer wanted."""
        if self.remote is not None:
            self.remote.flush(self)
        for future in self._pending:
            future.result()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown()
        self.ledger.finish()
        self.claims.remove_tmp()
        return self.ledger.outcome

    def abort(self) -> None:
        """Stop after an interruption: pending work is cancelled, temporary files removed."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        self.ledger.abort()
        self.claims.remove_tmp()

    # --- running the work --------------------------------------------------------------

    def _claim(self, rel: str, rid: str | None, module: str) -> bool:
        problem = self.claims.claim(rel, rid, module)
        if problem is not None:
            self.ledger.fail_text(rid, rel, problem)
        return problem is None

    def _submit(self, work: Callable[[], None]) -> None:
        if self._pool is None:
            work()
        else:
            self._pending.append(self._pool.submit(work))

    def _guard(self, rid: str | None, rel: str, work: Callable[[], None], *, counted: bool = False) -> None:
        try:
            if self._full is not None:  # queued work after the disk filled up: stop at once
                raise self._full
            work()
        except DiskFull:
            raise
        except OSError as exc:
            if exc.errno in DISK_FULL:
                self._full = write_error(f"{self.out}/{rel}", exc, rid)
                raise self._full from None
            self.ledger.fail(rid, rel, exc)
        except VxdsError as exc:
            self.ledger.fail(rid, rel, exc)
        finally:
            if rid is not None and not counted:  # the bar counts resources, not generated files
                self.task.advance()  # (``counted``: already, as the workers finished them)

    # --- one resource --------------------------------------------------------------------

    def _matches_lock(self, resource: Resource) -> Callable[[str], bool]:
        want = expected(resource)

        def check(path: str) -> bool:
            if want is None:
                return False
            if resource.size is not None and os.stat(path).st_size != resource.size:
                return False
            return hash_with(path, want[0]) == want[1]

        return check

    def _place_one(self, resource: Resource, rel: str, module: str, *, counted: bool = False) -> None:
        def work() -> None:
            target = self.claims.parent(rel)
            # A path no run recorded is written straight away (one system call less per
            # file in a fresh OUT); whatever is there is replaced by checked bytes.
            state = (
                self.ledger.in_place(rel, target, resource.hash, self._matches_lock(resource))
                if rel in self.ledger.previous
                else None
            )
            if state:
                self.ledger.retag(rel, resource.id, module)
                return
            digest, size, key = self._transfer(resource, target, free=state is None)
            self.ledger.record(rel, Entry(digest, size, resource.id, resource.hash, module, key), placed=True)

        self._guard(resource.id, rel, lambda: self.access.fallback(resource, work), counted=counted)

    def _transfer(self, resource: Resource, target: str, *, free: bool) -> tuple[str, int, StatKey]:
        """Put checked bytes at ``target``: a new link directly (links appear whole), else
        through a temporary name that is renamed once the bytes are checked."""
        st, mode = None, self._mode_for(resource)
        if free and mode in LINK_MODES:  # the source's stat, asked of the hash cache
            src, st = self._local_file(resource)
        else:
            src = self.access.local_path(resource)
        if src is None and mode != "copy":
            self.ledger.fallback(mode, "the source has no local file for it")
        try:
            return self._transfer_from(resource, src, target, mode, free=free, st=st)
        except FileNotFoundError as exc:
            if src is not None and exc.filename in (src, str(src)):
                raise _missing(resource, src) from None
            raise

    def _mode_for(self, resource: Resource) -> str:
        """The run's mode, but a copy of a resource read from the store in a link mode: a link
        would share the store's object with OUT, where an edit would change the store."""
        if self.mode in LINK_MODES and self.access.stored(resource):
            self.ledger.fallback(self.mode, "read from the store, whose objects are never linked")
            return "copy"
        return self.mode

    def _local_file(self, resource: Resource) -> tuple[str | None, os.stat_result | None]:
        try:
            found = self.access.local_file(resource)
        except FileNotFoundError as exc:
            raise _missing(resource, exc.filename) from None
        return found if found is not None else (None, None)

    def _transfer_from(
        self,
        resource: Resource,
        src: str | None,
        target: str,
        mode: str,
        *,
        free: bool,
        st: os.stat_result | None = None,
    ) -> tuple[str, int, StatKey]:
        if src is not None and mode in LINK_MODES and free:
            try:
                return link_file(resource, src, target, mode, self.access.cached(resource), st)
            except Unsupported as exc:
                self.ledger.fallback(exc.mode, exc.reason)
                src_mode = "copy"
            except FileExistsError:  # appeared meanwhile: replace it through a temporary name
                src_mode = mode
        else:
            src_mode = mode
        tmp = self.claims.tmp_name(rel=os.path.basename(target))
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
            self.ledger.fallback(exc.mode, exc.reason)
            return copy_file(resource, src, tmp)

    # --- a series (a folder of files) --------------------------------------------------------

    def _place_series(self, resource: Resource, rel: str, module: str) -> None:
        def work() -> None:
            target = self.claims.parent(rel)
            members = self.access.members(resource)
            check_members(resource, members)  # before anything is written
            if self.ledger.series_in_place(resource, rel, members, module):
                return
            folder = self.claims.tmp_name(rel)
            os.mkdir(folder)
            try:
                placed = self._series_to(folder, resource, members)
                aside = self.claims.tmp_name(rel + ".old") if os.path.lexists(target) else None
                _swap_folder(target, folder, aside)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            for name, digest, size, key in placed:  # a renamed folder keeps its files' stats
                entry = Entry(digest, size, resource.id, resource.hash, module, key)
                self.ledger.record(f"{rel}/{name}", entry, placed=True)

        self._guard(resource.id, rel, lambda: self.access.fallback(resource, work))

    def _series_to(
        self, folder: str, resource: Resource, members: list[tuple[str, str]]
    ) -> list[tuple[str, str, int, StatKey]]:
        """Each member's checked bytes in ``folder``; the listing checked against the lock."""
        placed: list[tuple[str, str, int, StatKey]] = []
        listing: list[list[str]] = []
        mode = self._mode_for(resource)
        for name, src in members:
            member = Resource(id=f"{resource.id}/{name}", version=0)
            if "/" in name:  # a Zarr's member lies in a folder of it
                os.makedirs(os.path.dirname(f"{folder}/{name}"), exist_ok=True)
            digest, size, key = self._to_tmp(member, src, f"{folder}/{name}", mode)
            placed.append((name, digest, size, key))
            listing.append([name, digest])
        if resource.hash is not None and digest_json(sorted(listing)) != resource.hash:
            raise IntegrityError(f"{resource.id}: the series' files do not match the locked hash")
        return placed

    # --- a generated file ------------------------------------------------------------------

    def _write_one(self, rel: str, data: bytes, module: str) -> None:
        target = self.claims.parent(rel)
        digest = digest_bytes(data)

        def same(path: str) -> bool:
            return os.stat(path).st_size == len(data) and hash_file(path) == digest

        if self.ledger.in_place(rel, target, digest, same):
            self.ledger.retag(rel, None, module)
            return
        tmp = self.claims.tmp_name(rel)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        self.ledger.record(rel, Entry(digest, len(data), None, digest, module, stat_key(target)), placed=True)


def _missing(resource: Resource, src: str) -> SourceError:
    return SourceError(f"{resource.id} is missing from the source ({src} does not exist)")


def _swap_folder(target: str, folder: str, aside: str | None) -> None:
    """Give ``folder`` the name ``target``; what was there is moved ``aside``, then removed."""
    if aside is not None:
        os.replace(target, aside)
    os.replace(folder, target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


__all__ = ["Placer"]
