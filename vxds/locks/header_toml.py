"""``lock.toml`` read as ``tomllib`` reads it, faster: the ``shards = [...]`` lists vxds
writes (one inline table per line, ``shards.render``) are read line by line with one regular
expression each, and the rest of the text by ``tomllib``.

``tomllib`` is pure Python: a 10,000,000-resource lock lists about 1,100 shards, and
parsing their inline tables took most of a diff that reads one shard. The answer is always
``tomllib.loads(text)`` (``tests/locks/test_header_toml.py`` holds it to that):

* only a list written exactly as vxds writes it is read here: strings with no escape and
  no control character, decimal counts, the keys in their order, no duplicate type; any
  other list is left to ``tomllib`` as it is;
* a text with a multi-line string (``'''`` or ``\"\"\"``) is left to ``tomllib`` whole, so a line
  of the text is a line of TOML;
* each list read here is replaced by a placeholder integer, ``tomllib`` parses the rest,
  and each placeholder must then be found exactly once, as the ``shards`` of a
  ``[splits.NAME]`` table, or the whole text goes to ``tomllib``; so does any text it
  refuses, and its error is ``tomllib``'s.

A list read here is a ``Listed``: equal to ``tomllib``'s list of tables, it also keeps
each line's fields as the expressions proved them, so ``shards.parse`` checks only what
they cannot prove (``tests/locks/test_shards_proven.py``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_STR = r'"([^"\\\x00-\x1f\x7f]*)"'
_INT = r"(0|[1-9][0-9]*)"
_TYPES = r"(?:, types = \{ ([^{}\n]+) \})?"  # "": none listed (an empty table is not as written)
# one shard's line, newline and all, from a line's start: a list's lines are read by one
# findall, and one match per line means every line is as vxds writes it
_LINE = re.compile(
    rf"^  \{{ file = {_STR}, first = {_STR}, count = {_INT}, digest = {_STR}{_TYPES} \}},\n", re.MULTILINE
)
_TYPE = re.compile(rf"{_STR} = {_INT}(?:, |\Z)")
_BLOCK = re.compile(r"^shards = \[\n((?:  \{[^\n]*\n)*)\]$", re.MULTILINE)
_SENTINEL = -(2**62)  # placeholder k is _SENTINEL - k: no count or version is negative


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; raises what it raises."""
    if "'''" in text or '"""' in text:
        return tomllib.loads(text)
    lists: list[Listed] = []

    def placeholder(match: re.Match[str]) -> str:
        shards = _shards(match[1])
        if shards is None:
            return match[0]
        lists.append(shards)
        return f"shards = {_SENTINEL - len(lists) + 1}"

    rest = _BLOCK.sub(placeholder, text)
    if not lists:
        return tomllib.loads(text)
    try:
        data = tomllib.loads(rest)
    except tomllib.TOMLDecodeError:
        return tomllib.loads(text)  # raises, with the line and column of the text itself
    return data if _put_back(data, lists) else tomllib.loads(text)


def _put_back(data: dict[str, Any], lists: list[Listed]) -> bool:
    """Each placeholder replaced by its list, where ``[splits.NAME] shards`` holds it; False
    unless every placeholder is there once and no such number is anywhere else (a text
    that wrote one itself)."""
    if _placeholders(data, len(lists)) != len(lists):
        return False
    splits = data.get("splits")
    found = set()
    for table in splits.values() if isinstance(splits, dict) else ():
        value = table.get("shards") if isinstance(table, dict) else None
        if isinstance(value, int) and _is_placeholder(value, len(lists)):
            found.add(_SENTINEL - value)
            table["shards"] = lists[_SENTINEL - value]
    return len(found) == len(lists)


def _is_placeholder(value: Any, count: int) -> bool:
    return type(value) is int and _SENTINEL - count < value <= _SENTINEL


def _placeholders(value: Any, count: int) -> int:
    """How many placeholder numbers ``value`` holds, at any depth."""
    if isinstance(value, dict):
        return sum(_placeholders(v, count) for v in value.values())
    if isinstance(value, list):
        return sum(_placeholders(v, count) for v in value)
    return int(_is_placeholder(value, count))


Row = tuple[str, str, int, str, str]  # file, first, count, digest, types as written ("": none)


class Listed(list[dict[str, Any]]):
    """A ``shards`` list read here: the list of tables ``tomllib`` makes of it, and ``rows``,
    the same shards as the expressions proved them (strings, counts, the keys, and types
    that are a table of at least one type with no type twice), for ``shards.parse``: each
    row is its line's text in fields, so equal lines of two headers are equal rows."""

    rows: list[Row]


def _shards(block: str) -> Listed | None:
    """The inline tables of a list's lines, or None when any line is not as vxds writes it."""
    found = _LINE.findall(block)
    if len(found) != block.count("\n"):
        return None
    out, rows = Listed(), []
    for file, first, number, digest, written in found:
        types = _types(written) if written else {}
        if types is None:
            return None
        count = int(number)
        rows.append((file, first, count, digest, written))
        shard: dict[str, Any] = {"file": file, "first": first, "count": count, "digest": digest}
        if written:
            shard["types"] = types
        out.append(shard)
    out.rows = rows
    return out


def _types(text: str) -> dict[str, int] | None:
    """``"A" = 1, "B" = 2`` as a table; None when it is not written so, or repeats a key."""
    out: dict[str, int] = {}
    at = 0
    while at < len(text):
        match = _TYPE.match(text, at)
        if match is None or match[1] in out:
            return None
        out[match[1]] = int(match[2])
        at = match.end()
    return out if out and not text.endswith(", ") else None
