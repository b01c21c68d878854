"""GCS and Azure listings fanned out by prefix list exactly what one sequential walk lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.azurite import Azure
from tests.gcsserver import GCS
from tests.sources.test_objectstore_fanout import KEYS, listing
from vxds.sources import open_source
from vxds.sources.base import SourceContext
from vxds.sources.objectstore.azure import AzureBlobSource
from vxds.sources.objectstore.base import BucketSource
from vxds.sources.objectstore.gcs import GCSSource


class SequentialGCS(GCSSource):
    """The same bucket listed by one walk, as before listings fanned out."""

    _list_level = BucketSource._list_level  # type: ignore[assignment]


class SequentialAzure(AzureBlobSource):
    _list_level = BucketSource._list_level  # type: ignore[assignment]


def gcs_small_pages(source: GCSSource, calls: list[dict[str, str]]) -> None:
    """Two objects or prefixes a page, so every level is paged; each listing call recorded."""
    get = source._get

    async def paged(url: str, params: dict[str, str], *, listing: bool = False) -> Any:
        if listing:
            calls.append(dict(params))
            params = {**params, "maxResults": "2"}
        return await get(url, params, listing=listing)

    source._get = paged  # type: ignore[method-assign]


class PagedContainer:
    """A container client whose listings return two entries a page, each call recorded."""

    def __init__(self, container: Any, calls: list[tuple[str, str | None]]) -> None:
        self.container, self.calls = container, calls

    def __getattr__(self, name: str) -> Any:  # reading blobs: the container's own
        return getattr(self.container, name)

    def walk_blobs(self, **kwargs: Any) -> Any:
        self.calls.append(("walk", kwargs["name_starts_with"]))
        return self.container.walk_blobs(results_per_page=2, **kwargs)

    def list_blobs(self, **kwargs: Any) -> Any:
        self.calls.append(("list", kwargs["name_starts_with"]))
        return self.container.list_blobs(results_per_page=2, **kwargs)


def azure_small_pages(source: AzureBlobSource, calls: list[tuple[str, str | None]]) -> None:
    container = source._container
    source._container = lambda: PagedContainer(container(), calls)  # type: ignore[method-assign]


def same_listing(fanned: BucketSource, walked: BucketSource) -> None:
    found = listing(fanned)
    assert sorted(found) == sorted(listing(walked))
    assert len(found) == len({item.key for item in found})  # no key listed twice
    assert {item.rel for item in found} >= {"participants.tsv", "a//b.txt", "x.zarr/.zattrs", "file6.txt"}
    assert not any(item.key.startswith("pother/") or item.rel.startswith(".") for item in found)
    lines = [r.canonical_line() for r in fanned.resources()]
    assert len(lines) >= 20
    assert lines == [r.canonical_line() for r in walked.resources()]


def test_a_gcs_listing_fanned_out_is_the_sequential_one(gcs_server: GCS, tmp_path: Path) -> None:
    bucket = gcs_server.bucket()
    gcs_server.put_tree(bucket, "", {key: key.encode() for key in KEYS})
    context = SourceContext(base=tmp_path, options=gcs_server.options)
    fanned = open_source(f"gs://{bucket}/p", context)
    assert isinstance(fanned, GCSSource)
    walked = SequentialGCS(f"gs://{bucket}/p", context)
    fanned_calls: list[dict[str, str]] = []
    walked_calls: list[dict[str, str]] = []
    gcs_small_pages(fanned, fanned_calls)
    gcs_small_pages(walked, walked_calls)
    same_listing(fanned, walked)
    # Each subject and session listed by delimiter, then each session whole.
    delimited = {call["prefix"] for call in fanned_calls if call.get("delimiter") == "/"}
    assert {"p/", "p/sub-01/", "p/sub-05/"} <= delimited
    whole = {call["prefix"] for call in fanned_calls if "delimiter" not in call}
    assert "p/sub-05/ses-03/" in whole
    assert {call["prefix"] for call in walked_calls} == {"p/"}
    assert all("delimiter" not in call for call in walked_calls)


def test_an_azure_listing_fanned_out_is_the_sequential_one(azurite: Azure, tmp_path: Path) -> None:
    container = azurite.container()
    azurite.put_tree(container, "", {key: key.encode() for key in KEYS})
    context = SourceContext(base=tmp_path, options=azurite.options)
    fanned = open_source(f"az://{container}/p", context)
    assert isinstance(fanned, AzureBlobSource)
    walked = SequentialAzure(f"az://{container}/p", context)
    fanned_calls: list[tuple[str, str | None]] = []
    walked_calls: list[tuple[str, str | None]] = []
    azure_small_pages(fanned, fanned_calls)
    azure_small_pages(walked, walked_calls)
    same_listing(fanned, walked)
    walks = {prefix for kind, prefix in fanned_calls if kind == "walk"}
    assert {"p/", "p/sub-01/", "p/sub-05/"} <= walks
    assert ("list", "p/sub-05/ses-03/") in fanned_calls
    assert set(walked_calls) == {("list", "p/")}
