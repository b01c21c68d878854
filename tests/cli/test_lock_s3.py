"""Locking against an S3 bucket through the CLI, with moto's server as the bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Invoke, commit_all, free_port, git
from tests.s3server import S3, SECRET, fake_s3

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
    assert "(1 changed; new snapshot)" in relock.output

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
    assert cause in result.output
    assert url in result.output
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


def test_verify_data_catches_an_object_changed_behind_the_lock(
    tmp_path: Path, s3_server: S3, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unversioned bucket keeps one copy: an overwrite is seen by re-hashing through S3."""
    name = s3_server.bucket(versioned=False)
    s3_server.put_tree(name, "trial/", {T2: b"\x5c\x01volume one", "sub-02/anat/sub-02_T2w.nii.gz": b"two"})
    root = s3_project(tmp_path / "p", s3_server, f"s3://{name}/trial")
    monkeypatch.chdir(root)
    assert invoke("lock", "trial").exit_code == 0
    assert invoke("verify", "--data").exit_code == 0
    s3_server.put_tree(name, "trial/", {T2: b"\x5c\x01volume one, behind the lock's back"})
    result = invoke("verify", "--data")
    assert result.exit_code == 1
    assert "VX502" in result.output
    assert T2 in result.output
    assert SECRET not in result.output


def test_verify_data_of_a_versioned_bucket_reads_the_locked_version(
    tmp_path: Path, s3_server: S3, bucket: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A versioned bucket keeps the locked bytes: an overwrite does not break the old lock,
    a deleted version does."""
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    monkeypatch.chdir(root)
    assert invoke("lock", "trial").exit_code == 0
    s3_server.put_tree(bucket, "trial/", {T2: b"\x5c\x01volume one, edited"})
    assert invoke("verify", "--data").exit_code == 0
    line = next(
        json.loads(text)
        for text in (root / "locks/trial/1/resources.all.jsonl").read_text().splitlines()
        if json.loads(text)["id"] == T2
    )
    s3_server.client.delete_object(Bucket=bucket, Key=f"trial/{T2}", VersionId=line["version"])
    result = invoke("verify", "--data")
    assert result.exit_code == 1
    assert T2 in result.output


def test_materialize_and_load_lock_read_the_locked_version(
    tmp_path: Path, s3_server: S3, bucket: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = s3_project(tmp_path / "p", s3_server, f"s3://{bucket}/trial")
    monkeypatch.chdir(root)
    assert invoke("lock", "trial").exit_code == 0
    s3_server.put_tree(bucket, "trial/", {T2: b"\x5c\x01volume one, edited"})  # after the lock
    out = tmp_path / "out"
    result = invoke("materialize", "trial", "-o", str(out), "-m", "files", "-q")
    assert result.exit_code == 0, result.output
    assert (out / "all" / T2).read_bytes() == b"\x5c\x01volume one"
    assert invoke("verify", "--materialized", str(out)).exit_code == 0
    import vxds

    lock = vxds.load_lock("trial@1", root=root)
    with lock.open(T2) as fh:
        assert fh.read() == b"\x5c\x01volume one"
