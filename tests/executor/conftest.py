"""A real Dask cluster for the executor tests: a LocalCluster of two worker processes.

One per test session (under pytest-xdist, one per xdist worker), on 127.0.0.1 with no
dashboard, in a process of its own (``localcluster``). Each worker runs one task at a time,
so a test can kill one while tasks run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.helpers import EXAMPLE_TOOL, REPO, example_project
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
    from distributed import Client

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.executor.localcluster", str(WORKERS)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    url = process.stdout.readline().strip()
    assert url.startswith("tcp://127.0.0.1:"), f"the cluster did not start (exit {process.poll()})"
    client = Client(url, set_as_default=False)
    try:
        yield Cluster(url, client)
    finally:
        client.close()
        process.stdin.close()
        process.wait(timeout=60)
        process.stdout.close()


@pytest.fixture(autouse=True)
def _closed_connections() -> Iterator[None]:
    """Each test's command connections closed after it, as a command's end closes them."""
    yield
    from vxds.executor import close_all

    close_all()


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
