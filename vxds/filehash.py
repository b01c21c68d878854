"""A file's digest, read while nothing writes to it: ``hash_file_key``.

It is ``vxds.hashing``'s (which re-exports every name here), kept apart so that a process
whose one job is hashing files imports nothing else: ``vxds verify --data`` forks its hasher
before click, orjson or the checks are imported (cli/early.py), and this module costs it
only blake3. It imports ``errors`` only.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import stat
import time
from collections.abc import Callable

from blake3 import blake3

from vxds.errors import SourceError

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
    a truncated file's SIGBUS kills that child and never vxds. The stat checks stay.

    The maps stay until the child ends: unmapping a GiB takes ~30 ms, and the digest is
    wanted now, so that cost is the child's exit, which nobody waits for."""
    global _mapper
    _mapper = _map_here


_KEPT: list[mmap.mmap] = []  # the child's last maps, left for its exit to unmap
KEEP_MAPS = 64  # each holds a file descriptor of its own


def _map_here(fd: int) -> str:

    # A pool of its own: blake3's global pool may have threads in the parent, not in a fork.
    hasher = blake3(max_threads=os.cpu_count() or 1)
    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    hasher.update(mapped)
    _KEPT.append(mapped)
    if len(_KEPT) > KEEP_MAPS:
        _KEPT.pop(0).close()
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
