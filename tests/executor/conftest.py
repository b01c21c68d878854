"""A real Dask cluster for the executor tests: a LocalCluster of two worker processes.

One per test session (under pytest-xdist, one per xdist worker), on 127.0.0.1 with no
dashboard. Each worker runs one task at a time, so a test can kill one while tasks run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.helpers import EXAMPLE_TOOL, example_project, free_port
from vxds.cli.main import cli

WORKERS = 2


@dataclass
class Cluster:
    """The scheduler's address and a client to ask the workers things with."""

    url: str
    client: Any

    def worker_pids(self) -> list[int]:
        return sorted(self.client.run(os.getpid).values())

    def kill_one(self) -> int:
        """SIGKILL one worker process (its nanny starts a new one); its pid."""
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_for_workers(self) -> None:
        self.client.wait_for_workers(WORKERS, timeout=60)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    import dask
    from distributed import Client, LocalCluster

    # A task may lose one worker and run again; losing a second ends the run (KilledWorker).
    dask.config.set({"distributed.scheduler.allowed-failures": 1})
    local = LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        # The scheduler's HTTP server (health checks) would take port 8787, or warn and move
        # when another cluster has it, as under pytest-xdist: a free port of its own.
        scheduler_kwargs={"dashboard_address": f"127.0.0.1:{free_port()}"},
        memory_limit="2GiB",
    )
    client = Client(local.scheduler_address, set_as_default=False)
    try:
        yield Cluster(local.scheduler_address, client)
    finally:
        from vxds.executor import close_all

        close_all()
        client.close()
        local.close()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def lock_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "locks").rglob("*"))
        if p.is_file()
    }


def vxds_tasks(cluster: Cluster) -> int:
    """How many of vxds' tasks the scheduler has run so far."""

    def count(dask_scheduler: object) -> int:
        prefix = dask_scheduler.task_prefixes.get("vxds")  # type: ignore[attr-defined]
        return 0 if prefix is None else int(sum(prefix.state_counts.values()))

    return int(cluster.client.run_on_scheduler(count))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = example_project(tmp_path / "project", pyproject=EXAMPLE_TOOL, locks=False)
    monkeypatch.chdir(root)
    return root
