"""File-system helpers: the one way vxds writes a file, and the one way it takes a lock.

Every file a user sees is written with ``atomic_write(path, data)``: the bytes go to a
uniquely named temporary file in ``path``'s own folder, are flushed to the disk (fsync), the
temporary file is renamed over ``path``, and the folder is flushed so the rename survives a
crash too. A reader, a killed process or a crashed machine sees the old file or the new
one, never a mixture. ``StagedFile`` is the same mechanism for a writer that learns the
file's name only after writing it (a content-addressed store). Flushes of your own
(``fsync_dir``, ``fsync_file``, many files at once) are in ``vxds.fs.flush``; scratch files
under ``.vxds/tmp/`` are made with ``vxds.fs.writer.create``.

Any ``OSError`` of a write names the file being written, by its final name (a full disk
says which file, on which disk, it could not write), and a failed write leaves no
temporary file: bytes go out through ``os.write`` (``vxds.fs.writer``).

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
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from vxds.fs.flush import (
    SYNC_EACH_MAX,
    SYNC_THREADS,
    exchange,
    fsync_dir,
    fsync_file,
    rename_new,
    start_writeback,
    sync_files,
    sync_folders,
)
from vxds.fs.writer import writer

__all__ = [
    "SYNC_EACH_MAX",
    "SYNC_THREADS",
    "JsonCache",
    "StagedFile",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "exchange",
    "exclusive",
    "files_under",
    "fsync_dir",
    "fsync_file",
    "make_dirs",
    "pid_alive",
    "rename_new",
    "start_writeback",
    "sync_files",
    "sync_folders",
    "temp_owner",
]

_TEMP_RE = re.compile(r"\..+\.(?P<pid>\d+)-[0-9a-f]+\.tmp\Z")
_STAGED_BUFFER = 64 << 10


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

    An ``OSError`` names ``folder / name`` while writing and ``target`` in ``commit``, never
    the temporary name; after a failure the temporary file is gone.

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
            except OSError as exc:
                raise _named(exc, folder / name) from None
        self._file = writer(fd, str(folder / name), buffer_size=_STAGED_BUFFER)
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self, target: Path, *, mode: int | None = None, durable: bool = True) -> None:
        """Flush the bytes to the disk, rename over ``target``, flush the folder.

        ``durable=False`` skips both flushes: the rename is still atomic against a killed
        process, and only a crash of the machine can lose the new file (for caches).
        """
        try:
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
        except OSError as exc:
            raise _named(exc, target) from None

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._file.close()  # its flush fails again on a full disk; the file goes anyway
        except OSError:
            pass
        finally:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` alone (not a temporary name beside it)."""
    exc.filename, exc.filename2 = str(path), None
    return exc


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
            _named(exc, path)
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
