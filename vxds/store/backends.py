"""Where a store's objects live: a local folder (``vxds.store.folder``), or a bucket reached
through fsspec (here).

Both answer the same calls on keys relative to the store's root (``blake3/ab/cd…``):
``listing`` (every key and its size, in one listing), ``names`` (the keys alone),
``exists``, ``write`` (atomic and never over an object that is there), ``flush``, ``open``
and ``delete``. A write is given a check that runs after the last chunk and before the
object becomes visible: when it raises, nothing is left under the key.

A folder writes a uniquely named temporary file beside the object, checks it, and at the
next ``flush`` makes a batch of them objects at once, never one visible before its bytes
are on the disk (see ``vxds.store.folder``). A bucket writes
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

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Protocol, TypeVar

from vxds.errors import SourceError, VxdsError
from vxds.store.folder import FolderBackend

__all__ = ["Backend", "BucketBackend", "FolderBackend"]

T = TypeVar("T")


class Backend(Protocol):
    url: str

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]: ...

    def names(self, prefix: str) -> Iterator[str]: ...

    def exists(self, key: str) -> bool: ...

    def write(self, key: str, chunks: Iterable[bytes], check: Callable[[], None]) -> None: ...

    def flush(self) -> None: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> str | None: ...


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

    def names(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self.listing(prefix))

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
