"""A DICOM series or a Zarr from a bucket (moto's S3 server) pushed, read back and verified."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import BIDS_EXAMPLES, REPO, commit_all, git
from tests.s3server import S3
from tests.store.conftest import objects, vxds
from vxds.api import load_lock

RECIPE = """\
import vxds


@vxds.recipe()
def everything(client):
    return {"all": [r for r in client.query() if r.type in ("DICOMSeries", "Zarr", "Volume")]}
"""


def bucket_project(tmp_path: Path, s3: S3, data: Path) -> tuple[Path, str]:
    bucket = s3.bucket()
    for path in sorted(data.rglob("*")):
        if path.is_file():
            s3.client.put_object(
                Bucket=bucket, Key=f"d/{path.relative_to(data).as_posix()}", Body=path.read_bytes()
            )
    root = tmp_path / "project"
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/everything.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        f"- name: everything\n  version: 1\n  script_location: ./recipes/everything.py\n  source: s3://{bucket}/d\n"
    )
    (root / "pyproject.toml").write_text("[tool.vxds]\n" + s3.toml())
    git(root, "init", "-q", "-b", "main")
    locked = vxds(root, "lock", "--all")
    assert locked.exit_code == 0, locked.output
    commit_all(root, "lock")
    return root, bucket


@pytest.mark.parametrize(
    ("data", "kind"), [(REPO / "sample-data/basel", "DICOMSeries"), (BIDS_EXAMPLES / "micr_SEMzarr", "Zarr")]
)
def test_a_bucket_folder_resource_is_pushed_and_read_back(
    tmp_path: Path, s3_server: S3, data: Path, kind: str
) -> None:
    root, bucket = bucket_project(tmp_path, s3_server, data)
    series = [r for r in load_lock("everything@1", root=root) if r.type == kind]
    assert series
    store = tmp_path / "store"
    pushed = vxds(root, "push", "--all", "--store", str(store))
    assert pushed.exit_code == 0, pushed.output
    members = sum(int(r.attrs["files"]) for r in series)
    assert len(objects(store)) >= members + len(series)  # members and one manifest per folder
    verified = vxds(root, "verify", "--data", "--no-exec", "--store", str(store))
    assert verified.exit_code == 0, verified.output
    out = tmp_path / "out"
    result = vxds(
        root,
        "materialize",
        "everything",
        "-o",
        str(out),
        "-m",
        "files",
        "--from-store",
        "--store",
        str(store),
    )
    assert result.exit_code == 0, result.output
    for path in (data / series[0].id).rglob("*"):
        if path.is_file():
            assert (out / "all" / path.relative_to(data)).read_bytes() == path.read_bytes()
    # a member changed in the bucket: the series no longer matches its lock
    member = next(p for p in sorted((data / series[0].id).rglob("*")) if p.is_file())
    key = f"d/{member.relative_to(data).as_posix()}"
    s3_server.client.put_object(Bucket=bucket, Key=key, Body=member.read_bytes() + b"!")
    changed = vxds(root, "verify", "--data", "--no-exec")
    assert changed.exit_code == 1
    assert "VX502 locks/everything/1/resources.all.jsonl" in changed.output
    assert f"{series[0].id}: changed in the source" in changed.output
    again = vxds(root, "push", "--all", "--store", str(tmp_path / "other"))
    assert again.exit_code == 1
    assert f"{series[0].id}: the series' files do not match the locked hash" in again.output
