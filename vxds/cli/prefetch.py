"""``verify --data``: hash the locks' large files while the checks run.

``vxds verify`` calls ``start`` before it imports the checks (the ``vxds.verify`` package
imports every one of them). ``start`` lists the large files of the locks and takes over the
child ``cli/early.py`` forked for a plain ``verify --data`` before click was imported, when
that child hashes exactly those files; otherwise it starts hashing them itself (a forked
child, or a thread). It writes the list to ``.vxds/prefetch`` for the next run's early
child. It lives beside the command because it must not import ``vxds.verify``; it imports
only what reading a lock header (``tomllib``) and its lines (``orjson``) needs.

Nothing here decides a finding. The lock is not checked yet, so its paths are only hashed
when they resolve inside the source folder to a regular file. The digests wait, keyed by
path with the stat the bytes had; ``check_data`` takes one only for a path it reached
through its own checks, when the file's stat is still that one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from vxds.cli import early
from vxds.hashing import PREFIX, StatKey, hash_file_key

LARGE = 32 << 20  # smaller files are hashed by the check itself, where threads do not pay
NOT_ONE_FILE = ("ClinicalRecord", "DICOMSeries", "Zarr")  # as verify/data.py: built from more files


class Prefetch:
    """Digests of large files, hashed while the checks run; ``get`` waits for them.

    On Linux, when no other thread runs, a forked child hashes them (``early.fork_hasher``):
    it starts at once, with the modules already imported, and maps each file as ``b3sum``
    does (a file truncated while it is mapped kills that child, never vxds: its files are
    then hashed by the check itself). Otherwise a thread here reads them. ``hasher`` is a
    child forked already, by ``early.start``, for exactly ``paths``.
    """

    def __init__(self, paths: list[str], hasher: early.Hasher | None = None) -> None:
        self._paths = paths
        self._digests: dict[str, tuple[str, StatKey]] = {}
        self._child = hasher
        self._thread: threading.Thread | None = None
        if hasher is None and paths:
            if sys.platform.startswith("linux") and threading.active_count() == 1:
                self._child = early.fork_hasher(paths)
            else:
                self._thread = threading.Thread(target=self._hash, name="vxds-prefetch", daemon=True)
                self._thread.start()
        if self._child is not None:
            atexit.register(self.stop)  # a run that ends early does not leave it hashing

    def _hash(self) -> None:
        for path in self._paths:
            try:
                self._digests[path] = hash_file_key(path)
            except Exception:  # the check reads the file again and reports what it finds
                continue

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
        child, self._child = self._child, None
        if child is None:
            return
        atexit.unregister(self.stop)
        with open(child.fd, "rb") as pipe:
            for line in pipe:  # until the child's last line, not its end: it unmaps as it exits
                if line == early.DONE:
                    break
                self._take(line)
        _reap(child.pid)

    def _take(self, line: bytes) -> None:
        try:
            index, digest, size, mtime, inode = line.decode("ascii").split()
            key = (int(size), int(mtime), int(inode))
            if digest.startswith(PREFIX):
                self._digests[self._paths[int(index)]] = (digest, key)
        except (UnicodeDecodeError, ValueError, IndexError):
            pass  # a line cut short by the child's end: that file is hashed again

    def stop(self) -> None:
        """Stop hashing: no digest is wanted."""
        child, self._child = self._child, None
        if child is None:
            return
        atexit.unregister(self.stop)
        child.kill()

    def get(self, path: str, key: StatKey) -> str | None:
        """The digest of ``path`` if it was hashed with exactly this stat ``key``."""
        self._wait()
        found = self._digests.get(path)
        return found[0] if found is not None and found[1] == key else None


def _reap(pid: int) -> None:
    """Reap the child if it has ended; if it is still unmapping, leave it: it ends by itself,
    and this process's own end (or a later ``_reap``) collects it."""
    _ended.append(pid)
    for waiting in list(_ended):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(waiting, os.WNOHANG)[0] == 0:
                continue
        _ended.remove(waiting)


_ended: list[int] = []  # children that sent every digest, not yet reaped


def start(root: Path, locks: Path, default_source: str | None, specs: Sequence[str]) -> Prefetch:
    """Start hashing the large files of the locks under ``locks`` (only ``specs``' if given),
    or take the child ``early.start`` forked, when it hashes exactly those files."""
    listed = _listed(root, locks, default_source, specs)
    paths = [path for _, path in listed]
    started = early.take()
    hint = early.hint_bytes(tuple(specs), listed)
    same = started is not None and started.root == str(root) and started.specs == tuple(specs)
    if (started.hint if started is not None and same else _read(root)) != hint:
        _remember(root, hint)
    hasher = started.hasher if started is not None else None
    if hasher is not None:
        if same and hasher.paths == paths:
            return Prefetch(paths, hasher)
        hasher.kill()  # it hashes other files, or for another project
    return Prefetch(paths)


def _read(root: Path) -> bytes | None:
    try:
        return (root / ".vxds" / early.HINT).read_bytes()
    except OSError:
        return None


def _remember(root: Path, hint: bytes) -> None:
    """Write ``.vxds/prefetch`` for the next run (a cache: a failure to write is ignored)."""
    from vxds.fs import atomic_write

    with contextlib.suppress(OSError):
        (root / ".vxds").mkdir(exist_ok=True)
        atomic_write(root / ".vxds" / early.HINT, hint, durable=False)


def _listed(
    root: Path, locks: Path, default_source: str | None, specs: Sequence[str]
) -> list[tuple[str, str]]:
    """(source folder, path) of each large file of the locks, a file in two locks once."""
    names = {spec.partition("@")[0] for spec in specs}
    listed: dict[str, str] = {}
    for header in sorted(locks.glob("*/*/lock.toml")):
        if names and header.parent.parent.name not in names:
            continue
        for folder, path in _large_files(root, header, default_source):
            listed.setdefault(path, folder)
    return [(folder, path) for path, folder in listed.items()]


def _large_files(root: Path, header: Path, default_source: str | None) -> Iterator[tuple[str, str]]:
    try:
        with open(header, "rb") as fh:
            head = tomllib.load(fh)
        url = head.get("source", {}).get("url") or default_source
        splits = sorted(head.get("splits", {}))
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(url, str) or ":" in url:  # a plain folder path only
        return
    folder = os.path.realpath(root / url)  # as the folder source and the data check resolve it
    for split in splits:
        try:
            with open(header.parent / f"resources.{split}.jsonl", "rb") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            path = _large_file(folder, line)
            if path is not None:
                yield folder, path


def _large_file(folder: str, line: bytes) -> str | None:
    """The path of a line's file when it is large, blake3-hashed and inside ``folder``."""
    try:
        record = orjson.loads(line)
        rel, size, digest = record.get("uri") or record["id"], record.get("size"), record.get("hash")
    except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
        return None
    if record.get("type") in NOT_ONE_FILE or not isinstance(size, int) or size < LARGE:
        return None
    if not isinstance(digest, str) or not digest.startswith(PREFIX) or not isinstance(rel, str):
        return None
    path = os.path.join(folder, rel)
    return path if early.inside(path, folder) else None
