"""vxds/locks/shards.py's reading of the shard lists header_toml proved (``_proven``): every
header, as written or edited, parses to what the checks of any TOML document make of it,
header or error, byte for byte, and a line remembered from one header is checked again in
another split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.locks.test_header_toml import EDITS, _text
from vxds.locks import header_toml, shards
from vxds.locks.format import CorruptLock, parse_header

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _parsed(text: str) -> Any:
    """The header and claimed digest, or the error's message."""
    try:
        return parse_header(text, Path("x"))
    except CorruptLock as exc:
        return str(exc)


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """What ``parse_header`` makes of ``text`` read by header_toml, and read by tomllib
    (the shard lists plain tables, each checked by ``_shard``)."""
    shards._PROVEN.clear()
    fast = _parsed(text)
    with monkeypatch.context() as patch:
        patch.setattr(header_toml, "loads", tomllib.loads)
        slow = _parsed(text)
    return fast, slow


def test_a_header_vxds_writes_is_read_by_the_proven_path(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text([f"sub-{i:03d}/f" for i in range(40)], typed=True)
    value = header_toml.loads(text)["splits"]["train"]["shards"]
    assert isinstance(value, header_toml.Listed)
    assert len(value.rows) == len(value) == 40
    fast, slow = _both(text, monkeypatch)
    assert not isinstance(fast, str)
    assert fast == slow


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("count = 2,", "count = 0,", "shard 1 is not {file, first, count, digest} as named"),
        ('"File" = 1, "Volume" = 1', '"File" = 1, "Volume" = 2', "shard 1 is not"),
        ('"File" = 1, "Volume" = 1', '"File" = 0, "Volume" = 2', "shard 1 is not"),
        ('first = "sub-001/f"', 'first = "sub-001/g"', "shard 2 is not"),
        (', types = { "File" = 1, "Volume" = 1 }', "", "some shards list their types and some do not"),
    ],
)
def test_what_the_expressions_cannot_prove_is_checked(
    old: str, new: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _text([f"sub-{i:03d}/f" for i in range(3)], typed=True)
    assert old in text
    edited = text.replace(old, new, 1)
    assert isinstance(header_toml.loads(edited)["splits"]["train"]["shards"], header_toml.Listed)
    fast, slow = _both(edited, monkeypatch)
    assert isinstance(fast, str)
    assert words in fast
    assert fast == slow


def test_a_remembered_line_is_checked_again_for_another_split(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text(["a/1", "b/2", "c/3"], typed=False)
    assert not isinstance(_parsed(text), str)  # its lines remembered for split "train"
    renamed = text.replace("[splits.train]", "[splits.other]", 1)
    fast = _parsed(renamed)  # the same lines name train's files: wrong for "other"
    assert isinstance(fast, str)
    assert "'splits.other.shards': shard 1 is not" in fast
    assert _both(renamed, monkeypatch)[0] == fast


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a/1", "b/2", "c/3", "d/4"]), min_size=2, max_size=4), st.booleans(), EDITS)
def test_any_edit_parses_as_from_tomllib(firsts: list[str], typed: bool, edits: Any) -> None:
    text = _text(firsts, typed)
    for at, cut, char in edits:
        at %= len(text)
        text = text[:at] + char + text[at + cut :]
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = _both(text, monkeypatch)
    assert fast == slow
