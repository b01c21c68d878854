"""``vxds materialize --executor``: files copied and checked by the workers, placed by the client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.executor.conftest import Cluster, invoke, vxds_tasks
from tests.executor.test_lock import s3_project
from tests.helpers import REPO
from tests.s3server import S3, SECRET
from tests.sources.test_s3 import upload_folder
from vxds.executor.dask import BATCH_VARIABLE, DELAY_VARIABLE
from vxds.materialize import remote

DATASET = "all_basel_data@1"
BOTH = ("-m", "files", "-m", "bids")
T1 = "sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w.nii.gz"


def tree(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` but the receipt, by path: the bytes a run left there."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".vxds-receipt.json"
    }


def receipt(out: Path) -> dict[str, object]:
    """The receipt without the stat keys (size, mtime, inode: another file's in another OUT)."""
    data = json.loads((out / ".vxds-receipt.json").read_text())
    for entry in data["files"].values():
        assert len(entry.pop("stat")) == 3
    return data


def materialize(dataset: str, out: Path, *extra: str) -> tuple[int, str]:
    result = invoke("materialize", dataset, "-o", str(out), "-q", *extra)
    return result.exit_code, result.output


def same_as_local(root: Path, cluster: Cluster, dataset: str, *modules: str) -> None:
    assert invoke("lock", "--all").exit_code == 0
    assert materialize(dataset, root / "local", *modules) == (0, "")
    before = vxds_tasks(cluster)
    code, output = materialize(dataset, root / "remote", *modules, "--executor", cluster.url)
    assert (code, output) == (0, "")
    assert vxds_tasks(cluster) > before  # the files were copied by the workers
    local = tree(root / "local")
    assert len(local) > 20
    assert tree(root / "remote") == local
    assert receipt(root / "remote") == receipt(root / "local")
    assert not (root / "remote/.vxds-tmp").exists()


def test_a_folder_materialized_on_the_cluster_is_the_local_one(project: Path, cluster: Cluster) -> None:
    same_as_local(project, cluster, DATASET, *BOTH)
    # A second run finds every file in place: nothing goes to the workers.
    before = vxds_tasks(cluster)
    assert materialize(DATASET, project / "remote", *BOTH, "--executor", cluster.url) == (0, "")
    assert vxds_tasks(cluster) == before


def test_an_s3_source_materialized_on_the_cluster_is_the_local_one(
    tmp_path: Path, s3_server: S3, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket()
    upload_folder(s3_server, bucket, "trials/basel/", REPO / "sample-data/basel")
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trials/basel")
    monkeypatch.chdir(root)
    same_as_local(root, cluster, "trial@1", "-m", "files")


def test_a_changed_object_is_refused_as_locally(
    tmp_path: Path, s3_server: S3, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket(versioned=False)
    upload_folder(s3_server, bucket, "trials/basel/", REPO / "sample-data/basel")
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trials/basel")
    monkeypatch.chdir(root)
    assert invoke("lock", "--all").exit_code == 0
    data = (REPO / "sample-data/basel" / T1).read_bytes()
    s3_server.put_tree(bucket, "trials/basel/", {T1: data[:-1] + bytes([data[-1] ^ 1])})
    local = materialize("trial@1", root / "local", "-m", "files")
    before = vxds_tasks(cluster)
    remote = materialize("trial@1", root / "remote", "-m", "files", "--executor", cluster.url)
    assert vxds_tasks(cluster) > before
    assert remote[0] == local[0] == 1
    assert remote[1].replace("remote", "OUT") == local[1].replace("local", "OUT")
    assert T1 in remote[1]
    assert SECRET not in remote[1]
    assert not [rel for rel in tree(root / "remote") if rel.endswith(T1)]  # a refused file gets no name
    assert tree(root / "remote") == tree(root / "local")


def test_workers_that_cannot_see_out_refuse_the_run(
    project: Path, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "what-the-workers-see"
    elsewhere.mkdir()
    # The workers are asked for the probe at the path their file system would give it.
    seen = lambda path: str(elsewhere / Path(path).name)  # noqa: E731
    monkeypatch.setattr("vxds.materialize.remote.seen_by_workers", seen)
    assert invoke("lock", "--all").exit_code == 0
    result = invoke("materialize", DATASET, "-m", "files", "-o", "out", "--executor", cluster.url)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "cannot see the output folder" in lines[0]
    assert "(2 of 2 workers)" in lines[0]
    assert sorted(p.name for p in (project / "out").iterdir()) == [".vxds-lock"]
    monkeypatch.undo()
    monkeypatch.chdir(project)
    assert materialize(DATASET, project / "out", *BOTH, "--executor", cluster.url) == (0, "")  # seen


def test_a_missing_file_is_reported_as_locally(project: Path, cluster: Cluster) -> None:
    assert invoke("lock", "--all").exit_code == 0
    (project / "sample-data/basel" / T1).unlink()
    local = materialize(DATASET, project / "local", "-m", "files")
    before = vxds_tasks(cluster)
    remote = materialize(DATASET, project / "remote", "-m", "files", "--executor", cluster.url)
    assert vxds_tasks(cluster) > before
    assert remote[0] == local[0] == 1
    assert "is missing from the source" in remote[1]
    assert remote[1].replace("remote", "OUT") == local[1].replace("local", "OUT")
    assert tree(project / "remote") == tree(project / "local")


def test_a_worker_killed_mid_run_does_not_change_the_output(
    project: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    assert materialize(DATASET, project / "local", *BOTH) == (0, "")
    cluster.wait_for_workers()
    # Small, slow tasks: about 2 s of them on two workers, each busy with one when one dies.
    monkeypatch.setenv(BATCH_VARIABLE, "4")
    monkeypatch.setenv(DELAY_VARIABLE, "0.25")
    done = threading.Event()
    killed: list[int] = []

    def kill_when_running() -> None:
        while not done.is_set() and vxds_tasks(cluster) - before < 2:  # a few tasks in
            done.wait(0.05)
        if not done.is_set():
            killed.append(cluster.kill_one())

    before = vxds_tasks(cluster)
    killer = threading.Thread(target=kill_when_running)
    killer.start()
    try:
        remote = materialize(DATASET, project / "remote", *BOTH, "--executor", cluster.url)
    finally:
        done.set()
        killer.join()
    assert killed, "the run ended before a worker could be killed"
    assert remote == (0, "")
    assert tree(project / "remote") == tree(project / "local")
    assert receipt(project / "remote") == receipt(project / "local")
    assert killed[0] not in cluster.worker_pids()
    cluster.wait_for_workers()  # the nanny started a new one: later tests have two again


def test_a_file_linked_out_of_the_source_is_refused_as_locally(
    project: Path, cluster: Cluster, tmp_path: Path
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    path = project / "sample-data/basel" / T1
    outside = tmp_path / "outside.nii.gz"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    local = materialize(DATASET, project / "local", "-m", "files")
    remote = materialize(DATASET, project / "remote", "-m", "files", "--executor", cluster.url)
    assert remote[0] == local[0] == 1
    assert T1 in remote[1]
    assert remote[1].replace("remote", "OUT") == local[1].replace("local", "OUT")
    assert tree(project / "remote") == tree(project / "local")


def test_a_changed_file_comes_from_the_store_as_locally(
    project: Path, cluster: Cluster, tmp_path: Path
) -> None:
    assert invoke("lock", "--all").exit_code == 0
    store = str(tmp_path / "store")
    assert invoke("push", "--all", "--store", store).exit_code == 0
    path = project / "sample-data/basel" / T1
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    local = materialize(DATASET, project / "local", *BOTH, "--store", store)
    remote = materialize(DATASET, project / "remote", *BOTH, "--store", store, "--executor", cluster.url)
    assert remote == local == (0, "")
    placed = tree(project / "remote")
    assert placed == tree(project / "local")
    assert [placed[rel] for rel in placed if rel.endswith(T1)] == [data, data]  # files and bids
    assert receipt(project / "remote") == receipt(project / "local")


def test_the_executor_can_come_from_pyproject(project: Path, cluster: Cluster) -> None:
    assert invoke("lock", "--all").exit_code == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.vxds.executor]\nurl = "{cluster.url}"\n')
    before = vxds_tasks(cluster)
    assert materialize(DATASET, project / "remote", "-m", "files") == (0, "")
    assert vxds_tasks(cluster) > before
    here = vxds_tasks(cluster)
    assert materialize(DATASET, project / "local", "-m", "files", "--executor", "local") == (0, "")
    assert vxds_tasks(cluster) == here  # --executor local wins over the configuration
    assert tree(project / "remote") == tree(project / "local")


class _Events:
    """One progress bar recording each advance, beside the renames of workers' copies."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def task(self, label: str, total: int | None = None) -> _Events:
        return self

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.seen.extend(["advance"] * amount)

    def close(self) -> None:
        pass

    def renamed(self) -> None:
        with self._lock:
            self.seen.append("rename")


def test_the_bar_counts_each_file_once_as_the_workers_finish(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.locks.store import lock_dir, read_lock
    from vxds.materialize import Target, materialize

    lock = read_lock(lock_dir(REPO / "locks", "all_basel_data", 1))
    target = Target("all_basel_data", 1, lock.header, lock.splits, "./sample-data", REPO)
    events, into_place = _Events(), remote._into_place

    def placing(*args: Any) -> Callable[[], None]:
        work = into_place(*args)

        def renaming() -> None:
            events.renamed()  # a worker's checked copy about to be given its name
            work()

        return renaming

    monkeypatch.setattr(remote, "_into_place", placing)
    result = materialize(target, tmp_path / "out", ["files"], progress=events, executor=cluster.url)
    assert result.ok
    assert events.seen.count("advance") == 102  # each resource once, never again at its rename
    assert "rename" in events.seen
    # The workers' files were counted as their tasks ended, before the client renamed any.
    assert "advance" not in events.seen[events.seen.index("rename") :]
