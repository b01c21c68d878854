"""Every line of a split file checked at C speed (``scan``), and a split's shards checked
one by one, in worker processes when there is enough to check (``scan_shards``).

A worker gets a shard's bytes and a ``group_by`` and sends back only what the parent needs:
whether every line passed, its first and last ids, whether every id is in NFC (two ids one
name once normalised can only be found across shards when one of them is not), and, when
leaks between splits are checked, its ids and group keys. Workers are started with
``spawn`` when ``fork`` is not safe (not Linux, or another thread running): the job is a
module-level function of plain values, so either way works.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from typing import Any

import orjson

from vxds.hashing import canonical_json
from vxds.resource import FIELDS, InvalidResource, nfc_twins, validate_record
from vxds.verify.model import CHUNK_LINES

# Below this many bytes of lines to parse, worker processes cost more than they save.
PARALLEL_BYTES = 64 << 20


def group_getter(group_by: str) -> Callable[[dict[str, Any]], Any]:
    from vxds.recipes.resolver import _group_getter as getter

    return getter(group_by)


_get_id = itemgetter("id")
_get_type = itemgetter("type")
_COLUMNS = [itemgetter(name) for name in sorted(FIELDS)]  # attrs, hash, id, size, type, uri, version
# Controls, line separators, '\\' and ':' (the "\n" separator is counted instead).
_BAD_ID_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\\\\:]")
# In "\n" + "\n".join(ids) + "\n": an empty id or segment, a '.' or '..' segment, a leading
# or trailing '/'.
_BAD_ID_PARTS = (
    "\n\n",
    "//",
    "\n/",
    "/\n",
    "/./",
    "\n./",
    "/.\n",
    "\n.\n",
    "/../",
    "\n../",
    "/..\n",
    "\n..\n",
)
_HASHES = re.compile(r"(?:[a-z0-9][a-z0-9-]*:[0-9a-fA-F]+\n)*\Z")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NONE = type(None)


def valid_block(records: list[dict[str, Any]]) -> bool:
    """True only if ``validate_record`` accepts every record (seven-key dicts parsed from JSON).

    The same rules checked column by column, at C speed. A valid record that is unusual
    answers False too, and the caller applies ``validate_record`` itself: one with a ':' in
    its id, a uri other than its id (``check_uri`` decides), an '@' in its uri, or attrs
    that are not a dict. For anything else the answer is exact: True when every record is
    valid (tests/verify/test_verify.py holds it to that, both ways).
    """
    try:
        attrs, hashes, ids, sizes, types, uris, versions = (list(map(get, records)) for get in _COLUMNS)
    except KeyError:
        return False
    if set(map(type, ids)) != {str} or not set(map(type, versions)) <= {str, int} or "" in versions:
        return False
    joined = "\n" + "\n".join(ids) + "\n"
    if joined.count("\n") != len(ids) + 1 or _BAD_ID_CHARS.search(joined):
        return False
    if any(part in joined for part in _BAD_ID_PARTS):
        return False
    present = [h for h in hashes if h is not None]
    if set(map(type, present)) - {str}:
        return False
    joined = "\n".join(present) + "\n" if present else ""
    if joined.count("\n") != len(present) or not _HASHES.match(joined):
        return False
    if not set(map(type, sizes)) <= {int, _NONE} or min(filter(None, sizes), default=0) < 0:
        return False
    if not set(map(type, uris)) <= {str, _NONE} or any("@" in u for u in uris if u is not None):
        return False
    if any(u is not None and u != i for u, i in zip(uris, ids, strict=True)):
        return False  # a uri of its own: ``check_uri`` decides
    if set(map(type, attrs)) != {dict} or set(map(type, types)) != {str}:
        return False
    return all(_TYPE.match(t) for t in set(types))


def scan(
    data: bytes, group_of: Callable[[dict[str, Any]], Any] | None, types: Counter[str] | None = None
) -> tuple[list[str], dict[Any, str]] | None:
    """The ids (and group keys) of a split file whose every line passes, else None; ``types``
    counts its resources by type.

    Lines are parsed a block at a time as one JSON array; the block re-serialised in
    canonical form must give back the same bytes, so every line is canonical JSON.
    ``None`` sends the file through ``locks.splits.line_problems``, which names the lines.
    """
    lines = data.split(b"\n")
    if lines.pop() != b"":
        return None
    ids: list[str] = []
    groups: dict[Any, str] = {}
    enabled = gc.isenabled()
    gc.disable()  # millions of small containers, none of them cyclic
    try:
        for start in range(0, len(lines), CHUNK_LINES):
            block_ids = _scan_block(lines[start : start + CHUNK_LINES], group_of, groups, types)
            if block_ids is None:
                return None
            ids.extend(block_ids)
    except (InvalidResource, KeyError):
        return None
    finally:
        if enabled:
            gc.enable()
    if any(a >= b for a, b in pairwise(ids)) or nfc_twins(ids):
        return None
    return ids, groups


def _scan_block(
    block: list[bytes],
    group_of: Callable[[dict[str, Any]], Any] | None,
    groups: dict[Any, str],
    types: Counter[str] | None = None,
) -> list[str] | None:
    """One block's ids, its group keys added to ``groups``; None if a line is not canonical.

    Raises ``InvalidResource`` (or ``KeyError``) for a record that breaks a rule.
    """
    records = _canonical_records(block)
    if records is None:
        return None
    if not valid_block(records):
        for record in records:  # the exact rules, one record at a time
            validate_record(record)
    block_ids = list(map(_get_id, records))
    if types is not None:
        types.update(map(_get_type, records))
    if group_of is not None:
        for record, rid in zip(records, block_ids, strict=True):
            key = group_of(record)
            if key is not None:
                groups.setdefault(key if type(key) is str else canonical_json(key), rid)
    return block_ids


def _canonical_records(block: list[bytes]) -> list[dict[str, Any]] | None:
    """The block's lines parsed, if each is canonical JSON of an object with the seven fields."""
    joined = b"[" + b",".join(block) + b"]"
    try:
        records = orjson.loads(joined)
    except orjson.JSONDecodeError:
        return None
    if len(records) != len(block) or orjson.dumps(records, option=orjson.OPT_SORT_KEYS) != joined:
        return None
    # Seven keys, each of which validate_record reads: exactly the seven fields.
    if set(map(type, records)) != {dict} or set(map(len, records)) != {len(FIELDS)}:
        return None
    found: list[dict[str, Any]] = records
    return found


@dataclass(frozen=True)
class ShardScan:
    """What checking one shard's lines found (``ok`` False: a line is at fault)."""

    ok: bool
    first: str = ""
    last: str = ""
    clean: bool = False  # every id is in NFC
    ids: list[str] | None = None  # when asked for (leaks between splits are checked)
    groups: dict[Any, str] | None = None
    types: tuple[tuple[str, int], ...] = ()  # its resources by type, as ``Shard.types`` lists them


Job = tuple[bytes, "str | None", bool]  # a shard's bytes, group_by, whether ids are wanted


def scan_shard(job: Job) -> ShardScan:
    """Check one shard's lines (a worker's job; also run in this process)."""
    data, group_by, keep = job
    types: Counter[str] = Counter()
    found = scan(data, group_getter(group_by) if group_by is not None else None, types)
    if found is None:
        return ShardScan(False)
    ids, groups = found
    clean = data.isascii() or all(unicodedata.is_normalized("NFC", rid) for rid in ids)
    first, last = (ids[0], ids[-1]) if ids else ("", "")
    listed = tuple(sorted(types.items()))
    return ShardScan(True, first, last, clean, ids if keep else None, groups if keep else None, listed)


def scan_shards(jobs: Sequence[Job], workers: int) -> list[ShardScan]:
    """``scan_shard`` of each job, in up to ``workers`` processes when it pays.

    Forked workers read the jobs from the memory they share with this process (only an
    index goes down the pipe); spawned ones are sent each shard's bytes.
    """
    global _jobs
    if workers < 2 or len(jobs) < 2 or sum(len(job[0]) for job in jobs) < PARALLEL_BYTES:
        return [scan_shard(job) for job in jobs]
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    fork = sys.platform.startswith("linux") and threading.active_count() == 1
    context = multiprocessing.get_context("fork" if fork else "spawn")
    _jobs = jobs if fork else ()
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            if fork:
                return list(pool.map(_scan_forked, range(len(jobs))))
            return list(pool.map(scan_shard, jobs))
    except (BrokenProcessPool, OSError):  # a worker killed (out of memory ...): check them here
        return [scan_shard(job) for job in jobs]
    finally:
        _jobs = ()


_jobs: Sequence[Job] = ()  # what forked workers read their jobs from


def _scan_forked(index: int) -> ShardScan:
    return scan_shard(_jobs[index])


def workers(jobs: int | None) -> int:
    return jobs or min(os.cpu_count() or 1, 8)
