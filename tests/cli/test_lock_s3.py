"""Locking against an S3 bucket through the CLI, with moto's server as the bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke, commit_all, git
from tests.s3server import S3, SECRET, fake_s3, free_port

RECIPE = """\
import vxds


@vxds.recipe()
def trial(client):
    return {"all": list(client.list())}
"""
T2 = "sub-01/anat/sub-01_T2w.nii.gz"


def s3_project(root: Path, s3: S3, url: str) -> Path:
    root.mkdir()
    (root / "recipes").mkdir()
    (root / "recipes/trial.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        f"- name: trial\n  version: 1\n  script_location: ./recipes/trial.py\n  source: {url}\n"
    )
    (root / "pyproject.toml").write_text('[tool.vxds]\nlocks = "locks"\n\n' + s3.toml())
    (root / ".gitignore").write_text(".vxds/\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "project")
    return root


@pytest.fixture
def bucket(s3_server: S3) -> str:
    name = s3_server.bucket()
    s3_server.put_tree(
        name,
        "trial/",
        {
            T2: b"\x5c\x01volume one",
            "sub-01/anat/sub-01_T2w.json": '{"EchoTime": 0.1}',
            "sub-02/anat/sub-02_T2w.nii.gz": b"\x5c\x01volume two",
            "participants.tsv": "participant_id\tage\nsub-01\t30\nsub-02\t41\n",
        },
    )
    return name


def test_lock_overwrite_relock_and_diff(
    tmp_path: Path, s3_server: S3, bucket: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    monkeypatch.chdir(root)
    first = invoke("lock", "trial")
    assert first.exit_code == 0, first.output
    assert "written  trial@1: all 6" in first.output
    commit_all(root, "lock")
    lines = (root / "locks/trial/1/resources.all.jsonl").read_text().splitlines()
    old = next(json.loads(line) for line in lines if json.loads(line)["id"] == T2)

    s3_server.put_tree(bucket, "trial/", {T2: b"\x5c\x01volume one, edited"})
    relock = invoke("lock", "trial")
    assert relock.exit_code == 0
    assert "(+0 -0 ~1 new snapshot)" in relock.output

    diff = invoke("diff", "--format", "json")
    assert diff.exit_code == 0
    report = json.loads(diff.output)
    changes = report["datasets"][0]["changes"]
    assert [(c["id"], c["kind"]) for c in changes] == [(T2, "changed")]

    # The old lock still reads the old bytes: its resource pins the old VersionId.
    from vxds.resource import Resource
    from vxds.sources import open_source
    from vxds.sources.base import SourceContext

    opened = open_source(f"s3://{bucket}/trial", SourceContext(base=root, options=s3_server.options))
    with opened.open(Resource.from_record(old)) as fh:
        assert fh.read() == b"\x5c\x01volume one"


def test_no_secret_in_output_or_locks(
    tmp_path: Path, s3_server: S3, bucket: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    monkeypatch.chdir(root)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET + "-env")
    outputs = [
        invoke("lock", "trial", "--format", "json"),
        invoke("show", "trial"),
        invoke("list"),
    ]
    (root / "datasets.yaml").write_text(
        "- name: trial\n  version: 1\n  script_location: ./recipes/trial.py\n  source: s3://missing-bucket/x\n"
    )
    outputs.append(invoke("lock", "trial"))
    assert outputs[-1].exit_code == 2
    for result in outputs:
        assert SECRET not in result.output
    for path in (root / "locks").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text()


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("s3://missing-bucket/x", "bucket 'missing-bucket' does not exist"),
        ("nosuch://place", "no source handles the scheme 'nosuch'"),
    ],
)
def test_bad_sources_are_one_line_errors_and_write_nothing(
    tmp_path: Path, s3_server: S3, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, url: str, cause: str
) -> None:
    root = s3_project(tmp_path / "p", s3_server, url)
    monkeypatch.chdir(root)
    result = invoke("lock", "trial")
    assert result.exit_code == 2
    assert cause in result.output and url in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (root / "locks").exists()


def test_an_unreachable_endpoint_exits_2(
    tmp_path: Path, s3_server: S3, bucket: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(s3_server.endpoint, f"http://127.0.0.1:{free_port()}") + "retries = 0\n"
    )
    monkeypatch.chdir(root)
    result = invoke("lock", "trial")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: source 's3://{bucket}/trial': the storage service failed")
    assert SECRET not in result.output
    assert not (root / "locks").exists()


def test_wrong_credentials_exit_2(
    tmp_path: Path, s3_server: S3, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = "The AWS Access Key Id you provided does not exist in our records."
    with fake_s3(403, "InvalidAccessKeyId", message) as fake:
        root = s3_project(tmp_path / "p", s3_server, "s3://bucket/trial")
        pyproject = root / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace(s3_server.endpoint, fake.endpoint))
        monkeypatch.chdir(root)
        result = invoke("lock", "trial")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        "error: source 's3://bucket/trial': access denied (InvalidAccessKeyId); check the credentials"
    )
    assert SECRET not in result.output
    assert not (root / "locks").exists()
