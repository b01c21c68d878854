"""Field values as a review shows them: digests cut to 12 hex digits, long values cut.

JSON carries every value whole; text and Markdown show ``attrs.age 49 -> 50``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from vxds.locks.changes import Change

DIGEST_RE = re.compile(r"\b([a-z0-9]+:[0-9a-f]{12})[0-9a-f]{20,}\b")
WIDTH = 40  # longest value shown, in characters


def as_text(value: Any) -> str:
    """Strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def as_json(value: Any) -> str:
    """A value as JSON (a group's value: ``"BS04"``, ``3``), as leak messages name it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def short(value: Any) -> str:
    """Digests cut to 12 hex digits: enough to tell them apart in a review."""
    return DIGEST_RE.sub(lambda m: m.group(1) + "…", as_text(value))


def shown(value: Any, width: int = WIDTH) -> str:
    """A value short enough for a line: digests cut, then anything past ``width`` characters."""
    text = "(none)" if value is None else short(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def field_values(change: Change, arrow: str = "->") -> list[str]:
    """``attrs.age 49 -> 50`` for each field that changed."""
    return [f"{name} {shown(old)} {arrow} {shown(new)}" for name, old, new in change.values()]
