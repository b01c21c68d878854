"""A real S3 API for tests: moto's server on 127.0.0.1 with a free port."""

from __future__ import annotations

import http.server
import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import free_port

# Fake credentials the tests pass through [tool.vxds.storage]; the secret is checked for
# in every output and lock file.
KEY = "AKIAVXDSTESTKEY00001"
SECRET = "vxds-test-secret-Zq8cGfL1uE3w9PnN"
_names = itertools.count(1)


@dataclass
class S3:
    """The running server, a boto3 client on it, and the storage options pointing at it."""

    endpoint: str
    client: Any
    options: dict[str, Any] = field(default_factory=dict)

    def bucket(self, *, versioned: bool = True) -> str:
        """A new, empty bucket (a fresh name per call, so tests do not see each other)."""
        name = f"vxds-test-{next(_names)}"
        self.client.create_bucket(Bucket=name)
        if versioned:
            self.client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def put_tree(self, bucket: str, prefix: str, files: Mapping[str, str | bytes]) -> None:
        for rel, content in files.items():
            body = content.encode() if isinstance(content, str) else content
            self.client.put_object(Bucket=bucket, Key=f"{prefix}{rel}", Body=body)

    def toml(self) -> str:
        """The [tool.vxds.storage] table for a project using this server."""
        return (
            "[tool.vxds.storage]\n"
            f'endpoint_url = "{self.endpoint}"\nkey = "{KEY}"\nsecret = "{SECRET}"\nregion = "us-east-1"\n'
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    options = {"endpoint_url": endpoint, "key": KEY, "secret": SECRET, "region": "us-east-1"}
    try:
        yield S3(endpoint, client, options)
    finally:
        server.stop()


class FakeS3:
    """An endpoint answering every request with one S3 error, counting the requests."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.calls = 0
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.calls += 1
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def fake_s3(status: int, code: str, message: str) -> Iterator[FakeS3]:
    fake = FakeS3(status, code, message)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
