"""File-system helpers: the one way vxds writes a file, and the one way it takes a lock.

Every file a user sees is written with ``atomic_write(path, data)``: the bytes go to a
uniquely named temporary file in ``path``'s own folder, are flushed to the disk (fsync), the
temporary file is renamed over ``path``, and the folder is flushed so the rename survives a
crash too. A reader, a killed process or a crashed machine sees the old file or the new
one, never a mixture. ``StagedFile`` is the same mechanism for a writer that learns the
file's name only after writing it (a content-addressed store); ``fsync_dir`` flushes a
folder after renames or removals of your own. For many files at once: ``sync_files`` and
``sync_folders`` (one ``syncfs`` on Linux), ``rename_new`` (a rename that never replaces).

Temporary files are named ``.<name>.<pid>-<random>.tmp``: unique between processes and
between threads, and ``temp_owner`` reads back the pid, so leftovers of a killed process can
be told from the files of a live one (``pid_alive``).

``exclusive(path)`` holds an advisory lock (``flock``) on ``path`` until the block ends;
another process asking for it waits. A killed holder releases it.

``JsonCache`` is the one local cache file: versioned JSON under ``.vxds/``, loaded once,
written atomically when it changed, and an empty cache whenever it cannot be read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

_TEMP_RE = re.compile(r"\..+\.(?P<pid>\d+)-[0-9a-f]+\.tmp\Z")
# fsync of a folder is refused by some file systems and by Windows; the rename still happened.
_NO_DIR_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EISDIR}


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (renames, new and removed files in it) to the disk."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        if exc.errno in _NO_DIR_FSYNC:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def make_dirs(path: Path, *, sync: bool = True) -> list[Path]:
    """``mkdir -p`` that flushes each new folder's parent, so the folders survive a crash;
    returns the folders it made. ``sync=False`` leaves the flushes to the caller (who must
    ``sync_folders`` the parents of the folders returned before relying on them)."""
    if path.is_dir():
        return []
    made = make_dirs(path.parent, sync=sync)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise
        return made
    if sync:
        fsync_dir(path.parent)
    return [*made, path]


# Up to this many files (or folders) are flushed one by one, which costs only their own
# bytes; more are flushed by one ``syncfs`` of their file system on Linux (10,000 small
# files: 0.06-0.15 s, against 0.64 s for an fsync of each from 16 threads).
SYNC_EACH_MAX = 64
SYNC_THREADS = 16


def sync_files(paths: Sequence[str]) -> None:
    """Flush the bytes of every file in ``paths`` to the disk, all at once: many by one
    ``syncfs`` of each file system they are on (Linux), else each fsynced, side by side
    (a journal commits concurrent fsyncs together)."""
    if len(paths) > SYNC_EACH_MAX and _syncfs({os.path.dirname(path) for path in paths}):
        return
    _each(_fsync_file, paths)


def sync_folders(folders: Iterable[str]) -> None:
    """``fsync_dir`` of every folder (its new, renamed and removed entries), all at once as
    ``sync_files`` flushes files."""
    unique = sorted(set(folders))
    if len(unique) > SYNC_EACH_MAX and _syncfs(set(unique)):
        return
    _each(fsync_dir, unique)


def rename_new(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (``FileExistsError``, ``src`` left as
    it is): Linux ``renameat2(RENAME_NOREPLACE)``, else (or where a file system refuses it)
    a hard link, which never replaces a file either, and the removal of ``src``."""
    renameat2 = _linux_call("renameat2")
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        failure = _failure(src, dst)
        if failure.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise failure
    os.link(src, dst)
    os.unlink(src)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _each(flush: Callable[[str], None], paths: Sequence[str]) -> None:
    if len(paths) <= 1:
        for path in paths:
            flush(path)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SYNC_THREADS, len(paths))) as pool:
        list(pool.map(flush, paths))


def _syncfs(folders: set[str]) -> bool:
    """``syncfs`` of each file system the folders are on; False where there is no syncfs."""
    syncfs = _linux_call("syncfs")
    if syncfs is None:
        return False
    devices = {os.stat(folder).st_dev: folder for folder in sorted(folders)}
    for folder in devices.values():
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if syncfs(fd) != 0:
                raise _failure(folder)
        finally:
            os.close(fd)
    return True


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes of ``fd`` to the disk now, without waiting
    (Linux ``sync_file_range``), so that a later fsync has little left to wait for: a copy of
    1 GiB then fsync took 0.8-1.0 s, with writeback started after each 64 MiB 0.53-0.56 s.
    A hint: nothing happens where it is not available, and nothing is promised."""
    sync_file_range = _linux_call("sync_file_range")
    if sync_file_range is not None:
        sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


_AT_FDCWD, _RENAME_NOREPLACE, _SYNC_FILE_RANGE_WRITE = -100, 1, 2
_SIGNATURES = {
    "syncfs": ("c_int",),
    "sync_file_range": ("c_int", "c_int64", "c_int64", "c_uint"),
    "renameat2": ("c_int", "c_char_p", "c_int", "c_char_p", "c_uint"),
}
_CALLS: dict[str, Any] = {}


def _linux_call(name: str) -> Any:
    """The C library's function ``name`` with its argument types (Linux), else None."""
    if name not in _CALLS:
        _CALLS[name] = _load_call(name)
    return _CALLS[name]


def _load_call(name: str) -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        call = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # no such function in this C library
        return None
    call.argtypes = [getattr(ctypes, kind) for kind in _SIGNATURES[name]]
    return call


def _failure(path: str, other: str | None = None) -> OSError:
    """The ``OSError`` of the C call that just failed on this thread."""
    import ctypes

    code = ctypes.get_errno()
    return OSError(code, os.strerror(code), path, None, other)


def files_under(folder: str | Path) -> list[str]:
    """Every file below ``folder`` as a sorted ``/``-separated path inside it; linked folders
    are not entered, and a folder that cannot be listed is an ``OSError``."""
    found: list[str] = []
    for here, _dirs, names in os.walk(folder, onerror=_raise):
        inside = os.path.relpath(here, folder).replace(os.sep, "/")
        found.extend(name if inside == "." else f"{inside}/{name}" for name in names)
    return sorted(found)


def _raise(exc: OSError) -> None:
    raise exc


def temp_owner(name: str) -> int | None:
    """The pid in the name of a temporary file made here, or None for any other name."""
    match = _TEMP_RE.match(name)
    return int(match["pid"]) if match else None


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine (or when that cannot be known)."""
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True
    return True


class StagedFile:
    """A new, uniquely named temporary file in ``folder``; ``commit(target)`` makes it
    ``target`` durably, leaving the block without a commit removes it.

    >>> with StagedFile(folder, "blob") as out:
    ...     out.write(data)
    ...     out.commit(folder / name)
    """

    def __init__(self, folder: Path, name: str) -> None:
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        )
        while True:
            self.path = folder / f".{name}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
            try:
                fd = os.open(self.path, flags, 0o666)  # the umask applies, as for any new file
                break
            except FileExistsError:
                continue
        self._file = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self, target: Path, *, mode: int | None = None, durable: bool = True) -> None:
        """Flush the bytes to the disk, rename over ``target``, flush the folder.

        ``durable=False`` skips both flushes: the rename is still atomic against a killed
        process, and only a crash of the machine can lose the new file (for caches).
        """
        self._file.flush()
        if durable:
            os.fsync(self._file.fileno())
        if mode is not None:
            os.chmod(self.path, mode)
        self._file.close()
        os.replace(self.path, target)
        self._done = True
        if durable:
            fsync_dir(target.parent)

    def discard(self) -> None:
        if not self._done:
            self._file.close()
            self.path.unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()


def atomic_write(path: Path, data: bytes | Iterable[bytes], *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` (bytes, or chunks of bytes written in order) so that
    any crash leaves the old file or the new one; an existing file keeps its permissions.

    An ``OSError`` names ``path`` (a full disk, say, is reported for the file being written).
    ``durable=False`` (caches only) skips the flushes to the disk; see ``StagedFile.commit``.
    """
    chunks = [data] if isinstance(data, bytes) else data
    try:
        mode: int | None = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = None
    try:
        with StagedFile(path.parent, path.name) as out:
            for chunk in chunks:
                out.write(chunk)
            out.commit(path, mode=mode, durable=durable)
    except OSError as exc:
        if exc.filename is None or temp_owner(Path(exc.filename).name) is not None:
            exc.filename = str(path)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write`` (kept as a name for existing callers)."""
    atomic_write(path, data)


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text, written as given (``\\n`` stays ``\\n``)."""
    atomic_write(path, text.encode("utf-8"))


@contextlib.contextmanager
def exclusive(path: Path | None) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (created if missing) for the block; wait while
    another process holds it. ``None``, or a platform without ``flock``: no lock.

    Not re-entrant: a process that asks again for a lock it holds waits for ever.
    """
    if path is None or os.name == "nt":
        yield
        return
    import fcntl

    make_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class JsonCache:
    """One versioned JSON file of local state under ``.vxds/``: an optimisation, never the truth.

    ``data`` is what the file held when the same ``version`` of the same cache wrote it; a
    missing, unreadable, damaged or older file is an empty cache, so a cache can never make
    a command fail, only slower. ``mark()`` says the data changed; ``save()`` then writes it
    with ``atomic_write`` (not flushed to the disk: a cache lost in a crash is rebuilt) and
    ignores a failure to write, since the next run only does more work.
    """

    def __init__(self, path: Path | None, version: int | str) -> None:
        self.path = path
        self.version = version
        self.data: dict[str, Any] = self._load()
        self.dirty = False

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if not isinstance(data, dict) or data.pop("version", None) != self.version:
            return {}
        return data

    def table(self, key: str) -> dict[str, Any]:
        """``data[key]`` as a JSON object (a new empty one when it is missing or not an object)."""
        value = self.data.get(key)
        if not isinstance(value, dict):
            value = self.data[key] = {}
        return value

    def mark(self) -> None:
        self.dirty = True

    def save(self) -> bool:
        """Write the cache if it changed; True when it was written."""
        if self.path is None or not self.dirty:
            return False
        payload = orjson.dumps({"version": self.version, **self.data})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, payload, durable=False)
        except OSError:
            return False
        self.dirty = False
        return True
