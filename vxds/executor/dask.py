"""The executor on a Dask cluster: ``distributed.Client(url)``, imported only when asked for.

Work goes to the workers as batched tasks (``batches``); each task is pure and idempotent
(it reads and hashes, or copies bytes to a name only a whole result takes), so a task whose
worker died is run again by the scheduler on another, and the run's result does not change.
A task that lost its worker too often (the scheduler's ``allowed-failures``), or a scheduler
that went away, ends the run with one ``ExecutorError``.

The workers must see what the work reads: the same paths for a folder source (a shared file
system), the same store for a bucket (its options, credentials included, travel with each
task: use a cluster you trust, over ``tls://`` where the network is not yours).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from vxds.executor import ExecutorError
from vxds.executor.batches import Each, Raised, cut, run_batch

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT = "20s"
TIMEOUT_VARIABLE = "VXDS_EXECUTOR_CONNECT_TIMEOUT"  # seconds, instead of CONNECT_TIMEOUT
# For tests: seconds each task waits before its work, so a worker can be killed while tasks
# run; and the items in one task at most.
DELAY_VARIABLE = "VXDS_EXECUTOR_TASK_DELAY"
BATCH_VARIABLE = "VXDS_EXECUTOR_BATCH_ITEMS"


class DaskExecutor:
    """Batched tasks on the workers of the scheduler at ``url``."""

    remote = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from distributed import Client
            except ImportError:
                raise ExecutorError(
                    f"executor {self.url!r}: Dask is not installed", hint="pip install 'vxds[dask]'"
                ) from None
            timeout = os.environ.get(TIMEOUT_VARIABLE) or CONNECT_TIMEOUT
            try:
                self._client = Client(self.url, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"executor {self.url!r}: cannot reach the scheduler: {exc}") from None
        return self._client

    def connect(self) -> None:
        self.client  # noqa: B018 (connecting is the point)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def each_worker(self, work: Callable[[], R]) -> dict[str, R]:
        """``work()`` on every worker now connected (``Client.run``), by worker address."""
        try:
            done: dict[str, R] = self.client.run(work)
        except ExecutorError:
            raise
        except Exception as exc:
            raise ExecutorError(f"executor {self.url!r}: the workers did not answer: {_cause(exc)}") from None
        if not done:
            raise ExecutorError(f"executor {self.url!r}: the scheduler has no workers")
        return done

    def map(
        self,
        work: Callable[[T], R],
        items: Sequence[T],
        sizes: Sequence[int],
        *,
        jobs: int | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        return self.map_batches(Each(work), items, sizes, on_done=on_done)

    def map_batches(
        self,
        work: Callable[[list[T]], list[R]],
        items: Sequence[T],
        sizes: Sequence[int],
        *,
        on_done: Callable[[int], None] | None = None,
    ) -> list[R]:
        """Each batch a task; results placed as tasks end, the first error raised in order."""
        if not items:
            return []
        limit = int(os.environ.get(BATCH_VARIABLE) or 0)
        batches = cut(sizes, max_items=limit) if limit > 0 else cut(sizes)
        results: list[list[R] | Raised | None] = [None] * len(batches)
        self._run(work, items, sizes, batches, results, on_done)
        out: list[R] = []
        for result in results:
            if isinstance(result, Raised):
                raise result.rebuild()
            out.extend(result or ())
        return out

    def _run(
        self,
        work: Callable[[list[T]], list[R]],
        items: Sequence[T],
        sizes: Sequence[int],
        batches: list[list[int]],
        results: list[list[R] | Raised | None],
        on_done: Callable[[int], None] | None,
    ) -> None:
        from distributed import as_completed

        client = self.client
        delay = float(os.environ.get(DELAY_VARIABLE) or 0)
        run = uuid.uuid4().hex[:12]
        futures = [
            client.submit(
                run_batch, work, [items[i] for i in batch], delay, key=f"vxds-{run}-{n}", pure=False
            )
            for n, batch in enumerate(batches)
        ]
        where = {future.key: n for n, future in enumerate(futures)}
        try:
            for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
                n = where[future.key]
                results[n] = future.result()
                future.release()
                if on_done is not None:
                    for index in batches[n]:
                        on_done(sizes[index])
        except ExecutorError:
            raise
        except Exception as exc:
            raise ExecutorError(f"executor {self.url!r}: the run failed: {_cause(exc)}") from None
        finally:
            client.cancel(futures)


def _cause(exc: BaseException) -> str:
    if type(exc).__name__ == "KilledWorker":
        return (
            "every worker that ran one of its tasks died (more often than the scheduler's"
            " allowed-failures); see the workers' logs"
        )
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
