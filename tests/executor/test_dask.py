"""The Dask executor against a real LocalCluster: results, errors and an unreachable scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.executor.conftest import Cluster, invoke
from tests.helpers import free_port
from vxds.executor import ExecutorError, for_url
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


def _die(_item: int) -> int:
    os._exit(1)  # the worker process dies, as one killed by the kernel would


def test_work_that_kills_every_worker_is_one_executor_error(cluster: Cluster) -> None:
    cluster.wait_for_workers()
    with pytest.raises(ExecutorError) as raised:
        for_url(cluster.url).map(_die, [1], [0])
    assert str(raised.value) == (
        f"executor {cluster.url!r}: the run failed: every worker that ran one of its tasks died"
        " (more often than the scheduler's allowed-failures); see the workers' logs"
    )
    cluster.wait_for_workers()


def test_a_local_lock_imports_no_dask(project: Path) -> None:
    code = (
        "import sys; from click.testing import CliRunner; from vxds.cli.main import cli;"
        "r = CliRunner().invoke(cli, ['lock', '--all']);"
        "print(r.exit_code, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True
    )
    assert out.stdout.split(maxsplit=1) == ["0", "[]\n"]
