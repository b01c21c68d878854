"""``read_checked``: the lock a run materializes, every line checked, passes remembered.

The lines are checked by ``vxds verify``'s line checks, which remember each shard that passed
in ``.vxds/verified.json``: a lock verified (or materialized) before is not scanned again,
and one whose lines were edited and resealed is checked again and refused with the lines
named, as a line-by-line read names them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from vxds.cli.main import cli
from vxds.locks.format import HEADER, CorruptLock, parse_header, render_header
from vxds.locks.splits import digest_chunks, split_file
from vxds.locks.store import lock_dir, read_lock
from vxds.materialize.lock_lines import read_checked
from vxds.project.config import load_config
from vxds.verify import integrity
from vxds.verify.line_scan import Job, ShardScan


@pytest.fixture
def locked(project: Path) -> Path:
    result = CliRunner().invoke(cli, ["lock", "--all", "--root", str(project)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return lock_dir(project / "locks", "demo", 1)


def scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many shards each line check parses (``integrity`` scans through ``scan_shards``)."""
    seen: list[int] = []
    real = integrity.scan_shards

    def counted(jobs: Sequence[Job], workers: int) -> list[ShardScan]:
        seen.append(len(jobs))
        return real(jobs, workers)

    monkeypatch.setattr(integrity, "scan_shards", counted)
    return seen


def reseal(lock: Path, split: str, data: bytes) -> None:
    """Write ``data`` as a split and fix lock.toml's count and digest to match it."""
    (lock / split_file(split)).write_bytes(data)
    header, _ = parse_header((lock / HEADER).read_text(encoding="utf-8"), lock)
    splits = {**header.splits, split: (data.count(b"\n"), digest_chunks([data]))}
    (lock / HEADER).write_text(render_header(dataclasses.replace(header, splits=splits)), encoding="utf-8")


def test_the_resources_are_those_a_line_by_line_read_gives(project: Path, locked: Path) -> None:
    lock = read_checked(locked, load_config(project))
    deep = read_lock(locked, deep=True, parsed=True)
    assert lock.header == deep.header
    for name in deep.splits:
        assert list(lock.splits[name].resources()) == list(deep.splits[name].resources())


def test_a_pass_is_remembered_and_not_scanned_again(
    project: Path, locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = scans(monkeypatch)
    config = load_config(project)
    read_checked(locked, config)
    first = list(seen)
    assert sum(first) == 2  # demo's two splits, one shard each, parsed once
    assert (project / ".vxds/verified.json").is_file()
    read_checked(locked, config)
    assert seen[len(first) :] == [0, 0]  # nothing parsed the second time


def test_a_pass_vxds_verify_remembered_is_used(
    project: Path, locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(cli, ["verify", "--root", str(project)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    seen = scans(monkeypatch)
    read_checked(locked, load_config(project))
    assert seen == [0, 0]


def test_a_resealed_bad_line_is_refused_and_named(project: Path, locked: Path) -> None:
    config = load_config(project)
    read_checked(locked, config)  # its passes remembered: they are of other bytes
    data = (locked / split_file("train")).read_bytes()
    first = data.split(b"\n", 1)[0]
    record = orjson.loads(first)
    bad = orjson.dumps(record, option=orjson.OPT_INDENT_2).replace(b"\n", b"")  # not canonical
    reseal(locked, "train", data.replace(first, bad, 1))
    with pytest.raises(CorruptLock) as caught:
        read_checked(locked, config)
    assert [(p.kind, p.line) for p in caught.value.problems] == [("canonical", 1)]


def test_a_resealed_unsafe_id_is_refused(project: Path, locked: Path) -> None:
    data = (locked / split_file("test")).read_bytes()
    first = data.split(b"\n", 1)[0]
    record = {**orjson.loads(first), "id": "../../etc/passwd", "uri": None}
    reseal(locked, "test", data.replace(first, orjson.dumps(record, option=orjson.OPT_SORT_KEYS), 1))
    with pytest.raises(CorruptLock) as caught:
        read_checked(locked, load_config(project))
    assert [p.kind for p in caught.value.problems] == ["unsafe-id"]
