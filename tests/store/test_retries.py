"""Store writes retried after transient failures, injected by a proxy in front of moto."""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3

from tests.s3server import KEY, S3, SECRET
from tests.store.conftest import vxds
from tests.store.flaky import flaky_proxy
from vxds.errors import SourceError
from vxds.store.cas import key_of, open_store

BIG = bytes(range(256)) * (36 << 10)  # 9 MiB: two parts of a multipart upload
SMALL = b"one small object"


def keys(s3: S3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_every_kind_of_write_request_is_retried(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket(versioned=False)
    with flaky_proxy(s3_server.endpoint) as flaky:
        rules = [
            flaky.fail("POST", "uploads"),  # CreateMultipartUpload
            flaky.fail("PUT", "partNumber", times=3),  # UploadPart
            flaky.fail("POST", "uploadId"),  # CompleteMultipartUpload
            flaky.fail("PUT", times=2),  # PutObject
        ]
        options = {**s3_server.options, "endpoint_url": flaky.endpoint, "backoff": 0}
        store = open_store(f"s3://{bucket}/cas", base=tmp_path, options=options)
        big, small = blake3(BIG).hexdigest(), blake3(SMALL).hexdigest()
        assert store.put(big, iter([BIG[: 5 << 20], BIG[5 << 20 :]]), len(BIG)) == len(BIG)
        assert store.put(small, iter([SMALL]), len(SMALL)) == len(SMALL)
        assert store.listing() == {big: len(BIG), small: len(SMALL)}
    assert [rule.failed for rule in rules] == [1, 3, 1, 2]
    assert keys(s3_server, bucket) == sorted(f"cas/{key_of(d)}" for d in (big, small))
    got = s3_server.client.get_object(Bucket=bucket, Key=f"cas/{key_of(big)}")["Body"].read()
    assert got == BIG


def test_a_completion_whose_answer_was_lost_is_not_a_failure(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket(versioned=False)
    with flaky_proxy(s3_server.endpoint) as flaky:
        # completed by the first attempt, but every answer is lost: the retries find it done
        lost = flaky.fail("POST", "uploadId", times=100, forward=True)
        options = {**s3_server.options, "endpoint_url": flaky.endpoint, "backoff": 0}
        store = open_store(f"s3://{bucket}/cas", base=tmp_path, options=options)
        big = blake3(BIG).hexdigest()
        assert store.put(big, iter([BIG]), len(BIG)) == len(BIG)
    assert lost.failed == 5  # retries = 4 by default
    assert keys(s3_server, bucket) == [f"cas/{key_of(big)}"]
    got = s3_server.client.get_object(Bucket=bucket, Key=f"cas/{key_of(big)}")["Body"].read()
    assert got == BIG


def test_a_write_that_keeps_failing_is_one_line_and_leaves_nothing(s3_server: S3, tmp_path: Path) -> None:
    bucket = s3_server.bucket(versioned=False)
    with flaky_proxy(s3_server.endpoint) as flaky:
        rule = flaky.fail("PUT", "partNumber", times=100)
        options = {**s3_server.options, "endpoint_url": flaky.endpoint, "backoff": 0, "retries": 2}
        store = open_store(f"s3://{bucket}/cas", base=tmp_path, options=options)
        with pytest.raises(
            SourceError, match=r"the storage service failed after 3 attempts: SlowDown"
        ) as failed:
            store.put(blake3(BIG).hexdigest(), iter([BIG]), len(BIG))
    assert str(failed.value).startswith(f"store 's3://{bucket}/cas': cannot write blake3/")
    assert SECRET not in str(failed.value)
    assert rule.failed in (3, 4, 5, 6)  # two parts in flight, each tried three times at most
    assert keys(s3_server, bucket) == []
    assert s3_server.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_push_through_failing_requests_uploads_everything(locked: Path, s3_server: S3) -> None:
    bucket = s3_server.bucket(versioned=False)
    with flaky_proxy(s3_server.endpoint) as flaky:
        flaky.fail("PUT", times=4)
        flaky.fail("GET", "list-type")  # the store's listing
        pyproject = locked / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text() + "\n[tool.vxds.storage]\n"
            f'endpoint_url = "{flaky.endpoint}"\nkey = "{KEY}"\nsecret = "{SECRET}"\n'
            'region = "us-east-1"\nbackoff = 0\n'
        )
        result = vxds(locked, "push", "--all", "--store", f"s3://{bucket}/cas")
        assert result.exit_code == 0, result.output
        assert "3 uploaded" in result.output
        assert [rule.failed for rule in flaky.rules] == [4, 1]
    assert len(keys(s3_server, bucket)) == 3
