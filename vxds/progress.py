"""How long-running core work reports progress without printing.

The core takes a ``Progress`` and calls it; the CLI passes one that draws a rich progress
bar on a terminal, everything else gets ``NO_PROGRESS``.
"""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    def advance(self, amount: int = 1) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, label: str, total: int | None = None) -> Task: ...


class _NullTask:
    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _NullProgress:
    def task(self, label: str, total: int | None = None) -> Task:
        return _NullTask()


NO_PROGRESS: Progress = _NullProgress()
