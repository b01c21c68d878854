"""An S3 bucket prefix as a source: ``s3://bucket/prefix``, read through s3fs.

It gives what a folder holding the same files gives (ids, types, BIDS attrs, clinical
rows, DICOM series: ``vxds.sources.tree``), except for ``version``:

* ``version`` is the object's VersionId when the bucket is versioned, else its ETag (an
  unversioned bucket keeps one copy of each object, and the ETag names it);
* ``hash`` is the blake3 of the bytes, computed while they stream in, many objects at
  once on s3fs' event loop, starting while the listing goes on. The version is the one
  the read returned, so it always names the bytes hashed. Each upload's version and digest
  are cached under ``.vxds/objects/`` by (key, ETag, Last-Modified, size), so relocking an
  unchanged prefix lists it and reads only its sidecars and tables;
* ``open(resource)`` reads the VersionId the resource records, so an old lock reads the
  old bytes. A resource labelled by an ETag reads the bucket's only copy, and whoever
  re-hashes it sees whether it changed.

Credentials come from the usual AWS places (environment, ``~/.aws`` profiles, instance
roles) or from ``[tool.vxds.storage]``; they are never written into a resource, a lock,
an error message or a log. Transient failures (connection errors, timeouts, 5xx, SlowDown)
are retried a bounded number of times, then reported as one ``SourceError``.
"""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar

import orjson
from blake3 import blake3

from vxds.errors import NotFoundError, SourceError
from vxds.fsutil import atomic_write_bytes
from vxds.hashing import PREFIX, digest_bytes
from vxds.resource import Resource, checked
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.tree import TreeBuilder, TreeFile, split_series

T = TypeVar("T")
Sink = Callable[[bytes], object]

CHUNK = 1 << 20
DEFAULT_CONCURRENCY = 32
DEFAULT_RETRIES = 4
BACKOFF = 0.2  # seconds before the first retry; doubled each time
KEEP_EXTENSIONS = (".json", ".tsv", ".csv")  # sidecars and tables are read again to build attrs
_ETAG_RE = re.compile(r"[0-9a-f]{32}(-[0-9]+)?\Z")
_URL_RE = re.compile(r"(?P<scheme>s3|s3a)://(?P<bucket>[^/]+)/?(?P<prefix>.*)\Z")
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling", "503", "500"}
)
# Options of [tool.vxds.storage] that vxds maps onto s3fs; any other key is passed as is.
_SECRET_KEYS = ("key", "secret", "token", "password", "username")


class _Listed(NamedTuple):
    """An object as the listing shows it."""

    rel: str
    key: str
    size: int
    etag: str
    modified: str  # Last-Modified as S3 wrote it: with the ETag, it names one upload


class _Object(NamedTuple):
    """An object as read: the version and digest of the bytes that were hashed."""

    rel: str
    key: str
    size: int
    version: str  # VersionId, or the ETag when the bucket keeps no versions
    digest: str


def is_etag(version: str) -> bool:
    """An S3 ETag (an MD5, with ``-N`` for multipart uploads), as opposed to a VersionId."""
    return bool(_ETAG_RE.match(version))


class ObjectStoreSource(IndexedSource):
    """Objects under an S3 prefix, one resource per object (and per clinical row)."""

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        match = _URL_RE.match(url)
        if match is None or "@" in match.group("bucket"):
            raise SourceError(
                f"source {_shown(url)!r}: expected s3://BUCKET/PREFIX without credentials"
                " (give them through the environment, a profile or [tool.vxds.storage])"
            )
        self.bucket = match.group("bucket")
        prefix = match.group("prefix").strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        options = dict(context.options)
        self.retries = _count(options.pop("retries", DEFAULT_RETRIES), "retries", url)
        self.concurrency = max(
            1, _count(options.pop("concurrency", context.jobs or DEFAULT_CONCURRENCY), "concurrency", url)
        )
        self._secrets = [str(v) for k, v in options.items() if k in _SECRET_KEYS and v]
        self._fs_options = _s3fs_options(options)
        self._fs: Any = None
        self._rows: dict[str, bytes] = {}
        self._kept: dict[str, bytes] = {}
        self._snapshot = ""

    # --- talking to S3 -----------------------------------------------------------------

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import s3fs
            from aiobotocore.session import AioSession

            options = dict(self._fs_options)
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

    def _run(self, make: Callable[[], Awaitable[T]]) -> T:
        from fsspec.asyn import sync

        try:
            result: T = sync(self.fs.loop, make)
        except SourceError:
            raise
        except Exception as exc:
            raise self._failure(exc) from None
        return result

    async def _call(self, method: str, **kwargs: Any) -> Any:
        """One S3 call, retried while it fails transiently."""
        for attempt in range(self.retries + 1):
            try:
                return await self.fs._call_s3(method, Bucket=self.bucket, **kwargs)
            except Exception as exc:
                if not _is_transient(exc) or attempt == self.retries:
                    raise
                await asyncio.sleep(BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    async def _download(self, key: str, version: str | None, new_sink: Callable[[], Sink]) -> tuple[str, str]:
        """Stream one object into a sink; return the version read (VersionId, else ETag) and
        its ETag.

        ``version`` pins a VersionId (an ETag pins nothing: an unversioned bucket has one
        copy). A transient failure restarts the download into a new sink, a bounded number
        of times; a body shorter than its Content-Length is such a failure.
        """
        pin = {} if version is None or is_etag(version) else {"VersionId": version}
        for attempt in range(self.retries + 1):
            sink = new_sink()
            try:
                response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=key, **pin)
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
                return (found if found != "null" else etag), etag
            except Exception as exc:
                if not _is_transient(exc) or attempt == self.retries:
                    raise
                await asyncio.sleep(BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    def _failure(self, exc: BaseException, what: str = "") -> SourceError:
        """A one-line SourceError for a failed call, with any secret blanked out."""
        where = f"source {self.url!r}" + (f": {what}" if what else "")
        code = _error_code(exc)
        if isinstance(exc, FileNotFoundError) or code in ("NoSuchBucket", "NoSuchKey", "404"):
            cause = f"bucket {self.bucket!r} or the object does not exist"
            if code == "NoSuchBucket":
                cause = f"bucket {self.bucket!r} does not exist"
            return SourceError(f"{where}: {cause}")
        if isinstance(exc, PermissionError) or code in (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "403",
        ):
            return SourceError(
                f"{where}: access denied ({code or 'forbidden'}); check the credentials",
                hint="credentials come from AWS_* variables, a profile, or [tool.vxds.storage]",
            )
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return SourceError(
                f"{where}: no credentials found",
                hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or anon = true"
                " in [tool.vxds.storage]",
            )
        if _is_transient(exc):
            return SourceError(
                f"{where}: the storage service failed after {self.retries + 1} attempts:"
                f" {self._scrub(_one_line(exc))}"
            )
        return SourceError(f"{where}: {name}: {self._scrub(_one_line(exc))}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _scrub_environment(text)

    # --- listing and hashing -----------------------------------------------------------

    async def _pages(self) -> AsyncIterator[list[_Listed]]:
        """The objects under the prefix, a page at a time (hidden names skipped)."""
        kwargs: dict[str, Any] = {"Prefix": self.prefix}
        while True:
            page = await self._call("list_objects_v2", **kwargs)
            yield [obj for item in page.get("Contents", []) if (obj := self._listed(item)) is not None]
            if not page.get("IsTruncated"):
                return
            kwargs = {"Prefix": self.prefix, "ContinuationToken": page["NextContinuationToken"]}

    def _listed(self, item: Mapping[str, Any]) -> _Listed | None:
        key = str(item["Key"])
        rel = key[len(self.prefix) :]
        if not rel or rel.endswith("/") or any(part.startswith(".") for part in rel.split("/")):
            return None  # folder markers and hidden files, as the folder source skips them
        etag = str(item.get("ETag", "")).strip('"')
        return _Listed(rel, key, int(item["Size"]), etag, str(item.get("LastModified", "")))

    async def _collect(self, cache: _DigestCache) -> list[_Object]:
        """List the prefix and read what the cache does not know, while the listing goes on.

        An object's VersionId comes from the response that delivered its bytes, so the
        version recorded always names the bytes hashed, even when the object is replaced
        between the listing and the read.
        """
        gate = asyncio.Semaphore(self.concurrency)
        task = self.context.progress.task(f"hashing {self.url}")
        found: list[_Object] = []
        pending: list[_Listed] = []
        reads: list[asyncio.Task[tuple[_Object, str]]] = []
        try:
            async for page in self._pages():
                for listed in page:
                    keep = listed.rel.lower().endswith(KEEP_EXTENSIONS)  # sidecars and tables
                    known = cache.get(listed)
                    if known is not None and not keep:
                        found.append(_Object(listed.rel, listed.key, listed.size, *known))
                        task.advance()
                    else:
                        pending.append(listed)
                        reads.append(asyncio.ensure_future(self._read_one(listed, keep, gate, task)))
            fresh = await asyncio.gather(*reads)
        finally:
            for read in reads:
                read.cancel()
            task.close()
        for listed, (obj, etag) in zip(pending, fresh, strict=True):
            if etag == listed.etag:  # else the object was replaced after the listing
                cache.put(listed, obj)
        return found + [obj for obj, _ in fresh]

    async def _read_one(
        self, listed: _Listed, keep: bool, gate: asyncio.Semaphore, task: Any
    ) -> tuple[_Object, str]:
        async with gate:
            sinks: list[_Digest] = []

            def new_sink() -> Sink:
                sinks.append(_Digest(keep=keep))
                return sinks[-1].update

            try:
                version, etag = await self._download(listed.key, None, new_sink)
            except Exception as exc:
                raise self._failure(exc, f"cannot read {listed.rel}") from None
            digest = sinks[-1]
            if digest.kept is not None:
                self._kept[listed.rel] = b"".join(digest.kept)
            task.advance()
            return _Object(listed.rel, listed.key, digest.size, version, digest.value()), etag

    def _scan(self) -> list[Resource]:
        cache = _DigestCache(self.context.cache_dir, self.bucket)
        objects = self._run(lambda: self._collect(cache))
        cache.save()
        digests = {obj.rel: obj.digest for obj in objects}
        versions = {obj.rel: obj.version for obj in objects}
        lines = sorted(f"{o.rel}\t{o.version}\t{o.digest}\n" for o in objects)
        self._snapshot = digest_bytes("".join(lines).encode("utf-8"))
        builder = TreeBuilder(self.url, digests, self._read_kept, versions.__getitem__)
        files: list[TreeFile] = list(objects)
        plain, series = split_series(files)
        found = [checked(resource) for resource in builder.build(plain, series)]
        self._rows = builder.rows
        self._kept.clear()
        return found

    def _read_kept(self, rel: str) -> bytes:
        return self._kept[rel]

    # --- the protocol ------------------------------------------------------------------

    @property
    def snapshot(self) -> str:
        """Digest of every object's path, version and digest."""
        self.resources()
        return self._snapshot

    def open(self, resource: Resource) -> BinaryIO:
        if resource.type == "ClinicalRecord":
            self.get(resource.id)  # NotFoundError for an unknown row
            return io.BytesIO(self._rows[resource.id])
        if resource.type == "DICOMSeries":
            raise SourceError(f"{resource.id} is a DICOM series (a folder); open its files one by one")
        rel = resource.uri or resource.id
        if rel.startswith("/") or ".." in rel.split("/"):
            raise SourceError(f"resource {resource.id!r} points outside the source prefix")
        spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 (returned open)
        version = str(resource.version)

        def new_sink() -> Sink:
            spool.seek(0)
            spool.truncate()
            return spool.write

        try:
            self._run(lambda: self._download(self.prefix + rel, version, new_sink))
        except SourceError as exc:
            spool.close()
            raise self._open_failure(resource, exc) from None
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def _open_failure(self, resource: Resource, exc: SourceError) -> SourceError:
        if "does not exist" in exc.message and not is_etag(str(resource.version)):
            return NotFoundError(
                f"source {self.url!r}: {resource.id} version {resource.version} no longer exists"
            )
        return SourceError(
            f"source {self.url!r}: cannot read {resource.id}: {exc.message.split(': ', 1)[-1]}"
        )


class _Digest:
    """Hashes a stream's chunks, keeping them too when asked (sidecars and tables)."""

    def __init__(self, *, keep: bool) -> None:
        self.hasher = blake3()
        self.size = 0
        self.kept: list[bytes] | None = [] if keep else None

    def update(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.size += len(chunk)
        if self.kept is not None:
            self.kept.append(chunk)

    def value(self) -> str:
        return PREFIX + self.hasher.hexdigest()


def _s3fs_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """[tool.vxds.storage] as s3fs keyword arguments (``region`` and ``profile`` renamed)."""
    out = {k: v for k, v in options.items() if not isinstance(v, dict)}
    out.update(options.get("s3", {}) if isinstance(options.get("s3"), dict) else {})
    region = out.pop("region", None)
    if region is not None:
        out.setdefault("client_kwargs", {})["region_name"] = region
    return out


def _count(value: object, name: str, url: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"source {url!r}: [tool.vxds.storage] {name} must be a whole number, got {value!r}")
    return value


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    cause = exc.__cause__ or exc.__context__
    return _error_code(cause) if cause is not None and cause is not exc else ""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError, TimeoutError)):
        return True
    if _error_code(exc) in _TRANSIENT_CODES:
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return isinstance(status, int) and status >= 500
    name = type(exc).__name__
    return name in (
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
    )


def _one_line(exc: BaseException) -> str:
    """The cause in a few words: S3's error code and message when there is one."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    code = _error_code(exc)
    text = " ".join(str(text).split()) or type(exc).__name__
    return f"{code}: {text}" if code and code not in text else text


def _scrub_environment(text: str) -> str:
    import os

    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _shown(url: str) -> str:
    """A URL with any ``user:password@`` removed, for messages."""
    return re.sub(r"://[^/@]*@", "://***@", url)


class _DigestCache:
    """An upload (key, ETag, Last-Modified) -> the version and digest read from it.

    Every upload gets a new Last-Modified (and, in a versioned bucket, a new VersionId), so
    an entry names one upload's bytes; entries never expire.
    """

    def __init__(self, cache_dir: Path | None, bucket: str) -> None:
        self.path = cache_dir / "objects" / f"{bucket}.json" if cache_dir is not None else None
        self.entries: dict[str, list[str]] = {}
        self.dirty = False
        if self.path is not None:
            try:
                data = orjson.loads(self.path.read_bytes())
                if (
                    isinstance(data, dict)
                    and data.get("version") == 1
                    and isinstance(data.get("entries"), dict)
                ):
                    self.entries = data["entries"]
            except (OSError, orjson.JSONDecodeError):
                pass

    @staticmethod
    def _key(listed: _Listed) -> str:
        return f"{listed.key}\t{listed.etag}\t{listed.modified}\t{listed.size}"

    def get(self, listed: _Listed) -> tuple[str, str] | None:
        entry = self.entries.get(self._key(listed))
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry):
            return entry[0], entry[1]
        return None

    def put(self, listed: _Listed, obj: _Object) -> None:
        self.entries[self._key(listed)] = [obj.version, obj.digest]
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        payload = orjson.dumps({"version": 1, "entries": self.entries}, option=orjson.OPT_SORT_KEYS)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, payload)
        except OSError:
            pass
