"""vxds/verify/line_scan.py: shards checked one by one, in worker processes (forked, or
spawned when forking is not safe) with the same answers as in this process."""

from __future__ import annotations

import threading

import pytest

from vxds.resource import Resource
from vxds.verify import line_scan
from vxds.verify.line_scan import Job, scan_shard, scan_shards


def _shard(*ids: str) -> bytes:
    return b"".join(
        Resource(rid, 1, "File", attrs={"subject": rid[:5]}).canonical_line() + b"\n" for rid in ids
    )


JOBS: list[Job] = [
    (_shard("a/1", "a/2"), "attrs.subject", True),
    (_shard("b/1", "caf\u00e9/x"), None, False),
    (_shard("c/2", "c/1"), None, False),  # out of order
    (b'{"id":"d"}\n', None, False),  # not a resource
]


def test_a_shard_scan_says_what_the_parent_needs() -> None:
    good, nfc, unordered, bad = map(scan_shard, JOBS)
    assert (good.ok, good.first, good.last, good.clean, good.ids) == (
        True,
        "a/1",
        "a/2",
        True,
        ["a/1", "a/2"],
    )
    assert good.groups == {"a/1": "a/1", "a/2": "a/2"}
    assert (nfc.ok, nfc.clean, nfc.ids) == (True, True, None)
    assert not unordered.ok
    assert not bad.ok
    decomposed = scan_shard((_shard("cafe\u0301/x"), None, False))
    assert decomposed.ok
    assert not decomposed.clean


@pytest.mark.parametrize("other_thread", [False, True])  # fork, then spawn
def test_workers_answer_as_this_process_does(monkeypatch: pytest.MonkeyPatch, other_thread: bool) -> None:
    monkeypatch.setattr(line_scan, "PARALLEL_BYTES", 0)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    if other_thread:
        thread.start()
    try:
        assert scan_shards(JOBS, 2) == [scan_shard(job) for job in JOBS]
    finally:
        stop.set()
        if other_thread:
            thread.join()
