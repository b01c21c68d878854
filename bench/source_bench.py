"""Sources beyond a folder: an S3 prefix of 10,000 objects, and a catalog of 100,000 files.

S3 (moto's server, started here as a separate process on 127.0.0.1 with a free port, a
versioned bucket of small objects with BIDS-like keys):

* vxds: ``ObjectStoreSource.resources()`` with no digest cache: list the objects
  (ListObjectsV2), stream and blake3-hash every object, many at once, while the listing
  goes on, and build the resources;
* baseline, same objects, same run: a sequential boto3 loop: list the objects page by page
  (ListObjectsV2), then ``get_object`` and blake3 each one in turn.

Each S3 run is made at 0 ms and at 10 ms of added round-trip time per request (the server
sleeps before answering; real S3 answers small GETs in tens of milliseconds). At 0 ms, the
client and moto's single server process are both bound by CPU on a 2-core machine, so
concurrency can at best overlap the two: expect well under 2x there.

Catalog (a 100,000-file tree of 1-8 KiB files, generated as hash_bench.py does):

* plain folder scan: ``FolderSource.resources()`` of the tree with no cache (hash every file);
* catalog ingest: ``Catalog.init`` and ``ingest`` of the same tree (scan, hash, copy every
  file into the object store, record snapshot 1); then a second, unchanged ingest;
* queries: every resource at the latest snapshot and as of snapshot 1, and a recipe-style
  ``client.query(type="Volume", suffix="T2w")`` on the catalog source.

Target (issue 5): S3 listing and hashing at least 4x faster than the sequential loop.

    python bench/source_bench.py [--objects 10000] [--files 100000] [--no-s3] [--no-catalog]
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from benchlib import Report, finish, fmt_s, parser, workdir
from hash_bench import make_tree, tree_paths

T = TypeVar("T")
S3_RATIO = 4.0
KEY, SECRET = "AKIAVXDSBENCH0000001", "vxds-bench-secret"


def timed(func: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int) -> None:
    """moto's S3 application behind werkzeug's threaded server, as ``moto_server`` runs it,
    except that requests go straight to the S3 app: moto's dispatcher otherwise lists its own
    package folder on every request, under a lock, which doubles the server's time per
    request for both sides of the benchmark. werkzeug closes the connection after every
    response, so both sides also pay for one TCP connection per request."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class S3Only(DomainDispatcherApplication):
        def get_application(self, environ: dict[str, Any]) -> Any:
            app = self.app_instances.get("s3")
            if app is None:
                app = self.app_instances["s3"] = self.create_app("s3")
            return app

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:
            pass

    app = S3Only(create_backend_app)
    delay = [0.0]

    def with_latency(environ: dict[str, Any], start_response: Any) -> Any:
        """Each request waits the set round-trip time first (the network a real store is behind);
        ``/_bench/latency?ms=N`` sets it."""
        if environ.get("PATH_INFO") == "/_bench/latency":
            delay[0] = float(environ.get("QUERY_STRING", "ms=0").split("=", 1)[1]) / 1000
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        if delay[0]:
            time.sleep(delay[0])
        return app(environ, start_response)

    run_simple("127.0.0.1", port, with_latency, threaded=True, request_handler=Quiet)


def set_latency(endpoint: str, ms: float) -> None:
    import urllib.request

    urllib.request.urlopen(f"{endpoint}/_bench/latency?ms={ms:g}", timeout=10).close()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process, so it does not share the benchmark's GIL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def upload(client: Any, bucket: str, count: int, seed: int) -> int:
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    rng = random.Random(seed)
    bodies = [(f"trial/{rel}", rng.randbytes(rng.randint(1024, 8192))) for rel in tree_paths(count)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kb: client.put_object(Bucket=bucket, Key=kb[0], Body=kb[1]), bodies))
    return sum(len(b) for _, b in bodies)


def sequential(client: Any, bucket: str) -> dict[str, str]:
    """The baseline: list the objects, then fetch and hash each one in turn."""
    from blake3 import blake3

    digests: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="trial/"):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
            digests[item["Key"][len("trial/") :]] = "blake3:" + blake3(body.read()).hexdigest()
    return digests


def bench_s3(report: Report, count: int, seed: int, latencies: list[float]) -> None:
    from vxds.sources.base import SourceContext
    from vxds.sources.objectstore.s3 import ObjectStoreSource

    with moto_server() as endpoint:
        client = s3_client(endpoint)
        size, upload_s = timed(lambda: upload(client, "bench", count, seed))
        options = {"endpoint_url": endpoint, "key": KEY, "secret": SECRET, "region": "us-east-1"}

        def vxds_scan() -> dict[str, str]:
            source = ObjectStoreSource("s3://bench/trial", SourceContext(base=Path("."), options=options))
            return {r.id: str(r.hash) for r in source.resources()}

        report.row(f"s3: upload {count:,} objects ({size / 2**20:.0f} MiB), 16 threads", fmt_s(upload_s), "")
        for ms in latencies:
            set_latency(endpoint, ms)
            found, vxds_s = timed(vxds_scan)
            baseline, base_s = timed(lambda: sequential(client, "bench"))
            assert found == baseline, "vxds and the baseline disagree on the digests"
            ratio = base_s / vxds_s
            where = f"{ms:g} ms round trip"
            report.row(
                f"s3, {where}: vxds list + hash (concurrent)", fmt_s(vxds_s), f"{count / vxds_s:,.0f} obj/s"
            )
            report.row(f"s3, {where}: boto3 sequential loop", fmt_s(base_s), f"{count / base_s:,.0f} obj/s")
            report.target(
                f"s3 ({where}) at least {S3_RATIO:g}x the sequential loop", f"{ratio:.1f}x", ratio >= S3_RATIO
            )


def bench_catalog(report: Report, root: Path, count: int, seed: int) -> None:
    from vxds.recipes.client import Client
    from vxds.sources.base import SourceContext
    from vxds.sources.catalog.source import CatalogSource
    from vxds.sources.catalog.store import Catalog
    from vxds.sources.folder.source import FolderSource

    data = root / "data"
    size, make_s = timed(lambda: make_tree(data, count, 1024, 8192, seed))
    report.row(f"catalog: make {count:,} files ({size / 2**20:.0f} MiB)", fmt_s(make_s), "")
    context = SourceContext(base=root)
    scanned, scan_s = timed(lambda: FolderSource(str(data), context).resources())
    report.row("plain folder scan (FolderSource, no cache)", fmt_s(scan_s), f"{len(scanned):,} resources")

    def ingest() -> int:
        catalog = (
            Catalog.init(root / "catalog.db")
            if not (root / "catalog.db").exists()
            else Catalog(root / "catalog.db")
        )
        return catalog.ingest(data, context=context, origin="data").total

    total, ingest_s = timed(ingest)
    report.row("catalog ingest, first (hash + store + record)", fmt_s(ingest_s), f"{total:,} resources")
    _, again_s = timed(ingest)
    report.row("catalog ingest, unchanged (snapshot 2)", fmt_s(again_s), "")
    url = f"catalog:{root / 'catalog.db'}"
    latest, latest_s = timed(lambda: CatalogSource(url, context).resources())
    report.row("catalog query: all resources, latest", fmt_s(latest_s), f"{len(latest):,} resources")
    then, then_s = timed(lambda: CatalogSource(url, SourceContext(base=root, at="1")).resources())
    report.row("catalog query: all resources as of snapshot 1", fmt_s(then_s), f"{len(then):,} resources")

    def t2() -> int:
        return sum(1 for _ in Client(CatalogSource(url, context)).query(type="Volume", suffix="T2w"))

    hits, query_s = timed(t2)
    report.row("catalog query: type=Volume suffix=T2w", fmt_s(query_s), f"{hits:,} resources")
    folder_hits, folder_query_s = timed(
        lambda: sum(1 for _ in Client(FolderSource(str(data), context)).query(type="Volume", suffix="T2w"))
    )
    report.row(
        "folder query: type=Volume suffix=T2w (rescan)", fmt_s(folder_query_s), f"{folder_hits:,} resources"
    )


def main(argv: list[str]) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=10_000, help="Objects in the bucket (10,000).")
    p.add_argument("--files", type=int, default=100_000, help="Files in the catalog's tree (100,000).")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--no-s3", action="store_true")
    p.add_argument(
        "--latency-ms",
        type=float,
        nargs="*",
        default=[0, 10],
        help="Round-trip times the S3 server adds per request, one S3 run each (0 and 10).",
    )
    p.add_argument("--no-catalog", action="store_true")
    args = p.parse_args(argv)
    report = Report("sources: S3 and catalog", ["step", "seconds", "detail"])
    report.notes.append(f"{os.cpu_count()} cores shared with the moto server process")
    with workdir(args.workdir, args.keep, "vxds-source-bench-") as root:
        if not args.no_s3:
            bench_s3(report, args.objects, args.seed, args.latency_ms)
        if not args.no_catalog:
            bench_catalog(report, root, args.files, args.seed)
    return finish(report, args.strict)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        sys.exit(main(sys.argv[1:]))
