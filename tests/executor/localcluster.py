"""A LocalCluster in a process of its own: ``python -m tests.executor.localcluster WORKERS``.

It prints the scheduler's address, then runs until its standard input closes. The tests'
process holds only clients: a scheduler or worker there would read ``/proc`` on a timer
(Dask's system monitor), and a recipe's audit, which sees every thread of the process,
would count those reads as the recipe's.
"""

from __future__ import annotations

import socket
import sys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(workers: int) -> None:
    import dask
    from distributed import LocalCluster

    # A task may lose one worker and run again; losing a second ends the run (KilledWorker).
    dask.config.set({"distributed.scheduler.allowed-failures": 1})
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        # The scheduler's HTTP server (health checks) would take port 8787, or warn and move
        # when another cluster has it, as under pytest-xdist: a free port of its own.
        scheduler_kwargs={"dashboard_address": f"127.0.0.1:{free_port()}"},
        memory_limit="2GiB",
    ) as cluster:
        print(cluster.scheduler_address, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(int(sys.argv[1]))
