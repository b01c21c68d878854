"""Every reader through the real CLI on locks of format 2 with several shards per split, and
on format-1 locks (one file per split) as earlier vxds wrote them."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from tests.helpers import Invoke, commit_all, git
from vxds.hashing import digest_bytes
from vxds.locks import digest_cache, refs, shards, splits, store
from vxds.locks.format import render_header
from vxds.locks.shards import ShardRule, split_files
from vxds.locks.store import read_lock
from vxds.verify import integrity
from vxds.verify.line_scan import Job, ShardScan

LOCK = "locks/all_basel_data/1"
SMALL = ShardRule(min_bytes=2000, target_bytes=8000, max_bytes=16000)  # the 55 kB lock: several shards


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shards, "RULE", SMALL)


def _json(invoke: Invoke, *args: str) -> dict:  # type: ignore[type-arg]
    result = invoke(*args, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


@pytest.mark.usefixtures("small_shards")
def test_every_reader_reads_a_sharded_history(history: Path, invoke: Invoke) -> None:
    files = split_files(read_lock(history / LOCK).header, "all")
    assert len(files) > 2
    assert sorted(files) == sorted(p.name for p in (history / LOCK).iterdir() if p.name != "lock.toml")
    doc = _json(invoke, "diff", "v1", "HEAD")
    basel = next(d for d in doc["datasets"] if d["name"] == "all_basel_data")
    kinds = {(c["kind"], c["id"].rpartition("/")[2]) for c in basel["changes"]}
    assert ("changed", "sub-BS02_ses-01_T2w.nii.gz") in kinds
    assert ("removed", "sub-BS08_ses-01_T2w.nii.gz") in kinds
    assert basel["summary"]["changed"] == 2
    assert invoke("diff", "--exit-code").exit_code == 0  # HEAD against the working tree
    assert invoke("verify", "--no-exec").exit_code == 0
    assert invoke("lock", "--all", "--check").exit_code == 0  # byte-identical relock
    assert "all_basel_data   1        fresh  101" in invoke("list").output
    assert invoke("show", "all_basel_data@1").exit_code == 0
    lines = invoke("log", "all_basel_data").output.splitlines()  # as on the unsharded history
    assert lines[1].strip() == "all_basel_data@1: 1 removed, 2 changed, 1 metadata; header: snapshot"
    assert lines[3].strip() == "all_basel_data@1: 102 added (first lock)"
    changed = git(history, "diff", "--name-only", "v1", "HEAD", "--", LOCK).split()
    assert len(changed) < len(files)  # the shards no change fell in are the same blobs


def test_format_1_locks_read_and_relock_to_format_2_as_a_header_change(project: Path, invoke: Invoke) -> None:
    assert invoke("lock", "--all").exit_code == 0
    for header in project.glob("locks/*/*/lock.toml"):
        lock = read_lock(header.parent)
        header.write_text(render_header(dataclasses.replace(lock.header, format=1)))  # as vxds 0.x wrote it
    commit_all(project, "format 1 locks")
    assert invoke("verify", "--no-exec").exit_code == 0
    assert invoke("show", "all_basel_data@1").exit_code == 0
    assert invoke("lock", "--all", "--check").exit_code == 1  # would change: the format
    assert invoke("lock", "--all").exit_code == 0
    doc = _json(invoke, "diff", "HEAD")
    for dataset in doc["datasets"]:
        assert dataset["changes"] == []
        assert [h["field"] for h in dataset["header"]] == ["format"]
    assert git(project, "diff", "--name-only").split() == sorted(
        str(p.relative_to(project)) for p in project.glob("locks/*/*/lock.toml")
    )


@pytest.mark.usefixtures("small_shards")
def test_diff_and_log_read_only_the_shards_that_differ(
    history: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    checked = refs.checked_lines

    def noted(stream: IO[bytes], where: str, expected: tuple[int, str] | None) -> Iterator[bytes]:
        read.append(where.rpartition("/")[2])
        return checked(stream, where, expected)

    monkeypatch.setattr(refs, "checked_lines", noted)
    files = split_files(read_lock(history / LOCK).header, "all")
    changed = {
        p.rpartition("/")[2] for p in git(history, "diff", "--name-only", "v1", "HEAD", "--", LOCK).split()
    }
    cold = _json(invoke, "diff", "v1", "HEAD")  # fills .vxds/shard-tallies
    read.clear()
    assert _json(invoke, "diff", "v1", "HEAD") == cold
    basel = set(files) - changed - {"lock.toml"}
    assert basel
    assert not basel & set(read)  # no equal shard of all_basel_data was read
    assert invoke("log", "all_basel_data").exit_code == 0


@pytest.mark.usefixtures("small_shards")
def test_verify_parses_only_the_shards_not_verified_before(
    history: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    scan_shards = integrity.scan_shards

    def noted(jobs: Sequence[Job], processes: int) -> list[ShardScan]:
        parsed.extend(digest_bytes(data) for data, _, _ in jobs)
        return scan_shards(jobs, processes)

    monkeypatch.setattr(integrity, "scan_shards", noted)
    assert invoke("verify", "--no-exec").exit_code == 0
    at_head = {digest_bytes(p.read_bytes()): p.name for p in (history / LOCK).glob("*.jsonl")}
    assert len(at_head) > 2
    assert set(at_head) <= set(parsed)  # cold: every shard
    git(history, "checkout", "v1", "--", "locks")
    parsed.clear()
    assert invoke("verify", "--no-exec").exit_code == 0
    at_v1 = {digest_bytes(p.read_bytes()): p.name for p in (history / LOCK).glob("*.jsonl")}
    changed = {
        p.rpartition("/")[2] for p in git(history, "diff", "--name-only", "v1", "HEAD", "--", LOCK).split()
    }
    assert {at_v1[d] for d in parsed if d in at_v1} <= changed  # warm: only what v1 changed
    assert {at_v1[d] for d in parsed if d in at_v1}  # and those were parsed


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by this test vouch for themselves at once (not after 2 s)."""
    monkeypatch.setattr(digest_cache, "RACY_NS", 0)


@pytest.mark.usefixtures("small_shards", "no_racy_window")
def test_a_warm_verify_reads_no_shard_and_still_finds_a_tampered_one(
    history: Path, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    for module in (store, splits):
        real = module.read_split

        def noted(path: Path, *, load: bool, real: Any = real) -> Any:
            read.append(path.name)
            return real(path, load=load)

        monkeypatch.setattr(module, "read_split", noted)
    assert invoke("verify", "--no-exec").exit_code == 0
    shard_files = split_files(read_lock(history / LOCK).header, "all")
    assert set(shard_files) <= set(read)  # cold: each shard read once
    read.clear()
    assert invoke("verify", "--no-exec").exit_code == 0
    assert read == []  # warm: no lock file read, no shard hashed
    assert invoke("verify", "--no-exec", "--no-cache").exit_code == 0
    assert set(shard_files) <= set(read)  # --no-cache: every shard read again
    read.clear()
    # the same size and modification time, other bytes: only the change time tells
    path = history / LOCK / shard_files[1]
    before = path.stat()
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"size":', b'"sizE":', 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    result = invoke("verify", "--no-exec")
    assert result.exit_code == 1
    assert f"{shard_files[1]} does not match its digest" in result.output
    assert read[0] == shard_files[1]  # the one whose stat changed; then all, to name the lines


@pytest.mark.usefixtures("small_shards")
def test_a_lock_file_changed_within_the_racy_window_does_not_vouch_for_itself(
    history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert digest_cache.RACY_NS == 2_000_000_000
    files = [history / LOCK / name for name in split_files(read_lock(history / LOCK).header, "all")]
    time.sleep(0.2)
    files[0].touch()  # changed now, the others at least 0.2 s ago
    monkeypatch.setattr(digest_cache, "RACY_NS", 100_000_000)  # 0.1 s, for the test's sake
    digests = digest_cache.ShardDigests.under(history / ".vxds")
    read_lock(history / LOCK, digests=digests)
    assert str(files[0]) not in digests.table("files")
    assert all(str(path) in digests.table("files") for path in files[1:])
