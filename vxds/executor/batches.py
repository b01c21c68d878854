"""How work is cut into tasks, and how a task's result (or error) travels back.

Small items go thousands to a task, so a task's cost is the work and not the scheduler's;
a large item is a task of its own, so no worker waits on another's large file and a worker
that dies loses little. A task never raises: what the work raised comes back as a value and
is raised again on the client, as the same type with the same message, because an error's
own pickling (``__init__`` called with its message alone) cannot be trusted to rebuild it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BATCH_ITEMS = 2000  # items in one task at most
BATCH_BYTES = 512 << 20  # bytes in one task at most (a larger item is a task of its own)
LARGE_ITEM = 64 << 20  # from this size an item is a task of its own


def cut(
    sizes: Sequence[int],
    *,
    max_items: int = BATCH_ITEMS,
    max_bytes: int = BATCH_BYTES,
    large: int = LARGE_ITEM,
) -> list[list[int]]:
    """The items' indices cut into batches, in input order."""
    batches: list[list[int]] = []
    current: list[int] = []
    weight = 0
    for index, size in enumerate(sizes):
        alone = size >= large
        if current and (alone or len(current) >= max_items or weight + size > max_bytes):
            batches.append(current)
            current, weight = [], 0
        if alone:
            batches.append([index])
            continue
        current.append(index)
        weight += size
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class Raised:
    """An exception as plain values: its class, its arguments and its attributes."""

    kind: type[BaseException]
    args: tuple[Any, ...]
    state: dict[str, Any]

    @classmethod
    def of(cls, exc: BaseException) -> Raised:
        if isinstance(exc, OSError):
            args: tuple[Any, ...] = (exc.errno, exc.strerror, exc.filename) if exc.errno else exc.args
            return cls(type(exc), args, {})
        return cls(type(exc), exc.args, dict(vars(exc)))

    def rebuild(self) -> BaseException:
        if issubclass(self.kind, OSError):
            return self.kind(*self.args)
        exc = self.kind.__new__(self.kind, *self.args)
        exc.args = self.args
        vars(exc).update(self.state)
        return exc


@dataclass(frozen=True)
class Each(Generic[T, R]):
    """A per-item work function as a batch one."""

    work: Callable[[T], R]

    def __call__(self, batch: list[T]) -> list[R]:
        return [self.work(item) for item in batch]


def run_batch(work: Callable[[list[T]], list[R]], batch: list[T], delay: float = 0.0) -> list[R] | Raised:
    """One task, on a worker: the work's results, or what it raised as a value.

    ``delay`` (seconds, before the work) is for tests that kill a worker while tasks run.
    """
    if delay:
        time.sleep(delay)
    try:
        return work(batch)
    except Exception as exc:
        return Raised.of(exc)
