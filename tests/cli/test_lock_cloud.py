"""Locking against GCS (gcp-storage-emulator) and Azure Blob (Azurite) through the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.azurite import KEY, Azure
from tests.gcsserver import GCS
from tests.helpers import Invoke, commit_all, git
from tests.s3server import SECRET, fake_s3

RECIPE = """\
import vxds


@vxds.recipe()
def trial(client):
    return {"all": list(client.list())}
"""
T2 = "sub-01/anat/sub-01_T2w.nii.gz"
TREE: dict[str, str | bytes] = {
    T2: b"\x5c\x01volume one",
    "sub-01/anat/sub-01_T2w.json": '{"EchoTime": 0.1}',
    "sub-02/anat/sub-02_T2w.nii.gz": b"\x5c\x01volume two",
    "participants.tsv": "participant_id\tage\nsub-01\t30\nsub-02\t41\n",
}
# Options of other stores, holding a secret: a gs:// or az:// source must not echo them.
SHARED = f'[tool.vxds.storage]\nkey = "AKIAVXDSTESTKEY00001"\nsecret = "{SECRET}"\nretries = 1\n\n'


@dataclass
class Store:
    """One emulated store, as the tests below need it."""

    scheme: str
    server: Any

    def new(self) -> str:
        return self.server.bucket() if self.scheme == "gs" else self.server.container()

    def put(self, name: str, files: dict[str, str | bytes]) -> None:
        self.server.put_tree(name, "trial/", files)

    def toml(self) -> str:
        return str(self.server.toml())

    def environment(self) -> dict[str, str]:
        """The store's endpoint and credentials as environment variables."""
        if self.scheme == "gs":
            return {"STORAGE_EMULATOR_HOST": self.server.endpoint}
        return {"AZURE_STORAGE_CONNECTION_STRING": self.server.options["azure"]["connection_string"]}

    def missing_word(self) -> str:
        return "bucket" if self.scheme == "gs" else "container"


@pytest.fixture(params=["gs", "az"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "gs":
        gcs: GCS = request.getfixturevalue("gcs_server")
        return Store("gs", gcs)
    azure: Azure = request.getfixturevalue("azurite")
    return Store("az", azure)


def cloud_project(root: Path, storage: str, url: str) -> Path:
    root.mkdir()
    (root / "recipes").mkdir()
    (root / "recipes/trial.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(
        f"- name: trial\n  version: 1\n  script_location: ./recipes/trial.py\n  source: {url}\n"
    )
    (root / "pyproject.toml").write_text('[tool.vxds]\nlocks = "locks"\n\n' + SHARED + storage)
    (root / ".gitignore").write_text(".vxds/\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "project")
    return root


def assert_no_secret(text: str) -> None:
    assert SECRET not in text
    assert KEY not in text


def test_lock_overwrite_relock_and_diff(
    tmp_path: Path, store: Store, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = store.new()
    store.put(name, TREE)
    url = f"{store.scheme}://{name}/trial"
    root = cloud_project(tmp_path / "p", store.toml(), url)
    monkeypatch.chdir(root)
    first = invoke("lock", "trial")
    assert first.exit_code == 0, first.output
    assert "written  trial@1: all 6" in first.output
    commit_all(root, "lock")

    store.put(name, {T2: b"\x5c\x01volume one, edited"})
    relock = invoke("lock", "trial")
    assert relock.exit_code == 0, relock.output
    assert "(1 changed; new snapshot)" in relock.output

    diff = invoke("diff", "--format", "json")
    assert diff.exit_code == 0
    changes = json.loads(diff.output)["datasets"][0]["changes"]
    assert [(c["id"], c["kind"]) for c in changes] == [(T2, "changed")]
    for result in (first, relock, diff):
        assert_no_secret(result.output)
    for path in (root / "locks").rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_text())
            assert "127.0.0.1" not in path.read_text()  # the endpoint is configuration, not data


def test_the_same_resources_as_the_folder_source(
    tmp_path: Path, store: Store, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, write_tree: Any
) -> None:
    name = store.new()
    store.put(name, TREE)
    remote = cloud_project(tmp_path / "remote", store.toml(), f"{store.scheme}://{name}/trial")
    local = cloud_project(tmp_path / "local", "", "./data")
    write_tree(local / "data", TREE)

    def locked(root: Path) -> list[dict[str, Any]]:
        monkeypatch.chdir(root)
        result = invoke("lock", "trial")
        assert result.exit_code == 0, result.output
        lines = (root / "locks/trial/1/resources.all.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        return [{k: v for k, v in r.items() if k != "version"} for r in records]

    assert locked(remote) == locked(local)


def test_a_missing_bucket_or_container_is_one_line_and_writes_nothing(
    tmp_path: Path, store: Store, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{store.scheme}://missing-place/x"
    root = cloud_project(tmp_path / "p", store.toml(), url)
    monkeypatch.chdir(root)
    result = invoke("lock", "trial")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: source {url!r}: {store.missing_word()} 'missing-place' does not exist"
    )
    assert_no_secret(result.output)
    assert not (root / "locks").exists()


def test_wrong_credentials_exit_2(
    tmp_path: Path, store: Store, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = store.new()
    store.put(name, TREE)
    url = f"{store.scheme}://{name}/trial"
    if store.scheme == "az":
        # Azurite checks Shared Key signatures: a wrong key is refused by the emulator itself.
        storage = store.server.toml(key="QUFB" + KEY[4:])
        root = cloud_project(tmp_path / "p", storage, url)
        monkeypatch.chdir(root)
        result = invoke("lock", "trial")
        cause = "access denied (AuthorizationFailure); check the credentials"
    else:
        # The GCS emulator checks no credentials: an endpoint refusing them as GCS does.
        with fake_s3(403, "AccessDenied", "no storage.objects.list access") as fake:
            storage = f'[tool.vxds.storage.gcs]\nendpoint_url = "{fake.endpoint}"\ntoken = "anon"\n'
            root = cloud_project(tmp_path / "p", storage, url)
            monkeypatch.chdir(root)
            result = invoke("lock", "trial")
        cause = "access denied (HTTP 403); check the credentials"
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == f"error: source {url!r}: {cause}"
    assert_no_secret(result.output)
    assert not (root / "locks").exists()


def test_verify_data_catches_an_object_changed_behind_the_lock(
    tmp_path: Path, store: Store, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = store.new()
    store.put(name, TREE)
    root = cloud_project(tmp_path / "p", store.toml(), f"{store.scheme}://{name}/trial")
    monkeypatch.chdir(root)
    assert invoke("lock", "trial").exit_code == 0
    commit_all(root, "lock")
    # vxds verify opens sources without [tool.vxds.storage] (as main has it), so the
    # endpoint and credentials come from the environment here, as they may in real use.
    for variable, value in store.environment().items():
        monkeypatch.setenv(variable, value)
    clean = invoke("verify", "--data", "trial")
    assert clean.exit_code == 0, clean.output

    store.put(name, {T2: b"\x5c\x01volume one, tampered"})
    result = invoke("verify", "--data", "trial")
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(locked_lines(root), 1) if f'"id":"{T2}"' in text)
    where = f"locks/trial/1/resources.all.jsonl:{line}: {T2}"
    if store.scheme == "az":
        # An ETag names no version: the one copy is read, and its hash differs.
        assert f"VX502 {where}: changed in the source (hash differs)" in result.output
    else:
        # The generation the lock records is gone (the emulator keeps only the live one).
        assert f"VX501 {where}: missing from the source" in result.output
    assert_no_secret(result.output)


def locked_lines(root: Path) -> list[str]:
    return (root / "locks/trial/1/resources.all.jsonl").read_text().splitlines()
