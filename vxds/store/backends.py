"""Where a store's objects live: a local folder, or a bucket reached through fsspec.

Both answer the same five calls on keys relative to the store's root (``blake3/ab/cd…``):
``listing`` (every key and its size, in one listing), ``exists``, ``write`` (atomic and
never over an object that is there), ``open`` and ``delete``. A write is given a check that
runs after the last chunk and before the object becomes visible: when it raises, nothing is
left under the key.

A folder writes a uniquely named temporary file beside the object, checks it, and at the
next ``flush`` (every 5,000 objects, 64 MiB or five seconds, and at the end of a push)
syncs the disk and links each to its name (a link fails when the name exists, so an object
is never rewritten); nothing is visible under a name before its bytes are on the disk. A bucket writes
through fsspec's buffered file in exclusive mode, whose upload (a multipart upload for a
large object) only becomes an object when the file is closed, and only if no object has the
name by then; a failed check discards it instead.

A bucket's calls are retried as the sources' are: a transient failure (a timeout, a 5xx,
SlowDown) is tried again up to ``retries`` times with exponential backoff
(``[tool.vxds.storage]``, docs/sources.md), then reported as one line. An S3 write retries
each request (parts are held in memory, and an upload is completed only once), so a retry
never re-reads the source; gcsfs and adlfs retry their own uploads.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from vxds.errors import SourceError, VxdsError
from vxds.fs import fsync_dir, make_dirs

T = TypeVar("T")
TMP_SUFFIX = ".tmp"
# A folder store links its checked writes in batches of this many objects, bytes or seconds.
# (Each flush is a sync and a folder sync per folder touched: at a thousand objects, ten
# flushes were a third of a push of 10,000 small files.)
BATCH_OBJECTS, BATCH_BYTES, BATCH_SECONDS = 5000, 64 << 20, 5.0
SYNC_THREADS = 16


class Backend(Protocol):
    url: str

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]: ...

    def exists(self, key: str) -> bool: ...

    def write(self, key: str, chunks: Iterable[bytes], check: Callable[[], None]) -> None: ...

    def flush(self) -> None: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> str | None: ...


class FolderBackend:
    """Objects as files under a local folder."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root
        self._checked: list[tuple[Path, Path]] = []  # (temporary file, object) not yet linked
        self._bytes = 0
        self._since = time.monotonic()
        self._guard = threading.Lock()
        self._linking = threading.Lock()
        self._folders: set[Path] = set()  # made (and their parents synced) by this backend

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        top = self.root / prefix
        for folder, _dirs, files in os.walk(top):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                if not name.startswith("."):  # temporary names of writes under way
                    yield f"{rel}/{name}", os.stat(os.path.join(folder, name)).st_size

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def copy(self, key: str, src: str, digest: Callable[[str], str]) -> int:
        """Copy a local file in the kernel while another thread hashes it (the way
        materialize copies); ``digest(path)`` must return the digest of ``path`` and raise if
        it is not the object's. When the file changed during the copy, the copy is hashed."""
        from concurrent.futures import ThreadPoolExecutor

        target = self.root / key
        self._folder(target.parent)
        tmp = self._tmp(target)
        try:
            before = os.stat(src)
            with ThreadPoolExecutor(max_workers=1) as pool:
                hashing = pool.submit(digest, src)
                shutil.copyfile(src, tmp)
                hashing.result()
            after = os.stat(src)
            if (after.st_size, after.st_mtime_ns, after.st_ino) != (
                before.st_size,
                before.st_mtime_ns,
                before.st_ino,
            ):
                digest(str(tmp))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._ready(tmp, target, after.st_size)
        return after.st_size

    def _folder(self, folder: Path) -> None:
        if folder not in self._folders:
            make_dirs(folder)
            self._folders.add(folder)

    def _tmp(self, target: Path) -> Path:
        return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"

    def _ready(self, tmp: Path, target: Path, size: int) -> None:
        with self._guard:
            self._checked.append((tmp, target))
            self._bytes += size
            due = len(self._checked) >= BATCH_OBJECTS or self._bytes >= BATCH_BYTES
            due = due or time.monotonic() - self._since >= BATCH_SECONDS
        if due:
            self.flush()

    def write(self, key: str, chunks: Iterable[bytes], check: Callable[[], None]) -> None:
        """Write and check a temporary file; it becomes the object at the next ``flush``
        (one ``sync`` for many objects: a flush per object was 25x slower for small files)."""
        target = self.root / key
        self._folder(target.parent)
        tmp = self._tmp(target)
        try:
            size = 0
            with open(tmp, "xb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    size += len(chunk)
                check()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._ready(tmp, target, size)

    def flush(self) -> None:
        """Make the checked writes objects: their bytes on the disk first (``sync``), then
        each linked to its name (a link fails when the name exists: never rewritten), then
        their folders synced, many at once (one after the other, a batch's took a second)."""
        with self._linking:
            with self._guard:
                batch, self._checked, self._bytes = self._checked, [], 0
                self._since = time.monotonic()
            if not batch:
                return
            os.sync()
            for tmp, target in batch:
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, target)
                tmp.unlink(missing_ok=True)
            _fsync_folders(sorted({target.parent for _, target in batch}))

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.root / key, "rb")
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def local_path(self, key: str) -> str | None:
        path = self.root / key
        return str(path) if path.is_file() else None

    def stale_temporaries(self, prefix: str, older_than: float) -> list[Path]:
        """Temporary files of killed writes (older than ``older_than``, a timestamp)."""
        found = []
        for folder, _dirs, files in os.walk(self.root / prefix):
            for name in files:
                path = Path(folder) / name
                if name.startswith(".") and name.endswith(TMP_SUFFIX) and path.stat().st_mtime < older_than:
                    found.append(path)
        return found


def _fsync_folders(folders: list[Path]) -> None:
    """fsync every folder, many at once (a journal commits concurrent fsyncs together)."""
    if len(folders) <= 1:
        for folder in folders:
            fsync_dir(folder)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SYNC_THREADS, len(folders))) as pool:
        list(pool.map(fsync_dir, folders))


class BucketBackend:
    """Objects under a bucket prefix, through the filesystem of the matching source class
    (so URLs, credentials, options and error messages are the sources' own)."""

    def __init__(self, source: Any) -> None:
        self.url = source.url
        self._source = source
        self.fs = source.fs
        self.base = f"{source.bucket}/{source.prefix}".rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def _error(self, exc: Exception, what: str) -> SourceError:
        """The sources' one-line message for a failed call (secrets blanked), about the store."""
        failure = self._source._failure(exc, what)
        return SourceError(failure.message.replace("source ", "store ", 1), hint=failure.hint)

    def _retried(self, call: Callable[[], T]) -> T:
        """``call()``, tried again after a transient failure as the sources' calls are."""
        from vxds.sources.objectstore.failures import TRANSIENT

        source = self._source
        for attempt in range(source.retries + 1):
            try:
                return call()
            except Exception as exc:
                if source._classify(exc) != TRANSIENT or attempt == source.retries:
                    raise
                time.sleep(source.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        top = self._path(prefix)
        try:
            found = self._retried(lambda: self.fs.find(top, detail=True))
        except FileNotFoundError:
            return iter(())
        except Exception as exc:
            raise self._error(exc, f"cannot list {prefix}") from None
        start = len(self.base) + 1
        return iter(sorted((path[start:], int(info.get("size") or 0)) for path, info in found.items()))

    def exists(self, key: str) -> bool:
        try:
            return bool(self._retried(lambda: self.fs.exists(self._path(key))))
        except Exception as exc:
            raise self._error(exc, f"cannot look up {key}") from None

    def write(self, key: str, chunks: Iterable[bytes], check: Callable[[], None]) -> None:
        """A conditional write ("xb": S3's If-None-Match, GCS's and Azure's own): an object
        that appeared meanwhile is kept, never replaced."""
        if hasattr(self.fs, "_call_s3"):  # S3: parts side by side
            return self._write_parts(key, chunks, check)
        out = self.fs.open(self._path(key), "xb")
        try:
            for chunk in chunks:
                out.write(chunk)
            check()
        except BaseException:
            _discard(out)
            raise
        try:
            out.close()
        except Exception as exc:  # one written by another push meanwhile holds the same bytes
            if not _already_there(exc):
                raise self._error(exc, f"cannot write {key}") from None

    def _write_parts(self, key: str, chunks: Iterable[bytes], check: Callable[[], None]) -> None:
        from vxds.store.multipart import PartUpload

        bucket, _, path = self._path(key).partition("/")
        try:
            PartUpload(self.fs, bucket, path, self._source._retrying).write(chunks, check)
        except VxdsError:  # the check, or reading the source
            raise
        except Exception as exc:
            if not _already_there(exc):
                raise self._error(exc, f"cannot write {key}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            fh: BinaryIO = self.fs.open(self._path(key), "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        except Exception as exc:
            raise self._error(exc, f"cannot read {key}") from None
        return fh

    def delete(self, key: str) -> None:
        try:
            self._retried(lambda: self.fs.rm_file(self._path(key)))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error(exc, f"cannot delete {key}") from None

    def local_path(self, key: str) -> str | None:
        return None

    def flush(self) -> None:
        """Nothing to do: an upload is an object once complete."""


def _already_there(exc: BaseException) -> bool:
    """A conditional write refused because the object exists (HTTP 412)."""
    if isinstance(exc, FileExistsError):  # s3fs' translation of a 412
        return True
    text = f"{type(exc).__name__} {exc}"
    return "PreconditionFailed" in text or "412" in text or "ConditionNotMet" in text


def _discard(out: Any) -> None:
    """Throw away an unfinished upload: no object appears, now or when ``out`` is collected."""
    try:
        out.discard()
    finally:
        out.closed = True  # else fsspec's __del__ would close (and so commit) it
