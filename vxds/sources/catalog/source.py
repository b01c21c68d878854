"""The ``catalog:PATH`` source: a catalog's resources as of one snapshot.

It lists what was current at the latest snapshot, or at ``SourceContext.at``
(``vxds lock --at``), and keeps history: ``get`` finds any version that existed by then and
``open`` reads a version's own bytes from the object store.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import orjson

from vxds.errors import NotFoundError, SourceError
from vxds.hashing import digest_bytes
from vxds.resource import InvalidResource, Resource, check_id
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.catalog.store import Catalog, catalog_path

_DIGEST = re.compile(r"blake3:[0-9a-f]{64}")


def _not_an_id(name: str) -> bool:
    try:
        check_id(name)
    except InvalidResource:
        return True
    return False


class CatalogSource(IndexedSource):
    """The resources of a catalog as of one snapshot (the latest, or ``context.at``)."""

    time_travel = True

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        self.catalog = Catalog(catalog_path(url, context.base), label=f"source {url!r}")
        self.at = self.catalog.snapshot_number(context.at)

    def _scan(self) -> list[Resource]:
        return self.catalog.resources(self.at)

    @property
    def snapshot(self) -> str:
        """The snapshot number the source reads at."""
        return str(self.at)

    def get(self, id: str, version: int | str | None = None) -> Resource:
        if version is None:
            return super().get(id)
        found = self.catalog.version(id, version, self.at) if isinstance(version, int) else None
        if found is None:
            raise NotFoundError(f"{self.url}: no version {version!r} of {id!r} at snapshot {self.at}")
        return found

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        """The files of a DICOM series as ``(name, path in the store)``, from its stored listing.

        The listing may come from anyone who can write the catalog (a pull request), so it
        is checked against the series' locked hash before anything is read from it, and each
        name must be a plain file name (``vxds materialize`` then checks every member's bytes
        against the listing as it places them, inside the series' own folder).
        """
        with self.open(resource) as fh:
            raw = fh.read()
        if resource.hash is not None and digest_bytes(raw) != resource.hash:
            raise SourceError(
                f"{self.url}: the stored listing of {resource.id} does not match its hash {resource.hash}"
            )
        return [(name, str(self.catalog.blob(digest))) for name, digest in self._listing(resource, raw)]

    def _listing(self, resource: Resource, raw: bytes) -> list[tuple[str, str]]:
        try:
            listing = orjson.loads(raw)
        except orjson.JSONDecodeError:
            listing = None
        if not isinstance(listing, list) or not all(
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
            for item in listing
        ):
            raise SourceError(
                f"{self.url}: the stored listing of {resource.id} is not a list of [name, digest]"
            )
        for name, digest in listing:
            if "/" in name or _not_an_id(name) or not _DIGEST.fullmatch(digest):
                raise SourceError(
                    f"{self.url}: the stored listing of {resource.id} holds {name!r} -> {digest!r},"
                    " not a file name and a blake3 digest"
                )
        return [(name, digest) for name, digest in listing]

    def open(self, resource: Resource) -> BinaryIO:
        """The stored bytes of the resource's own version (a series: its listing of files)."""
        if not isinstance(resource.version, int):
            raise NotFoundError(f"{self.url}: {resource.id} has no catalog version ({resource.version!r})")
        stored = self.catalog.version(resource.id, resource.version)
        if stored is None or stored.hash is None:
            raise NotFoundError(f"{self.url}: no version {resource.version} of {resource.id!r}")
        try:
            return open(self.catalog.blob(stored.hash), "rb")
        except OSError as exc:
            raise SourceError(
                f"{self.url}: the bytes of {resource.id} version {resource.version} are missing"
                f" from {self.catalog.objects}: {exc.strerror}"
            ) from None
