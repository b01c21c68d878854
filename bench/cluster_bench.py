"""The same first lock, and materialize, on this machine and on a 2-worker Dask LocalCluster.

Folder (the tree of hash_bench.py, written here):

* 100,000 files of 1-8 KiB: objects per second, where per-object overhead dominates;
* 64 files of 32 MiB (2 GiB): bytes per second, where hashing dominates (what a 200 TB lock is).

Each is locked cold (no ``.vxds`` cache) with ``vxds lock`` on this machine (the baseline,
same run), then with ``vxds lock --executor tcp://...`` on a LocalCluster of 2 worker
processes (one thread each) started here; the two locks must be byte-identical.

After each folder lock, ``vxds materialize tree@1 -m files`` copies the tree into a fresh
OUT on this machine, then into another with ``--executor`` (the workers copy and check each
file into ``OUT/.vxds-tmp``, the client renames); the two trees must be byte-identical.

S3 (``--s3-objects``, default 10,000; moto's server in its own process, 10 ms added per
request as real S3 answers small GETs in tens of ms): ``ObjectStoreSource.resources()``
with no cache, locally and with the executor, digests compared.

This machine has 2 cores, shared by the client, the workers (and moto): a 2-worker cluster
here cannot be faster than one process using both cores, and the per-worker numbers are
what one worker does on one core while another process competes for the other. Target:
the cluster's locks are byte-identical to the local ones (and the numbers for docs/scale.md).

    python bench/cluster_bench.py [--files 100000] [--large 64] [--s3-objects 10000] [--no-s3]
        [--no-materialize]
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import Report, finish, fmt_s, parser, run, vxds_argv, workdir
from hash_bench import make_project, make_tree
from source_bench import free_port

WORKERS = 2
MiB = 1 << 20
NIGHT_HOURS = 10
FIRST_LOCK_TB = 200


def lock_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "locks").rglob("*")) if p.is_file()
    }


def make_large(data: Path, count: int, size: int) -> int:
    data.mkdir(parents=True)
    for n in range(count):
        block = os.urandom(MiB)
        with open(data / f"sub-{n:03d}_T1w.nii.gz", "wb") as fh:
            for _ in range(size // MiB):
                fh.write(block)
    return count * size


def locks(report: Report, root: Path, url: str, label: str, objects: int, size: int) -> float:
    """Lock cold locally, then cold on the cluster; rows for both; the cluster's bytes/s per worker."""
    argv = [*vxds_argv(), "lock", "tree", "--root", str(root), "--quiet"]
    local = run(argv).check()
    expected = lock_bytes(root)
    shutil.rmtree(root / ".vxds")
    shutil.rmtree(root / "locks")
    remote = run([*argv, "--executor", url]).check()
    same = lock_bytes(root) == expected
    for name, workers, r in (
        ("this machine", 1, local),
        (f"LocalCluster, {WORKERS} workers", WORKERS, remote),
    ):
        per_s, mib_s = objects / r.seconds, size / MiB / r.seconds
        report.row(
            f"{label}: {name}", workers, fmt_s(r.seconds), f"{per_s:,.0f}", f"{mib_s:,.0f}",
            f"{per_s / workers:,.0f}", f"{mib_s / workers:,.0f}",
        )  # fmt: skip
    report.target(f"{label}: the cluster's lock is byte-identical", "identical" if same else "differs", same)
    return size / remote.seconds / WORKERS


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".vxds-receipt.json"
    }


def materializes(report: Report, root: Path, url: str, label: str, objects: int, size: int) -> None:
    """``materialize -m files`` into a fresh OUT locally, then on the cluster; rows for both."""
    argv = [*vxds_argv(), "materialize", "tree@1", "-m", "files", "--root", str(root), "--quiet"]
    local = run([*argv, "-o", str(root / "out-local")]).check()
    remote = run([*argv, "-o", str(root / "out-cluster"), "--executor", url]).check()
    same = tree_bytes(root / "out-local") == tree_bytes(root / "out-cluster")
    for name, workers, r in (
        ("this machine", 1, local),
        (f"LocalCluster, {WORKERS} workers", WORKERS, remote),
    ):
        per_s, mib_s = objects / r.seconds, size / MiB / r.seconds
        report.row(
            f"materialize {label}: {name}", workers, fmt_s(r.seconds), f"{per_s:,.0f}",
            f"{mib_s:,.0f}", f"{per_s / workers:,.0f}", f"{mib_s / workers:,.0f}",
        )  # fmt: skip
    detail = "identical" if same else "differs"
    report.target(f"materialize {label}: the cluster's tree is byte-identical", detail, same)
    shutil.rmtree(root / "out-local")
    shutil.rmtree(root / "out-cluster")


def bench_s3(report: Report, url: str, count: int, seed: int) -> None:
    from source_bench import KEY, SECRET, moto_server, s3_client, set_latency, upload

    from vxds.sources.base import SourceContext
    from vxds.sources.objectstore.s3 import ObjectStoreSource

    with moto_server() as endpoint:
        size = upload(s3_client(endpoint), "bench", count, seed)
        set_latency(endpoint, 10)
        options = {"endpoint_url": endpoint, "key": KEY, "secret": SECRET, "region": "us-east-1"}
        found: dict[str, Any] = {}
        for name, workers, executor in (
            ("this machine", 1, None),
            (f"LocalCluster, {WORKERS} workers", WORKERS, url),
        ):
            context = SourceContext(base=Path("."), options=options, executor=executor)
            start = time.perf_counter()
            found[name] = {r.id: r.hash for r in ObjectStoreSource("s3://bench/trial", context).resources()}
            seconds = time.perf_counter() - start
            per_s, mib_s = count / seconds, size / MiB / seconds
            report.row(
                f"s3 {count:,} objects, 10 ms: {name}", workers, fmt_s(seconds), f"{per_s:,.0f}",
                f"{mib_s:,.0f}", f"{per_s / workers:,.0f}", f"{mib_s / workers:,.0f}",
            )  # fmt: skip
        same = len(set(map(str, found.values()))) == 1
        report.target("s3: the cluster's digests are the local ones", "identical" if same else "differ", same)


def main(argv: list[str]) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=100_000, help="Small files (100,000).")
    p.add_argument("--large", type=int, default=64, help="Files of 32 MiB (64).")
    p.add_argument("--s3-objects", type=int, default=10_000, help="Objects in the bucket (10,000).")
    p.add_argument("--no-s3", action="store_true")
    p.add_argument("--no-materialize", action="store_true", help="Lock rows only.")
    p.add_argument("--seed", type=int, default=2)
    args = p.parse_args(argv)
    from distributed import LocalCluster

    headers = ["run", "workers", "wall s", "obj/s", "MiB/s", "obj/s per worker", "MiB/s per worker"]
    report = Report("first lock: this machine and a Dask LocalCluster", headers)
    report.notes.append(
        f"{os.cpu_count()} cores, shared by the vxds client and the {WORKERS} workers;"
        f" load average {os.getloadavg()[0]:.1f} at the start"
    )
    with workdir(args.workdir, args.keep, "vxds-cluster-bench-") as scratch, LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        scheduler_kwargs={"dashboard_address": f"127.0.0.1:{free_port()}"},  # not 8787: it may be taken
    ) as cluster:  # fmt: skip
        url = cluster.scheduler_address
        small = scratch / "small"
        make_project(small)
        total = make_tree(small / "data", args.files, 1024, 8192, args.seed)
        locks(report, small, url, f"{args.files:,} files", args.files, total)
        if not args.no_materialize:
            materializes(report, small, url, f"{args.files:,} files", args.files, total)
        large = scratch / "large"
        make_project(large)
        total = make_large(large / "data", args.large, 32 * MiB)
        per_worker = locks(report, large, url, f"{args.large} x 32 MiB", args.large, total)
        if not args.no_materialize:
            materializes(report, large, url, f"{args.large} x 32 MiB", args.large, total)
        if not args.no_s3:
            bench_s3(report, url, args.s3_objects, args.seed)
        from vxds.executor import close_all

        close_all()  # this process' own connection (the S3 runs), before the cluster goes
    needed = FIRST_LOCK_TB * 1e12 / (NIGHT_HOURS * 3600)
    report.notes.append(
        f"{FIRST_LOCK_TB} TB in {NIGHT_HOURS} h is {needed / 1e9:.2f} GB/s; at the measured"
        f" {per_worker / 1e6:,.0f} MB/s per worker that is {needed / per_worker:,.0f} workers"
        " (if storage delivers it; see docs/scale.md)"
    )
    return finish(report, args.strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
