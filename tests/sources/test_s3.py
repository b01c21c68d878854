"""The S3 source against a real S3 API (moto's server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIDS_EXAMPLES, free_port
from tests.s3server import S3, SECRET, fake_s3
from tests.sources.fakes import tree_shape
from vxds.errors import NotFoundError, SourceError
from vxds.hashing import digest_bytes
from vxds.sources import open_source
from vxds.sources.base import SourceContext
from vxds.sources.folder.source import FolderSource
from vxds.sources.objectstore.s3 import ObjectStoreSource, is_etag

REPO = Path(__file__).resolve().parents[2]
T2 = "sub-01/anat/sub-01_T2w.nii.gz"


def upload_folder(s3: S3, bucket: str, prefix: str, folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.client.put_object(
                Bucket=bucket, Key=prefix + path.relative_to(folder).as_posix(), Body=path.read_bytes()
            )


def source(s3: S3, url: str, tmp_path: Path | None = None, **options: Any) -> ObjectStoreSource:
    context = SourceContext(base=Path("."), cache_dir=tmp_path, options={**s3.options, **options})
    opened = open_source(url, context)
    assert isinstance(opened, ObjectStoreSource)
    return opened


def test_a_prefix_gives_what_the_same_folder_gives(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    upload_folder(s3_server, bucket, "trials/basel/", REPO / "sample-data/basel")
    remote = source(s3_server, f"s3://{bucket}/trials/basel", tmp_path).resources()
    local = FolderSource(str(REPO / "sample-data/basel"), SourceContext(base=REPO)).resources()

    def shape(r: Any) -> tuple[Any, ...]:
        return (r.id, r.type, r.hash, r.size, r.uri, dict(r.attrs))

    assert [shape(r) for r in remote] == [tree_shape(r) for r in local]
    assert {r.type for r in remote} >= {"Volume", "Mask", "DICOMSeries", "ClinicalRecord", "Table"}
    files = [r for r in remote if r.type in ("Volume", "Mask", "File", "Table")]
    versions = s3_server.client.list_object_versions(Bucket=bucket)["Versions"]
    version_ids = {v["VersionId"] for v in versions}
    assert files
    assert all(r.version in version_ids for r in files)


def test_a_zarr_and_record_tables_in_a_bucket_are_what_a_folder_gives(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    data = BIDS_EXAMPLES / "micr_SEMzarr"
    upload_folder(s3_server, bucket, "micr/", data)
    tables = {"record_tables": ["*_sessions.tsv"]}
    remote = source(s3_server, f"s3://{bucket}/micr", tmp_path, **tables).resources()
    local = FolderSource(str(data), SourceContext(base=REPO, options=tables)).resources()
    assert [tree_shape(r) for r in remote] == [tree_shape(r) for r in local]
    zarr = next(r for r in remote if r.type == "Zarr")
    assert zarr.attrs["files"] == 4  # .zattrs, .zgroup and 0/.zarray with 0/0/0
    assert [r.id for r in remote if r.type == "ClinicalRecord"] == [
        "participants.tsv#sub-01",
        "sub-01/sub-01_sessions.tsv#ses-01",
        "sub-01/sub-01_sessions.tsv#ses-02",
    ]


def test_an_unversioned_bucket_labels_objects_by_etag(s3_server: S3) -> None:
    bucket = s3_server.bucket(versioned=False)
    s3_server.put_tree(bucket, "", {T2: b"one"})
    (resource,) = source(s3_server, f"s3://{bucket}").resources()
    assert isinstance(resource.version, str)
    assert is_etag(resource.version)
    assert resource.hash == digest_bytes(b"one")


def test_an_old_lock_reads_the_old_version(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    s3_server.put_tree(bucket, "p/", {T2: b"first bytes"})
    old = source(s3_server, f"s3://{bucket}/p", tmp_path).get(T2)
    s3_server.put_tree(bucket, "p/", {T2: b"second bytes"})
    fresh = source(s3_server, f"s3://{bucket}/p", tmp_path)
    new = fresh.get(T2)
    assert new.version != old.version
    assert new.hash == digest_bytes(b"second bytes")
    with fresh.open(old) as fh:
        assert fh.read() == b"first bytes"
    with fresh.open(new) as fh:
        assert fh.read() == b"second bytes"


def test_a_deleted_version_is_not_found(s3_server: S3) -> None:
    bucket = s3_server.bucket()
    s3_server.put_tree(bucket, "", {T2: b"first"})
    opened = source(s3_server, f"s3://{bucket}")
    old = opened.get(T2)
    s3_server.put_tree(bucket, "", {T2: b"second"})
    s3_server.client.delete_object(Bucket=bucket, Key=T2, VersionId=old.version)
    with pytest.raises(NotFoundError, match=f"{T2} version {old.version} no longer exists"):
        opened.open(old)


def test_rehashing_through_open_catches_an_object_changed_behind_the_lock(s3_server: S3) -> None:
    """An unversioned bucket keeps one copy: re-hashing what ``open`` reads shows the change."""
    bucket = s3_server.bucket(versioned=False)
    s3_server.put_tree(bucket, "", {T2: b"locked bytes"})
    locked = source(s3_server, f"s3://{bucket}").get(T2)
    s3_server.put_tree(bucket, "", {T2: b"tampered bytes"})
    with source(s3_server, f"s3://{bucket}").open(locked) as fh:
        assert digest_bytes(fh.read()) != locked.hash


def test_digests_are_cached_by_version(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    s3_server.put_tree(bucket, "", {T2: b"bytes", "notes.txt": b"notes"})
    first = source(s3_server, f"s3://{bucket}", tmp_path).resources()
    assert (tmp_path / "objects" / f"{bucket}.json").is_file()
    again = source(s3_server, f"s3://{bucket}", tmp_path)
    assert again.resources() == first
    assert again.snapshot == source(s3_server, f"s3://{bucket}").snapshot


def test_a_missing_bucket_is_a_one_line_error(s3_server: S3) -> None:
    with pytest.raises(SourceError) as caught:
        source(s3_server, "s3://no-such-bucket/x").resources()
    assert str(caught.value) == "source 's3://no-such-bucket/x': bucket 'no-such-bucket' does not exist"


def test_credentials_in_the_url_are_refused(s3_server: S3) -> None:
    with pytest.raises(SourceError) as caught:
        source(s3_server, f"s3://user:{SECRET}@bucket/x")
    assert SECRET not in str(caught.value)
    assert "without credentials" in str(caught.value)


def test_an_unreachable_endpoint_is_retried_then_reported(s3_server: S3) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SourceError) as caught:
        source(s3_server, "s3://bucket/x", endpoint_url=endpoint, retries=1, backoff=0).resources()
    message = str(caught.value)
    assert message.startswith("source 's3://bucket/x': the storage service failed after 2 attempts")
    assert "\n" not in message
    assert SECRET not in message


def test_transient_errors_are_retried_a_bounded_number_of_times(s3_server: S3) -> None:
    with (
        fake_s3(503, "SlowDown", "Please reduce your request rate.") as fake,
        pytest.raises(SourceError) as caught,
    ):
        source(s3_server, "s3://bucket/x", endpoint_url=fake.endpoint, retries=2, backoff=0).resources()
    assert fake.calls == 3
    assert str(caught.value) == (
        "source 's3://bucket/x': the storage service failed after 3 attempts:"
        " SlowDown: Please reduce your request rate."
    )


def test_wrong_credentials_are_one_line_and_not_retried(s3_server: S3) -> None:
    message = "The AWS Access Key Id you provided does not exist in our records."
    with fake_s3(403, "InvalidAccessKeyId", message) as fake, pytest.raises(SourceError) as caught:
        source(s3_server, "s3://bucket/x", endpoint_url=fake.endpoint).resources()
    assert fake.calls == 1
    assert (
        caught.value.message
        == "source 's3://bucket/x': access denied (InvalidAccessKeyId); check the credentials"
    )
    assert SECRET not in str(caught.value)


class _Body:
    def __init__(self, chunks: list[bytes], fail: bool) -> None:
        self.chunks, self.fail = chunks, fail

    async def read(self, size: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.fail:
            raise ConnectionResetError("connection reset by peer")
        return b""

    def close(self) -> None:
        pass


class _FlakyFS:
    """Cuts the first download off after one chunk; serves the second whole."""

    def __init__(self) -> None:
        from fsspec.asyn import get_loop

        self.loop = get_loop()
        self.calls = 0

    async def _call_s3(self, method: str, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            return {"Body": _Body([b"the first "], fail=True), "VersionId": "v1"}
        return {"Body": _Body([b"the whole ", b"object"], fail=False), "VersionId": "v1", "ContentLength": 16}


def test_a_download_cut_off_is_retried_from_the_start(s3_server: S3) -> None:
    from vxds.progress import NO_PROGRESS
    from vxds.resource import Resource
    from vxds.sources.objectstore.listing import Listed

    opened = source(s3_server, "s3://bucket/p", backoff=0)
    opened._fs = _FlakyFS()
    with opened.open(Resource(id=T2, version="v1")) as fh:
        assert fh.read() == b"the whole object"
    opened._fs = _FlakyFS()
    listed = Listed(T2, "p/" + T2, 16, "etag", "2026-01-01")
    gate = asyncio.Semaphore(4)
    obj, _ = opened._run(lambda: opened._read_one(listed, False, gate, NO_PROGRESS.task("")))
    assert (obj.version, obj.digest, obj.size) == ("v1", digest_bytes(b"the whole object"), 16)


@pytest.mark.parametrize("value", [-1, 61, "fast", True])
def test_a_backoff_out_of_range_is_refused(s3_server: S3, value: object) -> None:
    with pytest.raises(SourceError, match=r"\[tool.vxds.storage\] backoff must be 0 to 60 seconds"):
        source(s3_server, "s3://bucket/x", backoff=value)
