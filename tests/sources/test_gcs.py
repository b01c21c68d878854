"""The GCS source against a real GCS JSON API (gcp-storage-emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gcsserver import GCS, TOKEN
from tests.helpers import free_port
from tests.s3server import fake_s3
from tests.sources.fakes import tree_shape
from vxds.errors import NotFoundError, SourceError
from vxds.hashing import digest_bytes
from vxds.resource import Resource
from vxds.sources import open_source
from vxds.sources.base import SourceContext
from vxds.sources.folder.source import FolderSource
from vxds.sources.objectstore.gcs import GCSSource

REPO = Path(__file__).resolve().parents[2]
T2 = "sub-01/anat/sub-01_T2w.nii.gz"


def upload_folder(gcs: GCS, bucket: str, prefix: str, folder: Path) -> None:
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
    gcs.put_tree(bucket, prefix, files)


def source(gcs: GCS, url: str, tmp_path: Path | None = None, **options: Any) -> GCSSource:
    storage = {"gcs": {**gcs.options["gcs"], **options}}
    opened = open_source(url, SourceContext(base=Path("."), cache_dir=tmp_path, options=storage))
    assert isinstance(opened, GCSSource)
    return opened


def shape(r: Any) -> tuple[Any, ...]:
    return (r.id, r.type, r.hash, r.size, r.uri, dict(r.attrs))


def test_a_prefix_gives_what_the_same_folder_gives(gcs_server: GCS, tmp_path: Path) -> None:
    bucket = gcs_server.bucket()
    upload_folder(gcs_server, bucket, "trials/basel/", REPO / "sample-data/basel")
    remote = source(gcs_server, f"gs://{bucket}/trials/basel", tmp_path).resources()
    local = FolderSource(str(REPO / "sample-data/basel"), SourceContext(base=REPO)).resources()
    assert [shape(r) for r in remote] == [tree_shape(r) for r in local]
    assert {r.type for r in remote} >= {"Volume", "Mask", "DICOMSeries", "ClinicalRecord", "Table"}
    volume = next(r for r in remote if r.type == "Volume")
    assert volume.version == gcs_server.generation(bucket, f"trials/basel/{volume.id}")


def test_the_version_is_the_generation_and_changes_with_every_upload(gcs_server: GCS, tmp_path: Path) -> None:
    bucket = gcs_server.bucket()
    gcs_server.put_tree(bucket, "p/", {T2: b"first bytes"})
    old = source(gcs_server, f"gs://{bucket}/p", tmp_path).get(T2)
    assert old.version == gcs_server.generation(bucket, f"p/{T2}")
    gcs_server.put_tree(bucket, "p/", {T2: b"second bytes"})
    fresh = source(gcs_server, f"gs://{bucket}/p", tmp_path)
    new = fresh.get(T2)
    assert new.version != old.version
    assert new.hash == digest_bytes(b"second bytes")
    with fresh.open(new) as fh:
        assert fh.read() == b"second bytes"


def test_an_overwritten_generation_is_not_read_as_another(gcs_server: GCS) -> None:
    """The emulator keeps only the live generation and serves it whatever generation is
    asked for: vxds notices the generation differs and reports the old one gone, rather
    than returning the new bytes as the old version's."""
    bucket = gcs_server.bucket()
    gcs_server.put_tree(bucket, "", {T2: b"first"})
    old = source(gcs_server, f"gs://{bucket}").get(T2)
    gcs_server.put_tree(bucket, "", {T2: b"second"})
    with pytest.raises(NotFoundError, match=f"{T2} version {old.version} no longer exists"):
        source(gcs_server, f"gs://{bucket}").open(old)


def test_reads_ask_for_the_recorded_generation(gcs_server: GCS, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = gcs_server.bucket()
    gcs_server.put_tree(bucket, "", {T2: b"bytes"})
    opened = source(gcs_server, f"gs://{bucket}")
    resource = opened.get(T2)
    session = opened.fs.session
    asked: list[dict[str, str]] = []
    original = session.get

    def get(url: str, **kwargs: Any) -> Any:
        asked.append(dict(kwargs.get("params") or {}))
        return original(url, **kwargs)

    monkeypatch.setattr(session, "get", get)
    with opened.open(resource) as fh:
        assert fh.read() == b"bytes"
    assert asked[0] == {"alt": "media", "generation": resource.version}


def test_digests_are_cached_by_generation(gcs_server: GCS, tmp_path: Path) -> None:
    bucket = gcs_server.bucket()
    gcs_server.put_tree(bucket, "", {T2: b"bytes", "notes.txt": b"notes"})
    first = source(gcs_server, f"gs://{bucket}", tmp_path).resources()
    assert (tmp_path / "objects" / f"gs-{bucket}.json").is_file()
    again = source(gcs_server, f"gs://{bucket}", tmp_path)
    assert again.resources() == first
    assert again.snapshot == source(gcs_server, f"gs://{bucket}").snapshot


def test_a_missing_bucket_is_a_one_line_error(gcs_server: GCS) -> None:
    with pytest.raises(SourceError) as caught:
        source(gcs_server, "gs://no-such-bucket/x").resources()
    assert str(caught.value) == "source 'gs://no-such-bucket/x': bucket 'no-such-bucket' does not exist"


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(SourceError) as caught:
        open_source(f"gs://user:{TOKEN}@bucket/x", SourceContext(base=Path(".")))
    assert TOKEN not in str(caught.value)
    assert "without credentials" in str(caught.value)


def test_an_unreachable_endpoint_is_retried_then_reported(gcs_server: GCS) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SourceError) as caught:
        source(gcs_server, "gs://bucket/x", endpoint_url=endpoint, retries=1).resources()
    message = str(caught.value)
    assert message.startswith("source 'gs://bucket/x': the storage service failed after 2 attempts")
    assert "\n" not in message


def test_wrong_credentials_are_one_line_and_not_retried(gcs_server: GCS, tmp_path: Path) -> None:
    """A token GCS refuses; gcsfs sends it as it is, so the token never leaks either."""
    from google.oauth2.credentials import Credentials

    with fake_s3(401, "x", "y") as fake:
        opened = source(gcs_server, "gs://bucket/x", endpoint_url=fake.endpoint, token="anon")
        opened.fs.credentials.credentials = Credentials(token=TOKEN)  # a bearer token, as gcloud's
        with pytest.raises(SourceError) as caught:
            opened.resources()
    assert fake.calls == 1
    assert caught.value.message == "source 'gs://bucket/x': access denied (HTTP 401); check the credentials"
    assert TOKEN not in str(caught.value)


def test_transient_errors_are_retried_a_bounded_number_of_times(gcs_server: GCS) -> None:
    with fake_s3(503, "x", "y") as fake, pytest.raises(SourceError) as caught:
        source(gcs_server, "gs://bucket/x", endpoint_url=fake.endpoint, retries=2, backoff=0).resources()
    assert fake.calls == 3
    assert str(caught.value).startswith(
        "source 'gs://bucket/x': the storage service failed after 3 attempts: HTTP 503"
    )


def test_an_old_lock_reads_the_old_generation_where_the_store_keeps_it() -> None:
    """Against a local endpoint keeping every generation (the emulator keeps one)."""
    from tests.versioned_fake import versioned_object

    with versioned_object({"111": b"first bytes", "222": b"second bytes"}) as fake:
        storage = {"gcs": {"endpoint_url": fake.endpoint, "token": "anon"}}
        opened = open_source("gs://bucket/p", SourceContext(base=Path("."), options=storage))
        for generation, body in (("111", b"first bytes"), ("222", b"second bytes")):
            with opened.open(Resource(id=T2, version=generation, uri=T2)) as fh:
                assert fh.read() == body
        with pytest.raises(NotFoundError, match=f"{T2} version 333 no longer exists"):
            opened.open(Resource(id=T2, version="333", uri=T2))
    assert fake.asked == ["111", "222", "333"]
