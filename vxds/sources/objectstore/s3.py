"""An S3 bucket prefix as a source: ``s3://bucket/prefix``, read through s3fs.

It gives what a folder holding the same files gives (ids, types, BIDS attrs, clinical
rows, DICOM series: ``vxds.sources.folder.tree``), except for ``version``:

* ``version`` is the object's VersionId when the bucket is versioned, else its ETag (an
  unversioned bucket keeps one copy of each object, and the ETag names it);
* ``hash`` is the blake3 of the bytes, computed while they stream in, many objects at
  once on s3fs' event loop, starting while the listing goes on. The version is the one
  the read returned, so it always names the bytes hashed. Each upload's version and digest
  are cached under ``.vxds/objects/`` by (key, ETag, Last-Modified, size), so relocking an
  unchanged prefix lists it and reads only its sidecars and tables;
* with ``checksums = "store"``, an object uploaded with an additional checksum is not read:
  one HEAD (``ChecksumMode=ENABLED``) gives its VersionId and ``ChecksumSHA256`` (or a
  whole-object ``ChecksumCRC32C``). A multipart upload's SHA-256 is a checksum of its parts'
  checksums (``COMPOSITE``), not of its bytes: such an object is read and hashed as usual;
* ``open(resource)`` reads the VersionId the resource records, so an old lock reads the
  old bytes. A resource labelled by an ETag reads the bucket's only copy, and whoever
  re-hashes it sees whether it changed.

What every object store shares (listing, concurrent hashing, the digest cache, retries,
scrubbing, pinned reads) is in ``vxds.sources.objectstore.base``; this module says how S3 lists,
streams and fails.

Credentials come from the usual AWS places (environment, ``~/.aws`` profiles, instance
roles) or from ``[tool.vxds.storage]``; they are never written into a resource, a lock,
an error message or a log. Transient failures (connection errors, timeouts, 5xx, SlowDown)
are retried a bounded number of times, then reported as one ``SourceError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

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
from vxds.sources.objectstore.listing import Fetched, Listed, Sink

__all__ = ["ObjectStoreSource", "is_etag"]

_ETAG_RE = re.compile(r"[0-9a-f]{32}(-[0-9]+)?\Z")
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling", "503", "500"}
)
_DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"})
_TRANSIENT_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientPayloadError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ResponseStreamingError",
        "IncompleteRead",
        "ProxyConnectionError",
    }
)


def is_etag(version: str) -> bool:
    """An S3 ETag (an MD5, with ``-N`` for multipart uploads), as opposed to a VersionId."""
    return bool(_ETAG_RE.match(version))


class ObjectStoreSource(BucketSource):
    """Objects under an S3 prefix, one resource per object (and per clinical row)."""

    schemes: ClassVar[tuple[str, ...]] = ("s3", "s3a")
    secret_environment: ClassVar[tuple[str, ...]] = (
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    )
    credentials_hint: ClassVar[str] = "AWS_* variables, a profile, or [tool.vxds.storage]"
    options_table: ClassVar[str] = "s3"

    def _store_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """[tool.vxds.storage] as s3fs keyword arguments (``region`` renamed)."""
        out = dict(options)
        region = out.pop("region", None)
        if region is not None:
            out.setdefault("client_kwargs", {})["region_name"] = region
        return out

    def _cache_name(self) -> str:
        return self.bucket  # the name caches had before other stores came

    def _pins(self, version: str) -> bool:
        return not is_etag(version)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import s3fs
            from aiobotocore.session import AioSession

            options = dict(self._options)
            session = AioSession(profile=options.pop("profile", None))
            # vxds reads no timestamps; botocore's dateutil parsing of each response's
            # Last-Modified was a third of the client's time per small object.
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
            # vxds retries itself (bounded, whole downloads included), so s3fs and botocore
            # make one attempt each.
            fs = s3fs.S3FileSystem(
                session=session,
                skip_instance_cache=True,
                config_kwargs={
                    "retries": {"total_max_attempts": 1},
                    "parameter_validation": False,
                    "request_checksum_calculation": "when_required",
                    "response_checksum_validation": "when_required",
                },
                **options,
            )
            fs.retries = 1
            self._fs = fs
        return self._fs

    async def _list_page(self, token: str | None) -> tuple[list[Listed], str | None]:
        kwargs: dict[str, Any] = {"Prefix": self.prefix}
        if token is not None:
            kwargs["ContinuationToken"] = token
        page = await self.fs._call_s3("list_objects_v2", Bucket=self.bucket, **kwargs)
        items = [self._listed(item) for item in page.get("Contents", [])]
        return items, (str(page["NextContinuationToken"]) if page.get("IsTruncated") else None)

    async def _list_level(
        self, prefix: str, token: str | None, delimited: bool
    ) -> tuple[list[Listed], list[str], str | None]:
        kwargs: dict[str, Any] = {"Prefix": prefix, **({"Delimiter": "/"} if delimited else {})}
        if token is not None:
            kwargs["ContinuationToken"] = token
        page = await self.fs._call_s3("list_objects_v2", Bucket=self.bucket, **kwargs)
        items = [self._listed(item) for item in page.get("Contents", [])]
        below = [str(p["Prefix"]) for p in page.get("CommonPrefixes", [])]
        return items, below, (str(page["NextContinuationToken"]) if page.get("IsTruncated") else None)

    def _listed(self, item: Mapping[str, Any]) -> Listed:
        key = str(item["Key"])
        etag = str(item.get("ETag", "")).strip('"')
        modified = str(item.get("LastModified", ""))
        return Listed(key[len(self.prefix) :], key, int(item["Size"]), etag, modified)

    async def _fetch(self, key: str, pin: str | None, sink: Sink, listed: Listed | None) -> Fetched:
        """The version read is its VersionId, or its ETag when the bucket keeps no versions."""
        extra = {} if pin is None else {"VersionId": pin}
        response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=key, **extra)
        body = response["Body"]
        size = 0
        try:
            while chunk := await body.read(CHUNK):
                sink(chunk)
                size += len(chunk)
        finally:
            body.close()
        expected = response.get("ContentLength")
        if isinstance(expected, int) and size != expected:
            raise ConnectionError(f"{key}: {size} of {expected} bytes arrived")
        etag = str(response.get("ETag", "")).strip('"')
        found = str(response.get("VersionId") or "null")
        if pin is not None and found != pin:
            raise VersionGone(found)
        return Fetched(found if found != "null" else etag, etag)

    async def _checksums(self, listed: Listed) -> tuple[Fetched, int, dict[str, str]] | None:
        call = self.fs._call_s3
        head = await call("head_object", Bucket=self.bucket, Key=listed.key, ChecksumMode="ENABLED")
        etag = str(head.get("ETag", "")).strip('"')
        found = str(head.get("VersionId") or "null")
        kind = head.get("ChecksumType")  # absent from older S3 APIs (and moto): judged by the ETag
        whole = kind == "FULL_OBJECT" or (kind != "COMPOSITE" and "-" not in etag)
        sums: dict[str, str] = {}
        for algorithm, field, size in (("sha256", "ChecksumSHA256", 32), ("crc32c", "ChecksumCRC32C", 4)):
            value = hex_of(head.get(field), size) if whole else None
            if value is not None:
                sums[algorithm] = value
        fetched = Fetched(found if found != "null" else etag, etag)
        return fetched, int(head.get("ContentLength", listed.size)), sums

    def _classify(self, exc: BaseException) -> FailureKind | None:
        code = _error_code(exc)
        if code == "NoSuchBucket":
            return MISSING_CONTAINER
        if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "NoSuchVersion", "404"):
            return MISSING
        if isinstance(exc, PermissionError) or code in _DENIED_CODES:
            return DENIED
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            return NO_CREDENTIALS
        return TRANSIENT if _is_transient(exc) else None

    def _denial(self, exc: BaseException) -> str:
        return _error_code(exc) or "forbidden"

    def _cause(self, exc: BaseException) -> str:
        """The cause in a few words: S3's error code and message when there is one."""
        text = super()._cause(exc)
        code = _error_code(exc)
        return f"{code}: {text}" if code and code not in text else text


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    cause = exc.__cause__ or exc.__context__
    return _error_code(cause) if cause is not None and cause is not exc else ""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if _error_code(exc) in _TRANSIENT_CODES:
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    return type(exc).__name__ in _TRANSIENT_NAMES
