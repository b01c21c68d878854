"""The two backends: writes that appear whole, checked, and never replace an object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from tests.s3server import S3
from vxds.errors import SourceError
from vxds.locks.verified_read import IntegrityError
from vxds.store.backends import Backend
from vxds.store.cas import key_of, open_store

KEY = key_of("ab" * 32)


def _refuse() -> None:
    raise IntegrityError("not the locked bytes")


def _backends(tmp_path: Path, s3: S3) -> list[Backend]:
    bucket = s3.bucket(versioned=False)
    folder = open_store(str(tmp_path / "store"), base=tmp_path, options={})
    bucket_store = open_store(f"s3://{bucket}/cas", base=tmp_path, options=s3.options)
    return [folder.backend, bucket_store.backend]


def test_an_object_is_never_replaced(tmp_path: Path, s3_server: S3) -> None:
    for backend in _backends(tmp_path, s3_server):
        backend.write(KEY, [b"first"], lambda: None)
        backend.flush()
        backend.write(KEY, [b"second"], lambda: None)
        backend.flush()
        with backend.open(KEY) as fh:
            assert fh.read() == b"first"
        assert list(backend.listing("blake3")) == [(KEY, 5)]


def test_a_failed_check_leaves_nothing_even_for_a_multipart_upload(tmp_path: Path, s3_server: S3) -> None:
    big = [b"x" * (6 << 20)] * 2  # over s3fs' block size: a multipart upload, then aborted
    for backend in _backends(tmp_path, s3_server):
        for chunks in ([b"small"], big):
            with pytest.raises(IntegrityError):
                backend.write(KEY, chunks, _refuse)
        backend.flush()
        assert list(backend.listing("blake3")) == []
        assert not backend.exists(KEY)
        with pytest.raises(KeyError):
            backend.open(KEY)
    assert not s3_server.client.list_multipart_uploads(Bucket=_bucket_of(backend)).get("Uploads")


def _bucket_of(backend: Backend) -> str:
    return str(getattr(backend, "base", "")).split("/")[0]


@pytest.mark.parametrize("size", [0, 8 << 20, (8 << 20) + 1, (20 << 20) + 3])
def test_large_objects_go_up_in_parts_and_come_back_whole(tmp_path: Path, s3_server: S3, size: int) -> None:
    from blake3 import blake3

    bucket = s3_server.bucket(versioned=False)
    store = open_store(f"s3://{bucket}", base=tmp_path, options=s3_server.options)
    data = os.urandom(size)
    digest = blake3(data).hexdigest()
    chunks = [data[i : i + (3 << 20)] for i in range(0, size, 3 << 20)]  # uneven against the parts
    assert store.put(digest, chunks, size) == size
    store.flush()
    with store.open(digest) as fh:
        assert fh.read() == data
    assert store.listing() == {digest: size}


def test_a_folder_store_shows_a_write_only_once_flushed(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"), base=tmp_path, options={})
    store.put("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", [b""], 0)
    assert store.listing() == {}  # checked, on its way to the disk, not an object yet
    store.flush()
    assert store.listing() == {"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262": 0}
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == [
        "1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    ]


def test_a_large_local_file_is_copied_in_the_kernel_and_checked(tmp_path: Path) -> None:
    from blake3 import blake3

    store = open_store(str(tmp_path / "store"), base=tmp_path, options={})
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(33 << 20))
    digest = blake3(big.read_bytes()).hexdigest()
    with pytest.raises(IntegrityError, match="does not match the locked hash"):
        store.put_file("0" * 64, str(big), 33 << 20, what="big.bin")
    with pytest.raises(IntegrityError, match="read 34603008 bytes, the lock says 5"):
        store.put_file(digest, str(big), 5, what="big.bin")
    store.flush()
    assert store.listing() == {}
    assert store.put_file(digest, str(big), 33 << 20) == 33 << 20
    store.flush()
    assert store.listing() == {digest: 33 << 20}
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == [digest[2:]]


@pytest.mark.parametrize(
    "members",
    [b'[["0/.zarray", "blake3:../../outside"]]', b'[["a", "blake3:' + b"AB" * 32 + b'"]]', b"not json"],
)
def test_a_manifest_naming_members_by_anything_but_a_hex_digest_is_refused(
    tmp_path: Path, members: bytes
) -> None:
    store = open_store(str(tmp_path / "store"), base=tmp_path, options={})
    digest = blake3(members).hexdigest()
    store.put(digest, [members])
    store.flush()
    with pytest.raises(SourceError, match="is not a series manifest"):
        store.manifest(digest)
