"""A Google Cloud Storage prefix as a source: ``gs://bucket/prefix``, read through gcsfs.

It gives what an S3 prefix gives (``vxds.sources.objectstore.base``), with GCS' own version:

* ``version`` is the object's generation. GCS numbers every upload of an object, whether or
  not the bucket keeps noncurrent versions, so the generation names the bytes in every
  bucket; in a bucket without Object Versioning an overwritten generation is gone, and
  reading it is a ``NotFoundError`` for that version (as for a deleted S3 version);
* a read takes its generation from the response's ``x-goog-generation``; a pinned read whose
  response does not say (some emulators) is checked against the object's metadata for
  that generation, so it never returns another generation's bytes as the one asked for;
* with ``checksums = "store"``, an object is not read: its metadata (one request for the
  listed generation) gives ``md5Hash`` (absent for composed objects) and ``crc32c``, both
  weak (docs/checksums.md), so they are taken only when the project allows them.

gcsfs gives the credentials (``token``: a service-account file, ``"anon"``,
``"google_default"``, ``"cloud"``; by default gcloud's application-default credentials) and
the HTTP session; the listing and the reads are single requests on that session, retried by
vxds, so gcsfs' own retries do not multiply them.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any, ClassVar

import orjson

from vxds.sources.objectstore.base import CHUNK, BucketSource
from vxds.sources.objectstore.checksums import hex_of
from vxds.sources.objectstore.failures import (
    DENIED,
    MISSING,
    MISSING_CONTAINER,
    NO_CREDENTIALS,
    TRANSIENT,
    FailureKind,
    VersionGone,
)
from vxds.sources.objectstore.listing import ByLevel, Fetched, Listed, Sink

# Values of ``token`` that name a way to find credentials rather than being one.
_TOKEN_METHODS = frozenset({"anon", "google_default", "cache", "cloud", "browser"})
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_NAMES = frozenset(
    {
        "ClientConnectorError",
        "ClientConnectionError",
        "ClientOSError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "TransportError",
    }
)


class GCSError(Exception):
    """A GCS JSON API error response."""

    def __init__(self, status: int, body: bytes, *, listing: bool) -> None:
        self.status = status
        self.listing = listing
        self.reason = ""
        message = ""
        try:
            error = orjson.loads(body).get("error", {})
            message = str(error.get("message", ""))
            errors = error.get("errors") or [{}]
            self.reason = str(errors[0].get("reason", ""))
        except (orjson.JSONDecodeError, AttributeError, TypeError, IndexError):
            message = body.decode("utf-8", "replace")
        self.message = " ".join(message.split()) or f"HTTP {status}"
        super().__init__(f"HTTP {status}: {self.message}")


class GCSSource(ByLevel, BucketSource):
    """Objects under a GCS prefix, one resource per object (and per clinical row)."""

    schemes: ClassVar[tuple[str, ...]] = ("gs", "gcs")
    secret_keys: ClassVar[tuple[str, ...]] = ("token", "secret", "password")
    credentials_hint: ClassVar[str] = (
        "GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default credentials,"
        " or token in [tool.vxds.storage.gcs]"
    )
    options_table: ClassVar[str] = "gcs"
    shared_options: ClassVar[bool] = False

    def _is_secret(self, value: object) -> bool:
        return super()._is_secret(value) and value not in _TOKEN_METHODS

    @property
    def fs(self) -> Any:
        if self._fs is None:
            # The plain filesystem: gcsfs' default class probes each bucket's type over gRPC.
            from gcsfs.core import GCSFileSystem

            options = dict(self._options)
            options.setdefault("project", "")
            self._fs = GCSFileSystem(skip_instance_cache=True, **options)
        return self._fs

    async def _get(self, url: str, params: dict[str, str], *, listing: bool = False) -> Any:
        """One GET on gcsfs' session: the JSON body, or GCSError."""
        fs = self.fs
        await fs._set_session()
        async with fs.session.get(
            url, params=fs._get_params(params), headers=fs._get_headers(None), timeout=fs.requests_timeout
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise GCSError(response.status, body, listing=listing)
            return orjson.loads(body)

    def _object_url(self, key: str, *, media: bool) -> str:
        path = f"b/{_quote(self.bucket)}/o/{_quote(key)}"
        base = f"{self.fs._location}/download/storage/v1/" if media else self.fs.base
        return f"{base}{path}"

    async def _level(
        self, prefix: str, token: str | None, delimited: bool
    ) -> tuple[list[Listed], list[str], str | None]:
        """A page of ``prefix``, by delimiter (``/``) when ``delimited``: its sub-prefixes too."""
        params = {"prefix": prefix, "fields": "items(name,size,generation,updated),prefixes,nextPageToken"}
        if delimited:
            params["delimiter"] = "/"
        if token is not None:
            params["pageToken"] = token
        page = await self._get(f"{self.fs.base}b/{_quote(self.bucket)}/o", params, listing=True)
        items = [
            Listed(
                str(item["name"])[len(self.prefix) :],
                str(item["name"]),
                int(item.get("size", 0)),
                str(item.get("generation", "")),
                str(item.get("updated", "")),
            )
            for item in page.get("items") or []
        ]
        below = [str(sub) for sub in page.get("prefixes") or []]
        return items, below, (str(page["nextPageToken"]) if page.get("nextPageToken") else None)

    async def _fetch(self, key: str, pin: str | None, sink: Sink, listed: Listed | None) -> Fetched:
        fs = self.fs
        await fs._set_session()
        params = {"alt": "media", **({"generation": pin} if pin is not None else {})}
        async with fs.session.get(
            self._object_url(key, media=True),
            params=fs._get_params(params),
            headers=fs._get_headers(None),
            timeout=fs.requests_timeout,
        ) as response:
            if response.status >= 400:
                raise GCSError(response.status, await response.read(), listing=False)
            generation = response.headers.get("x-goog-generation")
            expected = response.headers.get("content-length")
            size = 0
            while chunk := await response.content.read(CHUNK):
                sink(chunk)
                size += len(chunk)
        if expected is not None and expected.isdigit() and size != int(expected):
            raise ConnectionError(f"{key}: {size} of {expected} bytes arrived")
        if generation is None:
            if pin is not None:
                # The response does not say which generation it holds: ask the metadata.
                info = await self._get(self._object_url(key, media=False), {"generation": pin})
                generation = str(info.get("generation", ""))
            elif listed is not None:
                generation = listed.tag
            else:
                info = await self._get(self._object_url(key, media=False), {})
                generation = str(info.get("generation", ""))
        if pin is not None and generation != pin:
            raise VersionGone(generation)
        return Fetched(generation, generation)

    async def _checksums(self, listed: Listed) -> tuple[Fetched, int, dict[str, str]] | None:
        params = {"generation": listed.tag} if listed.tag else {}
        info = await self._get(self._object_url(listed.key, media=False), params)
        generation = str(info.get("generation", ""))
        sums: dict[str, str] = {}
        for algorithm, field, size in (("md5", "md5Hash", 16), ("crc32c", "crc32c", 4)):
            value = hex_of(info.get(field), size)
            if value is not None:
                sums[algorithm] = value
        return Fetched(generation, generation), int(info.get("size", listed.size)), sums

    def _classify(self, exc: BaseException) -> FailureKind | None:
        if isinstance(exc, GCSError):
            if exc.status == 404:
                return MISSING_CONTAINER if exc.listing else MISSING
            if exc.status in (401, 403):
                return DENIED
            return TRANSIENT if exc.status in _TRANSIENT_STATUS else None
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
            return TRANSIENT
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "DefaultCredentialsError" in names:
            return NO_CREDENTIALS
        if "RefreshError" in names:
            return DENIED
        return TRANSIENT if names & _TRANSIENT_NAMES else None

    def _denial(self, exc: BaseException) -> str:
        if isinstance(exc, GCSError):
            return exc.reason or f"HTTP {exc.status}"
        return "the token could not be refreshed" if type(exc).__name__ == "RefreshError" else "forbidden"

    def _cause(self, exc: BaseException) -> str:
        if isinstance(exc, GCSError):
            return f"HTTP {exc.status}: {exc.message}"
        return super()._cause(exc)


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")
