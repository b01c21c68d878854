"""The executor on this machine: a thread pool for large items, the calling thread for small."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Items smaller than this are not worth a thread: their overhead is Python's, and threads
# would only fight over the GIL.
SMALL_ITEM = 64 << 10


def default_jobs() -> int:
    """Threads for work that is not small: blake3 and file reads release the GIL."""
    return max(2, min(16, os.cpu_count() or 1))


class LocalExecutor:
    """Work on this process's threads (what vxds did before executors existed)."""

    url = "local"
    remote = False

    def connect(self) -> None:
        pass

    def map(
        self,
        work: Callable[[T], R],
        items: Sequence[T],
        sizes: Sequence[int],
        *,
        jobs: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """Items of ``SMALL_ITEM`` bytes or more in parallel on a thread pool, smaller ones on
        the calling thread. The first exception ``work`` raises is raised here."""
        results: list[R | None] = [None] * len(items)
        large = [i for i, size in enumerate(sizes) if size >= SMALL_ITEM]
        workers = min(jobs or default_jobs(), len(large))

        def one(index: int) -> None:
            results[index] = work(items[index])
            if on_done is not None:
                on_done(sizes[index])

        pool = None
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor  # only when there is work for it

            pool = ThreadPoolExecutor(max_workers=workers)
        try:
            pending = [pool.submit(one, i) for i in large] if pool else []
            for index, size in enumerate(sizes):
                if size < SMALL_ITEM or pool is None:
                    one(index)
            for future in pending:
                future.result()
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return results  # type: ignore[return-value]

    def map_batches(
        self,
        work: Callable[[list[T]], list[R]],
        items: Sequence[T],
        sizes: Sequence[int],
        *,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """All items as one batch, on the calling thread (the work brings its own concurrency)."""
        results = work(list(items))
        if on_done is not None:
            for size in sizes:
                on_done(size)
        return results

    def each_worker(self, work: Callable[[], R]) -> dict[str, R]:
        return {self.url: work()}


LOCAL = LocalExecutor()
