"""A third-party source through the vxds.sources entry points: the HTTP example of docs/sources.md."""

from __future__ import annotations

import http.server
import importlib.metadata
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Invoke, free_port
from vxds.hashing import digest_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
CONTENT = {
    ("scans/a.nii.gz", 1): b"scan a, first",
    ("scans/a.nii.gz", 2): b"scan a, second",
    ("scans/b.nii.gz", 1): b"scan b",
}
CURRENT = {"scans/a.nii.gz": 2, "scans/b.nii.gz": 1}


def record(rid: str, version: int) -> dict[str, Any]:
    body = CONTENT[(rid, version)]
    return {
        "id": rid,
        "version": version,
        "type": "Volume",
        "hash": digest_bytes(body),
        "size": len(body),
        "attrs": {"subject": rid[6]},
    }


class Platform(http.server.BaseHTTPRequestHandler):
    """The tiny data platform the example source talks to."""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/api/snapshot":
            self._send(200, json.dumps({"snapshot": "42"}).encode())
        elif url.path == "/api/resources":
            self._send(200, json.dumps([record(r, v) for r, v in CURRENT.items()]).encode())
        elif url.path == "/api/content" and (query.get("id"), int(query.get("version", 0))) in CONTENT:
            self._send(200, CONTENT[(query["id"], int(query["version"]))])
        else:
            self._send(404, b"not found")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The platform's URL, with the example source registered as the 'platform' scheme."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        found = real(**kwargs)
        if kwargs.get("group") != "vxds.sources":
            return found
        plugin = importlib.metadata.EntryPoint(
            name="platform", value="platform_source:PlatformSource", group="vxds.sources"
        )
        return importlib.metadata.EntryPoints([*found, plugin])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"platform://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_the_example_source_locks_and_reads_exact_versions(
    platform: str, tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/scans.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef scans(client):\n"
        "    return {'all': list(client.query(type='Volume'))}\n"
    )
    (root / "datasets.yaml").write_text(
        f"- name: scans\n  version: 1\n  script_location: ./recipes/scans.py\n  source: {platform}\n"
    )
    monkeypatch.chdir(root)
    result = invoke("lock", "scans")
    assert result.exit_code == 0, result.output
    lines = [
        json.loads(line) for line in (root / "locks/scans/1/resources.all.jsonl").read_text().splitlines()
    ]
    assert [(r["id"], r["version"]) for r in lines] == [("scans/a.nii.gz", 2), ("scans/b.nii.gz", 1)]
    assert 'snapshot = "42"' in (root / "locks/scans/1/lock.toml").read_text()

    from vxds.resource import Resource
    from vxds.sources import open_source
    from vxds.sources.base import SourceContext

    source = open_source(platform, SourceContext(base=root))
    old = Resource.from_record(record("scans/a.nii.gz", 1))
    with source.open(old) as fh:
        assert fh.read() == b"scan a, first"


def test_an_unreachable_platform_exits_2(
    platform: str, tmp_path: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"platform://127.0.0.1:{free_port()}/api"
    root = tmp_path / "p"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/scans.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef scans(client):\n    return {}\n"
    )
    (root / "datasets.yaml").write_text(
        f"- name: scans\n  version: 1\n  script_location: ./recipes/scans.py\n  source: {url}\n"
    )
    monkeypatch.chdir(root)
    result = invoke("lock", "scans")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: source '{url}': cannot reach the platform: ")
    assert len(result.output.strip().splitlines()) == 1


class Incomplete:
    """A plugin that forgot most of the protocol."""

    def __init__(self, url: str, context: object) -> None:
        self.url = url

    def resources(self) -> list[object]:
        return []


def test_a_plugin_missing_protocol_members_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from vxds.errors import SourceError
    from vxds.sources import SourceContext, open_source

    real = importlib.metadata.entry_points
    plugin = importlib.metadata.EntryPoint(
        name="partial", value="tests.cli.test_plugins:Incomplete", group="vxds.sources"
    )
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda **kw: (
            importlib.metadata.EntryPoints([plugin]) if kw.get("group") == "vxds.sources" else real(**kw)
        ),
    )
    with pytest.raises(SourceError) as caught:
        open_source("partial://x", SourceContext(base=Path(".")))
    assert caught.value.message == (
        "source 'partial://x': the 'partial' plugin does not implement the source protocol"
        " (missing: time_travel, snapshot, get, open)"
    )
