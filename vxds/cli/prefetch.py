"""``verify --data``: start hashing the locks' large files before the checks run.

``vxds verify`` calls ``start`` before it imports the checks (the ``vxds.verify`` package
imports every one of them), and ``main`` calls ``start_early`` for a plain ``verify --data``
before even click is imported, so a large file's bytes are read and hashed by a forked
child (or on another thread) while Python imports, reads the manifest and checks the locks.
It lives beside the command because it must not import ``vxds.verify``; it imports only
what reading a lock header (``tomllib``) and its lines (``orjson``) needs.

Nothing here decides a finding. The lock is not checked yet, so its paths are only hashed
when they resolve inside the source folder to a regular file. The digests wait, keyed by
path with the stat the bytes had; ``check_data`` takes one only for a path it reached
through its own checks, when the file's stat is still that one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from vxds.hashing import PREFIX, StatKey, hash_file_key, map_in_this_process

LARGE = 32 << 20  # smaller files are hashed by the check itself, where threads do not pay
NOT_ONE_FILE = ("ClinicalRecord", "DICOMSeries", "Zarr")  # as verify/data.py: built from more files


class Prefetch:
    """Digests of large files, hashed while the checks run; ``get`` waits for them.

    On Linux, when no other thread runs, a forked child hashes them: it starts at once,
    with the modules already imported, and maps each file as ``b3sum`` does (a file
    truncated while it is mapped kills that child, never vxds: its files are then hashed
    by the check itself). Otherwise a thread here reads them.
    """

    def __init__(self, paths: list[str]) -> None:
        self._paths = paths
        self._digests: dict[str, tuple[str, StatKey]] = {}
        self._child: tuple[int, int] | None = None  # pid, the pipe its digests come through
        self._thread: threading.Thread | None = None
        if not paths:
            return
        if sys.platform.startswith("linux") and threading.active_count() == 1:
            self._child = _fork(paths)
            atexit.register(self.stop)  # a run that ends early does not leave it hashing
        else:
            self._thread = threading.Thread(target=self._hash, name="vxds-prefetch", daemon=True)
            self._thread.start()

    def _hash(self) -> None:
        for path in self._paths:
            try:
                self._digests[path] = hash_file_key(path)
            except Exception:  # the check reads the file again and reports what it finds
                continue

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._child is not None:
            pid, fd = self._child
            self._child = None
            atexit.unregister(self.stop)
            with open(fd, "rb") as pipe:
                lines = pipe.read().splitlines()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            for line in lines:
                try:
                    index, digest, *key = orjson.loads(line)
                    self._digests[self._paths[index]] = (digest, (key[0], key[1], key[2]))
                except (orjson.JSONDecodeError, ValueError, TypeError, IndexError):
                    continue  # a line cut short by the child's end: that file is hashed again

    def stop(self) -> None:
        """Stop hashing: no digest is wanted."""
        if self._child is not None:
            pid, fd = self._child
            self._child = None
            atexit.unregister(self.stop)
            os.close(fd)
            with contextlib.suppress(OSError):  # it ended, and was waited for, already
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

    def get(self, path: str, key: StatKey) -> str | None:
        """The digest of ``path`` if it was hashed with exactly this stat ``key``."""
        self._wait()
        found = self._digests.get(path)
        return found[0] if found is not None and found[1] == key else None


def _fork(paths: list[str]) -> tuple[int, int]:
    """Start a child hashing ``paths``: one JSON line ``[index, digest, size, mtime_ns,
    inode]`` per file it could hash, on the pipe returned with its pid."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hash, write, and leave without running any of vxds' exit code
        code = 1
        try:
            os.close(read)
            _hash_in_child(paths, write)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _hash_in_child(paths: list[str], out: int) -> None:
    map_in_this_process()
    parent = os.getppid()
    for index, path in enumerate(paths):
        if os.getppid() != parent:  # vxds is gone: nobody waits for the rest
            return
        try:
            digest, key = hash_file_key(path)
        except Exception:
            continue
        os.write(out, orjson.dumps([index, digest, *key]) + b"\n")


Key = tuple[Path, Path, "str | None", tuple[str, ...]]  # root, locks, default source, specs
_early: tuple[Key, Prefetch] | None = None  # started by ``start_early``, for ``start``


def start_early(root: str | None, specs: list[str]) -> None:
    """``vxds verify --data``'s hashing, started by ``main`` before click is imported; the
    command's ``start`` takes it when it asks for the same files."""
    global _early
    from vxds.project.config import load_config

    try:
        config = load_config(Path(root) if root is not None else None)
    except Exception:  # the command reads the configuration again and reports what is wrong
        return
    if config.executor in (None, "local"):  # on a cluster, its workers hash
        key: Key = (config.root, config.locks, config.source, tuple(specs))
        _early = (key, _start(*key))


def start(root: Path, locks: Path, default_source: str | None, specs: Sequence[str]) -> Prefetch:
    """Start hashing the large files of the locks under ``locks`` (only ``specs``' if given),
    or take those ``start_early`` started for the same."""
    global _early
    early, _early = _early, None
    if early is not None:
        if early[0] == (root, locks, default_source, tuple(specs)):
            return early[1]
        early[1].stop()
    return _start(root, locks, default_source, specs)


def _start(root: Path, locks: Path, default_source: str | None, specs: Sequence[str]) -> Prefetch:
    names = {spec.partition("@")[0] for spec in specs}
    paths: list[str] = []
    for header in sorted(locks.glob("*/*/lock.toml")):
        if names and header.parent.parent.name not in names:
            continue
        paths.extend(_large_files(root, header, default_source))
    return Prefetch(list(dict.fromkeys(paths)))  # a file in two locks is hashed once


def _large_files(root: Path, header: Path, default_source: str | None) -> Iterator[str]:
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
                yield path


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
    real = os.path.realpath(path)
    if not real.startswith(folder + os.sep) or not os.path.isfile(real):
        return None
    return path
