"""A real Azure Blob API for tests: Azurite (from npm) on 127.0.0.1 with a free port.

``.ci/run`` installs Azurite into ``.ci-tools/`` (``.ci/install-azurite``); the fixture
takes it from there or from PATH, and outside CI installs it the same way when it is
missing. In CI a missing Azurite is an error, never a skip.

What Azurite does, as these tests found it (3.35.0): no blob versioning (no version id on
uploads, reads or listings; ``versionid=`` on a read is ignored and the live blob served);
Shared Key signatures are checked, so a wrong key is refused with 403 AuthorizationFailure.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
# Azurite's documented development key: public, but treated as a secret all the same.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_names = itertools.count(1)


def azurite_blob() -> str:
    """The azurite-blob executable, from .ci-tools/ or PATH; tests never install it."""
    local = REPO / ".ci-tools/node_modules/.bin/azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    pytest.fail(
        "Azurite is not installed: run .ci/install-azurite (the README's test command does)", pytrace=False
    )


def connection_string(endpoint: str, key: str = KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


@dataclass
class Azure:
    """The running Azurite, a blob service client on it, and the storage options for vxds."""

    endpoint: str
    client: Any
    options: dict[str, Any] = field(default_factory=dict)

    def container(self) -> str:
        """A new, empty container (a fresh name per call, so tests do not see each other)."""
        name = f"vxds-test-{next(_names)}"
        self.client.create_container(name)
        return name

    def put_tree(self, container: str, prefix: str, files: Mapping[str, str | bytes]) -> None:
        client = self.client.get_container_client(container)
        for rel, content in files.items():
            body = content.encode() if isinstance(content, str) else content
            client.upload_blob(f"{prefix}{rel}", body, overwrite=True)

    def toml(self, key: str = KEY) -> str:
        """The [tool.vxds.storage.azure] table for a project using this Azurite."""
        return f'[tool.vxds.storage.azure]\nconnection_string = "{connection_string(self.endpoint, key)}"\n'


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"Azurite exited with {process.returncode}: {output}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Azurite did not listen on 127.0.0.1:{port} within {seconds:.0f} s")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azure]:
    from azure.storage.blob import BlobServiceClient

    executable = azurite_blob()
    port = free_port()
    workspace = tempfile.mkdtemp(prefix="vxds-azurite-")
    process = subprocess.Popen(
        [
            executable,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, process)
        endpoint = f"http://127.0.0.1:{port}"
        client = BlobServiceClient.from_connection_string(connection_string(endpoint))
        yield Azure(endpoint, client, {"azure": {"connection_string": connection_string(endpoint)}})
        client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        shutil.rmtree(workspace, ignore_errors=True)
