"""What every object-store source shares: ``s3://``, ``gs://`` and ``az://`` prefixes.

A store lists the objects under a prefix and streams each one; everything else is the same
for all stores and lives here:

* the listing becomes resources as a folder holding the same files does (ids, types, BIDS
  attrs, clinical rows, DICOM series: ``vxds.sources.folder.tree``);
* ``hash`` is the blake3 of the bytes, computed while they stream in, many objects at once
  on fsspec's event loop, starting while the listing goes on. The version recorded is the
  one the read returned, so it always names the bytes hashed;
* each upload's version and digest are cached under ``.vxds/objects/`` by what the listing
  says of it (key, tag, modification time, size), so relocking an unchanged prefix lists it
  and reads only its sidecars and tables;
* ``open(resource)`` reads the version the resource records; a store that answers with
  another version is a ``NotFoundError`` for that version, never other bytes;
* with ``checksums = "store"`` an object's hash is the store's own checksum of it where
  it keeps one (``checksums``; the series' members are still read, as their manifest
  names blake3 digests);
* transient failures are retried a bounded number of times with exponential backoff, then
  reported as one ``SourceError``; credentials given in ``[tool.vxds.storage]`` or the
  environment are blanked out of every message.

A store subclass says how to parse its URL, connect, list one page, stream one object,
and classify a failure. What a listing and a read say of an object, and the digest cache,
are in ``listing``; the kinds of failure in ``failures``.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO, ClassVar, TypeVar

from vxds.errors import NotFoundError, SourceError
from vxds.executor import for_url
from vxds.hashing import digest_bytes
from vxds.resource import Resource, checked
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.folder.tree import TreeBuilder, TreeFile, split_series
from vxds.sources.objectstore.checksums import members_in_blake3, take_checksum
from vxds.sources.objectstore.failures import (
    DENIED,
    MISSING,
    MISSING_CONTAINER,
    NO_CREDENTIALS,
    TRANSIENT,
    FailureKind,
    StoreFailure,
    VersionGone,
)
from vxds.sources.objectstore.listing import (
    DigestCache,
    DigestSink,
    Fetched,
    Listed,
    Sink,
    Stored,
    fan_out,
    visible,
)
from vxds.sources.objectstore.members import SERIES, fetch_members, listing_file
from vxds.sources.objectstore.settings import settings_of

T = TypeVar("T")

CHUNK = 1 << 20
KEEP_EXTENSIONS = (".json", ".tsv", ".csv")  # sidecars and tables are read again to build attrs


class BucketSource(IndexedSource):
    """Objects under a prefix of a bucket (or container), one resource per object.

    Its snapshot is the digest of every object's path, version and digest.
    """

    #: ``s3``, ``gs``, ``az`` ...: the schemes this class parses.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: What the store calls a bucket, in messages.
    container_word: ClassVar[str] = "bucket"
    #: Options of [tool.vxds.storage] whose values are secrets.
    secret_keys: ClassVar[tuple[str, ...]] = ("key", "secret", "token", "password", "username")
    #: Environment variables whose values are secrets.
    secret_environment: ClassVar[tuple[str, ...]] = ()
    #: Where the credentials come from, for the hint of an access-denied error.
    credentials_hint: ClassVar[str] = "[tool.vxds.storage]"
    #: The sub-table of [tool.vxds.storage] that applies to this store only.
    options_table: ClassVar[str] = ""
    #: Whether the top level of [tool.vxds.storage] (other than retries and concurrency)
    #: applies to this store too; else only its own sub-table does.
    shared_options: ClassVar[bool] = True

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        self.bucket, prefix = self._parse_url(url)
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        settings = settings_of(context.options, url, self.options_table, self.shared_options, context.jobs)
        self.record_tables, self.checksums = settings.record_tables, settings.checksums
        self.retries, self.backoff = settings.retries, settings.backoff
        self.concurrency, options = settings.concurrency, settings.rest
        self._secrets = sorted(
            {str(v) for k, v in options.items() if k in self.secret_keys and self._is_secret(v)},
            key=len,
            reverse=True,
        )
        self._options = self._store_options(options)
        self._fs: Any = None
        self._kept: dict[str, bytes] = {}
        self._members: dict[str, list[tuple[str, str]]] = {}  # series id -> fetched member files
        self._spool: str | None = None  # the temporary folder they are in

    # --- what a store says -------------------------------------------------------------

    def _parse_url(self, url: str) -> tuple[str, str]:
        """``scheme://bucket/prefix`` -> (bucket, prefix); credentials in a URL are refused."""
        schemes = "|".join(re.escape(s) for s in self.schemes)
        match = re.match(rf"(?:{schemes})://(?P<bucket>[^/?#@:]+)(?:/(?P<prefix>[^?#]*))?\Z", url)
        if match is None:
            raise self._bad_url(url)
        return match.group("bucket"), match.group("prefix") or ""

    def _bad_url(self, url: str) -> SourceError:
        return SourceError(
            f"source {shown(url)!r}: expected {self.schemes[0]}://{self.container_word.upper()}/PREFIX"
            " without credentials (give them through the environment or [tool.vxds.storage])"
        )

    def _is_secret(self, value: object) -> bool:
        return isinstance(value, str) and len(value) >= 4

    def _store_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """[tool.vxds.storage] as keyword arguments of the store's filesystem."""
        return options

    @property
    @abstractmethod
    def fs(self) -> Any:
        """The fsspec filesystem (connected on first use); its ``loop`` runs every call."""

    @abstractmethod
    async def _list_page(self, token: str | None) -> tuple[list[Listed], str | None]:
        """One page of the objects under the prefix, and the token of the next (or None)."""

    @abstractmethod
    async def _fetch(self, key: str, pin: str | None, sink: Sink, listed: Listed | None) -> Fetched:
        """Stream one object into ``sink``, once; raise on any failure (the caller retries).

        ``pin`` is a recorded version to read; a read that finds another version raises
        ``VersionGone``. A body shorter than announced raises ``ConnectionError``.
        """

    @abstractmethod
    def _classify(self, exc: BaseException) -> FailureKind | None:
        """The kind of a failure, or None when it is none of the known kinds."""

    async def _checksums(self, listed: Listed) -> tuple[Fetched, int, dict[str, str]] | None:
        """The version, size and checksums (algorithm -> hex) the store keeps of a listed
        object, from one request that reads no bytes; None when it keeps none."""
        return None

    def _pins(self, version: str) -> bool:
        """Whether a recorded version names one version to read (an ETag names none)."""
        return True

    def _cause(self, exc: BaseException) -> str:
        """A failure in a few words."""
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return " ".join(str(text).split()) or type(exc).__name__

    def _cache_name(self) -> str:
        return f"{self.schemes[0]}-{self.bucket}"

    # --- calls, retries and failures ---------------------------------------------------

    def _run(self, make: Callable[[], Awaitable[T]]) -> T:
        from fsspec.asyn import sync

        try:
            result: T = sync(self.fs.loop, make)
        except (SourceError, VersionGone):
            raise
        except Exception as exc:
            raise self._failure(exc) from None
        return result

    async def _retrying(self, make: Callable[[], Awaitable[T]]) -> T:
        """One call, retried while it fails transiently."""
        for attempt in range(self.retries + 1):
            try:
                return await make()
            except Exception as exc:
                if self._classify(exc) != TRANSIENT or attempt == self.retries:
                    raise
                await asyncio.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _download(
        self, key: str, version: str | None, new_sink: Callable[[], Sink], listed: Listed | None = None
    ) -> Fetched:
        """Stream one object into a sink, restarting into a new sink after a transient
        failure, a bounded number of times."""
        pin = version if version is not None and self._pins(version) else None
        return await self._retrying(lambda: self._fetch(key, pin, new_sink(), listed))

    def _failure(self, exc: BaseException, what: str = "") -> StoreFailure:
        """A one-line error for a failed call, with any secret blanked out."""
        where = f"source {self.url!r}" + (f": {what}" if what else "")
        kind = self._classify(exc)
        word = self.container_word
        hint = None
        if kind == MISSING_CONTAINER:
            text = f"{word} {self.bucket!r} does not exist"
        elif kind == MISSING:
            text = f"{word} {self.bucket!r} or the object does not exist"
        elif kind == DENIED:
            text = f"access denied ({self._scrub(self._denial(exc))}); check the credentials"
            hint = f"credentials come from {self.credentials_hint}"
        elif kind == NO_CREDENTIALS:
            text, hint = "no credentials found", f"set {self.credentials_hint}"
        elif kind == TRANSIENT:
            attempts = self.retries + 1
            text = f"the storage service failed after {attempts} attempts: {self._scrub(self._cause(exc))}"
        else:
            text = f"{type(exc).__name__}: {self._scrub(self._cause(exc))}"
        return StoreFailure(f"{where}: {text}", kind=kind, hint=hint)

    def _denial(self, exc: BaseException) -> str:
        return "forbidden"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        for name in self.secret_environment:
            value = os.environ.get(name)
            if value and len(value) >= 4:
                text = text.replace(value, "***")
        return text

    # --- listing and hashing -----------------------------------------------------------

    async def _list_level(
        self, prefix: str, token: str | None, delimited: bool
    ) -> tuple[list[Listed], list[str], str | None]:
        """A page of ``prefix`` (``listing.LevelLister``); a store that overrides it fans out."""
        raise NotImplementedError

    async def _pages(self) -> AsyncIterator[list[Listed]]:
        """The objects under the prefix, a page at a time (hidden names skipped)."""
        if type(self)._list_level is not BucketSource._list_level:
            async for found in fan_out(self._list_level, self._retrying, self.prefix, width=self.concurrency):
                yield [obj for obj in found if visible(obj.rel)]
            return
        token: str | None = None
        while True:
            page, token = await self._retrying(lambda at=token: self._list_page(at))  # type: ignore[misc]
            yield [obj for obj in page if visible(obj.rel)]
            if token is None:
                return

    async def _collect(self, cache: DigestCache) -> list[Stored]:
        """List the prefix and read what the cache does not know, while the listing goes on.

        An object's version comes from the response that delivered its bytes, so the version
        recorded always names the bytes hashed, even when the object is replaced between the
        listing and the read.
        """
        gate = asyncio.Semaphore(self.concurrency)
        task = self.context.progress.task(f"hashing {self.url}")
        found: list[Stored] = []
        pending: list[Listed] = []
        reads: list[asyncio.Task[tuple[Stored, str]]] = []
        try:
            async for page in self._pages():
                for listed in page:
                    keep = listed.rel.lower().endswith(KEEP_EXTENSIONS)  # sidecars and tables
                    known = cache.get(listed)
                    if known is not None and not keep:
                        found.append(Stored(listed.rel, listed.key, listed.size, *known))
                        task.advance()
                    else:
                        pending.append(listed)
                        reads.append(asyncio.ensure_future(self._read_one(listed, keep, gate, task)))
            fresh = await asyncio.gather(*reads)
        finally:
            for read in reads:
                read.cancel()
            task.close()
        for listed, (obj, tag) in zip(pending, fresh, strict=True):
            if tag == listed.tag:  # else the object was replaced after the listing
                cache.put(listed, obj)
        return found + [obj for obj, _ in fresh]

    async def _read_one(
        self, listed: Listed, keep: bool, gate: asyncio.Semaphore, task: Any
    ) -> tuple[Stored, str]:
        async with gate:
            if self.checksums.from_store and not keep:
                taken = await take_checksum(self, listed)
                if taken is not None:
                    task.advance()
                    return taken
            sinks: list[DigestSink] = []

            def new_sink() -> Sink:
                sinks.append(DigestSink(keep=keep))
                return sinks[-1].update

            try:
                fetched = await self._download(listed.key, None, new_sink, listed)
            except Exception as exc:
                raise self._failure(exc, f"cannot read {listed.rel}") from None
            digest = sinks[-1]
            if digest.kept is not None:
                self._kept[listed.rel] = b"".join(digest.kept)
            task.advance()
            stored = Stored(listed.rel, listed.key, digest.size, fetched.version, digest.value())
            return stored, fetched.tag

    def _scan(self) -> list[Resource]:
        store = self.checksums.from_store  # its digests are cached apart from blake3's
        cache = DigestCache(self.context.cache_dir, self._cache_name() + (".checksums" if store else ""))
        executor = for_url(self.context.executor)
        if executor.remote and not store:  # a store's checksums are HEADs, not reads: asked here
            from vxds.sources.objectstore.remote import collect

            objects = collect(self, cache, executor)
        else:
            objects = self._run(lambda: self._collect(cache))
        if store:
            objects = self._run(lambda: members_in_blake3(self, objects, cache))
        cache.save()
        digests = {obj.rel: obj.digest for obj in objects}
        versions = {obj.rel: obj.version for obj in objects}
        lines = sorted(f"{o.rel}\t{o.version}\t{o.digest}\n" for o in objects)
        self._snapshot = digest_bytes("".join(lines).encode("utf-8"))
        builder = TreeBuilder(
            self.url, digests, self._read_kept, versions.__getitem__, record_tables=self.record_tables
        )
        files: list[TreeFile] = list(objects)
        plain, series = split_series(files)
        found = [checked(resource) for resource in builder.build(plain, series)]
        self._rows = builder.rows
        self._kept.clear()
        return found

    def _read_kept(self, rel: str) -> bytes:
        return self._kept[rel]

    # --- reading ---------------------------------------------------------------------

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        """A DICOM series' or Zarr's member objects as local files (``members``)."""
        return fetch_members(self, resource)

    def open(self, resource: Resource) -> BinaryIO:
        """A series' bytes are its listing of members, as a catalog's are (``members``)."""
        return listing_file(self, resource) if resource.type in SERIES else super().open(resource)

    def _open_file(self, resource: Resource) -> BinaryIO:
        """The bytes of the version the resource records, spooled (see the module docstring)."""
        rel = resource.uri or resource.id
        if rel.startswith("/") or ".." in rel.split("/"):
            raise SourceError(f"resource {resource.id!r} points outside the source prefix")
        spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 (returned open)
        version = str(resource.version)

        def new_sink() -> Sink:
            spool.seek(0)
            spool.truncate()
            return spool.write

        gone = NotFoundError(f"source {self.url!r}: {resource.id} version {version} no longer exists")
        try:
            self._run(lambda: self._download(self.prefix + rel, version, new_sink))
        except VersionGone:
            spool.close()
            raise gone from None
        except SourceError as exc:
            spool.close()
            missing = isinstance(exc, StoreFailure) and exc.kind in (MISSING, MISSING_CONTAINER)
            if missing and self._pins(version):
                raise gone from None
            cause = exc.message.split(": ", 1)[-1]
            raise SourceError(f"source {self.url!r}: cannot read {resource.id}: {cause}") from None
        spool.seek(0)
        return spool  # type: ignore[return-value]


def shown(url: str) -> str:
    """A URL with any ``user:password@`` and query removed, for messages."""
    return re.sub(r"://[^@]*@", "://***@", url.split("?", 1)[0])
