"""VX2xx presence and staleness, VX3xx integrity of each lock (in worker processes when
it pays), VX4xx leakage between splits."""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Callable, Sequence
from itertools import pairwise
from operator import itemgetter
from typing import Any

import orjson

from vxds.errors import LockError
from vxds.hashing import canonical_json, digest_json
from vxds.locks.format import HEADER, CorruptLock, Problem
from vxds.locks.recovery import restore_set_aside
from vxds.locks.splits import split_problems
from vxds.locks.store import Lock, read_lock
from vxds.project.config import Config
from vxds.resource import FIELDS, InvalidResource, nfc_twins, validate_record
from vxds.verify.findings import ERROR, Finding
from vxds.verify.model import (
    CHECKS_VERSION,
    CHUNK_LINES,
    PROBLEM_CODES,
    Checked,
    Context,
    Options,
    ResultCache,
    Target,
)

# --- checks of one lock --------------------------------------------------------------------


def check_presence(ctx: Context, target: Target) -> list[Finding]:
    """VX201: a dataset in the manifest has no lock (one a killed ``vxds lock`` set aside is put back)."""
    if (target.path / HEADER).is_file() or restore_set_aside(target.path):
        return []
    where = ctx.config.relative(target.path)
    return [
        ctx.finding(target, "VX201", ERROR, f"no lock at {where}; run 'vxds lock {target.key}'", file=where)
    ]


def _problem_finding(ctx: Context, target: Target, problem: Problem) -> Finding:
    message = str(problem)
    if message.startswith(f"{problem.file}:{problem.line}: "):
        message = message[len(f"{problem.file}:{problem.line}: ") :]
    file = ctx.config.relative(target.path / problem.file)
    return ctx.finding(
        target, PROBLEM_CODES.get(problem.kind, "VX301"), ERROR, message, file=file, line=problem.line
    )


def _corrupt(ctx: Context, target: Target, problems: Sequence[Problem]) -> list[Finding]:
    return [_problem_finding(ctx, target, p) for p in problems]


def check_integrity(ctx: Context, target: Target) -> list[Finding]:
    """VX3xx: the header, digests, counts and every line; VX4xx: leakage between splits."""
    if not (target.path / HEADER).is_file():
        return []
    done = ctx.prechecked.pop(target.key, None)
    lock = None
    if done is None:
        lock, done = _integrity(ctx, target)
    elif done.ok and (ctx.options.data or ctx.options.reproduce):
        try:  # checked in a worker process; the digests are checked again as it is read
            lock = read_lock(target.path)
        except LockError as exc:
            return [
                ctx.finding(target, "VX301", ERROR, f"the lock changed while it was verified: {exc.message}")
            ]
    target.header, target.resources = done.header, done.resources
    for key in done.passed:
        ctx.cache.add(key)
    if done.ok:
        target.lock = lock
    return done.findings


def _integrity(ctx: Context, target: Target) -> tuple[Lock | None, Checked]:
    try:
        lock = read_lock(target.path)
    except CorruptLock:
        try:  # read again with every line checked, to point at the lines at fault
            read_lock(target.path, deep=True)
        except CorruptLock as exc:
            return None, Checked(_corrupt(ctx, target, exc.problems))
        except LockError as exc:
            return None, Checked([ctx.finding(target, "VX301", ERROR, exc.message)])
        message = "the lock changed while it was verified; verify again"
        return None, Checked([ctx.finding(target, "VX301", ERROR, message)])
    except LockError as exc:
        return None, Checked([ctx.finding(target, "VX301", ERROR, exc.message)])
    header = lock.header
    resources = sum(split.count for split in lock.splits.values())
    if header.key != target.key:
        found = [ctx.finding(target, "VX311", ERROR, f"{HEADER} names {header.key}, not {target.key}")]
        return None, Checked(found, header, resources)
    before = len(ctx.cache.added)
    findings = _line_findings(ctx, target, lock)
    return lock, Checked(findings, header, resources, tuple(ctx.cache.added[before:]))


# --- checking many locks at once -------------------------------------------------------------

# Below this many bytes of lock lines, worker processes cost more than they save.
PARALLEL_BYTES = 64 << 20
_worker: Context | None = None


def _start_worker(config: Config, passed: set[str]) -> None:
    global _worker
    cache = ResultCache(None)
    cache.passed = passed
    _worker = Context(config, Options(), cache)


def _integrity_job(target: Target) -> Checked:
    assert _worker is not None
    return _integrity(_worker, target)[1]


def _split_bytes(targets: Sequence[Target]) -> int:
    total = 0
    for target in targets:
        try:
            with os.scandir(target.path) as entries:
                total += sum(e.stat().st_size for e in entries if e.name.endswith(".jsonl"))
        except OSError:
            pass
    return total


def precheck(ctx: Context, targets: Sequence[Target]) -> dict[str, Checked]:
    """``check_integrity``'s work for many locks, spread over worker processes when it pays.

    Each worker reads and checks whole locks and returns findings, never bytes; the lines
    of locks checked before (``ResultCache``) are not parsed again, here or there.
    """
    jobs = ctx.options.jobs or min(os.cpu_count() or 1, 8)
    present = [t for t in targets if (t.path / HEADER).is_file()]
    if jobs < 2 or len(present) < 2 or _split_bytes(present) < PARALLEL_BYTES:
        return {}
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Workers are forked: they start at once and share the parent's memory. Forking is only
    # safe while no other thread runs (a progress bar's, for one), and only on Linux, where
    # fork is the norm; elsewhere, or then, the locks are checked in this process.
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return {}
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(present)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(ctx.config, ctx.cache.passed),
    )
    try:
        with pool:
            return dict(zip([t.key for t in present], pool.map(_integrity_job, present), strict=True))
    except (BrokenProcessPool, OSError):  # a worker killed (out of memory ...): check them here
        return {}


def _group_settings(target: Target) -> tuple[str | None, bool]:
    entry = target.entry
    return (entry.group_by, entry.allow_group_overlap) if entry is not None else (None, False)


def _line_findings(ctx: Context, target: Target, lock: Lock) -> list[Finding]:
    group_by, allow_overlap = _group_settings(target)
    check_groups = group_by is not None and not allow_overlap
    leak_key = digest_json(
        {
            "checks": CHECKS_VERSION,
            "splits": {name: split.digest for name, split in sorted(lock.splits.items())},
            "group_by": group_by if check_groups else None,
        }
    )
    needs_leaks = len(lock.splits) > 1 and leak_key not in ctx.cache
    problems: list[Problem] = []
    ids: dict[str, list[str]] = {}
    groups: dict[str, dict[Any, str]] = {}
    group_of = _group_getter(group_by) if check_groups and group_by is not None else None
    for name, split in sorted(lock.splits.items()):
        line_key = f"lines:{CHECKS_VERSION}:{split.digest}"
        if line_key in ctx.cache and not needs_leaks:
            continue
        data = b"".join(split.chunks)
        scanned = _scan(data, group_of)
        if scanned is None:
            problems.extend(split_problems(name, split))
            continue
        ctx.cache.add(line_key)
        ids[name], groups[name] = scanned
    if problems:
        return _corrupt(ctx, target, problems)
    if not needs_leaks:
        return []
    findings = _leaks(ctx, target, ids, groups, group_by)
    if not findings:
        ctx.cache.add(leak_key)
    return findings


def _group_getter(group_by: str) -> Callable[[dict[str, Any]], Any]:
    from vxds.recipes.resolver import _group_getter as getter

    return getter(group_by)


_get_id = itemgetter("id")
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


def _scan(
    data: bytes, group_of: Callable[[dict[str, Any]], Any] | None
) -> tuple[list[str], dict[Any, str]] | None:
    """The ids (and group keys) of a split file whose every line passes, else None.

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
            block_ids = _scan_block(lines[start : start + CHUNK_LINES], group_of, groups)
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
    block: list[bytes], group_of: Callable[[dict[str, Any]], Any] | None, groups: dict[Any, str]
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


def _leaks(
    ctx: Context,
    target: Target,
    ids: dict[str, list[str]],
    groups: dict[str, dict[Any, str]],
    group_by: str | None,
) -> list[Finding]:
    from vxds.recipes.resolver import _listing, _shared, _shown_key

    findings = []
    in_two = _shared(ids)
    if in_two:
        listed = [f"{rid} ({', '.join(sorted(s))})" for rid, s in sorted(in_two.items())]
        message = f"{len(in_two)} id(s) in more than one split: {_listing(listed)}"
        findings.append(ctx.finding(target, "VX401", ERROR, message))
    leaks = _shared(groups) if group_by is not None else {}
    if leaks:
        listed = [
            f"{_shown_key(key)} ({', '.join(f'{s}: {groups[s][key]}' for s in sorted(splits))})"
            for key, splits in sorted(leaks.items(), key=lambda kv: _shown_key(kv[0]))
        ]
        message = f"group_by {group_by}: {len(leaks)} group(s) in more than one split: {_listing(listed)}"
        findings.append(ctx.finding(target, "VX402", ERROR, message))
    return findings


def check_staleness(ctx: Context, target: Target) -> list[Finding]:
    """VX203: the recipe text, params or manifest entry changed (as ``vxds lock --check`` sees it)."""
    from vxds.locks.status import staleness

    entry, header = target.entry, target.header
    if entry is None or header is None or header.key != entry.key or not entry.script.is_file():
        return []
    reasons = staleness(entry, header)
    if not reasons:
        return []
    message = "stale: " + "; ".join(reasons) + f"; run 'vxds lock {entry.key}'"
    return [ctx.finding(target, "VX203", ERROR, message)]
