"""A local endpoint that keeps every version of one object, answering as GCS or Azure do.

Neither emulator keeps old versions (see tests/gcsserver.py and tests/azurite.py), so this
stands in for a versioned bucket or account when testing that ``open()`` of an old lock's
resource asks for, and gets, that version's bytes. It serves reads only.
"""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class VersionedObject:
    """``versions`` maps a version (a generation, a version id) to bytes; the last is live."""

    def __init__(self, versions: dict[str, bytes]) -> None:
        self.versions = versions
        self.asked: list[str | None] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                wanted = (query.get("generation") or query.get("versionid") or [None])[0]
                fake.asked.append(wanted)
                version = wanted or list(fake.versions)[-1]
                body = fake.versions.get(version)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                azure = "versionid" in query or self.headers.get("x-ms-version")
                if azure:
                    self.send_response(206 if self.headers.get("x-ms-range") else 200)
                    self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
                    self.send_header("x-ms-version-id", version)
                    self.send_header("x-ms-blob-type", "BlockBlob")
                    self.send_header("ETag", f'"0x{abs(hash(body)):X}"')
                    self.send_header("Last-Modified", "Sat, 21 Nov 2026 08:00:00 GMT")
                else:
                    self.send_response(200)
                    self.send_header("x-goog-generation", version)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def versioned_object(versions: dict[str, bytes]) -> Iterator[VersionedObject]:
    fake = VersionedObject(versions)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
