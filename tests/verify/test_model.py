"""vxds/verify/model.py: the results remembered between runs (``ResultCache``)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from vxds.verify.model import CHECKS_VERSION, ResultCache


def test_passes_are_remembered_in_one_sorted_file(tmp_path: Path) -> None:
    path = tmp_path / ".vxds" / "verified.json"
    cache = ResultCache(path)
    cache.add("b")
    cache.add("a")
    cache.add("b")
    assert cache.added == ["b", "a"]
    cache.save()
    assert orjson.loads(path.read_bytes()) == {"version": CHECKS_VERSION, "passed": ["a", "b"]}
    again = ResultCache(path)
    assert "a" in again
    assert again.added == []


def test_nothing_new_writes_nothing(tmp_path: Path) -> None:
    ResultCache(tmp_path / "verified.json").save()
    ResultCache(None).save()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"version": 0, "passed": ["a"]}', b'{"version": 1, "passed": "a"}'],
)
def test_a_file_that_cannot_be_trusted_remembers_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "verified.json"
    path.write_bytes(content)
    assert "a" not in ResultCache(path)


def test_only_strings_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "verified.json"
    path.write_bytes(orjson.dumps({"version": CHECKS_VERSION, "passed": ["a", 5, None]}))
    assert ResultCache(path).passed == {"a"}
