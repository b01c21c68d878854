"""``vxds push``: copy the bytes of locked resources that the store lacks into it.

The store is listed once; every digest the chosen locks need and the listing lacks is read
from the lock's source and written to the store, many at a time. The bytes are hashed while
they stream, and an object appears only when they are the locked bytes, so a resource whose
source changed since it was locked is a failure, never an object. A push killed half way
leaves whole objects only (see ``vxds.store.backends``); the next push lists them and
sends the rest.

With an executor (``--executor URL``), the copies are tasks on a cluster's workers, each
opening the store and the sources with the project's settings; only counts and messages come
back. A worker does not have the store's listing, so it writes a series' members whether or
not the store has them (the same bytes under the same name).
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from vxds.errors import SourceError, VxdsError
from vxds.executor import for_url
from vxds.hashing import hash_file
from vxds.progress import NO_PROGRESS, Progress, Task
from vxds.project.config import Config
from vxds.store.cas import SERIES, Store, manifest_bytes
from vxds.store.wanted import Wanted

BLOCK = 8 << 20
DEFAULT_JOBS = 8
PART_ITEMS, PART_BYTES = 64, 64 << 20  # resources a thread takes at a time, at most


@dataclass(frozen=True)
class PushFailure:
    lock: str
    resource: str
    message: str


@dataclass
class PushReport:
    store: str
    uploaded: int = 0  # resources whose bytes were written now
    present: int = 0  # resources already in the store
    bytes: int = 0  # bytes written
    failures: list[PushFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def chunks_of(fh: BinaryIO) -> Iterator[bytes]:
    """``fh`` block by block, closed at the end."""
    with fh:
        while block := fh.read(BLOCK):
            yield block


class _Sources:
    """Each lock's source, opened once (an error to report per resource when it cannot be)."""

    def __init__(self, config: Config, jobs: int | None) -> None:
        self.config = config
        self.jobs = jobs
        self._open: dict[str, Any] = {}

    def get(self, url: str | None) -> Any:
        url = url or self.config.source
        if not url:
            raise SourceError("the lock names no source")
        if url not in self._open:
            from vxds.sources import SourceContext, open_source

            context = SourceContext(
                base=self.config.root,
                cache_dir=self.config.cache_dir,
                jobs=self.jobs,
                options=self.config.storage,
            )
            try:
                self._open[url] = open_source(url, context)
            except VxdsError as exc:
                self._open[url] = exc
        found = self._open[url]
        if isinstance(found, VxdsError):
            raise found
        return found


def push(
    config: Config,
    store: Store,
    needed: Mapping[str, Wanted],
    *,
    jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> PushReport:
    """Write every digest in ``needed`` that the store lacks; see the module docstring."""
    present = store.digests()
    report = PushReport(store.url)
    todo = [item for digest, item in sorted(needed.items()) if digest not in present]
    report.present = len(needed) - len(todo)
    sources = _Sources(config, jobs)
    task = progress.task(f"pushing to {store.url}", total=len(todo) or None)
    executor = for_url(config.executor)
    try:
        if executor.remote:
            work = PushBatch(config, store.url)
            sizes = [item.resource.size or 0 for item in todo]
            outcomes = executor.map_batches(work, todo, sizes, on_done=lambda _: task.advance())
        else:
            outcomes = _push_here(store, sources, todo, present, jobs or DEFAULT_JOBS, task)
        for item, (written, message) in zip(todo, outcomes, strict=True):
            _collect(report, item, written, message)
    finally:
        task.close()
        store.flush()
    return report


Outcome = tuple[int, str | None]  # bytes written, or why the resource could not be


def _push_here(
    store: Store, sources: _Sources, todo: list[Wanted], present: Container[str], jobs: int, task: Task
) -> list[Outcome]:
    """Push ``todo`` from ``jobs`` threads, each taking a part of it at a time (a future
    per resource cost more than a small file's copy)."""

    def run(part: list[Wanted]) -> list[Outcome]:
        return [_outcome(store, sources, item, present) for item in part]

    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for done in pool.map(run, _parts(todo, jobs)):
            outcomes.extend(done)
            task.advance(len(done))
    return outcomes


def _parts(todo: list[Wanted], jobs: int) -> Iterator[list[Wanted]]:
    """``todo`` in runs of at most ``PART_ITEMS`` resources or ``PART_BYTES`` bytes, and
    small enough that every thread has several."""
    most = max(1, min(PART_ITEMS, len(todo) // (4 * jobs)))
    part: list[Wanted] = []
    size = 0
    for item in todo:
        part.append(item)
        size += item.resource.size or 0
        if len(part) >= most or size >= PART_BYTES:
            yield part
            part, size = [], 0
    if part:
        yield part


def _outcome(store: Store, sources: _Sources, item: Wanted, present: Container[str]) -> Outcome:
    try:
        return _push_one(store, sources, item, present), None
    except (VxdsError, OSError) as exc:
        message = exc.message if isinstance(exc, VxdsError) else f"cannot read: {exc.strerror or exc}"
        return 0, message.removeprefix(f"{item.lock}: ").removeprefix(f"{item.resource.id}: ")


def _collect(report: PushReport, item: Wanted, written: int, message: str | None) -> None:
    if message is None:
        report.bytes += written
        report.uploaded += 1
    else:
        report.failures.append(PushFailure(item.lock, item.resource.id, message))


@dataclass(frozen=True)
class PushBatch:
    """A task's work: push these resources to the store at ``url`` (on a worker)."""

    config: Config
    url: str

    def __call__(self, batch: list[Wanted]) -> list[Outcome]:
        store, sources = _opened(self)
        with ThreadPoolExecutor(max_workers=min(DEFAULT_JOBS, len(batch) or 1)) as pool:
            outcomes = list(pool.map(lambda item: _outcome(store, sources, item, {}), batch))
        store.flush()
        return outcomes


_workers: dict[tuple[str, str, str], tuple[Store, _Sources]] = {}  # per worker process


def _opened(work: PushBatch) -> tuple[Store, _Sources]:
    key = (work.url, repr(work.config), repr(sorted(work.config.storage.items())))
    if key not in _workers:
        from vxds.store.cas import open_store

        store = open_store(work.url, base=work.config.root, options=work.config.storage)
        _workers[key] = (store, _Sources(work.config, None))
    return _workers[key]


def _push_one(store: Store, sources: _Sources, item: Wanted, present: Container[str]) -> int:
    source = sources.get(item.source)
    resource = item.resource
    if resource.type in SERIES:
        return _push_series(store, source, item, present)
    local = getattr(source, "local_path", None)
    if local is not None:
        return store.put_file(item.digest, local(resource), resource.size, what=resource.id)
    return store.put(item.digest, chunks_of(source.open(resource)), resource.size, what=resource.id)


def _push_series(store: Store, source: Any, item: Wanted, present: Container[str]) -> int:
    """Members first, the manifest last: a manifest in the store means its members are."""
    from vxds.locks.verified_read import IntegrityError

    lister = getattr(source, "members", None)
    if lister is None:
        raise SourceError(f"this source cannot list the files of a {item.resource.type}")
    members = [(name, path, hash_file(path)) for name, path in lister(item.resource)]
    manifest = manifest_bytes((name, digest) for name, _, digest in members)
    from vxds.hashing import digest_bytes

    if digest_bytes(manifest) != item.resource.hash:
        raise IntegrityError("the series' files do not match the locked hash")
    written = 0
    for name, path, digest in members:
        hexdigest = digest.partition(":")[2]
        if hexdigest not in present:
            written += store.put_file(hexdigest, path, what=f"{item.resource.id}/{name}")
    return written + store.put(item.digest, [manifest], what=item.resource.id)
