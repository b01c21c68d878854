"""vxds/locks/split_diff.py: the merge-join of one split's lines."""

from __future__ import annotations

from vxds.locks.split_diff import type_of
from vxds.resource import Resource


def test_type_of_reads_the_top_level_type() -> None:
    line = Resource("x", 1, type="Volume", attrs={"type": "nested", "o": {"type": "deep"}}).canonical_line()
    assert type_of(line) == "Volume"
    assert type_of(b'{"id":"x","type":"A\\"B"}') == 'A"B'
