"""A store in a local folder: objects as files under it, written so that none is ever seen
partial, and flushed to the disk many at a time.

A write goes to a uniquely named temporary file beside its object
(``.<name>.<pid>-<random><n>.tmp``, skipped by every listing) and is checked; the checked
files wait for the next ``flush`` (every 5,000 objects, 64 MiB or five seconds, and at the
end of a push), which makes them objects in three steps, each for the whole batch at once:
their bytes go to the disk (``vxds.fs.sync_files``: one ``syncfs`` for many files on Linux,
else an fsync of each from a pool of threads), each is renamed to its name unless the name
exists (``vxds.fs.rename_new``: an object is never rewritten), and the folders touched are
flushed (``sync_folders``). So no name ever points at bytes that are not on the disk yet,
and a process killed at any moment leaves whole objects and temporary files (which ``vxds
gc`` removes a day later). The folders of new prefixes are made without a flush of their
own: the flush of the batch that first renames into them covers them.

A large local file is copied in the kernel (``vxds.store.copy``, its disk write started as
the copy goes) while another thread hashes the source; when the source changed during the
copy, or was written too recently to tell, the copy itself is hashed instead.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from vxds.fs import make_dirs, rename_new, sync_files, sync_folders
from vxds.store.copy import copy_fd, write_all

TMP_SUFFIX = ".tmp"
# Checked writes become objects in batches of this many objects, bytes or seconds. (Each flush
# is a sync and a flush of each folder touched: at a thousand objects, ten flushes were a
# third of a push of 10,000 small files.)
BATCH_OBJECTS, BATCH_BYTES, BATCH_SECONDS = 5000, 64 << 20, 5.0
# A source changed this recently may have been written within one tick of the clock of
# the stat taken before the copy, unseen by it: its copy is hashed (as vxds.hashing does).
RACY_NS = 20_000_000
_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class FolderBackend:
    """Objects as files under a local folder."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root
        self._base = os.fspath(root)
        self._checked: list[tuple[str, str]] = []  # (temporary file, object) not yet renamed
        self._made: set[str] = set()  # folders made since the last flush
        self._bytes = 0
        self._since = time.monotonic()
        self._guard = threading.Lock()
        self._linking = threading.Lock()
        self._folders: set[str] = set()  # known to exist
        self._token = secrets.token_hex(4)
        self._count = itertools.count()

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        for key, path in self._walk(prefix):
            yield key, os.stat(path).st_size

    def names(self, prefix: str) -> Iterator[str]:
        """Every object's key, without a stat of each."""
        return (key for key, _ in self._walk(prefix))

    def _walk(self, prefix: str) -> Iterator[tuple[str, str]]:
        for folder, _dirs, files in os.walk(self.root / prefix):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                if not name.startswith("."):  # temporary names of writes under way
                    yield f"{rel}/{name}", os.path.join(folder, name)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def write(self, key: str, chunks: Iterable[bytes], check: Callable[[], None]) -> None:
        """Write and check a temporary file; it becomes the object at the next ``flush``
        (one sync for many objects: a flush per object was 25x slower for small files)."""
        tmp, fd, target = self._create(key)
        size = 0
        try:
            try:
                for chunk in chunks:
                    write_all(fd, chunk)
                    size += len(chunk)
            finally:
                os.close(fd)
            check()
        except BaseException:
            _remove(tmp)
            raise
        self._ready(tmp, target, size)

    def copy(self, key: str, src: str, digest: Callable[[str], str]) -> int:
        """Copy a local file in the kernel while another thread hashes it (the way
        materialize copies); ``digest(path)`` must return the digest of ``path`` and raise if
        it is not the object's. When the file changed during the copy, the copy is hashed."""
        started = time.time_ns()
        source = os.open(src, _READ)
        try:
            before = os.fstat(source)
            tmp, out, target = self._create(key)
            try:
                size = _copy_hashed(source, out, src, digest)
                after = os.stat(src)  # by name: the file hashed is the one copied
                if _stamp(after) != _stamp(before) or size != after.st_size or _racy(after, started):
                    digest(tmp)
            except BaseException:
                _remove(tmp)
                raise
        finally:
            os.close(source)
        self._ready(tmp, target, size)
        return size

    def _create(self, key: str) -> tuple[str, int, str]:
        """A new temporary file beside the object ``key`` (its folder made if need be), open
        for writing, and the object's path. (Paths are strings here: pathlib cost a third of
        the Python time of a small file's write.)"""
        folder, _, name = key.rpartition("/")
        folder = f"{self._base}/{folder}"
        if folder not in self._folders:
            made = make_dirs(Path(folder), sync=False)
            with self._guard:
                self._made.update(map(os.fspath, made))
                self._folders.add(folder)
        while True:
            tmp = f"{folder}/.{name}.{os.getpid()}-{self._token}{next(self._count):x}{TMP_SUFFIX}"
            try:
                return tmp, os.open(tmp, _CREATE, 0o666), f"{folder}/{name}"  # the umask applies
            except FileExistsError:  # a process forked with this backend: a token of its own
                self._token = secrets.token_hex(4)

    def _ready(self, tmp: str, target: str, size: int) -> None:
        with self._guard:
            self._checked.append((tmp, target))
            self._bytes += size
            due = len(self._checked) >= BATCH_OBJECTS or self._bytes >= BATCH_BYTES
            due = due or time.monotonic() - self._since >= BATCH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Make the checked writes objects: their bytes on the disk first, then each renamed
        to its name unless the name exists (never rewritten), then the folders touched, their
        parents and those of the folders made flushed, all at once."""
        with self._linking:
            with self._guard:
                batch, self._checked, self._bytes = self._checked, [], 0
                made, self._made = self._made, set()
                self._since = time.monotonic()
            if not batch and not made:
                return
            sync_files([tmp for tmp, _ in batch])
            for tmp, target in batch:
                try:
                    rename_new(tmp, target)
                except FileExistsError:  # the same bytes, written by another push meanwhile
                    _remove(tmp)
            touched = {os.path.dirname(target) for _, target in batch}
            # and their parents: a folder a killed push made may never have been flushed
            sync_folders(touched | set(map(os.path.dirname, touched | made)))

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


def _copy_hashed(source: int, out: int, src: str, digest: Callable[[str], str]) -> int:
    """Copy ``source`` into ``out`` (then closed) while another thread runs ``digest(src)``."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(digest, src)
        try:
            size = copy_fd(source, out)
        finally:
            os.close(out)
            hashing.exception()  # wait: the hashing ends before the copy is judged or removed
        hashing.result()
    return size


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _racy(st: os.stat_result, started: int) -> bool:
    return max(st.st_mtime_ns, st.st_ctime_ns) >= started - RACY_NS


def _stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What every write changes (size, modification and change time) and which file it is."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
