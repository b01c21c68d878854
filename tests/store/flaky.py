"""An HTTP proxy in front of moto's S3 server that fails chosen requests with 503 SlowDown.

Requests pass through unchanged (moto does not check signatures), except that the first
``times`` requests a rule matches are answered with S3's throttling error instead, and
counted, so a test sees both the failures it injected and what got through.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


@dataclass
class Rule:
    method: str
    query: str  # a query parameter the request carries (``partNumber``, ``uploads``), or ""
    times: int
    failed: int = 0
    forward: bool = False  # send the request on, then answer 503 all the same (a lost answer)

    def matches(self, method: str, path: str) -> bool:
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query, keep_blank_values=True)
        wanted = self.query in params if self.query else not params
        return method == self.method and wanted and self.failed < self.times


@dataclass
class Flaky:
    endpoint: str
    rules: list[Rule] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # "METHOD path" of requests let through

    def fail(self, method: str, query: str = "", times: int = 1, *, forward: bool = False) -> Rule:
        rule = Rule(method, query, times, forward=forward)
        self.rules.append(rule)
        return rule


def _handler(flaky: Flaky, target: str) -> type[http.server.BaseHTTPRequestHandler]:
    host, port = urllib.parse.urlsplit(target).netloc.split(":")
    guard = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with guard:
                rule = next((r for r in flaky.rules if r.matches(self.command, self.path)), None)
                if rule is not None:
                    rule.failed += 1
                else:
                    flaky.passed.append(f"{self.command} {self.path}")
            if rule is not None and not rule.forward:
                self._answer(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
                return
            upstream = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
                response = upstream.getresponse()
                data = response.read()
                headers = {k: v for k, v in response.getheaders() if k.lower() != "transfer-encoding"}
            finally:
                upstream.close()
            if rule is not None:
                self._answer(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
                return
            self._answer(response.status, headers, data, head=self.command == "HEAD")

        def _answer(self, status: int, headers: dict[str, str], data: bytes, *, head: bool = False) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            length = headers.get("Content-Length") or headers.get("content-length")
            self.send_header("Content-Length", str(length if head and length else len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def flaky_proxy(target: str) -> Iterator[Flaky]:
    """A proxy to ``target`` (moto's endpoint) on a free port, stopped on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(Flaky(""), target))
    flaky = Flaky(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(flaky, target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield flaky
    finally:
        server.shutdown()
        server.server_close()
