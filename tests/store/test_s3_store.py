"""A store in an S3 bucket (moto's server), and a push killed half way (a folder store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from blake3 import blake3

from tests.helpers import commit_all, git
from tests.s3server import S3, SECRET
from tests.store.conftest import objects, vxds


def _with_storage(project: Path, s3: S3) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n" + s3.toml())


def test_push_repush_verify_and_materialize_with_an_s3_store(
    locked: Path, s3_server: S3, tmp_path: Path
) -> None:
    _with_storage(locked, s3_server)
    bucket = s3_server.bucket(versioned=False)
    url = f"s3://{bucket}/cas"
    first = vxds(locked, "push", "--all", "--store", url)
    assert first.exit_code == 0, first.output
    assert "3 uploaded" in first.output
    keys = [o["Key"] for o in s3_server.client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 3
    assert all(k.startswith("cas/blake3/") and len(k.split("/")[-1]) == 62 for k in keys)
    again = vxds(locked, "push", "--all", "--store", url)
    assert "0 uploaded (0 bytes), 3 already in the store" in again.output
    assert vxds(locked, "verify", "--no-exec", "--store", url).exit_code == 0
    s3_server.client.delete_object(Bucket=bucket, Key=keys[0])
    missing = vxds(locked, "verify", "--no-exec", "--store", url)
    assert missing.exit_code == 1
    assert f"({keys[0].removeprefix('cas/')})" in missing.output
    assert SECRET not in missing.output
    assert vxds(locked, "push", "--all", "--store", url).output.count("1 uploaded") == 1
    (locked / "data/sub-01/anat/sub-01_T2w.nii.gz").write_bytes(b"edited")
    out = tmp_path / "out"
    result = vxds(locked, "materialize", "demo", "-o", str(out), "-m", "files", "--store", url)
    assert result.exit_code == 0, result.output
    assert (out / "train/sub-01/anat/sub-01_T2w.nii.gz").read_bytes() == b"\x5c\x01\x00\x00volume one"


def test_a_mismatching_upload_leaves_no_object_in_the_bucket(locked: Path, s3_server: S3) -> None:
    _with_storage(locked, s3_server)
    bucket = s3_server.bucket(versioned=False)
    (locked / "data/sub-02/anat/sub-02_T2w.nii.gz").write_bytes(b"\x5c\x01\x00\x00volume 2!!")
    result = vxds(locked, "push", "--all", "--store", f"s3://{bucket}")
    assert result.exit_code == 1
    assert "content does not match the locked hash" in result.output
    assert len(s3_server.client.list_objects_v2(Bucket=bucket)["Contents"]) == 2


def test_credentials_in_a_store_url_are_refused(locked: Path) -> None:
    result = vxds(locked, "push", "--all", "--store", "s3://AKIA:secret@bucket/cas")
    assert result.exit_code == 2
    assert "secret" not in result.output.replace("***", "")


def test_a_push_killed_half_way_leaves_whole_objects_and_resumes(project: Path, tmp_path: Path) -> None:
    for n in range(4, 40):
        folder = project / f"data/sub-{n:02d}/anat"
        folder.mkdir(parents=True)
        (folder / f"sub-{n:02d}_T2w.nii.gz").write_bytes(os.urandom(4 << 20))
    git(project, "init", "-q", "-b", "main")
    assert vxds(project, "lock", "--all").exit_code == 0
    commit_all(project, "lock")
    store = tmp_path / "store"
    command = [
        sys.executable,
        "-m",
        "vxds",
        "push",
        "--all",
        "-j",
        "1",
        "-q",
        "--store",
        str(store),
        "--root",
        str(project),
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (store / "blake3").is_dir() or len(objects(store)) < 2:
        assert time.monotonic() < deadline
        assert child.poll() is None
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = objects(store)
    assert 2 <= len(before) < 39
    for rel in before:  # every visible object is whole: its bytes hash to its name
        assert blake3((store / "blake3" / rel).read_bytes()).hexdigest() == rel.replace("/", "")
    again = vxds(project, "push", "--all", "--store", str(store))
    assert again.exit_code == 0, again.output
    assert f"{39 - len(before)} uploaded" in again.output
    assert f"{len(before)} already in the store" in again.output
    assert len(objects(store)) == 39
