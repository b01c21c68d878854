from __future__ import annotations

import pytest

from vxds.verify.findings import ERROR, WARNING, Finding, sort_key


def test_where_and_json() -> None:
    finding = Finding("VX000", ERROR, "bad", dataset="a@1", file="locks/a/1/lock.toml", line=3)
    assert finding.where == "locks/a/1/lock.toml:3"
    assert Finding("VX000", WARNING, "w", file="datasets.yaml").where == "datasets.yaml"
    assert Finding("VX000", WARNING, "w").where == ""
    assert finding.to_json() == {
        "code": "VX000",
        "severity": "error",
        "message": "bad",
        "dataset": "a@1",
        "file": "locks/a/1/lock.toml",
        "line": 3,
    }


def test_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        Finding("VX000", "fatal", "x")


def test_sort_order() -> None:
    b = Finding("VX002", ERROR, "x", dataset="b@1")
    a2 = Finding("VX001", ERROR, "x", dataset="a@1", file="f", line=2)
    a1 = Finding("VX003", ERROR, "x", dataset="a@1", file="f", line=1)
    assert sorted([b, a2, a1], key=sort_key) == [a1, a2, b]
