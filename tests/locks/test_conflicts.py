"""vxds/locks/conflicts.py: Git's conflict markers found in lock file bytes."""

from __future__ import annotations

import pytest

from vxds.locks.conflicts import conflict_lines, has_conflict
from vxds.locks.splits import line_problems


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b'{"id":"a"}\n<<<<<<< ours (a)\nx\n=======\ny\n>>>>>>> theirs (a)\n', [2]),
        (b"<<<<<<< HEAD\n=======\n>>>>>>> b\n<<<<<<< HEAD\n", [1, 4]),
        (b'{"id":"<<<<<<< not a marker"}\n<<<<<<<x\n', []),
    ],
)
def test_conflict_lines(data: bytes, lines: list[int]) -> None:
    assert conflict_lines(data) == lines
    assert has_conflict(data) == bool(lines)


def test_line_problems_name_each_conflict_once() -> None:
    data = b'{"id":"a"}\n<<<<<<< ours (b)\n{"id":"b"}\n=======\n{"id":"c"}\n>>>>>>> theirs (b)\n'
    [problem] = line_problems("train", data)
    assert (problem.kind, problem.file, problem.line) == ("conflict", "resources.train.jsonl", 2)
    assert problem == "resources.train.jsonl:2: unresolved merge conflict at line 2: resolve it or relock"
