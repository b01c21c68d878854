"""``verify --data`` hashes large files ahead, importing only what the data check needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.helpers import Invoke, git
from vxds.cli import prefetch
from vxds.hashing import hash_file
from vxds.verify import data

HEAVY = ("yaml", "tomlkit", "jsonschema", "vxds.sources.folder.source", "vxds.locks.store")
LAZY = f"""
import sys
import vxds.cli.verify, vxds.cli.prefetch
checks = ("vxds.verify.", "vxds.project.manifest")
print(",".join(sorted(m for m in sys.modules if m == "vxds.verify" or m.startswith(checks) or m in {HEAVY})))
"""


def test_the_verify_command_and_the_prefetch_import_none_of_the_checks() -> None:
    found = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == ""


@pytest.fixture
def locked(project: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> Path:
    assert invoke("lock", "--all", "--quiet").exit_code == 0
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "locks")
    monkeypatch.setattr(prefetch, "LARGE", 0)  # every file of the example counts as large
    return project


def _spy(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The paths the check hashed itself, and those it took a digest hashed ahead for (the
    hashing ahead runs in a forked child or on a thread: a spy there would not see it)."""
    hashed: list[str] = []
    ahead: list[str] = []
    real_hash, real_get = data.hash_file, prefetch.Prefetch.get

    def spy_hash(path: str) -> str:
        hashed.append(path)
        return real_hash(path)

    def spy_get(self: prefetch.Prefetch, path: str, key: tuple[int, int, int]) -> str | None:
        found = real_get(self, path, key)
        if found is not None:
            ahead.append(path)
        return found

    monkeypatch.setattr(data, "hash_file", spy_hash)
    monkeypatch.setattr(prefetch.Prefetch, "get", spy_get)
    return hashed, ahead


def test_verify_data_uses_the_digests_hashed_ahead(
    locked: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed, ahead = _spy(monkeypatch)
    result = invoke("verify", "--data", "viseg_training")
    assert result.exit_code == 0, result.output
    assert hashed == []
    assert len(ahead) == len(set(ahead)) > 0
    assert all(path.startswith(os.path.realpath(locked / "sample-data") + "/") for path in ahead)


def test_a_file_changed_in_the_source_is_found_with_the_digests_hashed_ahead(
    locked: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed, ahead = _spy(monkeypatch)
    line = orjson.loads(
        (locked / "locks/viseg_training/1/resources.train.jsonl").read_bytes().splitlines()[0]
    )
    (locked / "sample-data" / line["id"]).write_bytes(b"other bytes")
    result = invoke("verify", "--data", "viseg_training")
    assert result.exit_code == 1
    assert f"{line['id']}: changed in the source" in result.output
    assert ahead
    assert hashed == []


def test_a_digest_is_given_only_for_the_stat_it_was_hashed_with(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 1000)
    ahead = prefetch.Prefetch([str(path)])
    st = path.stat()
    assert ahead.get(str(path), (st.st_size, st.st_mtime_ns, st.st_ino)) == hash_file(path)
    assert ahead.get(str(path), (st.st_size, st.st_mtime_ns + 1, st.st_ino)) is None
    assert ahead.get(str(tmp_path / "other"), (st.st_size, st.st_mtime_ns, st.st_ino)) is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"id": "a.bin", "uri": "../outside.bin"}, "a uri leading out of the source"),
        ({"id": "link.bin"}, "a symlink leading out of the source"),
        ({"id": "a.bin", "type": "DICOMSeries"}, "not a plain file"),
        ({"id": "a.bin", "hash": "sha256:" + "0" * 64}, "not a blake3 hash"),
        ({"id": "fifo"}, "not a regular file"),
        ({"id": "small.bin", "size": 10}, "under the size worth hashing ahead"),
    ],
)
def test_a_line_is_hashed_ahead_only_for_a_large_regular_file_inside_the_source(
    tmp_path: Path, record: dict[str, object], reason: str
) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"secret")
    (folder / "a.bin").write_bytes(b"a")
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")
    os.mkfifo(folder / "fifo")
    line = {"type": "File", "size": prefetch.LARGE, "hash": "blake3:" + "0" * 64, **record}
    assert prefetch._large_file(str(folder), orjson.dumps(line)) is None, reason
    good = {**line, "id": "a.bin", "uri": "a.bin", "type": "File", "hash": "blake3:" + "0" * 64}
    good["size"] = prefetch.LARGE
    assert prefetch._large_file(str(folder), orjson.dumps(good)) == f"{folder}/a.bin"
