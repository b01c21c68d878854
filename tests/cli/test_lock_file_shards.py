"""``vxds lock --file`` of a split bigger than a shard: shard files and their index, read back
by ``vxds materialize -f`` (vxds/locks/bare.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Invoke
from vxds.locks import shards
from vxds.locks.shards import ShardRule, split_files
from vxds.locks.store import read_lock

SMALL = ShardRule(min_bytes=2000, target_bytes=8000, max_bytes=16000)  # the 55 kB split: shards
LOCK = "locks/all_basel_data/1"


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "RULE", SMALL)


def _bare(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


@pytest.mark.usefixtures("small_shards")
def test_a_split_bigger_than_a_shard_is_written_as_the_locks_shards_and_an_index(
    project: Path, invoke: Invoke, tmp_path: Path
) -> None:
    assert invoke("lock", "all_basel_data").exit_code == 0
    files = split_files(read_lock(project / LOCK).header, "all")
    assert len(files) > 2
    out = tmp_path / "out"
    result = invoke("lock", "--file", "recipes/basel.py", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"{out / 'resources.all.shards.json'}: 102 resources" in result.output
    assert _bare(out) == sorted([*files, "resources.all.shards.json"])
    for file in files:  # the same names and bytes as the lock's shards
        assert (out / file).read_bytes() == (project / LOCK / file).read_bytes()
    index = json.loads((out / "resources.all.shards.json").read_text())
    assert [s["file"] for s in index["shards"]] == files
    assert (index["count"], index["split"], index["format"]) == (102, "all", 2)
    assert invoke("lock", "--file", "recipes/basel.py", "-o", str(out), "--check").exit_code == 0

    result = invoke(
        "materialize", "-f", str(out / "resources.all.shards.json"), "-o", str(tmp_path / "m"), "-m", "files"
    )
    assert result.exit_code == 0, result.output
    result = invoke("materialize", "all_basel_data", "-o", str(tmp_path / "from-lock"), "-m", "files")
    assert result.exit_code == 0, result.output
    made = {p.relative_to(tmp_path / "m") for p in (tmp_path / "m" / "all").rglob("*") if p.is_file()}
    assert len(made) >= 102
    assert made == {  # what materializing the lock makes
        p.relative_to(tmp_path / "from-lock")
        for p in (tmp_path / "from-lock" / "all").rglob("*")
        if p.is_file()
    }


@pytest.mark.usefixtures("small_shards")
def test_a_tampered_shard_of_a_bare_split_is_named(project: Path, invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("lock", "--file", "recipes/basel.py", "-o", str(out)).exit_code == 0
    index = json.loads((out / "resources.all.shards.json").read_text())
    second = out / index["shards"][1]["file"]
    second.write_bytes(second.read_bytes().replace(b'"size":', b'"sizE":', 1))
    result = invoke(
        "materialize", "-f", str(out / "resources.all.shards.json"), "-o", str(tmp_path / "m"), "-m", "files"
    )
    assert result.exit_code == 2
    assert f"{second.name} does not match its digest" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_a_split_that_fits_one_shard_is_one_file_again(
    project: Path, invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(shards, "RULE", SMALL)
    assert invoke("lock", "--file", "recipes/basel.py", "-o", str(out)).exit_code == 0
    assert len(_bare(out)) > 3
    (out / "notes.txt").write_text("not ours\n")
    monkeypatch.setattr(shards, "RULE", ShardRule())  # the real rule: 55 kB is one shard
    result = invoke("lock", "--file", "recipes/basel.py", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert _bare(out) == ["notes.txt", "resources.all.jsonl"]  # the shards and index are gone
    assert "removed" not in result.output  # files of a split this run wrote, not another split
