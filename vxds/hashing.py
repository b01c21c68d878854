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
* ``HashCache``: remembers (size, mtime, inode) -> digest so unchanged files are not read.
* ``new_hasher``: a streaming hasher for an algorithm a lock may record besides blake3 (a
  store's own ``sha256``, ``md5`` or ``crc32c``, docs/checksums.md), for checking bytes.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import time
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
from vxds.fs import JsonCache

T = TypeVar("T")

ALGORITHM = "blake3"
PREFIX = "blake3:"

# Files at least this large are read in blocks of BLOCK bytes and hashed with blake3's own
# threads; smaller ones are read whole. (The name is from when large files were mapped: a
# file truncated while it is mapped kills the process with SIGBUS, and a source file is
# another program's to truncate, so they are read instead.)
MMAP_THRESHOLD = 1 << 20
BLOCK = 8 << 20
# A file that changes while it is read is read again, this many times in all.
READ_ATTEMPTS = 3
# File times tick coarsely (a kernel tick, a few ms; whole seconds on some file systems), so
# a write in the same tick as a read's first stat leaves both stats equal. A file changed
# that close to the read must read the same twice before its digest is trusted.
RACY_NS = 20_000_000
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


StatKey = tuple[int, int, int]  # size, mtime_ns, inode


class FileChanged(SourceError):
    """A file changed each time it was read: no digest of it can be trusted."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"{path} changed while it was read ({READ_ATTEMPTS} times); try again when nothing writes to it"
        )


def _stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What every write changes (size, modification and change time) and which file it is."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _digest(fh: io.FileIO, size: int) -> str:
    if size < MMAP_THRESHOLD:
        return PREFIX + blake3(fh.read()).hexdigest()
    if size >= MAP_IN_CHILD and (mapped := _mapper(fh.fileno())) is not None:
        return mapped
    hasher = blake3(max_threads=blake3.AUTO)
    block = bytearray(BLOCK)
    view = memoryview(block)
    while count := fh.readinto(block):
        hasher.update(view[:count])
    return PREFIX + hasher.hexdigest()


# Files at least this large are hashed through a memory map, as b3sum does (no copy of each
# byte out of the page cache, every core hashing), in a child process given the open file:
# a file truncated while it is mapped kills whoever reads the lost pages with SIGBUS, and
# that must be the child, never vxds. A child that fails for any reason is answered by
# reading the file here instead; the stats around the read judge either digest alike.
MAP_IN_CHILD = 256 << 20
_MAP_CHILD = """
import mmap, sys
from blake3 import blake3
hasher = blake3(max_threads=blake3.AUTO)
with mmap.mmap(int(sys.argv[1]), 0, access=mmap.ACCESS_READ) as mapped:
    hasher.update(mapped)
sys.stdout.write(hasher.hexdigest())
"""


def is_map_child(argv: object) -> bool:
    """Whether ``argv`` is the command of that child (``vxds.recipes.audit`` does not count
    vxds' own hasher as a subprocess of the recipe being run)."""
    import sys

    return isinstance(argv, list) and argv[:3] == [sys.executable, "-c", _MAP_CHILD] and len(argv) == 4


def _mapped_digest(fd: int) -> str | None:
    """The digest of the open file ``fd`` hashed through a memory map in a child process, or
    None when that child did not give one (no such child here, or it died: SIGBUS)."""
    if os.name != "posix":
        return None
    import subprocess
    import sys

    try:
        done = subprocess.run(
            [sys.executable, "-c", _MAP_CHILD, str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return None
    hexdigest = done.stdout.decode("ascii", "replace")
    if done.returncode != 0 or len(hexdigest) != 64 or hexdigest.strip("0123456789abcdef"):
        return None
    return PREFIX + hexdigest


def hash_file_key(path: str | os.PathLike[str]) -> tuple[str, StatKey]:
    """``blake3:<hex>`` of a file's bytes, and the (size, mtime_ns, inode) they had.

    The open file is stat'ed before and after it is read. A writer changes its size, its
    modification or its change time, and a read it overlapped may hash bytes of two
    contents, a digest of nothing the file ever held; so a file that changed is read
    again. A file whose times are as recent as the read itself (``RACY_NS``) could have
    been written within one tick of the clock unseen, so it counts only once two reads in a
    row agree. After ``READ_ATTEMPTS`` reads, ``FileChanged``. Anything but a regular file
    (a FIFO, which would wait for a writer forever; a folder) is an ``OSError``.
    """
    name = os.fspath(path)
    agreed: tuple[str, tuple[int, ...]] | None = None
    for _ in range(READ_ATTEMPTS + 1):
        started = time.time_ns()
        digest, before, after = _read_once(name)
        stamp = _stamp(after)
        if _stamp(before) != stamp:
            agreed = None
            continue
        racy = max(after.st_mtime_ns, after.st_ctime_ns) >= started - RACY_NS
        if not racy or agreed == (digest, stamp):
            return digest, (after.st_size, after.st_mtime_ns, after.st_ino)
        agreed = (digest, stamp)
    raise FileChanged(name)


def map_in_this_process() -> None:
    """From now on, map large files in this very process instead of a child: only for a
    forked child whose one job is hashing (``verify --data`` ahead, cli/prefetch.py), where
    a truncated file's SIGBUS kills that child and never vxds. The stat checks stay."""
    global _mapper
    _mapper = _map_here


def _map_here(fd: int) -> str:
    import mmap

    # A pool of its own: blake3's global pool may have threads in the parent, not in a fork.
    hasher = blake3(max_threads=os.cpu_count() or 1)
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
        hasher.update(mapped)
    return PREFIX + hasher.hexdigest()


_mapper: Callable[[int], str | None] = _mapped_digest


def _read_once(name: str) -> tuple[str, os.stat_result, os.stat_result]:
    """One read of a file: its digest, and its stats before and after."""
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", buffering=0) as fh:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        digest = _digest(fh, before.st_size)
        after = os.fstat(fd)
    return digest, before, after


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
