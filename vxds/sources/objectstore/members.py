"""The member objects of a DICOM series or a Zarr in a bucket, fetched as local files.

A series in a bucket is a "folder" of objects (``vxds.sources.folder.tree``): a DICOM series
its ``.dcm`` objects directly in it, a Zarr every visible object under it (its dot-files
included). ``fetch_members`` lists only that folder's prefix and streams each member, with
the source's retries, into a temporary folder the source owns (removed with it), so that
``vxds push`` and ``vxds materialize`` read a bucket's series as a local folder's: each
member's bytes are checked by the caller against the series' locked hash. ``listing_file``
is what ``open`` gives for a series, as a catalog gives it: its canonical listing of members.
"""

from __future__ import annotations

import asyncio
import copy
import io
import shutil
import tempfile
import weakref
from typing import Any, BinaryIO

from vxds.errors import NotFoundError, SourceError
from vxds.hashing import hash_file
from vxds.resource import Resource
from vxds.sources.folder.tree import series_listing
from vxds.sources.objectstore.listing import Listed, Sink, visible

SERIES = ("DICOMSeries", "Zarr")


def _folder(source: Any, resource: Resource) -> str:
    rel = (resource.uri or resource.id).strip("/")
    if not rel or ".." in rel.split("/"):
        raise SourceError(f"resource {resource.id!r} points outside the source prefix")
    return rel


async def _listed(source: Any, folder: str, zarr: bool) -> list[Listed]:
    """The folder's members: one listing of its own prefix (a copy of the source under it)."""
    under = copy.copy(source)
    under.prefix = f"{source.prefix}{folder}/"
    found: list[Listed] = []
    token: str | None = None
    while True:  # pages of the folder's prefix; names are judged from the source's prefix
        page, token = await under._retrying(lambda at=token: under._list_page(at))
        for listed in page:
            member = zarr or ("/" not in listed.rel and listed.rel.lower().endswith(".dcm"))
            if member and visible(f"{folder}/{listed.rel}"):
                found.append(listed)
        if token is None:
            return sorted(found, key=lambda listed: listed.rel)


async def _fetch_all(source: Any, folder: str, members: list[Listed], into: str) -> list[tuple[str, str]]:
    gate = asyncio.Semaphore(source.concurrency)

    async def one(index: int, listed: Listed) -> tuple[str, str]:
        path = f"{into}/{index}"
        with open(path, "wb") as out:

            def new_sink() -> Sink:
                out.seek(0)
                out.truncate()
                return out.write

            async with gate:
                try:
                    await source._download(listed.key, None, new_sink, listed)
                except Exception as exc:
                    raise source._failure(exc, f"cannot read {folder}/{listed.rel}") from None
        return listed.rel, path

    return list(await asyncio.gather(*(one(i, listed) for i, listed in enumerate(members))))


def fetch_members(source: Any, resource: Resource) -> list[tuple[str, str]]:
    """``(name, local file)`` of each member of a series or Zarr, sorted by name."""
    if resource.type not in SERIES:
        raise SourceError(f"{resource.id}: a {resource.type} has no member files")
    known = source._members.get(resource.id)
    if known is not None:
        return list(known)
    folder = _folder(source, resource)
    members = source._run(lambda: _listed(source, folder, resource.type == "Zarr"))
    if not members:
        raise NotFoundError(f"source {source.url!r}: {resource.id} has no member objects")
    if source._spool is None:  # removed when the source goes, or at exit
        source._spool = tempfile.mkdtemp(prefix="vxds-members-")
        weakref.finalize(source, shutil.rmtree, source._spool, ignore_errors=True)
    into = tempfile.mkdtemp(dir=source._spool)
    found: list[tuple[str, str]] = source._run(lambda: _fetch_all(source, folder, members, into))
    source._members[resource.id] = found
    return list(found)


def listing_file(source: Any, resource: Resource) -> BinaryIO:
    """A series' canonical listing of its members' names and blake3 digests (what its hash
    is the digest of), from its members as they are now."""
    members = fetch_members(source, resource)
    return io.BytesIO(series_listing((name, hash_file(path)) for name, path in members))
