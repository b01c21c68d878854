"""What a recipe read while it ran, seen through Python's audit hooks (PEP 578).

``record()`` is a context manager: while it is open, every ``open`` that may read, every
``os.listdir``/``os.scandir`` and every ``import`` in the process is noted in a ``Reads``,
and so is the first event that makes a run unrepeatable (a socket, a subprocess, an
``exec``, a C library loaded with ``ctypes``, a database opened by SQLite's own C code).
vxds' own child processes are not the recipe's: the child that hashes a file of 256 MiB or
more (``vxds.hashing.is_map_child``) is a read of that file, which ``open`` already noted.

An audit hook can never be removed, so one hook is installed on first use and does nothing
(one attribute test) while no recording is open. Recording covers every thread: a recipe
may read on threads of its own. What no hook reports is not seen: ``os.stat`` and
``os.path.exists``, the environment, the clock, files a C library opens itself (HDF5).
A recipe that depends on those declares ``refresh: always``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from vxds.hashing import is_map_child

# Events after which running the recipe again may give another answer; matched as prefixes.
UNREPEATABLE = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.startfile",
    "pty.spawn",
    "ctypes.",
    "sqlite3.connect",
    "urllib.Request",
    "http.client.connect",
    "ftplib.connect",
    "smtplib.connect",
    "webbrowser.open",
    "_winapi.CreateProcess",
)

_ACCESS = getattr(os, "O_ACCMODE", 3)


@dataclass
class Reads:
    """Absolute paths opened for reading, folders listed, modules imported, and the first
    unrepeatable event (None when there was none)."""

    opened: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)
    unrepeatable: str | None = None


_active: list[Reads] = []  # the open recording; a list so the hook reads one global


def _path(value: object) -> str | None:
    """An absolute path from an event's path argument; None for a file descriptor."""
    if value is None:
        return os.path.abspath(".")
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if isinstance(value, str):
        return os.path.abspath(value)
    return None


def _reads(mode: object, flags: object) -> bool:
    """Whether an ``open`` may read: ``builtins.open`` passes a mode, ``os.open`` flags."""
    if isinstance(mode, str):
        return "r" in mode or "+" in mode
    if isinstance(flags, int):
        return flags & _ACCESS != os.O_WRONLY
    return True


def _on_open(reads: Reads, args: tuple[Any, ...]) -> None:
    path, mode, flags = (*args, None, None, None)[:3]
    if isinstance(path, int):
        return  # an already-open descriptor (os.fdopen): its own open was seen
    where = _path(path)
    if where is not None and _reads(mode, flags):
        reads.opened.add(where)


def _on_listing(reads: Reads, args: tuple[Any, ...]) -> None:
    where = _path(args[0] if args else None)
    if where is None:  # a folder listed by descriptor: not something a later run can check
        reads.unrepeatable = reads.unrepeatable or "a folder listed by file descriptor"
    else:
        reads.listed.add(where)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active:
        return
    reads = _active[-1]
    if event == "open":
        _on_open(reads, args)
    elif event in ("os.listdir", "os.scandir"):
        _on_listing(reads, args)
    elif event == "import":
        reads.imported.add(str(args[0]))
    elif reads.unrepeatable is None and event.startswith(UNREPEATABLE) and not _own_child(event, args):
        reads.unrepeatable = event


def _own_child(event: str, args: tuple[Any, ...]) -> bool:
    """A child process vxds starts itself: ``subprocess.Popen`` (and ``os.posix_spawn``,
    which it may use) with the argv of vxds' file hasher."""
    spawns = event in ("subprocess.Popen", "os.posix_spawn")
    return spawns and len(args) > 1 and is_map_child(args[1])


_installed: list[bool] = []


@contextmanager
def record() -> Iterator[Reads]:
    """Note what the code run inside reads; nested recordings see only their own events."""
    if not _installed:
        sys.addaudithook(_hook)
        _installed.append(True)
    reads = Reads()
    _active.append(reads)
    try:
        yield reads
    finally:
        _active.remove(reads)
