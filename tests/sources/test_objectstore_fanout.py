"""A bucket's listing fanned out by prefix lists exactly what one sequential walk lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.s3server import S3
from vxds.sources.base import SourceContext
from vxds.sources.objectstore.base import BucketSource
from vxds.sources.objectstore.listing import Listed
from vxds.sources.objectstore.s3 import ObjectStoreSource

KEYS = [
    "p/",  # a folder marker
    "p/participants.tsv",
    "p/.hidden",
    "p/.git/config",
    "p/a//b.txt",
    "p/x.zarr/.zattrs",
    "p/x.zarr/0/.zarray",
    "p/sub-01/ses-01/anat/deep/er/still.json",
    *(f"p/file{k}.txt" for k in range(7)),
    *(f"p/sub-0{i}/ses-0{j}/anat/sub-0{i}_ses-0{j}_T1w.nii.gz" for i in range(1, 6) for j in range(1, 4)),
    "pother/not-under-the-prefix.txt",
]


class Sequential(ObjectStoreSource):
    """The same store listed by one ListObjectsV2 walk, as before listings fanned out."""

    _list_level = BucketSource._list_level  # type: ignore[assignment]


def small_pages(source: BucketSource, calls: list[dict[str, Any]]) -> None:
    """Two keys a page, so every level of the listing is paged; each listing call recorded."""
    call = source.fs._call_s3

    async def paged(method: str, **kwargs: Any) -> Any:
        if method == "list_objects_v2":
            calls.append(kwargs)
            kwargs["MaxKeys"] = 2
        return await call(method, **kwargs)

    source.fs._call_s3 = paged


def listing(source: BucketSource) -> list[Listed]:
    async def every() -> list[Listed]:
        return [item async for page in source._pages() for item in page]

    return source._run(every)


def test_the_fanned_out_listing_is_the_sequential_one(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    s3_server.put_tree(bucket, "", {key: key.encode() for key in KEYS})
    context = SourceContext(base=tmp_path, options=s3_server.options)
    fanned, walked = ObjectStoreSource(f"s3://{bucket}/p", context), Sequential(f"s3://{bucket}/p", context)
    fanned_calls: list[dict[str, Any]] = []
    walked_calls: list[dict[str, Any]] = []
    small_pages(fanned, fanned_calls)
    small_pages(walked, walked_calls)
    found = listing(fanned)
    assert sorted(found) == sorted(listing(walked))
    assert len(found) == len({item.key for item in found})  # no key listed twice
    assert {item.rel for item in found} >= {"participants.tsv", "a//b.txt", "x.zarr/.zattrs", "file6.txt"}
    assert not any(item.key.startswith("pother/") or item.rel.startswith(".") for item in found)
    # The fan-out listed each subject and session by delimiter, then each session whole.
    prefixes = {call["Prefix"] for call in fanned_calls}
    assert {"p/", "p/sub-01/", "p/sub-05/", "p/sub-05/ses-03/"} <= prefixes
    assert all("Delimiter" not in call for call in fanned_calls if call["Prefix"].count("/") == 3)
    assert {call["Prefix"] for call in walked_calls} == {"p/"}
    lines = [r.canonical_line() for r in fanned.resources()]
    assert len(lines) >= 20
    assert lines == [r.canonical_line() for r in walked.resources()]
