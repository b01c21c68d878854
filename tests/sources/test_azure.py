"""The Azure Blob source against a real Azure Blob API (Azurite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.azurite import KEY, Azure, connection_string
from tests.helpers import free_port
from tests.sources.fakes import tree_shape
from vxds.errors import NotFoundError, SourceError
from vxds.hashing import digest_bytes
from vxds.resource import Resource
from vxds.sources import open_source
from vxds.sources.base import SourceContext
from vxds.sources.folder.source import FolderSource
from vxds.sources.objectstore.azure import AzureBlobSource, is_etag

REPO = Path(__file__).resolve().parents[2]
T2 = "sub-01/anat/sub-01_T2w.nii.gz"
WRONG_KEY = "QUFB" + KEY[4:]


def source(azure: Azure, url: str, tmp_path: Path | None = None, **options: Any) -> AzureBlobSource:
    storage = {"azure": {**azure.options["azure"], **options}}
    opened = open_source(url, SourceContext(base=Path("."), cache_dir=tmp_path, options=storage))
    assert isinstance(opened, AzureBlobSource)
    return opened


def shape(r: Any) -> tuple[Any, ...]:
    return (r.id, r.type, r.hash, r.size, r.uri, dict(r.attrs))


@pytest.mark.parametrize("scheme", ["az", "abfs"])
def test_a_prefix_gives_what_the_same_folder_gives(azurite: Azure, tmp_path: Path, scheme: str) -> None:
    container = azurite.container()
    folder = REPO / "sample-data/basel"
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    azurite.put_tree(
        container, "trials/basel/", {p.relative_to(folder).as_posix(): p.read_bytes() for p in paths}
    )
    remote = source(azurite, f"{scheme}://{container}/trials/basel", tmp_path).resources()
    local = FolderSource(str(folder), SourceContext(base=REPO)).resources()
    assert [shape(r) for r in remote] == [tree_shape(r) for r in local]
    assert {r.type for r in remote} >= {"Volume", "Mask", "DICOMSeries", "ClinicalRecord", "Table"}
    files = [r for r in remote if r.type in ("Volume", "Mask", "File", "Table")]
    etags = {
        b.name[len("trials/basel/") :]: b.etag.strip('"')
        for b in azurite.client.get_container_client(container).list_blobs()
    }
    # Azurite keeps no blob versions, so every version is the blob's ETag.
    assert files
    assert all(isinstance(r.version, str) and is_etag(r.version) for r in files)
    assert all(r.version == etags[r.id] for r in files)


def test_an_overwrite_changes_the_etag_and_a_reread_sees_it(azurite: Azure, tmp_path: Path) -> None:
    container = azurite.container()
    azurite.put_tree(container, "p/", {T2: b"locked bytes"})
    old = source(azurite, f"az://{container}/p", tmp_path).get(T2)
    azurite.put_tree(container, "p/", {T2: b"tampered bytes"})
    fresh = source(azurite, f"az://{container}/p", tmp_path)
    new = fresh.get(T2)
    assert new.version != old.version
    assert new.hash == digest_bytes(b"tampered bytes")
    # An ETag names no version to read: the container's one copy is read, and re-hashing
    # it shows the change (as for an unversioned S3 bucket).
    with fresh.open(old) as fh:
        assert digest_bytes(fh.read()) != old.hash


def test_a_version_the_store_does_not_return_is_not_found(azurite: Azure) -> None:
    """Azurite ignores ``versionid=`` and serves the live blob: vxds sees the response
    names no such version and reports it gone, rather than returning other bytes."""
    container = azurite.container()
    azurite.put_tree(container, "", {T2: b"bytes"})
    opened = source(azurite, f"az://{container}")
    current = opened.get(T2)
    with opened.open(current) as fh:
        assert fh.read() == b"bytes"
    pinned = Resource(id=T2, version="2026-01-01T00:00:00.0000000Z", uri=T2)
    with pytest.raises(NotFoundError, match=f"{T2} version 2026-01-01T00:00:00.0000000Z no longer exists"):
        opened.open(pinned)


def test_digests_are_cached_by_etag(azurite: Azure, tmp_path: Path) -> None:
    container = azurite.container()
    azurite.put_tree(container, "", {T2: b"bytes", "notes.txt": b"notes"})
    first = source(azurite, f"az://{container}", tmp_path).resources()
    assert (tmp_path / "objects" / f"az-devstoreaccount1-{container}.json").is_file()
    again = source(azurite, f"az://{container}", tmp_path)
    assert again.resources() == first
    assert again.snapshot == source(azurite, f"az://{container}").snapshot


def test_a_missing_container_is_a_one_line_error(azurite: Azure) -> None:
    with pytest.raises(SourceError) as caught:
        source(azurite, "az://no-such-container/x").resources()
    assert (
        str(caught.value) == "source 'az://no-such-container/x': container 'no-such-container' does not exist"
    )


def test_wrong_credentials_are_one_line_and_not_retried(azurite: Azure) -> None:
    container = azurite.container()
    wrong = connection_string(azurite.endpoint, WRONG_KEY)
    with pytest.raises(SourceError) as caught:
        source(azurite, f"az://{container}/x", connection_string=wrong).resources()
    message = str(caught.value)
    assert caught.value.message == (
        f"source 'az://{container}/x': access denied (AuthorizationFailure); check the credentials"
    )
    assert WRONG_KEY not in message
    assert KEY not in message


def test_credentials_in_the_url_are_refused() -> None:
    for url in (f"az://user:{KEY}@container/x", f"az://container/x?sig={KEY}"):
        with pytest.raises(SourceError) as caught:
            open_source(url, SourceContext(base=Path(".")))
        assert KEY not in str(caught.value)
        assert "without credentials" in str(caught.value)


def test_an_abfs_url_names_its_account() -> None:
    opened = open_source(
        "abfs://data@myaccount.dfs.core.windows.net/trials", SourceContext(base=Path("."), options={})
    )
    assert isinstance(opened, AzureBlobSource)
    assert (opened.bucket, opened.prefix, opened._options["account_name"]) == ("data", "trials/", "myaccount")


def test_an_unreachable_endpoint_is_retried_then_reported(azurite: Azure) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SourceError) as caught:
        source(
            azurite, "az://container/x", connection_string=connection_string(endpoint), retries=2, backoff=0
        ).resources()
    message = str(caught.value)
    assert message.startswith("source 'az://container/x': the storage service failed after 3 attempts")
    assert "\n" not in message
    assert KEY not in message


def test_an_old_lock_reads_the_old_version_where_the_account_keeps_it() -> None:
    """Against a local endpoint keeping every version (Azurite keeps none)."""
    from tests.versioned_fake import versioned_object

    old, new = "2026-11-01T08:00:00.0000000Z", "2026-11-21T08:00:00.0000000Z"
    with versioned_object({old: b"first bytes", new: b"second bytes"}) as fake:
        storage = {"azure": {"connection_string": connection_string(fake.endpoint), "retries": 0}}
        opened = open_source("az://container/p", SourceContext(base=Path("."), options=storage))
        for version, body in ((old, b"first bytes"), (new, b"second bytes")):
            with opened.open(Resource(id=T2, version=version, uri=T2)) as fh:
                assert fh.read() == body
        with pytest.raises(
            NotFoundError, match=f"{T2} version 2020-01-01T00:00:00.0000000Z no longer exists"
        ):
            opened.open(Resource(id=T2, version="2020-01-01T00:00:00.0000000Z", uri=T2))
    assert fake.asked == [old, new, "2020-01-01T00:00:00.0000000Z"]
