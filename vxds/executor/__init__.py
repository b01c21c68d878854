"""Where per-object work runs: this machine's threads, or the workers of a Dask cluster.

The work vxds does per object (read and hash a file or an object, copy and check it) is
handed to an ``Executor``. ``LOCAL`` is today's thread pool; ``for_url("tcp://host:8786")``
is a Dask cluster (``vxds[dask]``), whose ``distributed`` package is imported only then. Both
return results in input order and raise the first error the work raised, as itself, so a
caller's messages and retries do not depend on where the work ran. Only the digests and
small values come back: caches are filled by the caller, on this machine.

This package imports nothing from vxds but ``errors``: sources, verify, store and
materialize all hand it work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from vxds.errors import VxdsError

T = TypeVar("T")
R = TypeVar("R")

LOCAL_URL = "local"
DASK_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://", "inproc://")


class ExecutorError(VxdsError):
    """The cluster could not be reached, or lost work it could not redo."""


class Executor(Protocol):
    """Runs ``work`` over items and returns the results in input order."""

    url: str
    #: Whether work leaves this process (results then come back by value).
    remote: bool

    def connect(self) -> None:
        """Reach the workers now (``ExecutorError`` if they cannot be); work would anyway."""
        ...

    def map(
        self,
        work: Callable[[T], R],
        items: Sequence[T],
        sizes: Sequence[int],
        *,
        jobs: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """``work(item)`` of each item (``sizes[i]`` bytes); ``on_done(size)`` as each ends."""
        ...

    def map_batches(
        self,
        work: Callable[[list[T]], list[R]],
        items: Sequence[T],
        sizes: Sequence[int],
        *,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """``work`` over batches of the items (one result per item), flattened in input order."""
        ...

    def each_worker(self, work: Callable[[], R]) -> dict[str, R]:
        """``work()`` once on every worker, by the worker's name (this machine: ``local``)."""
        ...


_open: dict[str, Executor] = {}


def for_url(url: str | None) -> Executor:
    """The executor a ``--executor`` value names: ``local`` (or None), else a Dask scheduler."""
    from vxds.executor.local import LOCAL

    if url is None or check_url(url) == LOCAL_URL:
        return LOCAL
    if url not in _open:
        from vxds.executor.dask import DaskExecutor

        _open[url] = DaskExecutor(url)
    return _open[url]


def check_url(url: str) -> str:
    """``url`` when it names an executor (``local`` or a scheduler), else ``ExecutorError``."""
    if url != LOCAL_URL and not url.startswith(DASK_SCHEMES):
        raise ExecutorError(
            f"executor {url!r}: expected 'local' or a Dask scheduler address (tcp://HOST:PORT)"
        )
    return url


def close_all() -> None:
    """Close every cluster connection ``for_url`` opened (the CLI's process ends after one)."""
    for executor in _open.values():
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    _open.clear()
