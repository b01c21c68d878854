"""``vxds verify --data``'s hasher: a forked child, started before anything else is imported.

For a plain ``verify --data`` (``cli/main.plain_data_check``), ``main`` calls ``start``
first: it finds the project's root as ``load_config`` does, reads ``.vxds/prefetch`` (the
large files the locks held at the last such run, written by cli/prefetch.py) and forks a
child that hashes them while the command imports click, reads the manifest and checks the
locks. Hashing keeps both cores busy, so whatever runs before the fork is time neither core
hashes: here that is the interpreter and this module.

Nothing here decides a finding. ``prefetch.start`` takes this child only when the locks'
large files are exactly the listed ones (otherwise it stops it), and ``check_data`` takes a
digest only for a path it reached through its own checks, with the stat the bytes had.
The child hashes a listed path only while it resolves to a regular file inside its source
folder, as the listing found it.

It imports ``os``, ``sys`` and ``atexit``; the child imports ``vxds.filehash`` (blake3) and nothing else.
"""

from __future__ import annotations

import atexit
import os
import sys

HINT = "prefetch"  # under the project's .vxds/
MAGIC = b"vxds-prefetch 1"
DONE = b"done\n"  # the child's last line: every digest it could give is before it


class Hasher:
    """A forked child hashing ``paths``: a line ``<index> <digest> <size> <mtime_ns> <inode>``
    per file it could hash, then ``DONE``, on the pipe ``fd``."""

    def __init__(self, pid: int, fd: int, paths: list[str]) -> None:
        self.pid, self.fd, self.paths = pid, fd, paths

    def kill(self) -> None:
        """Stop it: no digest is wanted."""
        import contextlib
        import signal

        os.close(self.fd)
        with contextlib.suppress(OSError):  # it ended, and was waited for, already
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` resolves to a regular file inside ``folder`` (a resolved path)."""
    real = os.path.realpath(path)
    return real.startswith(folder + os.sep) and os.path.isfile(real)


def fork_hasher(paths: list[str], folders: list[str] | None = None) -> Hasher:
    """Fork a child hashing ``paths`` (each only while ``inside`` its ``folders`` entry)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hash, write, and leave without running any of vxds' exit code
        code = 1
        try:
            os.close(read)
            _detach()
            _hash_all(paths, folders, write)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return Hasher(pid, read, paths)


def _detach() -> None:
    """The child holds none of vxds' standard streams: whoever reads vxds' output until its
    end (a pipe, CI) must not wait for the child, which unmaps its files as it exits."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _hash_all(paths: list[str], folders: list[str] | None, out: int) -> None:
    from vxds.filehash import hash_file_key, map_in_this_process

    map_in_this_process()
    parent = os.getppid()
    for index, path in enumerate(paths):
        if os.getppid() != parent:  # vxds is gone: nobody waits for the rest
            return
        if folders is not None and not inside(path, folders[index]):
            continue
        try:
            digest, (size, mtime, inode) = hash_file_key(path)
        except Exception:  # the check reads the file again and reports what it finds
            continue
        os.write(out, f"{index} {digest} {size} {mtime} {inode}\n".encode())
    os.write(out, DONE)


# --- the list of large files, kept between runs ---------------------------------------------


def hint_bytes(specs: tuple[str, ...], listed: list[tuple[str, str]]) -> bytes:
    """``.vxds/prefetch``'s content: the specs asked for, then (folder, path) pairs; NUL
    separates them (no path holds one), a unit separator the specs."""
    fields = [MAGIC, os.fsencode("\x1f".join(specs)), *(os.fsencode(x) for pair in listed for x in pair)]
    return b"\0".join(fields)


def read_hint(data: bytes, specs: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """The (folder, path) pairs of a hint written for these ``specs``; None for any other."""
    fields = data.split(b"\0")
    if len(fields) < 2 or len(fields) % 2 or fields[0] != MAGIC:
        return None
    if fields[1] != os.fsencode("\x1f".join(specs)):
        return None
    names = [os.fsdecode(field) for field in fields[2:]]
    return list(zip(names[::2], names[1::2], strict=True))


class Early:
    """What ``start`` did: the root and specs it found, the hint's bytes, and its child."""

    def __init__(self, root: str, specs: tuple[str, ...], hint: bytes | None) -> None:
        self.root, self.specs, self.hint = root, specs, hint
        self.hasher: Hasher | None = None


_early: Early | None = None


def start(root: str | None, specs: list[str]) -> None:
    """Fork the hasher for the files ``.vxds/prefetch`` lists (``main``, before click)."""
    global _early
    from vxds.project.root import find_root

    found = os.path.realpath(root) if root is not None else find_root()
    _early = early = Early(found, tuple(specs), None)
    try:
        with open(os.path.join(found, ".vxds", HINT), "rb") as fh:
            early.hint = fh.read()
    except OSError:
        return
    listed = read_hint(early.hint, early.specs)
    if listed and sys.platform.startswith("linux"):
        early.hasher = fork_hasher([path for _, path in listed], [folder for folder, _ in listed])
        atexit.register(stop)  # a command that ends before ``take`` leaves nothing hashing


def take() -> Early | None:
    """What ``start`` did, once (``prefetch.start`` takes it over)."""
    global _early
    early, _early = _early, None
    atexit.unregister(stop)
    return early


def stop() -> None:
    """Stop the child ``start`` forked, unless it was taken (the command hashes nothing ahead:
    a sample, the store's copies, a cluster's workers)."""
    started = take()
    if started is not None and started.hasher is not None:
        started.hasher.kill()
