"""The Dask executor against a real LocalCluster: results, errors and an unreachable scheduler."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.executor.conftest import Cluster, invoke
from tests.helpers import free_port
from vxds.executor import for_url
from vxds.executor.dask import TIMEOUT_VARIABLE
from vxds.hashing import digest_bytes, hash_file, hash_file_key, map_files


def test_digests_come_back_in_input_order(tmp_path: Path, cluster: Cluster) -> None:
    files = []
    for n in range(30):
        path = tmp_path / f"f{n}"
        path.write_bytes(b"x" * n)
        files.append((str(path), n))
    remote = map_files(lambda p, _s: hash_file(p), files, executor=for_url(cluster.url))
    assert remote == [digest_bytes(b"x" * n) for n in range(30)]
    workers = set(cluster.client.run(os.getpid).values())
    assert os.getpid() not in workers  # the work ran in other processes


def test_an_error_on_a_worker_is_raised_here_as_itself(tmp_path: Path, cluster: Cluster) -> None:
    (tmp_path / "there").write_bytes(b"1")
    paths = [(str(tmp_path / "there"), 1), (str(tmp_path / "gone"), 1)]
    with pytest.raises(FileNotFoundError) as raised:
        map_files(lambda p, _s: hash_file_key(p), paths, executor=for_url(cluster.url))
    assert raised.value.filename == str(tmp_path / "gone")


def test_an_unreachable_scheduler_is_one_line_and_exit_2(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_VARIABLE, "1")
    url = f"tcp://127.0.0.1:{free_port()}"
    result = invoke("lock", "--all", "--executor", url)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: executor '{url}': cannot reach the scheduler:")
    assert len(result.output.strip().splitlines()) == 1
    assert not (project / "locks").exists()


def test_an_executor_that_is_no_url_is_refused(project: Path) -> None:
    result = invoke("lock", "--all", "--executor", "spark://x")
    assert result.exit_code == 2
    assert result.output == (
        "error: executor 'spark://x': expected 'local' or a Dask scheduler address (tcp://HOST:PORT)\n"
    )
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text() + '\n[tool.vxds.executor]\nurl = "spark://x"\n'
    )
    result = invoke("lock", "--all")
    assert result.exit_code == 2
    assert "[tool.vxds.executor] url: executor 'spark://x': expected 'local'" in result.output
