"""Conflict markers Git left in a lock file: a merge that was not resolved.

A plain text merge (no merge driver, or one that found the same id changed on both sides)
leaves ``<<<<<<<``, ``=======`` and ``>>>>>>>`` lines in the file. Each conflict is one
problem, at the line of its ``<<<<<<<``, rather than a JSON or TOML error per marker line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

from vxds.locks.format import Problem

CONFLICT: Final = "conflict"  # the problem kind
START, MIDDLE, BASE, END = b"<<<<<<<", b"=======", b"|||||||", b">>>>>>>"
_MARKERS = (START, MIDDLE, BASE, END)


def _is_marker(line: bytes) -> bool:
    return any(line == m or line.startswith(m + b" ") for m in _MARKERS)


def has_conflict(data: bytes) -> bool:
    """True when ``data`` holds a line starting a conflict (a fast byte search first)."""
    return START in data and bool(conflict_lines(data))


def conflict_lines(data: bytes) -> list[int]:
    """The 1-based line of each conflict's ``<<<<<<<`` marker."""
    return [
        n for n, line in enumerate(data.split(b"\n"), start=1) if line.startswith(START) and _is_marker(line)
    ]


def message(line: int) -> str:
    return f"unresolved merge conflict at line {line}: resolve it or relock"


def conflict_problems(name: str, data: bytes) -> Iterator[Problem]:
    """One problem per conflict in the lock file ``name``."""
    for line in conflict_lines(data):
        yield Problem(f"{name}:{line}: {message(line)}", kind=CONFLICT, file=name, line=line)


def conflicts_in(folder: Path) -> list[tuple[str, int]]:
    """``(file, line)`` of every conflict in a lock folder's files, ``lock.toml`` and splits
    alike. Only asked of a lock that did not pass its checks."""
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [(path.name, line) for line in conflict_lines(data)]
    return found
