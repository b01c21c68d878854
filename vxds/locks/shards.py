"""Content-defined shards of a split (lock ``format = 2``): where a split's lines are cut,
what each shard file is named, and the split digest derived from the shards' digests.

**The cut rule.** A line is a *candidate* when its *cut value* (the first 8 bytes of
``blake3(id)``, big-endian; the id's UTF-8 bytes, the same on every Python and hash seed) is
below ``len(line) * 2**64 // (target_bytes - min_bytes)``: each byte of a line has the same
chance of making it one. A split's canonical, id-sorted lines are scanned in order, and a
new shard starts at line ``i`` (never the first) when ``i`` is a candidate at least
``min_bytes`` after the previous candidate (or the split's start), or when adding it would
take the current shard over ``max_bytes``. Shards average about ``target_bytes``.

Whether a line starts a shard thus depends only on the lines since the previous candidate,
not on where earlier shards were cut: an edit moves at most the boundaries of the shards it
falls in and the next, and an insert before every id changes the first shard(s) only. The
one position-dependent cut, at ``max_bytes``, is followed by the next candidate boundary as
if it had not been made. Changing ``RULE`` or the cut value moves every boundary of every
sharded lock (the resources stay the same).

**Names.** A split of one shard is ``resources.<split>.jsonl``, as in format 1. A split of
several is ``resources.<split>.<key>.jsonl`` per shard, ``key`` being hex digits 16 to 31 of
``blake3(first id)``: an unchanged shard keeps its path and bytes, so Git stores it once.
The name never holds the id itself, so it is short and safe whatever the ids are.

**Digests.** A shard's digest is blake3 of its file. A split of one shard has that digest
(as in format 1); a split of several has ``digest_json`` of its ``[first, count, digest]``
list, so any one shard can be checked alone against the header and the header against its
shards without reading them.

**Types.** A shard line may also list its resources by type (``types = { "Volume" = 9412 }``),
so that a diff counts an equal shard without reading it. It is optional (a lock written
before it lists none, and is read the shard's way), all of a split's shards or none list
it, the counts add up to the shard's ``count``, the lock digest covers it
(``format.Header.body``), and ``vxds verify`` checks it against the shard's lines.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from blake3 import blake3

from vxds.hashing import digest_json
from vxds.locks.header_toml import Listed, Row

SHARD_FILE_RE = re.compile(r"resources\.([A-Za-z0-9_-]+)\.([0-9a-f]{16})\.jsonl\Z")
SPLIT_FILE_RE = re.compile(r"resources\.([A-Za-z0-9_-]+)\.jsonl\Z")
MAX_FILE = 16 << 20  # no file of a lock is larger (one line larger than max_bytes aside)


@dataclass(frozen=True)
class ShardRule:
    """Shard sizes in bytes (see the module docstring)."""

    min_bytes: int = 1 << 20
    target_bytes: int = 4 << 20
    max_bytes: int = 8 << 20

    @property
    def per_byte(self) -> int:
        return (1 << 64) // (self.target_bytes - self.min_bytes)


RULE = ShardRule()


@dataclass(frozen=True)
class Shard:
    """One shard as the header lists it (its file name follows from the split and ``first``);
    ``types``: its resources by type, sorted by type (empty: not listed)."""

    first: str
    count: int
    digest: str
    types: tuple[tuple[str, int], ...] = ()


class HasShards(Protocol):
    """What ``split_files`` needs of a header."""

    @property
    def splits(self) -> Mapping[str, tuple[int, str]]: ...

    @property
    def shards(self) -> Mapping[str, Sequence[Shard]]: ...


def split_file(split: str) -> str:
    return f"resources.{split}.jsonl"


@functools.lru_cache(maxsize=1 << 16)  # every reader of a header names each shard several times
def shard_key(first: str) -> str:
    return blake3(first.encode("utf-8")).hexdigest()[16:32]


def shard_file(split: str, first: str) -> str:
    """The file of a shard of a split of several shards."""
    return f"resources.{split}.{shard_key(first)}.jsonl"


def is_lock_file(name: str) -> bool:
    """A file name a lock's resource lines may have: a split file or a shard file."""
    return SPLIT_FILE_RE.match(name) is not None or SHARD_FILE_RE.match(name) is not None


def split_files(header: HasShards, split: str) -> list[str]:
    """The files holding ``split``'s lines, in order: read them one after another for the
    split's canonical lines (``vxds query`` and every reader do). Formats 1 and 2."""
    shards = header.shards.get(split)
    if not shards:
        return [split_file(split)]
    return [shard_file(split, shard.first) for shard in shards]


def listed_files(header: HasShards, split: str) -> list[tuple[str, tuple[int, str]]]:
    """Each file of ``split`` with the ``(count, digest)`` the header lists for it."""
    shards = header.shards.get(split)
    if not shards:
        return [(split_file(split), header.splits[split])]
    return [(shard_file(split, s.first), (s.count, s.digest)) for s in shards]


def file_line(header: HasShards, split: str, number: int) -> tuple[str, int]:
    """Where the ``number``-th line of ``split`` is: its file and its line in that file."""
    files = listed_files(header, split)
    for file, (count, _) in files[:-1]:
        if number <= count:
            return file, number
        number -= count
    return files[-1][0], number


def all_files(header: HasShards) -> dict[str, str]:
    """Every resource-line file a header lists -> its split."""
    return {file: split for split in sorted(header.splits) for file in split_files(header, split)}


def split_digest(shards: Sequence[Shard]) -> str:
    """A split's digest from its shards' (a split of one shard: that shard's digest)."""
    if len(shards) == 1:
        return shards[0].digest
    return digest_json([[s.first, s.count, s.digest] for s in shards])


def types_of(lines: Iterable[bytes]) -> tuple[tuple[str, int], ...]:
    """What ``Shard.types`` lists for these canonical lines."""
    from vxds.locks.split_diff import type_of  # with the diff's change records: not for reading

    return tuple(sorted(Counter(map(type_of, lines)).items()))


def cut_value(rid: bytes) -> int:
    """The first 8 bytes of blake3 of an id's UTF-8 bytes, as an integer."""
    return int.from_bytes(blake3(rid).digest()[:8], "big")


def cut_id(line: bytes) -> bytes:
    """A canonical line's id as UTF-8, found without parsing the line: the top-level id is
    the last ``"id":"`` (only scalars follow it, and a string holds no bare ``"``) and ends
    at ``","size":``. Anything else (an escape in the id, a line that is not canonical) is
    parsed."""
    start = line.rfind(b'"id":"') + 6
    end = line.find(b'","size":', start)
    if start < 6 or end < 0 or b"\\" in line[start:end]:
        return line_id(line).encode("utf-8")
    return line[start:end]


def line_id(line: bytes) -> str:
    """The id of a canonical lock line."""
    rid = orjson.loads(line)["id"]
    if not isinstance(rid, str):
        raise TypeError("a lock line's id is not a string")
    return rid


def starts(
    lines: Sequence[bytes], rule: ShardRule = RULE, id_of: Callable[[bytes], bytes] = cut_id
) -> list[int]:
    """The index of each shard's first line (``[0]`` for a split of one shard, or none).

    ``lines`` are newline-terminated.
    """
    out, size, gap, per_byte = [0], 0, 0, rule.per_byte
    for i, line in enumerate(lines):
        n = len(line)
        candidate = cut_value(id_of(line)) < n * per_byte
        if i and ((candidate and gap >= rule.min_bytes) or size + n > rule.max_bytes):
            out.append(i)
            size = 0
        if candidate:
            gap = 0
        size += n
        gap += n
    return out


def render(split: str, shards: Sequence[Shard], quote: Callable[[str], str]) -> list[str]:
    """The ``shards = [...]`` lines of a split's table: one line per shard, so a changed shard
    is one changed line in ``git diff``."""
    out = ["shards = ["]
    for s in shards:
        file = quote(shard_file(split, s.first))
        types = ", ".join(f"{quote(name)} = {n}" for name, n in s.types)
        listed = f", types = {{ {types} }}" if s.types else ""
        first, digest = quote(s.first), quote(s.digest)
        out.append(f"  {{ file = {file}, first = {first}, count = {s.count}, digest = {digest}{listed} }},")
    return [*out, "]"]


def parse(split: str, value: Any, count: int, digest: str) -> tuple[tuple[Shard, ...], list[str]]:
    """A split's ``shards`` array, and what is wrong with it (as sentences)."""
    where = f"'splits.{split}.shards'"
    if not isinstance(value, list) or len(value) < 2:
        return (), [f"{where} is not a list of two or more shards"]
    found = _proven(split, value) if isinstance(value, Listed) else [_shard(split, s) for s in value]
    problems = [
        f"{where}: shard {number} is not {{file, first, count, digest}} as named"
        for number, shard in enumerate(found, start=1)
        if shard is None
    ]
    if problems:
        return (), problems
    shards = [shard for shard in found if shard is not None]  # all of them
    firsts = [s.first for s in shards]
    if firsts != sorted(set(firsts)):
        problems.append(f"{where}: the shards' first ids are not in order")
    if sum(s.count for s in shards) != count:
        problems.append(f"'splits.{split}.count' is not the sum of its shards' counts")
    if split_digest(shards) != digest:
        problems.append(f"'splits.{split}.digest' does not match its shards' digests")
    if len({shard_key(f) for f in firsts}) != len(firsts):
        problems.append(f"{where}: two shards have one file name")
    if len({bool(s.types) for s in shards}) > 1:
        problems.append(f"{where}: some shards list their types and some do not")
    return tuple(shards), problems


FIELDS = {"file", "first", "count", "digest"}
OPTIONAL = {*FIELDS, "types"}


_PROVEN: dict[tuple[str, Row], Shard | None] = {}  # the two headers of a diff share most lines
_PROVEN_MAX = 1 << 16


def _proven(split: str, value: Listed) -> list[Shard | None]:
    """``_shard`` of each table ``header_toml`` read: its expressions proved the keys, that
    the strings are strings and the counts integers, and that a shard's types are a table
    of at least one type; what they cannot prove is checked here as ``_shard`` checks it.
    A row (a line's fields) read before gives the same answer, so it is remembered."""
    if len(_PROVEN) > _PROVEN_MAX:
        _PROVEN.clear()
    out = []
    for row, table in zip(value.rows, value, strict=True):
        key = (split, row)
        shard = _PROVEN[key] if key in _PROVEN else _PROVEN.setdefault(key, _checked(split, row, table))
        out.append(shard)
    return out


def _checked(split: str, row: Row, table: dict[str, Any]) -> Shard | None:
    file, first, count, digest, written = row
    types: dict[str, int] = table["types"] if written else {}
    if count < 1 or file != shard_file(split, first) or (types and not _adds_up(types, count)):
        return None
    return Shard(first, count, digest, tuple(sorted(types.items())))


def _adds_up(types: dict[str, int], count: int) -> bool:
    return sum(types.values()) == count and min(types.values()) >= 1


def _shard(split: str, item: Any) -> Shard | None:
    if not isinstance(item, dict) or not FIELDS <= item.keys() <= OPTIONAL:
        return None
    first, count, digest = item["first"], item["count"], item["digest"]
    if not (isinstance(first, str) and isinstance(digest, str) and type(count) is int and count >= 1):
        return None
    if item["file"] != shard_file(split, first):
        return None
    types = _types(item.get("types", {}), count) if "types" in item else ()
    return None if types is None else Shard(first, count, digest, types)


def _types(value: Any, count: int) -> tuple[tuple[str, int], ...] | None:
    """A shard's ``types``: a table of type -> count (each at least 1) adding up to ``count``."""
    if not isinstance(value, dict) or not value:
        return None
    if not all(type(n) is int and n >= 1 for n in value.values()) or sum(value.values()) != count:
        return None
    return tuple(sorted(value.items()))
