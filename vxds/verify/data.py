"""``--data``: re-read the bytes of each locked resource from its source (VX5xx)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vxds.errors import SourceError, VxdsError
from vxds.executor import for_url
from vxds.hashing import PREFIX, READ_ATTEMPTS, FileChanged, hash_file, map_files, new_hasher
from vxds.locks.format import HEADER
from vxds.locks.shards import file_line
from vxds.locks.splits import split_file
from vxds.resource import InvalidResource, Resource, check_id
from vxds.sources import SourceContext, open_source, scheme_of
from vxds.sources.folder.root import folder_root, leads_out, shown  # not the folder source itself
from vxds.verify.findings import ERROR, SKIPPED, Finding
from vxds.verify.model import Context, Target

if TYPE_CHECKING:
    from vxds.locks.store import Lock
    from vxds.sources import Source

# --- --data --------------------------------------------------------------------------------


def _source(ctx: Context, url: str) -> Source | VxdsError:
    if url not in ctx.sources:
        # No cache folder: the bytes are read again, and nothing is written; a store's own
        # checksums are never taken for them (docs/checksums.md).
        context = SourceContext(
            base=ctx.config.root,
            cache_dir=None,
            jobs=ctx.options.jobs,
            options=source_options(ctx),
            executor=ctx.config.executor,
        )
        try:
            ctx.sources[url] = open_source(url, context)
        except VxdsError as exc:
            ctx.sources[url] = exc
    return ctx.sources[url]


def _named(resource: Resource, message: str) -> str:
    """A finding's message about ``resource``, naming it once (a source's own errors may)."""
    return message if message.startswith(resource.id) else f"{resource.id}: {message}"


def _cannot_open(url: str, message: str) -> str:
    """VX504's message, naming the source once (a source's own errors start with it)."""
    if message.startswith(f"source {url!r}"):
        return f"cannot open {message}"
    return f"cannot open the source {url!r}: {message}"


def _chosen(ctx: Context, target: Target, lock: Lock) -> Iterator[tuple[str, int, bytes]]:
    """(split, line number, line) of the resources to re-hash: all, or a seeded sample."""
    sample = ctx.options.sample
    every = [
        (name, number, line)
        for name, split in sorted(lock.splits.items())
        for number, line in enumerate(split.lines(), 1)
    ]
    if sample is None:
        yield from every
        return
    import random  # --sample only

    rng = random.Random(f"{ctx.options.seed}:{target.key}")
    picked = sorted(rng.sample(range(len(every)), sample.size(len(every))))
    for index in picked:
        yield every[index]


def check_data(ctx: Context, target: Target) -> list[Finding]:
    """VX5xx: re-hash the bytes of every (or a sample of) resource from the source."""
    if not ctx.options.data or not (target.path / HEADER).is_file():
        return []
    if target.lock is None or target.header is None:
        return [
            ctx.finding(target, "VX503", SKIPPED, "data not checked: the lock did not pass its own checks")
        ]
    from vxds.verify.store_data import check_in_store, rescued

    todo = [(s, n, Resource.from_line(line)) for s, n, line in _chosen(ctx, target, target.lock)]
    ctx.data_checked += len(todo)
    in_store = check_in_store(ctx, target, todo)  # --from-store
    if in_store is not None:
        return in_store
    url = target.header.source or ctx.config.source or ""
    if url and scheme_of(url) == "file":  # a folder: plain files are hashed by path
        try:
            root = folder_root(url, ctx.config.root)
        except VxdsError as exc:
            return [ctx.finding(target, "VX504", ERROR, _cannot_open(url, exc.message))]
        return rescued(ctx, target, todo, _check_folder(ctx, target, url, root, todo))
    source = _source(ctx, url) if url else SourceError("the lock names no source")
    if isinstance(source, VxdsError):
        return [ctx.finding(target, "VX504", ERROR, _cannot_open(url, source.message))]
    if for_url(ctx.config.executor).remote:
        from vxds.verify.remote_data import check_remote

        return rescued(ctx, target, todo, check_remote(ctx, target, source, todo))
    found = [f for item in todo if (f := _check_opened(ctx, target, source, *item)) is not None]
    return rescued(ctx, target, todo, found)


SPECIAL = ("ClinicalRecord", "DICOMSeries", "Zarr")  # made by the folder source from more than one file


def line_where(ctx: Context, target: Target, split: str, number: int) -> dict[str, Any]:
    file, line = file_line(target.header, split, number) if target.header else (split_file(split), number)
    return {"file": ctx.config.relative(target.path / file), "line": line}


def _check_folder(
    ctx: Context, target: Target, url: str, root: Path, todo: list[tuple[str, int, Resource]]
) -> list[Finding]:
    """Plain files are hashed by path; rows and DICOM series are rebuilt by the source (which
    is opened only for them)."""
    findings: list[Finding] = []
    inside = _Inside(root)
    files: list[tuple[str, int, Resource, str]] = []
    for split, number, resource in todo:
        if resource.type in SPECIAL:
            found = _check_built(ctx, target, url, resource, line_where(ctx, target, split, number))
            if found is not None:
                findings.append(found)
            continue
        path, outside = _path_in(inside, resource)
        if path is None:
            message = f"{resource.id}: {outside}; not read"
            findings.append(
                ctx.finding(target, "VX505", ERROR, message, **line_where(ctx, target, split, number))
            )
            continue
        files.append((split, number, resource, path))
    findings += _hash_paths(ctx, target, files)
    return findings


def _check_built(
    ctx: Context, target: Target, url: str, resource: Resource, where: dict[str, Any]
) -> Finding | None:
    source = _source(ctx, url)
    if isinstance(source, VxdsError):  # the folder went away since it was found
        return ctx.finding(target, "VX504", ERROR, _cannot_open(url, source.message), **where)
    return _check_listed(ctx, target, source, resource, where)


def _path_in(inside: _Inside, resource: Resource) -> tuple[str | None, str]:
    """The resource's file under the source folder, or None and how it would lead out."""
    own_uri = resource.uri not in (None, resource.id)
    # The id passed the line checks; a uri of its own is checked here.
    path = inside(resource.uri or resource.id, checked=not own_uri)
    if path is None:
        if own_uri:
            return None, f"its uri {resource.uri!r} points outside the source"
        return None, "its folder is a symbolic link leading outside the source"
    link = leads_out(path, inside.root)
    if link is not None:
        return None, f"a symbolic link to {shown(link)}, outside the source folder"
    return path, ""


class _Inside:
    """Paths under a source folder, refusing any that could lead outside it."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.folders: dict[str, bool] = {}  # folder -> it resolves inside the root
        self.real: dict[str, str] = {self.root: self.root}  # folder -> its real path

    def __call__(self, rel: str, *, checked: bool) -> str | None:
        if not checked:
            try:
                check_id(rel)  # relative, no '..', no drive, no backslash
            except InvalidResource:
                return None
        path = os.path.join(self.root, rel)
        folder = os.path.dirname(path)
        ok = self.folders.get(folder)
        if ok is None:  # a symlinked folder on the way could lead anywhere
            real = self._real(folder)
            ok = self.folders[folder] = real == self.root or real.startswith(self.root + os.sep)
        return path if ok else None

    def _real(self, folder: str) -> str:
        """``os.path.realpath(folder)``, one ``lstat`` per folder not seen before."""
        found = self.real.get(folder)
        if found is None:
            parent, name = os.path.split(folder)
            found = os.path.join(self._real(parent), name)
            if os.path.islink(found):
                found = os.path.realpath(found)
            self.real[folder] = found
        return found


def _hash_paths(ctx: Context, target: Target, files: list[tuple[str, int, Resource, str]]) -> list[Finding]:
    todo: list[tuple[str, int]] = []
    prehashed = ctx.options.prehashed
    for _, _, resource, path in files:
        if path in ctx.hashed or resource.hash is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            ctx.hashed[path] = None
            continue
        if not stat.S_ISREG(st.st_mode):  # a FIFO would wait for a writer forever
            ctx.hashed[path] = f"{_UNREADABLE}not a regular file"
        elif resource.size is not None and st.st_size != resource.size:
            ctx.hashed[path] = f"size:{st.st_size}"
        elif prehashed is not None and (known := prehashed(path, _key(st))) is not None:
            ctx.hashed[path] = known  # read and hashed by this run, unchanged since
        else:
            todo.append((path, st.st_size))
    if todo:
        executor = for_url(ctx.config.executor)
        digests = map_files(_digest_or_why, todo, jobs=ctx.options.jobs, executor=executor)
        for (path, _), digest in zip(todo, digests, strict=True):
            ctx.hashed[path] = digest
    findings = []
    for split, number, resource, path in files:
        problem = _compare(resource, ctx.hashed.get(path), path)
        if problem is not None:
            code, severity, message = problem
            findings.append(
                ctx.finding(target, code, severity, message, **line_where(ctx, target, split, number))
            )
    return findings


def _key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


_UNREADABLE, _CHANGING = "unreadable:", "changing:"  # markers in ``ctx.hashed`` beside digests


def _digest_or_why(path: str, _size: int) -> str:
    """The file's digest, or a marker saying why there is none (one file never stops the rest)."""
    try:
        return hash_file(path)
    except FileChanged:
        return f"{_CHANGING}changed while it was read ({READ_ATTEMPTS} times)"
    except OSError as exc:
        return f"{_UNREADABLE}{exc.strerror or exc}"


def _compare(resource: Resource, actual: str | None, path: str) -> tuple[str, str, str] | None:
    """(code, severity, message) when a file's digest (or ``size:N``) does not match the lock."""
    if resource.hash is None:
        return "VX503", SKIPPED, f"{resource.id}: the lock records no hash to compare"
    if actual is None:
        return "VX501", ERROR, f"{resource.id}: missing from the source"
    if actual.startswith(_UNREADABLE):
        return "VX504", ERROR, f"{resource.id}: cannot read: {actual.removeprefix(_UNREADABLE)}"
    if actual.startswith(_CHANGING):
        why = actual.removeprefix(_CHANGING)
        return "VX502", ERROR, f"{resource.id}: {why}; verify again when nothing writes to it"
    if actual.startswith("size:"):
        return (
            "VX502",
            ERROR,
            f"{resource.id}: changed in the source ({actual[5:]} bytes, the lock says {resource.size})",
        )
    if not resource.hash.startswith(PREFIX):
        try:
            actual = _other_hash(resource.hash, path)
        except OSError as exc:
            return "VX504", ERROR, f"{resource.id}: cannot read: {exc.strerror or exc}"
        if actual is None:
            return "VX503", SKIPPED, f"{resource.id}: cannot check a {resource.hash.partition(':')[0]} hash"
    if actual != resource.hash:
        return "VX502", ERROR, f"{resource.id}: changed in the source (hash differs)"
    return None


def _other_hash(expected: str, path: str) -> str | None:
    """The file's digest in the lock's algorithm, when ``new_hasher`` knows it."""
    algorithm = expected.partition(":")[0]
    try:
        hasher = new_hasher(algorithm)
    except SourceError:
        return None
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            hasher.update(block)
    return f"{algorithm}:{hasher.hexdigest()}"


def _check_listed(
    ctx: Context, target: Target, source: Source, resource: Resource, where: dict[str, Any]
) -> Finding | None:
    """A resource the source builds from several files: compare with what it lists now."""
    try:
        current = source.get(resource.id)
    except SourceError as exc:
        if isinstance(exc, KeyError):
            return ctx.finding(target, "VX501", ERROR, f"{resource.id}: missing from the source", **where)
        return ctx.finding(target, "VX504", ERROR, _named(resource, exc.message), **where)
    if current.hash != resource.hash:
        return ctx.finding(
            target, "VX502", ERROR, f"{resource.id}: changed in the source (hash differs)", **where
        )
    return None


def _check_opened(
    ctx: Context, target: Target, source: Source, split: str, number: int, resource: Resource
) -> Finding | None:
    """Any other source: stream the bytes through ``Source.open``."""
    where = line_where(ctx, target, split, number)
    try:  # the lock's own algorithm over the bytes: blake3, or a store's sha256, md5, crc32c
        new_hasher(_algorithm(resource))
    except SourceError:
        return _check_listed(ctx, target, source, resource, where)
    return opened_finding(ctx, target, resource, rehash(source, resource), where)


def source_options(ctx: Context) -> dict[str, Any]:
    """A source's options for a check of its bytes: a store's own checksums never vouch."""
    return {**ctx.config.storage, "checksums": "bytes"}


def _algorithm(resource: Resource) -> str:
    return resource.hash.partition(":")[0] if resource.hash is not None else ""


def rehash(source: Source, resource: Resource) -> tuple[str, str]:
    """``("digest", "<algorithm>:<hex>")`` of a resource's bytes as ``source.open`` streams
    them, in the lock's algorithm, or the finding's code and message when they cannot be read
    (``VX501``, ``VX504``)."""
    algorithm = _algorithm(resource)
    hasher = new_hasher(algorithm)
    try:
        if resource.type in ("DICOMSeries", "Zarr") and hasattr(source, "members"):
            source.members(resource)  # the listing's names and hash, checked as materialize checks them
        with source.open(resource) as fh:
            while block := fh.read(1 << 20):
                hasher.update(block)
    except SourceError as exc:
        if isinstance(exc, KeyError):
            return "VX501", f"{resource.id}: missing from the source"
        return "VX504", _named(resource, exc.message)
    except OSError as exc:
        return "VX504", f"{resource.id}: cannot read: {exc.strerror or exc}"
    return "digest", f"{algorithm}:{hasher.hexdigest()}"


def opened_finding(
    ctx: Context, target: Target, resource: Resource, outcome: tuple[str, str], where: dict[str, Any]
) -> Finding | None:
    """The finding ``rehash``'s outcome makes, if any."""
    kind, value = outcome
    if kind != "digest":
        return ctx.finding(target, kind, ERROR, value, **where)
    if value != str(resource.hash).lower():
        return ctx.finding(
            target, "VX502", ERROR, f"{resource.id}: changed in the source (hash differs)", **where
        )
    return None
