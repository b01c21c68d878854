"""A vxds source for a data platform reached over HTTP: the worked example of docs/sources.md.

The platform serves three endpoints under a base URL:

* ``GET {base}/snapshot``: ``{"snapshot": "..."}``, a label for the platform's current state;
* ``GET {base}/resources``: a JSON list of ``{id, version, type, hash, size, attrs}``;
* ``GET {base}/content?id=ID&version=V``: the bytes of one version of one resource.

Register it under a URL scheme in the ``vxds.sources`` entry-point group of the package
that ships it, and a manifest can say ``source: platform://data.example.org/api``::

    [project.entry-points."vxds.sources"]
    platform = "platform_source:PlatformSource"
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, BinaryIO

from vxds.errors import SourceError
from vxds.resource import Resource
from vxds.sources.base import IndexedSource, SourceContext

TIMEOUT = 30


class PlatformSource(IndexedSource):
    """``platform://HOST[:PORT]/PATH`` -> the platform at ``http://HOST[:PORT]/PATH``."""

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "platform" or not parsed.netloc:
            raise SourceError(f"source {url!r}: expected platform://HOST/PATH")
        # Plain HTTP for the example; a real plugin would use https and a token from
        # the environment or context.options, and keep both out of its messages.
        self.base = f"http://{parsed.netloc}{parsed.path.rstrip('/')}"
        self._label: str | None = None

    def _json(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.base + path, timeout=TIMEOUT) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise SourceError(f"source {self.url!r}: {path} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"source {self.url!r}: cannot reach the platform: {reason}") from None
        except ValueError as exc:
            raise SourceError(f"source {self.url!r}: {path} did not answer JSON: {exc}") from None

    # The protocol: a snapshot label, every resource (IndexedSource sorts and indexes
    # them for get() and prefix listing), and the bytes of one resource version.

    @property
    def snapshot(self) -> str:
        if self._label is None:
            self._label = str(self._json("/snapshot")["snapshot"])
        return self._label

    def _scan(self) -> list[Resource]:
        records = self._json("/resources")
        if not isinstance(records, list):
            raise SourceError(f"source {self.url!r}: /resources did not answer a list")
        return [Resource.from_record(record) for record in records]

    def open(self, resource: Resource) -> BinaryIO:
        query = urllib.parse.urlencode({"id": resource.id, "version": resource.version})
        try:
            response: BinaryIO = urllib.request.urlopen(f"{self.base}/content?{query}", timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            raise SourceError(
                f"source {self.url!r}: no bytes for {resource.id} version {resource.version}"
                f" ({exc.code} {exc.reason})"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SourceError(f"source {self.url!r}: cannot reach the platform: {exc}") from None
        return response
