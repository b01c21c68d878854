"""``vxds push`` to a local folder store and to S3 (moto's server), next to plain copying.

Pushes 10,000 small files and one 1 GiB file (each its own project and lock), every byte
hashed and checked against the lock on the way in, and in the same run copies the same files
with no checking at all: to a folder with ``shutil.copyfile`` from 8 threads, and to S3 the
way ``aws s3 sync`` does, with boto3's ``upload_file`` from 8 threads. Target: vxds within
1.5x of the baseline's time. Every object the push wrote is then read back and hashed.

The push makes its objects durable (on the disk before they have a name); the baseline
does not sync. Beside it, to a folder, a durable copy (the same copy, then an fsync of each
file and folder) shows what durability alone costs, and a durable kernel copy (the push's
own way of copying: ``copy_file_range`` with each 64 MiB's write to the disk started from
another thread, then the fsyncs) the least a durable copy took here: no hashing, and only a
bare interpreter's start-up. The target is judged against the plain copy.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

from benchlib import Report, finish, fmt_s, parser, run, vxds_argv, workdir

TARGET = 1.5
KEY, SECRET = "AKIAVXDSBENCHKEY0001", "vxds-bench-secret-000000000000"
RECIPE = """\
import vxds


@vxds.recipe()
def everything(client):
    return {"all": list(client.query())}
"""

BASELINE = (
    textwrap.dedent(
        """\
    import os, shutil, sys
    from concurrent.futures import ThreadPoolExecutor
    src, dest, endpoint = sys.argv[1], sys.argv[2], sys.argv[3]
    files = [os.path.join(d, n) for d, _, ns in os.walk(src) for n in ns]
    if endpoint == "-":
        def one(path):
            out = os.path.join(dest, os.path.relpath(path, src))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copyfile(path, out)
    else:
        import boto3
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name="us-east-1")
        def one(path):
            s3.upload_file(path, dest, "copy/" + os.path.relpath(path, src))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, files))
    """
    )
    .replace("KEY", repr(KEY))
    .replace("SECRET", repr(SECRET))
)


# Not the target's baseline: what durability costs. The same copy to a folder, then an
# fsync of each file (from the same 8 threads) and of each folder made, as a copy that is
# to survive a power loss must do. (The push syncs its batches with one syncfs on Linux;
# this is the plain way.)
DURABLE = textwrap.dedent(
    """\
    import os, shutil, sys
    from concurrent.futures import ThreadPoolExecutor
    src, dest = sys.argv[1], sys.argv[2]
    files = [os.path.join(d, n) for d, _, ns in os.walk(src) for n in ns]
    def one(path):
        out = os.path.join(dest, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copyfile(path, out)
        fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    def fsync_dir(folder):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, files))
        folders = {os.path.dirname(os.path.join(dest, os.path.relpath(p, src))) for p in files}
        list(pool.map(fsync_dir, sorted(folders | {dest, os.path.dirname(dest)})))
    """
)


# Not the target's baseline either: the fastest durable copy measured here, as the push copies
# a large file (vxds.store.copy) but checking nothing and with a bare interpreter: the kernel
# copies 64 MiB at a time while another thread starts each step's write to the disk, then
# every file and folder is fsynced as in DURABLE. What a durable push cannot beat.
DURABLE_KERNEL = textwrap.dedent(
    """\
    import ctypes, os, queue, sys, threading
    from concurrent.futures import ThreadPoolExecutor
    src, dest = sys.argv[1], sys.argv[2]
    start = ctypes.CDLL(None, use_errno=True).sync_file_range
    start.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    files = [os.path.join(d, n) for d, _, ns in os.walk(src) for n in ns]
    def fsync(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    def one(path):
        out = os.path.join(dest, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        source, target = os.open(path, os.O_RDONLY), os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        ranges = queue.SimpleQueue()
        def writeback():
            while (item := ranges.get()) is not None:
                start(target, item[0], item[1], 2)
        thread = threading.Thread(target=writeback)
        thread.start()
        done = 0
        while count := os.copy_file_range(source, target, 64 << 20):
            ranges.put((done, count))
            done += count
        ranges.put(None)
        thread.join()
        os.fsync(target)
        os.close(source)
        os.close(target)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, files))
        folders = {os.path.dirname(os.path.join(dest, os.path.relpath(p, src))) for p in files}
        list(pool.map(fsync, sorted(folders | {dest, os.path.dirname(dest)})))
    """
)


def make_project(root: Path, sizes: list[int]) -> Path:
    data = root / "data"
    for n, size in enumerate(sizes):
        path = data / f"d{n % 100:02d}" / f"f{n:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    (root / "recipes").mkdir()
    (root / "recipes/everything.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        "- name: everything\n  version: 1\n  description: every file.\n"
        "  script_location: ./recipes/everything.py\n"
    )
    return root


def storage_toml(endpoint: str) -> str:
    return (
        f'\n[tool.vxds.storage]\nendpoint_url = "{endpoint}"\nkey = "{KEY}"\nsecret = "{SECRET}"\n'
        'region = "us-east-1"\n'
    )


def check_store(root: Path, url: str) -> int:
    """Read back every object the push wrote and check it hashes to its name."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from blake3 import blake3

    from vxds.project.config import load_config
    from vxds.store.cas import open_store

    config = load_config(root)
    store = open_store(url, base=root, options=config.storage)
    bad = 0
    for digest in store.listing():
        hasher = blake3()
        with store.open(digest) as fh:
            while block := fh.read(8 << 20):
                hasher.update(block)
        bad += hasher.hexdigest() != digest
    return bad


def case(report: Report, label: str, root: Path, store: str, endpoint: str, repeat: int) -> None:
    """Best of ``repeat`` runs per side, taking turns, each into a fresh store or copy; to a
    folder, the durable copy too (not the target's baseline: what durability costs)."""
    best = {"vxds": float("inf"), "plain": float("inf"), "durable": float("inf"), "kernel": float("inf")}
    bad = 0
    for attempt in range(repeat):
        url = f"{store}-{attempt}"
        vx = run([*vxds_argv(), "push", "--all", "-q", "--store", url, "--root", str(root)])
        if vx.returncode != 0:
            raise RuntimeError(vx.stderr + vx.stdout)
        bad = max(bad, check_store(root, url))
        best["vxds"] = min(best["vxds"], vx.seconds)
        if endpoint == "-":
            dest = str(root.parent / f"{root.name}-copy-{attempt}")
            durable = run([sys.executable, "-c", DURABLE, str(root / "data"), f"{dest}-durable"])
            if durable.returncode != 0:
                raise RuntimeError(durable.stderr)
            best["durable"] = min(best["durable"], durable.seconds)
            kernel = run([sys.executable, "-c", DURABLE_KERNEL, str(root / "data"), f"{dest}-kernel"])
            if kernel.returncode != 0:
                raise RuntimeError(kernel.stderr)
            best["kernel"] = min(best["kernel"], kernel.seconds)
        else:
            dest = store.removeprefix("s3://").split("/")[0]
        base = run([sys.executable, "-c", BASELINE, str(root / "data"), dest, endpoint])
        if base.returncode != 0:
            raise RuntimeError(base.stderr)
        best["plain"] = min(best["plain"], base.seconds)
        if endpoint == "-":  # each attempt's copies and store go once timed and checked (disk space)
            for done in (url, dest, f"{dest}-durable", f"{dest}-kernel"):
                shutil.rmtree(done, ignore_errors=True)
    ratio = best["vxds"] / best["plain"]
    verified = "all" if not bad else f"{bad} BAD"
    durable_cells = ["-", "-", "-", "-"]
    if best["durable"] != float("inf"):
        durable_cells = [
            f"{fmt_s(best['durable'])} s",
            f"{fmt_s(best['kernel'])} s",
            f"{best['vxds'] / best['durable']:.2f}x",
            f"{best['kernel'] / best['plain']:.2f}x",
        ]
    report.row(
        label,
        f"{fmt_s(best['plain'])} s",
        *durable_cells[:2],
        f"{fmt_s(best['vxds'])} s",
        f"{ratio:.2f}x",
        *durable_cells[2:],
        verified,
    )
    report.target(f"{label}: within {TARGET}x of plain copying", f"{ratio:.2f}x", ratio <= TARGET and not bad)


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--small", type=int, default=10_000, help="How many small files (10,000).")
    p.add_argument("--large-mib", type=int, default=1024, help="Size of the large file in MiB (1024).")
    p.add_argument("--no-s3", action="store_true", help="Only the local folder store.")
    p.add_argument("--repeat", type=int, default=2, help="Runs per side, best kept (2).")
    args = p.parse_args()
    report = Report(
        "vxds push",
        [
            "case",
            "plain copy (no checks)",
            "durable copy (fsyncs)",
            "durable kernel copy",
            "vxds push",
            "ratio to plain",
            "ratio to durable",
            "kernel copy to plain",
            "verified",
        ],
    )
    server = None
    endpoint = "-"
    client = None
    if not args.no_s3:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request else

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
    try:
        with workdir(args.workdir, args.keep, "vxds-store-bench-") as work:
            for label, sizes in (
                (f"{args.small:,} small files", [1024 + (n * 37) % 7168 for n in range(args.small)]),
                (f"one {args.large_mib} MiB file", [args.large_mib << 20]),
            ):
                for where in ("folder", "s3") if server is not None else ("folder",):
                    root = make_project(work / f"{where}-{len(sizes)}", sizes)
                    pyproject = '[tool.vxds]\nsource = "./data"\n'
                    if where == "s3":
                        pyproject += storage_toml(endpoint)
                    (root / "pyproject.toml").write_text(pyproject)
                    locked = run([*vxds_argv(), "lock", "--all", "-q", "--root", str(root)])
                    if locked.returncode != 0:
                        raise RuntimeError(locked.stderr)
                    if where == "s3":
                        bucket = f"bench-{len(sizes)}"
                        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
                        case(
                            report, f"{label} -> s3 (moto)", root, f"s3://{bucket}/cas", endpoint, args.repeat
                        )
                    else:
                        case(
                            report,
                            f"{label} -> folder",
                            root,
                            str(work / f"store-{len(sizes)}"),
                            "-",
                            args.repeat,
                        )
    finally:
        if server is not None:
            server.stop()
    report.notes.append(
        "vxds runs include interpreter start-up; the baseline checks nothing and syncs nothing"
    )
    report.notes.append(
        "durable copy: the same copy, then an fsync of each file and folder (folder rows only);"
        " not the target's baseline, it shows what durability costs"
    )
    report.notes.append(
        "durable kernel copy: copy_file_range with each 64 MiB's disk write started from another"
        " thread, then the same fsyncs (folder rows only); for one large file the least a durable copy"
        " took, no hashing"
    )
    report.notes.append(f"load average at the end: {os.getloadavg()[0]:.1f}")
    report.notes.append(
        f"best of {args.repeat} runs per side, alternating; every object read back and hashed"
    )
    return finish(report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
