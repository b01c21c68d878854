"""A worker killed while vxds' tasks run: Dask runs its tasks again, the lock does not change."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.executor.conftest import Cluster, invoke, lock_bytes, vxds_tasks
from vxds.executor.dask import BATCH_VARIABLE, DELAY_VARIABLE


def test_a_worker_killed_mid_run_does_not_change_the_lock(
    project: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    local = lock_bytes(project)
    shutil.rmtree(project / "locks")
    shutil.rmtree(project / ".vxds")
    cluster.wait_for_workers()
    # Small, slow tasks: about 2 s of them on two workers, each busy with one when one dies.
    monkeypatch.setenv(BATCH_VARIABLE, "12")
    monkeypatch.setenv(DELAY_VARIABLE, "0.25")
    done = threading.Event()
    killed: list[int] = []
    ran: list[int] = []

    def kill_when_running() -> None:
        while not done.is_set() and vxds_tasks(cluster) - before < 2:  # a few tasks in
            done.wait(0.05)
        if not done.is_set():
            killed.append(cluster.kill_one())
            ran.append(vxds_tasks(cluster) - before)

    before = vxds_tasks(cluster)
    killer = threading.Thread(target=kill_when_running)
    killer.start()
    try:
        result = invoke("lock", "--all", "--executor", cluster.url)
    finally:
        done.set()
        killer.join()
    assert killed, "the lock ended before a worker could be killed"
    assert result.exit_code == 0, result.output
    assert lock_bytes(project) == local
    assert killed[0] not in cluster.worker_pids()
    cluster.wait_for_workers()  # the nanny started a new one: later tests have two again
