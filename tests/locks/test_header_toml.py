"""vxds/locks/header_toml.py: lock.toml read faster, always as tomllib reads it, for headers
vxds writes and for any edit of one."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.locks.test_shards import _header
from vxds.locks import header_toml
from vxds.locks.format import render_header
from vxds.locks.shards import Shard, split_digest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

D = "blake3:"


def _same(text: str) -> Any:
    """What both parsers make of ``text``: the same document, or the same error."""
    try:
        expected: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        with pytest.raises(tomllib.TOMLDecodeError) as caught:
            header_toml.loads(text)
        assert str(caught.value) == str(exc)
        return None
    assert header_toml.loads(text) == expected
    return expected


def _text(firsts: list[str], typed: bool) -> str:
    shards = tuple(
        Shard(first, 2, D + f"{i:064x}", (("File", 1), ("Volume", 1)) if typed else ())
        for i, first in enumerate(sorted(set(firsts)))
    )
    splits = {"train": (2 * len(shards), split_digest(shards)), "test": (1, D + "9" * 64)}
    return render_header(_header({}, splits=splits, shards={"train": shards}))


def test_a_header_vxds_writes_is_read_here_and_as_tomllib_reads_it() -> None:
    text = _text([f"sub-{i:03d}/f" for i in range(40)], typed=True)
    assert header_toml._BLOCK.search(text) is not None
    assert header_toml._shards(header_toml._BLOCK.search(text)[1]) is not None  # type: ignore[index]
    data = _same(text)
    assert data["splits"]["train"]["shards"][0]["types"] == {"File": 1, "Volume": 1}


IDS = st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=12)


@settings(max_examples=150, deadline=None)
@given(IDS, st.booleans())
def test_any_ids_read_as_tomllib_reads_them(firsts: list[str], typed: bool) -> None:
    _same(_text(firsts, typed))  # quotes, backslashes and control characters go to tomllib


EDITS = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 3), st.sampled_from(list("\"'\\{}[],=\n #x1\t\r-"))),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a/1", "b/2", "c/3", "d/4"]), min_size=2, max_size=4), st.booleans(), EDITS)
def test_any_edit_of_a_header_reads_as_tomllib_reads_it(firsts: list[str], typed: bool, edits: Any) -> None:
    text = _text(firsts, typed)
    for at, cut, char in edits:
        at %= len(text)
        text = text[:at] + char + text[at + cut :]
    _same(text)


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("[splits.train]", "[other]", 1),  # a shards list outside [splits.NAME]
        lambda t: t.replace('"Volume" = 1', '"File" = 1', 1),  # a type twice: tomllib refuses it
        lambda t: t.replace("count = 1\n", f"count = 1\nshards = {header_toml._SENTINEL}\n", 1),
        lambda t: t.replace("count = 1\n", "count = 1\nshards = -4_611_686_018_427_387_904\n", 1),
        lambda t: t.replace('[source]\nurl = "./data"', '[source]\nurl = """\nshards = [\n]\n"""', 1),
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.replace("count = 2,", "count = 02,", 1),
        lambda t: t.replace("shards = [\n", "shards = [\n]\nx = [\n", 1),
        lambda t: t.replace("shards = [\n", 'shards = [\n  { file = "a" },\n', 1),
        lambda t: t + "\n[splits.train]\nshards = [\n]\n",
    ],
)
def test_headers_edited_by_hand_read_as_tomllib_reads_them(edit: Any) -> None:
    text = _text(["a/1", "b/2", "c/3"], typed=True)
    assert edit(text) != text
    _same(edit(text))
