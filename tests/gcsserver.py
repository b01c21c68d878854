"""A real GCS JSON API for tests: gcp-storage-emulator on 127.0.0.1 with a free port.

What the emulator does, as these tests found it: every upload gets a new generation and
listings report it; a bucket keeps only the live generation of each object; a download
ignores ``generation=`` and sends no ``x-goog-generation``; it checks no credentials.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import free_port

# A token the tests pass through [tool.vxds.storage.gcs]; checked for in every output.
TOKEN = "ya29.vxds-test-token-Hq3rLm8Zp0Wc"
_names = itertools.count(1)


@dataclass
class GCS:
    """The running emulator, a gcsfs filesystem on it, and the storage options for vxds."""

    endpoint: str
    fs: Any
    options: dict[str, Any] = field(default_factory=dict)

    def bucket(self) -> str:
        """A new, empty bucket (a fresh name per call, so tests do not see each other)."""
        name = f"vxds-test-{next(_names)}"
        self.fs.mkdir(name)
        return name

    def put_tree(self, bucket: str, prefix: str, files: Mapping[str, str | bytes]) -> None:
        for rel, content in files.items():
            body = content.encode() if isinstance(content, str) else content
            self.fs.pipe_file(f"{bucket}/{prefix}{rel}", body)

    def generation(self, bucket: str, key: str) -> str:
        return str(self.fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)["generation"])

    def toml(self, token: str = "anon") -> str:
        """The [tool.vxds.storage.gcs] table for a project using this emulator."""
        return f'[tool.vxds.storage.gcs]\nendpoint_url = "{self.endpoint}"\ntoken = "{token}"\n'


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCS]:
    from gcp_storage_emulator.server import create_server
    from gcsfs.core import GCSFileSystem

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server._api.daemon = True  # a failed test never leaves the interpreter waiting on it
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    fs = GCSFileSystem(endpoint_url=endpoint, token="anon", project="vxds-test", skip_instance_cache=True)
    fs.invalidate_cache()
    try:
        yield GCS(endpoint, fs, {"gcs": {"endpoint_url": endpoint, "token": "anon"}})
    finally:
        server.stop()
