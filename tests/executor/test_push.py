"""``vxds push --executor``: the workers copy the bytes; the store ends as a local push leaves it."""

from __future__ import annotations

from pathlib import Path

from tests.executor.conftest import Cluster, invoke, vxds_tasks

T1 = "sample-data/basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz"


def stored(store: Path) -> dict[str, bytes]:
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def test_a_push_on_the_cluster_writes_what_a_local_push_writes(
    project: Path, tmp_path: Path, cluster: Cluster
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    local = invoke("push", "--all", "--store", str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    before = vxds_tasks(cluster)
    remote = invoke("push", "--all", "--store", str(tmp_path / "remote"), "--executor", cluster.url)
    assert remote.exit_code == 0, remote.output
    assert vxds_tasks(cluster) > before
    assert stored(tmp_path / "remote") == stored(tmp_path / "local")
    assert stored(tmp_path / "local")
    assert remote.output.replace(str(tmp_path / "remote"), "STORE") == local.output.replace(
        str(tmp_path / "local"), "STORE"
    )


def test_a_changed_file_fails_on_the_cluster_with_the_local_message(
    project: Path, tmp_path: Path, cluster: Cluster
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    (project / T1).write_bytes(b"edited")
    local = invoke("push", "--all", "--store", str(tmp_path / "local"))
    remote = invoke("push", "--all", "--store", str(tmp_path / "remote"), "--executor", cluster.url)
    assert local.exit_code == remote.exit_code == 1
    errors = [line for line in remote.output.splitlines() if line.startswith("error:")]
    assert errors == [line for line in local.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "sub-BS01_ses-01_T1w.nii.gz: read 6 bytes, the lock says" in errors[0]
    assert stored(tmp_path / "remote") == stored(tmp_path / "local")
