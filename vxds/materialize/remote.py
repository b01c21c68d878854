"""``materialize --executor URL``: the copy-and-check of each file run on a cluster's workers.

A worker reads a resource from the source (the same path of a folder on a shared file
system, or the same bucket opened with the same options), writes it to a temporary name in
``OUT/.vxds-tmp`` while hashing it, checks it against the lock and returns the digest. Only
this machine gives a file its final name: it renames a temporary file into place once the
worker's digest and size are checked again against the lock, takes the placed file's stat
itself, and records it in the ledger and journal as a local run does. So a half-written
file never has a final name, and nothing but a temporary file of this run is ever removed
by a worker. The workers must see OUT: ``RemoteCopies`` asks each of them to read a probe
file this machine wrote there, and refuses the run (one ``ExecutorError``) before anything
is placed when one cannot.

What goes to the workers: plain files copied (``--mode copy``) to a path no previous run
recorded, from the source, locked in blake3. The rest (links, series, clinical records,
files read from the store, files a previous run placed, which are checked where they are)
is placed here as before, and so is a file whose task failed when a store can stand in.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vxds.errors import SourceError, VxdsError
from vxds.executor import Executor, ExecutorError, for_url
from vxds.executor.batches import Raised
from vxds.hashing import PREFIX
from vxds.locks.verified_read import IntegrityError, expected, mismatch
from vxds.materialize.ledger import stat_key
from vxds.materialize.receipt import Entry
from vxds.materialize.transfer import copy_file, copy_stream
from vxds.resource import Resource

if TYPE_CHECKING:
    from vxds.materialize.access import SourceAccess
    from vxds.materialize.place import Placer
    from vxds.sources.base import Source

FLUSH_ITEMS = 10_000  # files sent to the workers at once (several tasks: ``batches.cut``)
FLUSH_BYTES = 8 << 30
READERS = 8  # files a task copies at once: a store answers each after a round trip
LOCAL_TYPES = ("ClinicalRecord",)  # built by the source from its rows: placed here

Copied = tuple[str, int]  # blake3 digest, size


@dataclass(frozen=True)
class Copy:
    """One file for a worker: the resource, where it reads it (None: from the source), the
    temporary name it writes."""

    resource: Resource
    src: str | None
    tmp: str


@dataclass(frozen=True)
class CopyBatch:
    """A task's work: copy and check each file; an error comes back as a value, per file."""

    source: tuple[str, str, Mapping[str, Any]] | None  # url, base, options of a bucket source

    def __call__(self, batch: list[Copy]) -> list[Copied | Raised]:
        with ThreadPoolExecutor(max_workers=min(READERS, len(batch) or 1)) as pool:
            return list(pool.map(self._one, batch))

    def _one(self, item: Copy) -> Copied | Raised:
        try:
            if os.path.lexists(item.tmp):  # a retried task, after its worker died: our own name
                os.unlink(item.tmp)
            if item.src is not None:
                digest, size, _ = copy_file(item.resource, item.src, item.tmp)
            else:
                with _opened(self.source).open(item.resource) as raw:
                    digest, size, _ = copy_stream(item.resource, raw, item.tmp)
            return digest, size
        except Exception as exc:
            if os.path.lexists(item.tmp):
                os.unlink(item.tmp)
            return Raised.of(exc)


_sources: dict[str, Source] = {}  # per worker process: one per source


def _opened(spec: tuple[str, str, Mapping[str, Any]] | None) -> Source:
    from vxds.sources import SourceContext, open_source

    if spec is None:
        raise SourceError("no source to read from; pass --source or set [tool.vxds] source")
    url, base, options = spec
    key = repr((url, base, sorted(options.items())))
    if key not in _sources:
        _sources[key] = open_source(url, SourceContext(base=Path(base), options=options))
    return _sources[key]


@dataclass(frozen=True)
class Probe:
    """A task's work: whether this worker reads ``token`` from the file at ``path``."""

    path: str
    token: str

    def __call__(self) -> bool:
        try:
            with open(self.path, encoding="ascii") as fh:
                return fh.read() == self.token
        except OSError:
            return False


def seen_by_workers(path: str) -> str:
    """Where the workers are asked to find a file this machine wrote at ``path``: the same
    path (a shared file system). Tests replace it to play a worker that does not see OUT."""
    return path


class RemoteCopies:
    """The files of one run queued for the workers, sent ``FLUSH_ITEMS`` at a time."""

    def __init__(self, executor: Executor, out: Path, tmp: Path, access: SourceAccess) -> None:
        self.executor = executor
        self.access = access
        self._queue: list[tuple[Copy, str, str]] = []  # the copy, its path in OUT, its module
        self._bytes = 0
        self._tmp = str(tmp)
        source = access.source
        local = access.is_local or source is None
        context = getattr(source, "context", None)
        self._work = CopyBatch(
            None if local else (source.url, str(context.base), dict(context.options))  # type: ignore[union-attr]
        )
        self._probe(out)

    def _probe(self, out: Path) -> None:
        token = secrets.token_hex(16)
        path = f"{self._tmp}/probe-{token[:12]}"
        with open(path, "w", encoding="ascii") as fh:
            fh.write(token)
        try:
            seen = self.executor.each_worker(Probe(seen_by_workers(path), token))
        finally:
            os.unlink(path)
        blind = sorted(worker for worker, ok in seen.items() if not ok)
        if blind:
            raise ExecutorError(
                f"executor {self.executor.url!r}: worker {blind[0]} cannot see the output folder"
                f" {out} ({len(blind)} of {len(seen)} workers); materialize --executor needs OUT on"
                " a file system the workers share (docs/scale.md)"
            )

    def take(self, placer: Placer, resource: Resource, rel: str, module: str) -> bool:
        """Queue ``resource`` for the workers when it is theirs to copy (False: place it here)."""
        if not self._theirs(placer, resource, rel):
            return False
        try:
            src = self.access.local_path(resource) if self.access.is_local else None
        except (VxdsError, OSError):  # refused (a link out of the tree): placed, and reported, here
            return False
        tmp = placer.claims.tmp_name(rel)
        self._queue.append((Copy(resource, src, tmp), rel, module))
        self._bytes += resource.size or 0
        if len(self._queue) >= FLUSH_ITEMS or self._bytes >= FLUSH_BYTES:
            self.flush(placer)
        return True

    def _theirs(self, placer: Placer, resource: Resource, rel: str) -> bool:
        want = expected(resource)
        return (
            placer.mode == "copy"
            and resource.type not in LOCAL_TYPES
            and want is not None
            and want[0] == "blake3"
            and rel not in placer.ledger.previous
            and self.access._stored(resource) is None  # read from the store: here
        )

    def flush(self, placer: Placer) -> None:
        """Send the queue to the workers; rename each checked copy into place, in order."""
        queue, self._queue, self._bytes = self._queue, [], 0
        if not queue:
            return
        copies = [copy for copy, _, _ in queue]
        sizes = [c.resource.size or 0 for c in copies]
        # The bar moves as each task ends, not when the renames below are done.
        results = self.executor.map_batches(
            self._work, copies, sizes, on_done=lambda _: placer.task.advance()
        )
        for (copy, rel, module), result in zip(queue, results, strict=True):
            if isinstance(result, Raised) and self.access.store is not None:
                placer._place_one(copy.resource, rel, module, counted=True)  # the store stands in
                continue
            resource = copy.resource
            placer._guard(resource.id, rel, _into_place(placer, copy, rel, module, result), counted=True)


def _into_place(
    placer: Placer, copy: Copy, rel: str, module: str, result: Copied | Raised
) -> Callable[[], None]:
    def work() -> None:
        try:
            if isinstance(result, Raised):
                raise _as_local(copy, result.rebuild())
            digest, size = result
            problem = mismatch(copy.resource, digest[len(PREFIX) :], size)
            if problem is not None:  # the worker checked it; a copy is renamed only if this agrees
                raise IntegrityError(problem)
            target = placer.claims.parent(rel)
            os.replace(copy.tmp, target)
        finally:
            if os.path.lexists(copy.tmp):
                os.unlink(copy.tmp)
        resource = copy.resource
        entry = Entry(digest, size, resource.id, resource.hash, module, stat_key(target))
        placer.ledger.record(rel, entry, placed=True)

    return work


def _as_local(copy: Copy, exc: BaseException) -> BaseException:
    """The error a local run reports for the same failure (a missing file named as such)."""
    if isinstance(exc, FileNotFoundError) and copy.src is not None and exc.filename == copy.src:
        return SourceError(f"{copy.resource.id} is missing from the source ({copy.src} does not exist)")
    return exc


def remote_copies(executor: str | None, out: Path, tmp: Path, access: SourceAccess) -> RemoteCopies | None:
    """The workers' share of a run, or None when the work stays on this machine."""
    found = for_url(executor)
    if not found.remote:
        return None
    try:
        return RemoteCopies(found, out, tmp, access)
    except ExecutorError:
        shutil.rmtree(tmp, ignore_errors=True)  # this run's own folder: OUT as it was
        raise
