"""``vxds lock --executor``: the same lock, hashed on a Dask cluster's workers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.executor.conftest import Cluster, invoke, lock_bytes, vxds_tasks
from tests.helpers import REPO
from tests.s3server import S3, SECRET
from tests.sources.test_s3 import upload_folder
from vxds.sources.folder import dicom, nifti


def test_a_lock_on_the_cluster_is_byte_identical_to_a_local_one(project: Path, cluster: Cluster) -> None:
    assert invoke("lock", "--all").exit_code == 0
    local = lock_bytes(project)
    shutil.rmtree(project / "locks")
    shutil.rmtree(project / ".vxds")
    before = vxds_tasks(cluster)
    result = invoke("lock", "--all", "--executor", cluster.url)
    assert result.exit_code == 0, result.output
    assert vxds_tasks(cluster) > before  # the files were hashed on the workers
    assert lock_bytes(project) == local
    assert local


# Header reads made in this process; a worker appends to its own copy of the list.
CLIENT_READS: list[str] = []
_NIFTI, _DICOM = nifti.header_attrs, dicom.read_header


def counted_nifti(path: str) -> dict[str, Any]:
    CLIENT_READS.append(path)
    return _NIFTI(path)


def counted_dicom(path: str, keywords: Sequence[str], allow: Sequence[str]) -> dict[str, Any]:
    CLIENT_READS.append(path)
    return _DICOM(path, keywords, allow)


def test_headers_are_read_on_the_workers(
    project: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NIfTI and DICOM headers the caches lack are read by the workers, not here."""
    monkeypatch.setattr(nifti, "header_attrs", counted_nifti)
    monkeypatch.setattr(dicom, "read_header", counted_dicom)
    assert invoke("lock", "--all").exit_code == 0
    local = lock_bytes(project)
    assert any(p.endswith(".nii.gz") for p in CLIENT_READS)  # the control: a local lock reads here
    assert any(p.endswith(".dcm") for p in CLIENT_READS)
    shutil.rmtree(project / "locks")
    shutil.rmtree(project / ".vxds")
    CLIENT_READS.clear()
    result = invoke("lock", "--all", "--executor", cluster.url)
    assert result.exit_code == 0, result.output
    assert lock_bytes(project) == local
    assert CLIENT_READS == []


RECIPE = """\
import vxds


@vxds.recipe()
def trial(client):
    return {"all": list(client.list())}
"""


def s3_project(root: Path, s3: S3, url: str) -> Path:
    (root / "recipes").mkdir(parents=True)
    (root / "recipes/trial.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        f"- name: trial\n  version: 1\n  script_location: ./recipes/trial.py\n  source: {url}\n"
    )
    (root / "pyproject.toml").write_text('[tool.vxds]\nlocks = "locks"\n\n' + s3.toml())
    return root


def test_an_s3_lock_on_the_cluster_is_byte_identical_to_a_local_one(
    tmp_path: Path, s3_server: S3, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket()
    upload_folder(s3_server, bucket, "trials/basel/", REPO / "sample-data/basel")
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trials/basel")
    monkeypatch.chdir(root)
    assert invoke("lock", "--all").exit_code == 0
    local = lock_bytes(root)
    shutil.rmtree(root / "locks")
    shutil.rmtree(root / ".vxds")
    before = vxds_tasks(cluster)
    result = invoke("lock", "--all", "--executor", cluster.url)
    assert result.exit_code == 0, result.output
    assert vxds_tasks(cluster) > before
    assert lock_bytes(root) == local
    assert SECRET not in result.output
    # The digests came back and filled the cache: a relock reads no object again.
    cache = json.loads((root / f".vxds/objects/{bucket}.json").read_text())
    keys = [k.split("\t")[0] for k in cache["entries"]]
    assert len(keys) == len([p for p in (REPO / "sample-data/basel").rglob("*") if p.is_file()])


def test_the_executor_can_come_from_pyproject(project: Path, cluster: Cluster) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.vxds.executor]\nurl = "{cluster.url}"\n')
    before = vxds_tasks(cluster)
    assert invoke("lock", "--all").exit_code == 0
    assert vxds_tasks(cluster) > before
    shutil.rmtree(project / ".vxds")
    here = vxds_tasks(cluster)
    assert invoke("lock", "--all", "--check", "--executor", "local").exit_code == 0  # the same locks
    assert vxds_tasks(cluster) == here  # --executor local wins over the configuration


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[tool.vxds.executor]\nurl = ""\n', r"\[tool.vxds\] executor.url must be a non-empty string"),
        ('[tool.vxds.executor]\nhost = "x"\n', r"\[tool.vxds.executor\] must be a table with one key, url"),
        ('executor = "tcp://x:1"\n', r"\[tool.vxds.executor\] must be a table with one key, url"),
    ],
)
def test_a_wrong_executor_table_is_a_config_error(tmp_path: Path, table: str, message: str) -> None:
    from vxds.errors import ConfigError
    from vxds.project.config import load_config

    (tmp_path / "pyproject.toml").write_text("[tool.vxds]\n" + table)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.vxds.executor]\nurl = "local"\n')
    assert load_config(tmp_path).executor == "local"
