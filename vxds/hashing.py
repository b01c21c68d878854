"""Every digest vxds writes is defined here.

Changing anything in this module changes every digest in every lock ever written, so it
is pinned by tests with exact values (``tests/test_hashing.py``). A digest is written as
``blake3:<64 hex digits>``.

* ``digest_bytes``: blake3 of raw bytes.
* ``canonical_json``: the canonical JSON form used for resource lines and for digests of
  structured values: keys sorted, no insignificant whitespace, UTF-8, no ASCII escaping.
* ``hash_file``: blake3 of a file's bytes, read whole for small files and in blocks
  (multi-threaded) for large ones; both give the same digest. A file that changes while
  it is read is read again, then refused (``FileChanged``): never a digest of two contents.
  The reading itself is ``vxds.filehash``'s (re-exported here), a module that imports
  nothing but blake3, for a process whose one job is hashing.
* ``HashCache``: remembers (size, mtime, inode) -> digest so unchanged files are not read.
* ``new_hasher``: a streaming hasher for an algorithm a lock may record besides blake3 (a
  store's own ``sha256``, ``md5`` or ``crc32c``, docs/checksums.md), for checking bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
from blake3 import blake3

from vxds.errors import SourceError
from vxds.executor import Executor
from vxds.executor.local import LOCAL, SMALL_ITEM
from vxds.executor.local import default_jobs as local_jobs
from vxds.filehash import BLOCK as BLOCK
from vxds.filehash import MMAP_THRESHOLD as MMAP_THRESHOLD
from vxds.filehash import PREFIX as PREFIX
from vxds.filehash import RACY_NS as RACY_NS
from vxds.filehash import READ_ATTEMPTS as READ_ATTEMPTS
from vxds.filehash import FileChanged as FileChanged
from vxds.filehash import StatKey as StatKey
from vxds.filehash import hash_file_key as hash_file_key
from vxds.filehash import is_map_child as is_map_child
from vxds.filehash import map_in_this_process as map_in_this_process
from vxds.fs import JsonCache

T = TypeVar("T")

ALGORITHM = "blake3"

# Files smaller than this are not worth a thread: see ``hash_files``.
SMALL_FILE = SMALL_ITEM


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> Any: ...

    def hexdigest(self) -> str: ...


class _Crc32c:
    """CRC-32C (Castagnoli) as GCS and S3 keep it: 8 hex digits of the big-endian value."""

    def __init__(self) -> None:
        import google_crc32c

        self._value = 0
        self._extend = google_crc32c.extend

    def update(self, data: bytes | memoryview, /) -> None:
        self._value = self._extend(self._value, bytes(data))

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


def new_hasher(algorithm: str) -> Hasher:
    """A streaming hasher for ``algorithm``: ``blake3``, ``crc32c`` or a ``hashlib`` name."""
    import hashlib

    if algorithm == ALGORITHM:
        hasher: Hasher = blake3(max_threads=blake3.AUTO)
        return hasher
    if algorithm == "crc32c":
        try:
            return _Crc32c()
        except ImportError:
            raise SourceError("cannot check a 'crc32c' hash: install google-crc32c") from None
    try:
        return hashlib.new(algorithm)
    except ValueError:
        raise SourceError(f"cannot check a {algorithm!r} hash: no such algorithm in this Python") from None


def digest_bytes(data: bytes) -> str:
    """``blake3:<hex>`` of ``data``."""
    return PREFIX + blake3(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value``: sorted keys, compact, UTF-8.

    Raises ``TypeError`` for values JSON cannot hold (sets, bytes, non-string keys,
    integers beyond 64 bits).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(str(exc)) from None


def canonical_json_line(value: Any) -> bytes:
    """``canonical_json(value) + b"\\n"``, made by one ``orjson.dumps`` (a lock line)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError as exc:
        raise TypeError(str(exc)) from None


def digest_json(value: Any) -> str:
    """``blake3:<hex>`` of the canonical JSON of ``value``."""
    return digest_bytes(canonical_json(value))


def digest_text(text: str) -> str:
    """Digest of source text with line endings normalised, so a CRLF checkout agrees."""
    return digest_bytes(text.replace("\r\n", "\n").encode("utf-8"))


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """``blake3:<hex>`` of a file's bytes, read while nothing wrote to it (``hash_file_key``).

    ``size`` is not needed (the file is stat'ed as it is read); callers may still pass it.
    """
    return hash_file_key(path)[0]


def default_jobs() -> int:
    """Threads for hashing files that are not small: blake3 and file reads release the GIL."""
    return local_jobs()


def map_files(
    work: Callable[[str, int], T],
    paths: Iterable[tuple[str, int]],
    *,
    jobs: int | None = None,
    on_done: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> list[T]:
    """``work(path, size)`` of each ``(path, size)`` pair, in input order.

    On this machine (``executor`` None or local), files of ``SMALL_FILE`` bytes or more are
    done in parallel on a thread pool (reads and blake3 release the GIL), smaller files on
    the calling thread, where per-file overhead is Python's and threads would only fight
    over the GIL. On a cluster, in batched tasks on its workers (``vxds.executor``). The
    first exception ``work`` raises is raised here.
    """
    items = list(paths)
    return (executor or LOCAL).map(
        partial(_pair, work), items, [size for _, size in items], jobs=jobs, on_done=on_done
    )


def _pair(work: Callable[[str, int], T], item: tuple[str, int]) -> T:
    return work(*item)


def hash_files(
    paths: Iterable[tuple[str, int]],
    *,
    jobs: int | None = None,
    on_done: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> Iterator[str]:
    """Digests of ``(path, size)`` pairs, in input order (see ``map_files``)."""
    return iter(map_files(hash_file, paths, jobs=jobs, on_done=on_done, executor=executor))


class HashCache(JsonCache):
    """A stat cache: absolute path -> (size, mtime_ns, inode, digest), kept in one file.

    A file whose size, modification time and inode all match is not read again. The
    cache is an optimisation only (``JsonCache``): a missing or unreadable file is empty.
    """

    VERSION = 1

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, self.VERSION)
        self._entries = self.table("entries")

    def get(self, path: str, key: StatKey) -> str | None:
        entry = self._entries.get(path)
        try:
            if entry is not None and entry[0] == key[0] and entry[1] == key[1] and entry[2] == key[2]:
                return str(entry[3])
        except (TypeError, IndexError, KeyError):  # a cache file of the wrong shape is a miss
            pass
        return None

    def put(self, path: str, key: StatKey, digest: str) -> None:
        self._entries[path] = [key[0], key[1], key[2], digest]
        self.mark()
