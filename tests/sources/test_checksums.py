"""``checksums = "store"``: a bucket's own checksums recorded instead of reading the bytes.

Against moto's S3 server (its requests counted from the server's own request log), Azurite
and the GCS emulator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.azurite import Azure
from tests.gcsserver import GCS
from tests.helpers import commit_all, git
from tests.s3server import S3
from vxds.cli.main import cli
from vxds.errors import SourceError
from vxds.hashing import digest_bytes, new_hasher
from vxds.sources import open_source
from vxds.sources.base import SourceContext

REPO = Path(__file__).resolve().parents[2]
FILES = {
    "sub-01/anat/sub-01_T2w.nii.gz": b"\x5c\x01volume one",
    "sub-02/anat/sub-02_T2w.nii.gz": b"\x5c\x01volume two",
    "sub-03/anat/sub-03_T2w.nii.gz": b"\x5c\x01volume three",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Requests(logging.Handler):
    """The request lines moto's server logs (werkzeug's request log), as it sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r'"([A-Z]+ \S+) HTTP', record.getMessage())
        if found:
            self.lines.append(found.group(1))

    def gets(self, bucket: str) -> list[str]:
        """GETs of object bytes in ``bucket`` (listings are GETs of the bucket itself)."""
        return [line for line in self.lines if re.match(rf"GET /{bucket}/[^?]", line)]


@pytest.fixture
def requests() -> Iterator[Requests]:
    handler = Requests()
    logger = logging.getLogger("werkzeug")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def s3_source(s3: S3, url: str, cache: Path | None = None, **options: Any) -> Any:
    return open_source(url, SourceContext(base=Path("."), cache_dir=cache, options={**s3.options, **options}))


def put_with_sha256(s3: S3, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    for rel, body in files.items():
        s3.client.put_object(Bucket=bucket, Key=prefix + rel, Body=body, ChecksumAlgorithm="SHA256")


def test_a_lock_of_sha256_objects_reads_no_bytes(s3_server: S3, requests: Requests, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    put_with_sha256(s3_server, bucket, "t/", FILES)
    resources = s3_source(s3_server, f"s3://{bucket}/t", tmp_path, checksums="store").resources()
    assert requests.gets(bucket) == []
    assert sum(line.startswith(f"HEAD /{bucket}/t/") for line in requests.lines) == len(FILES)
    assert {r.id: r.hash for r in resources} == {rel: sha256(body) for rel, body in FILES.items()}
    versions = {
        v["Key"]: v["VersionId"] for v in s3_server.client.list_object_versions(Bucket=bucket)["Versions"]
    }
    assert {r.id: r.version for r in resources} == {rel: versions["t/" + rel] for rel in FILES}
    # the same lock from the digest cache (no request for an object) and from a fresh one
    before = len(requests.lines)
    again = s3_source(s3_server, f"s3://{bucket}/t", tmp_path, checksums="store").resources()
    assert [r.canonical_line() for r in again] == [r.canonical_line() for r in resources]
    assert not any(line.startswith(f"HEAD /{bucket}/") for line in requests.lines[before:])
    fresh = s3_source(s3_server, f"s3://{bucket}/t", tmp_path / "other", checksums="store").resources()
    assert [r.canonical_line() for r in fresh] == [r.canonical_line() for r in resources]
    # without the option the bytes are read and hashed with blake3, from a cache of their own
    plain = s3_source(s3_server, f"s3://{bucket}/t", tmp_path).resources()
    assert {r.id: r.hash for r in plain} == {rel: digest_bytes(body) for rel, body in FILES.items()}
    assert len(requests.gets(bucket)) == len(FILES)


def test_objects_without_a_whole_object_sha256_are_read(s3_server: S3, requests: Requests) -> None:
    bucket = s3_server.bucket()
    s3_server.client.put_object(Bucket=bucket, Key="plain.bin", Body=b"no sha256 kept")
    client = s3_server.client
    upload = client.create_multipart_upload(Bucket=bucket, Key="multi.bin", ChecksumAlgorithm="SHA256")
    parts = []
    for number, body in ((1, b"x" * (5 << 20)), (2, b"tail")):
        part = client.upload_part(
            Bucket=bucket,
            Key="multi.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="SHA256",
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]})
    client.complete_multipart_upload(
        Bucket=bucket, Key="multi.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    found = {r.id: r.hash for r in s3_source(s3_server, f"s3://{bucket}", checksums="store").resources()}
    assert found == {
        "multi.bin": digest_bytes(b"x" * (5 << 20) + b"tail"),
        "plain.bin": digest_bytes(b"no sha256 kept"),
    }
    assert sorted(requests.gets(bucket)) == [f"GET /{bucket}/multi.bin", f"GET /{bucket}/plain.bin"]


def test_a_dicom_series_keeps_its_blake3_hash(s3_server: S3, requests: Requests) -> None:
    bucket = s3_server.bucket()
    folder = REPO / "sample-data/basel"
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
    put_with_sha256(s3_server, bucket, "", files)
    plain = {r.id: r for r in s3_source(s3_server, f"s3://{bucket}").resources()}
    taken = {r.id: r for r in s3_source(s3_server, f"s3://{bucket}", checksums="store").resources()}
    series = [rid for rid, r in plain.items() if r.type == "DICOMSeries"]
    assert series
    assert all(taken[rid].hash == plain[rid].hash for rid in series)
    volumes = [rid for rid, r in taken.items() if r.type == "Volume"]
    assert volumes
    assert all(taken[rid].hash == sha256(files[rid]) for rid in volumes)
    assert set(taken) == set(plain)


def test_weak_checksums_are_refused_unless_allowed(gcs_server: GCS) -> None:
    bucket = gcs_server.bucket()
    gcs_server.put_tree(bucket, "", FILES)
    context = SourceContext(base=Path("."), options={**gcs_server.options, "checksums": "store"})
    with pytest.raises(SourceError, match=r"keeps only a md5 checksum") as refused:
        open_source(f"gs://{bucket}", context).resources()
    assert 'allow_weak_checksums = ["md5"]' in str(refused.value.hint)
    for allow, algorithm in ((["md5"], "md5"), (["crc32c"], "crc32c")):
        options = {**gcs_server.options, "checksums": "store", "allow_weak_checksums": allow}
        source = open_source(f"gs://{bucket}", SourceContext(base=Path("."), options=options))
        found = {r.id: r.hash for r in source.resources()}
        for rel, body in FILES.items():
            hasher = new_hasher(algorithm)
            hasher.update(body)
            assert found[rel] == f"{algorithm}:{hasher.hexdigest()}"


def test_azure_content_md5_is_taken_when_md5_is_allowed(azurite: Azure) -> None:
    container = azurite.container()
    azurite.put_tree(container, "", FILES)
    options = {**azurite.options, "checksums": "store", "allow_weak_checksums": ["md5"]}
    source = open_source(f"az://{container}", SourceContext(base=Path("."), options=options))
    found = {r.id: r.hash for r in source.resources()}
    assert found == {rel: "md5:" + hashlib.md5(body).hexdigest() for rel, body in FILES.items()}


def test_the_crc32c_hasher_gives_what_gcs_keeps() -> None:
    hasher = new_hasher("crc32c")
    hasher.update(b"hello")
    assert hasher.hexdigest() == base64.b64decode("mnG7TA==").hex()  # the emulator's crc32c of it


# --- through the command line -------------------------------------------------------------

RECIPE = """\
import vxds


@vxds.recipe()
def trial(client):
    return {"all": list(client.list())}
"""


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--root", str(root)], catch_exceptions=False)


def project(root: Path, s3: S3, url: str, tool: str = "") -> Path:
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/trial.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        f"- name: trial\n  version: 1\n  script_location: ./recipes/trial.py\n  source: {url}\n"
    )
    (root / "pyproject.toml").write_text(f'[tool.vxds]\nlocks = "locks"\n{tool}\n' + s3.toml())
    (root / ".gitignore").write_text(".vxds/\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "project")
    return root


def locked_hashes(root: Path) -> dict[str, str]:
    lines = (root / "locks/trial/1/resources.all.jsonl").read_text().splitlines()
    return {json.loads(line)["id"]: json.loads(line)["hash"] for line in lines}


def test_lock_checksums_store_then_verify_data_hashes_the_bytes(
    tmp_path: Path, s3_server: S3, requests: Requests
) -> None:
    bucket = s3_server.bucket(versioned=False)
    put_with_sha256(s3_server, bucket, "t/", FILES)
    root = project(tmp_path / "p", s3_server, f"s3://{bucket}/t")
    result = run(root, "lock", "--checksums", "store", "trial")
    assert result.exit_code == 0, result.output
    assert requests.gets(bucket) == []
    assert locked_hashes(root) == {rel: sha256(body) for rel, body in FILES.items()}
    commit_all(root, "lock")
    assert run(root, "verify", "--data", "--no-exec").exit_code == 0
    assert len(requests.gets(bucket)) == len(FILES)  # verify --data reads and hashes the bytes
    # the store's checksum is not what verify trusts: new bytes with their own right checksum
    put_with_sha256(s3_server, bucket, "t/", {"sub-02/anat/sub-02_T2w.nii.gz": b"\x5c\x01volume 2!!"})
    changed = run(root, "verify", "--data", "--no-exec")
    assert changed.exit_code == 1
    assert "VX502" in changed.output
    assert "sub-02/anat/sub-02_T2w.nii.gz: changed in the source" in changed.output


def test_the_setting_in_pyproject_and_the_refusal_through_the_cli(
    tmp_path: Path, s3_server: S3, requests: Requests
) -> None:
    bucket = s3_server.bucket()
    put_with_sha256(s3_server, bucket, "t/", FILES)
    root = project(tmp_path / "p", s3_server, f"s3://{bucket}/t", 'checksums = "store"')
    assert run(root, "lock", "trial").exit_code == 0
    assert requests.gets(bucket) == []
    assert locked_hashes(root) == {rel: sha256(body) for rel, body in FILES.items()}
    relocked = run(root, "lock", "--checksums", "bytes", "trial")
    assert relocked.exit_code == 0, relocked.output
    assert locked_hashes(root) == {rel: digest_bytes(body) for rel, body in FILES.items()}
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('checksums = "store"', 'allow_weak_checksums = ["sha1"]')
    )
    bad = run(root, "lock", "trial")
    assert bad.exit_code == 2
    assert "[tool.vxds] allow_weak_checksums must list some of md5, crc32c, got ['sha1']" in bad.output
