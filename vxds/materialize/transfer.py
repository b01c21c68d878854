"""Moving one resource's bytes to a temporary name in OUT, checking them on the way.

Each function returns the blake3 (``blake3:<hex>``) and size of what now sits at the
temporary name, after checking it against the lock; on a mismatch it raises
``IntegrityError`` and the caller removes the temporary file. Nothing here gives a file its
final name.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from typing import BinaryIO

from blake3 import blake3

from vxds.hashing import MMAP_THRESHOLD, PREFIX, hash_file
from vxds.locks.verified_read import IntegrityError, expected, mismatch, new_hasher
from vxds.resource import Resource

MODES = ("copy", "hardlink", "symlink", "reflink")
BLOCK = 8 << 20
OVERLAP_THRESHOLD = 32 << 20  # from this size, copying and hashing run side by side
FICLONE = 0x40049409  # Linux ioctl: share the source's blocks (btrfs, XFS, ...)
# Errors that mean "this file system cannot do that", not "this file is bad".
UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOTTY, errno.EMLINK}
)


class Unsupported(Exception):
    """The requested mode cannot be used here; the caller copies instead."""

    def __init__(self, mode: str, reason: str) -> None:
        super().__init__(f"{mode}: {reason}")
        self.mode, self.reason = mode, reason


def _check(resource: Resource, digest: str, size: int, path: str | None = None) -> None:
    """Raise ``IntegrityError`` when a blake3 ``digest`` or ``size`` disagrees with the lock.

    For a lock hash in another algorithm, ``path`` (the placed bytes) is hashed with it.
    """
    want = expected(resource)
    if want is None or want[0] == "blake3":
        problem = mismatch(resource, digest[len(PREFIX) :], size)
    elif path is not None:
        problem = mismatch(resource, hash_with(path, want[0]), size)
    else:  # pragma: no cover - callers pass a path for other algorithms
        problem = None
    if problem is not None:
        raise IntegrityError(problem)


def hash_with(path: str, algorithm: str) -> str:
    """Hex digest of a file in any supported algorithm."""
    if algorithm == "blake3":
        return hash_file(path)[len(PREFIX) :]
    hasher = new_hasher(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


StatKey = tuple[int, int, int]  # size, mtime_ns, inode: how a rerun knows a file is untouched


def _key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _create(tmp: str) -> int:
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def copy_stream(resource: Resource, raw: BinaryIO, tmp: str) -> tuple[str, int, StatKey]:
    """Copy a stream block by block, hashing each block before it is written."""
    want = expected(resource)
    other = new_hasher(want[0]) if want is not None and want[0] != "blake3" else None
    hasher, size = blake3(max_threads=blake3.AUTO), 0
    fd = _create(tmp)
    try:
        while block := raw.read(BLOCK):
            hasher.update(block)
            if other is not None:
                other.update(block)
            _write_all(fd, block)
            size += len(block)
        key = _key(os.fstat(fd))
    finally:
        os.close(fd)
    digest = PREFIX + hasher.hexdigest()
    if other is not None:
        problem = mismatch(resource, other.hexdigest(), size)
        if problem is not None:
            raise IntegrityError(problem)
    else:
        _check(resource, digest, size)
    return digest, size, key


def copy_file(resource: Resource, src: str, tmp: str) -> tuple[str, int, StatKey]:
    """Copy a local file: small ones read once (hash, then write); large ones copied in
    the kernel and the copy hashed with blake3's threads, so the bytes checked are the
    bytes placed."""
    want = expected(resource)
    if want is not None and want[0] != "blake3":
        with open(src, "rb") as raw:
            return copy_stream(resource, raw, tmp)
    fd = os.open(src, os.O_RDONLY)
    try:
        data = os.read(fd, MMAP_THRESHOLD)
        small = len(data) < MMAP_THRESHOLD
        if small:  # all of it, unless the file is still growing: then take the large path
            small = not os.read(fd, 1)
    finally:
        os.close(fd)
    if small:
        digest = PREFIX + blake3(data).hexdigest()
        _check(resource, digest, len(data))
        out = _create(tmp)
        try:
            _write_all(out, data)
            key = _key(os.fstat(out))
        finally:
            os.close(out)
        return digest, len(data), key
    return _copy_large(resource, src, tmp)


def _copy_large(resource: Resource, src: str, tmp: str) -> tuple[str, int, StatKey]:
    """Copy in the kernel while another thread hashes the source (both read the same cached
    pages, on two cores). If the source changed meanwhile, the copy itself is hashed."""
    before = os.stat(src)
    if before.st_size < OVERLAP_THRESHOLD:
        shutil.copyfile(src, tmp)
        digest = hash_file(tmp)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(hash_file, src, before.st_size)
            shutil.copyfile(src, tmp)  # sendfile/copy_file_range on Linux
            digest = hashing.result()
        after = os.stat(src)
        if (after.st_size, after.st_mtime_ns, after.st_ino) != _key(before):
            digest = hash_file(tmp)
    st = os.stat(tmp)
    _check(resource, digest, st.st_size)
    return digest, st.st_size, _key(st)


def link_file(
    resource: Resource,
    src: str,
    dest: str,
    mode: str,
    cached: Callable[[StatKey], str | None] | None = None,
    st: os.stat_result | None = None,
) -> tuple[str, int, StatKey]:
    """Hard- or symlink ``dest`` to ``src`` once ``src`` hashes to the locked value.

    ``cached`` may know the digest of ``src`` from the hash cache ``vxds lock`` keeps, when
    its size, mtime and inode are unchanged since it was hashed; then it is not read again.
    A link is created whole or not at all, so ``dest`` may be the final name when nothing
    is there yet (``FileExistsError`` otherwise). ``st`` is ``src``'s stat when the caller
    has just taken it (no second system call for it).
    """
    if st is None:
        st = os.stat(src)
    digest = cached(_key(st)) if cached is not None else None
    if digest is None:
        digest = hash_file(src, st.st_size)
    _check(resource, digest, st.st_size, src)
    try:
        if mode == "hardlink":
            os.link(src, dest)
        else:
            os.symlink(os.path.abspath(src), dest)
    except OSError as exc:  # FileExistsError (EEXIST) is not in UNSUPPORTED: re-raised
        if exc.errno in UNSUPPORTED:
            raise Unsupported(mode, os.strerror(exc.errno or 0).lower()) from None
        raise
    return digest, st.st_size, _key(st)


def reflink_file(resource: Resource, src: str, tmp: str) -> tuple[str, int, StatKey]:
    """Clone ``src``'s blocks into ``tmp`` (no bytes copied), then hash the clone."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        raise Unsupported("reflink", "not available on this system") from None
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        except OSError as exc:
            if exc.errno in UNSUPPORTED or exc.errno == errno.EBADF:
                raise Unsupported("reflink", "the file system cannot share blocks") from None
            raise
    digest = hash_file(tmp)
    st = os.stat(tmp)
    _check(resource, digest, st.st_size, tmp)
    return digest, st.st_size, _key(st)
