"""``lock.toml``, the header of a lock: what it holds (``Header``), its exact text
(``render_header``) and how it is read back (``parse_header``), with the problems a reader
reports (``Problem``, ``CorruptLock``).

The header records what the lock was made from (recipe, params, manifest entry, source and
snapshot), each split's count and blake3 digest (and, for a split of several shards, the
shards: ``vxds.locks.shards``), and a digest over all of that. The format is versioned
(``format = 2`` is written; format 1, which has no shards, is read too); a reader refuses a
format it does not know.

The text is written by hand, not by a TOML library, so the committed bytes never change
with a library upgrade; it is read with ``tomllib`` (``tomli`` before Python 3.11), which
is fast enough to read headers across a whole history. The split files are
``vxds.locks.splits``; a lock folder, read and written whole, is ``vxds.locks.store``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vxds.errors import LockError
from vxds.hashing import digest_json
from vxds.locks import header_toml
from vxds.locks import shards as sharding
from vxds.locks.shards import Shard

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FORMAT = 2  # what vxds writes
READS = (1, 2)  # what vxds reads: format 1 is format 2 without shards
HEADER = "lock.toml"
SPLIT_RE = re.compile(r"[A-Za-z0-9_-]+\Z")  # a split's name
NAME_RE = re.compile(r"[a-z0-9_-]+\Z")  # a dataset name, as the manifest allows
MAX_INT = 2**63 - 1  # counts and versions must fit the 64 bits every digest is computed over


@dataclass(frozen=True)
class Header:
    """What ``lock.toml`` says, minus the digest it derives."""

    name: str
    version: int
    script: str
    entrypoint: str | None
    params: Mapping[str, Any]
    script_digest: str
    entry_digest: str
    source: str
    snapshot: str
    splits: Mapping[str, tuple[int, str]]  # split -> (count, digest)
    format: int = FORMAT
    merged: bool = False  # written by the Git merge driver, not by a recipe: relock before release
    # split -> its shards, for the splits of several (format 2); the others are one file
    shards: Mapping[str, tuple[Shard, ...]] = field(default_factory=dict)
    disjoint_by: str | None = None  # a field no value of which is in two splits (``locks.disjoint``)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def recipe_digest(self) -> str:
        """Digest of the recipe's source text, entrypoint and params together."""
        return recipe_digest(self.script_digest, self.entrypoint, self.params)

    def body(self) -> dict[str, Any]:
        """Everything the lock digest covers (``merged`` only when set, so that digests of
        locks written by ``vxds lock`` do not depend on it)."""
        body = {
            "dataset": {"name": self.name, "version": self.version},
            "format": self.format,
            "manifest": {"entry_digest": self.entry_digest},
            "recipe": {
                "digest": self.recipe_digest,
                "entrypoint": self.entrypoint,
                "params": dict(self.params),
                "script": self.script,
                "script_digest": self.script_digest,
            },
            "source": {"snapshot": self.snapshot, "url": self.source},
            "splits": {name: self._split_body(name) for name in sorted(self.splits)},
        }
        if self.merged:
            body["merged"] = True
        if self.disjoint_by is not None:  # covered only when claimed: no older digest changes
            body["disjoint_by"] = self.disjoint_by
        return body

    def _split_body(self, name: str) -> dict[str, Any]:
        """A split's count and digest, and its shards' types when they list them (only then,
        so that the digests of locks written without them do not change)."""
        count, digest = self.splits[name]
        body: dict[str, Any] = {"count": count, "digest": digest}
        shards = self.shards.get(name, ())
        if shards and shards[0].types:
            body["types"] = [s.types for s in shards]  # [[type, count], ...] per shard
        return body

    @property
    def digest(self) -> str:
        return digest_json(self.body())


def recipe_digest(script_digest: str, entrypoint: str | None, params: Mapping[str, Any]) -> str:
    return digest_json({"entrypoint": entrypoint, "params": dict(params), "script": script_digest})


# --- rendering ---------------------------------------------------------------------------


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; TOML also forbids raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_header(header: Header) -> str:
    """The exact text of ``lock.toml``."""
    params = orjson.dumps(dict(header.params), option=orjson.OPT_SORT_KEYS).decode()
    out = [
        "# Generated by vxds; do not edit by hand.",
        f"# Regenerate with: vxds lock {header.name}@{header.version}",
        f"format = {header.format}",
        "",
        "[dataset]",
        f"name = {_toml_str(header.name)}",
        f"version = {header.version}",
        "",
        "[recipe]",
        f"script = {_toml_str(header.script)}",
    ]
    if header.entrypoint is not None:
        out.append(f"entrypoint = {_toml_str(header.entrypoint)}")
    out += [
        f"params = {_toml_str(params)}",
        f"script_digest = {_toml_str(header.script_digest)}",
        f"digest = {_toml_str(header.recipe_digest)}",
        "",
        "[manifest]",
        f"entry_digest = {_toml_str(header.entry_digest)}",
        "",
        "[source]",
        f"url = {_toml_str(header.source)}",
        f"snapshot = {_toml_str(header.snapshot)}",
    ]
    for name, (count, digest) in sorted(header.splits.items()):
        out += ["", f"[splits.{name}]", f"count = {count}", f"digest = {_toml_str(digest)}"]
        if header.shards.get(name):
            out += sharding.render(name, header.shards[name], _toml_str)
    out += ["", "[lock]"]
    if header.merged:
        out += [
            "# Merged by Git (vxds merge-driver), not written by a recipe: relock before release.",
            "merged = true",
        ]
    if header.disjoint_by is not None:
        out += [
            f"# No value of {header.disjoint_by} is in two splits (vxds lock checked it; so does verify).",
            f"disjoint_by = {_toml_str(header.disjoint_by)}",
        ]
    out += [f"digest = {_toml_str(header.digest)}", ""]
    return "\n".join(out)


# --- problems ----------------------------------------------------------------------------


class Problem(str):
    """One sentence saying why a lock cannot be trusted, with what a checker needs to file
    it: a ``kind`` (one of ``KINDS``), the lock ``file`` it is in and, for a line, its number.
    """

    kind: str
    file: str
    line: int | None

    def __new__(cls, text: str, *, kind: str, file: str = HEADER, line: int | None = None) -> Problem:
        problem = super().__new__(cls, text)
        problem.kind, problem.file, problem.line = kind, file, line
        return problem


# What a problem is about; ``vxds verify`` gives each kind its own code (docs/checks.md).
KINDS = (
    "unreadable",  # lock.toml or a split file cannot be read (or is a link, folder, FIFO ...)
    "toml",  # lock.toml is not valid TOML
    "format",  # no 'format', or one this vxds does not read
    "header",  # a header table or field is missing or malformed
    "recipe-digest",  # recipe.digest does not match what it covers
    "lock-digest",  # lock.digest does not match the header
    "unlisted-split",  # a resources.<split>.jsonl the header does not list
    "missing-split",  # a split the header lists has no file
    "split-digest",  # a split file's digest, line count or line endings (a '\\r') are wrong
    "json",  # a line is not JSON
    "conflict",  # Git's conflict markers: a merge left unresolved (locks.conflicts)
    "schema",  # a line breaks the resource rules
    "unsafe-id",  # an id or uri that is absolute or climbs out with '..'
    "canonical",  # a line is valid but not in canonical form
    "order",  # ids out of order
    "duplicate",  # an id repeats (or its Unicode-normalised form does)
)
MAX_SHOWN = 5  # problems named in a CorruptLock's one line; ``problems`` keeps them all


class CorruptLock(LockError):
    """A lock that cannot be trusted; ``problems`` says why, one ``Problem`` each."""

    def __init__(self, where: Path, problems: Sequence[Problem]) -> None:
        self.where = where
        self.problems = list(problems)
        shown = "; ".join(self.problems[:MAX_SHOWN])
        if len(self.problems) > MAX_SHOWN:
            shown += f"; and {len(self.problems) - MAX_SHOWN} more (run 'vxds verify' to see them all)"
        hint = "relock it with 'vxds lock', or restore it from Git"
        super().__init__(f"{where}: corrupt lock: {shown}", hint=hint)


# --- reading -----------------------------------------------------------------------------

# tomllib ends its messages with "(at line 3, column 7)" or "(at end of document)".
_WHERE_RE = re.compile(r"\s*\(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)\Z")
# The fields of a header, as (Header attribute, dotted TOML key, type); ``digest`` is claimed.
_FIELDS = (
    ("name", "dataset.name", str),
    ("version", "dataset.version", int),
    ("script", "recipe.script", str),
    ("params", "recipe.params", str),
    ("script_digest", "recipe.script_digest", str),
    ("entry_digest", "manifest.entry_digest", str),
    ("source", "source.url", str),
    ("snapshot", "source.snapshot", str),
    ("digest", "lock.digest", str),
)
_TABLES = ("dataset", "recipe", "manifest", "source", "splits", "lock")


def parse_header(text: str, where: Path) -> tuple[Header, str]:
    """Parse ``lock.toml``; return the header and the digest it claims.

    ``CorruptLock`` (at ``where``) lists every problem of the fields once the text is TOML
    of a known format with every table.
    """
    data = _toml(text, where)
    _check_format(data, where)
    problems = [
        Problem(f"{HEADER}: [{table}] is missing or not a table", kind="header")
        for table in _TABLES
        if not isinstance(data.get(table), dict)
    ]
    if problems:
        raise CorruptLock(where, problems)
    fields = {key: _get(data, path, kind, problems) for key, path, kind in _FIELDS}
    claimed_recipe = _get(data, "recipe.digest", str, problems)
    _check_name(fields["name"], problems)
    merged = _merged(data["lock"], problems)
    disjoint_by = _disjoint_by(data["lock"], problems)
    splits = _splits(data["splits"], problems)
    shards = _shards(data, splits, problems)
    params = _params(fields.pop("params"), problems)
    if problems:
        raise CorruptLock(where, problems)
    claimed = fields.pop("digest")
    entrypoint = data["recipe"].get("entrypoint")
    header = Header(
        entrypoint=entrypoint if isinstance(entrypoint, str) else None,
        params=params,
        splits=splits,
        merged=merged,
        disjoint_by=disjoint_by,
        format=data["format"],
        shards=shards,
        **fields,
    )
    if claimed_recipe != header.recipe_digest:
        message = f"{HEADER}: 'recipe.digest' does not match the script digest, entrypoint and params"
        raise CorruptLock(where, [Problem(message, kind="recipe-digest")])
    return header, claimed


def _toml(text: str, where: Path) -> dict[str, Any]:
    """The TOML document, or ``CorruptLock`` with one line saying where it breaks."""
    try:
        return header_toml.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason, line = _toml_reason(str(exc), text)
    except RecursionError:  # tomllib recurses once per nested array or inline table
        reason, line = "values nested too deeply", None
    problem = Problem(f"{HEADER} is not valid TOML: {reason}", kind="toml", line=line)
    raise CorruptLock(where, [problem]) from None


def _toml_reason(message: str, text: str) -> tuple[str, int | None]:
    """A tomllib message as ``<reason> at line <n> col <m>``, and the line it names."""
    match = _WHERE_RE.search(message)
    if match is None:
        return message, None
    reason = message[: match.start()]
    if match["line"] is None:  # the end of the document: its last line
        return f"{reason} at the end of the file", text.count("\n") + (not text.endswith("\n"))
    return f"{reason} at line {match['line']} col {match['col']}", int(match["line"])


def _check_format(data: Mapping[str, Any], where: Path) -> None:
    fmt = data.get("format")
    if type(fmt) is not int or fmt not in READS:  # not bool, not float
        what = "has no 'format'" if fmt is None else f"has format {fmt!r}"
        problem = Problem(f"{HEADER} {what}; this vxds reads formats 1 and 2", kind="format")
        raise CorruptLock(where, [problem])


def _get(table: Mapping[str, Any], path: str, kind: type, problems: list[Problem]) -> Any:
    """The value at the dotted ``path`` if it is a ``kind`` (and an int in range), else None
    with a problem added."""
    value: Any = table
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        problems.append(Problem(f"{HEADER}: '{path}' is missing or not a {kind.__name__}", kind="header"))
        return None
    if isinstance(value, int) and not 0 <= value <= MAX_INT:
        problems.append(Problem(f"{HEADER}: '{path}' is out of range (0 to 2**63-1)", kind="header"))
        return None
    return value


def _check_name(name: str | None, problems: list[Problem]) -> None:
    if name is not None and not NAME_RE.match(name):
        problems.append(Problem(f"{HEADER}: 'dataset.name' {name!r} is not a dataset name", kind="header"))


def _merged(lock: Mapping[str, Any], problems: list[Problem]) -> bool:
    merged = lock.get("merged", False)
    if not isinstance(merged, bool):
        problems.append(Problem(f"{HEADER}: 'lock.merged' is not true or false", kind="header"))
        return False
    return merged


def _disjoint_by(lock: Mapping[str, Any], problems: list[Problem]) -> str | None:
    value = lock.get("disjoint_by")
    if value is not None and (not isinstance(value, str) or not value):
        problems.append(Problem(f"{HEADER}: 'lock.disjoint_by' is not a field name", kind="header"))
        return None
    return value


def _splits(table: Mapping[str, Any], problems: list[Problem]) -> dict[str, tuple[int, str]]:
    splits: dict[str, tuple[int, str]] = {}
    for name, info in table.items():
        count = _get(info, "count", int, problems) if isinstance(info, dict) else None
        digest = _get(info, "digest", str, problems) if isinstance(info, dict) else None
        if not SPLIT_RE.match(name) or count is None or digest is None:
            problems.append(Problem(f"{HEADER}: split {name!r} is malformed", kind="header"))
        else:
            splits[name] = (count, digest)
    return splits


def _shards(
    data: Mapping[str, Any], splits: Mapping[str, tuple[int, str]], problems: list[Problem]
) -> dict[str, tuple[Shard, ...]]:
    """The ``shards`` of each split listing them (format 2 only)."""
    shards: dict[str, tuple[Shard, ...]] = {}
    for name, (count, digest) in sorted(splits.items()):
        value = data["splits"][name].get("shards")
        if value is None:
            continue
        if data["format"] < 2:
            problems.append(Problem(f"{HEADER}: 'splits.{name}.shards' in a format 1 lock", kind="header"))
            continue
        listed, found = sharding.parse(name, value, count, digest)
        problems += [Problem(f"{HEADER}: {text}", kind="header") for text in found]
        if listed:
            shards[name] = listed
    return shards


def _params(text: str | None, problems: list[Problem]) -> dict[str, Any]:
    """``recipe.params``, a JSON object in a TOML string (``{}`` with a problem if it is not)."""
    if text is None:
        return {}
    try:
        params = orjson.loads(text)
    except orjson.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        problems.append(Problem(f"{HEADER}: 'recipe.params' is not a JSON object", kind="header"))
        return {}
    return params
