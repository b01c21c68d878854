"""An Azure Blob Storage prefix as a source: ``az://container/prefix``, read through adlfs.

``abfs://container/prefix``, ``abfss://…`` and ``abfs://container@ACCOUNT.dfs.core.windows.net/prefix``
name the same thing. It gives what an S3 prefix gives (``vxds.sources.objectstore.base``), with
Azure's own version:

* ``version`` is the blob's version id when the storage account keeps blob versions, else
  its ETag (``0x8D…``): an account without versioning keeps one copy of each blob, and the
  ETag names it;
* ``open(resource)`` reads the version id the resource records; a store that answers with
  another version (or none, as an account without versioning does) is a ``NotFoundError``
  for that version. An ETag-labelled resource reads the one copy the container has, and
  whoever re-hashes it sees whether it changed;
* with ``checksums = "store"``, a blob is not read: its properties (one HEAD) give its
  version and ``Content-MD5`` (weak, docs/checksums.md: taken only when the project allows
  md5). A blob uploaded in blocks has one only when the uploader set it.

adlfs gives the credentials (``account_name`` with ``account_key``, ``sas_token``, a
service principal or Azure's default credential chain; or a ``connection_string``; or
``anon``) and the azure-storage-blob client; every request is made with the SDK's own
retries off, and retried by vxds.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from vxds.errors import SourceError
from vxds.sources.base import SourceContext
from vxds.sources.objectstore.base import BucketSource, shown
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

_ETAG_RE = re.compile(r'"?0x[0-9A-Fa-f]+"?\Z')
_URL_RE = re.compile(
    r"(?:az|abfs|abfss)://(?P<container>[^/?#@:]+)"
    r"(?:@(?P<account>[a-z0-9]+)\.(?:dfs|blob)\.core\.windows\.net)?"
    r"(?:/(?P<prefix>[^?#]*))?\Z"
)
_ACCOUNT_RE = re.compile(r"AccountName=([^;]+)", re.IGNORECASE)
_SECRET_PARTS_RE = re.compile(r"(?:AccountKey|SharedAccessSignature)=([^;]+)", re.IGNORECASE)


def is_etag(version: str) -> bool:
    """An Azure ETag (``0x8D…``), as opposed to a version id (a timestamp)."""
    return bool(_ETAG_RE.match(version))


class AzureBlobSource(ByLevel, BucketSource):
    """Blobs under an Azure container prefix, one resource per blob (and per clinical row)."""

    schemes: ClassVar[tuple[str, ...]] = ("az", "abfs", "abfss")
    container_word: ClassVar[str] = "container"
    secret_keys: ClassVar[tuple[str, ...]] = (
        "account_key",
        "connection_string",
        "sas_token",
        "client_secret",
        "credential",
    )
    secret_environment: ClassVar[tuple[str, ...]] = (
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_CLIENT_SECRET",
        "AZURE_CLIENT_SECRET",
    )
    credentials_hint: ClassVar[str] = (
        "AZURE_STORAGE_* variables, Azure's default credentials, or [tool.vxds.storage.azure]"
        " (account_name with account_key or sas_token, or connection_string)"
    )
    options_table: ClassVar[str] = "azure"
    shared_options: ClassVar[bool] = False

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        parts = [m.group(1) for s in self._secrets for m in _SECRET_PARTS_RE.finditer(s)]
        self._secrets = sorted({*self._secrets, *parts}, key=len, reverse=True)
        if self._account:
            self._options.setdefault("account_name", self._account)

    def _parse_url(self, url: str) -> tuple[str, str]:
        match = _URL_RE.match(url)
        if match is None:
            raise SourceError(
                f"source {shown(url)!r}: expected az://CONTAINER/PREFIX (or"
                " abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX) without credentials"
                " (give them through the environment or [tool.vxds.storage.azure])"
            )
        self._account = match.group("account")
        return match.group("container"), match.group("prefix") or ""

    def _cache_name(self) -> str:
        account = self._options.get("account_name")
        if not account:
            named = _ACCOUNT_RE.search(str(self._options.get("connection_string") or ""))
            account = named.group(1) if named else "default"
        return f"az-{account}-{self.bucket}"

    def _pins(self, version: str) -> bool:
        return not is_etag(version)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from adlfs import AzureBlobFileSystem

            self._fs = AzureBlobFileSystem(skip_instance_cache=True, **self._options)
        return self._fs

    def _container(self) -> Any:
        return self.fs.service_client.get_container_client(self.bucket)

    async def _level(
        self, prefix: str, token: str | None, delimited: bool
    ) -> tuple[list[Listed], list[str], str | None]:
        """A page of ``prefix``, by delimiter (``/``, ``walk_blobs``) when ``delimited``: a
        sub-prefix comes as a ``BlobPrefix``, whose name ends with the delimiter."""
        from azure.storage.blob.aio import BlobPrefix

        container = self._container()
        start = prefix or None
        listed = (
            container.walk_blobs(name_starts_with=start, delimiter="/", retry_total=0)
            if delimited
            else container.list_blobs(name_starts_with=start, retry_total=0)
        )
        pages = listed.by_page(continuation_token=token)
        items: list[Listed] = []
        below: list[str] = []
        async for page in pages:
            async for blob in page:
                name = str(blob.name)
                if isinstance(blob, BlobPrefix):  # a level below
                    below.append(name)
                    continue
                modified = blob.last_modified.isoformat() if blob.last_modified is not None else ""
                items.append(
                    Listed(name[len(self.prefix) :], name, int(blob.size or 0), _etag(blob.etag), modified)
                )
            break
        return items, below, (str(pages.continuation_token) if pages.continuation_token else None)

    async def _fetch(self, key: str, pin: str | None, sink: Sink, listed: Listed | None) -> Fetched:
        blob = self._container().get_blob_client(key)
        stream = await blob.download_blob(version_id=pin, max_concurrency=1, retry_total=0)
        properties = stream.properties
        found = properties.version_id
        if pin is not None and found != pin:
            raise VersionGone(found or "")
        size = 0
        async for chunk in stream.chunks():
            sink(chunk)
            size += len(chunk)
        if size != properties.size:
            raise ConnectionError(f"{key}: {size} of {properties.size} bytes arrived")
        etag = _etag(properties.etag)
        return Fetched(str(found) if found else etag, etag)

    async def _checksums(self, listed: Listed) -> tuple[Fetched, int, dict[str, str]] | None:
        properties = await self._container().get_blob_client(listed.key).get_blob_properties(retry_total=0)
        md5 = properties.content_settings.content_md5
        found, etag = properties.version_id, _etag(properties.etag)
        sums = {"md5": bytes(md5).hex()} if md5 and len(md5) == 16 else {}
        return Fetched(str(found) if found else etag, etag), int(properties.size or 0), sums

    def _classify(self, exc: BaseException) -> FailureKind | None:
        names = {cls.__name__ for cls in type(exc).__mro__}
        code = str(getattr(exc, "error_code", "") or "")
        status = getattr(exc, "status_code", None)
        if "ResourceNotFoundError" in names or status == 404:
            return MISSING_CONTAINER if code == "ContainerNotFound" else MISSING
        if "ClientAuthenticationError" in names or status in (401, 403):
            return DENIED
        if "CredentialUnavailableError" in names or (
            isinstance(exc, ValueError) and "connection_string or account_name" in str(exc)
        ):
            return NO_CREDENTIALS
        if names & {"ServiceRequestError", "ServiceResponseError", "IncompleteReadError"}:
            return TRANSIENT
        if isinstance(exc, (TimeoutError, ConnectionError)):
            return TRANSIENT
        if isinstance(status, int) and (status >= 500 or status in (408, 429)):
            return TRANSIENT
        return None

    def _denial(self, exc: BaseException) -> str:
        code = getattr(exc, "error_code", None)
        return str(getattr(code, "value", code)) if code else "forbidden"

    def _cause(self, exc: BaseException) -> str:
        """The SDK's first line (its messages go on with request ids and XML)."""
        text = super()._cause(exc) if not getattr(exc, "message", None) else str(exc.message)  # type: ignore[attr-defined]
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        first = " ".join(first.split())
        code = getattr(exc, "error_code", None)
        code = str(getattr(code, "value", code)) if code else ""
        return f"{code}: {first}" if code and code not in first else first


def _etag(value: object) -> str:
    return str(value or "").strip('"')
