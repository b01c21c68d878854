"""``vxds verify --data --executor``: a changed file or object is found by the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.executor.conftest import Cluster, invoke, vxds_tasks
from tests.executor.test_lock import s3_project
from tests.s3server import S3, SECRET

T1 = "sample-data/basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz"
T2 = "sub-01/anat/sub-01_T2w.nii.gz"


def test_verify_data_on_the_cluster_finds_a_changed_file(project: Path, cluster: Cluster) -> None:
    assert invoke("lock", "--all").exit_code == 0
    before = vxds_tasks(cluster)
    clean = invoke("verify", "--data", "--executor", cluster.url)
    assert clean.exit_code == 0, clean.output
    assert vxds_tasks(cluster) > before  # the bytes were re-hashed on the workers
    path = project / T1
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, other bytes
    result = invoke("verify", "--data", "--executor", cluster.url)
    assert result.exit_code == 1
    changed = [line for line in result.output.splitlines() if "VX502" in line]
    assert len(changed) == 1
    assert "sub-BS01_ses-01_T1w.nii.gz: changed in the source" in changed[0]
    assert changed == [line for line in invoke("verify", "--data").output.splitlines() if "VX502" in line]


def test_verify_data_on_the_cluster_finds_a_changed_object(
    tmp_path: Path, s3_server: S3, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket(versioned=False)
    s3_server.put_tree(bucket, "trial/", {T2: b"\x5c\x01volume one", "sub-02/anat/sub-02_T2w.nii.gz": b"two"})
    monkeypatch.chdir(s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial"))
    assert invoke("lock", "--all").exit_code == 0
    assert invoke("verify", "--data", "--executor", cluster.url).exit_code == 0
    s3_server.put_tree(bucket, "trial/", {T2: b"\x5c\x01volume one, behind the lock's back"})
    before = vxds_tasks(cluster)
    result = invoke("verify", "--data", "--executor", cluster.url)
    assert vxds_tasks(cluster) > before
    assert result.exit_code == 1
    changed = [line for line in result.output.splitlines() if "VX502" in line]
    assert len(changed) == 1
    assert f"{T2}: changed in the source" in changed[0]
    assert SECRET not in result.output
