"""VX2xx presence and staleness, VX3xx integrity of each lock (in worker processes when
it pays), VX4xx leakage between splits."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from vxds.errors import LockError
from vxds.hashing import canonical_json, digest_json
from vxds.locks.digest_cache import ShardDigests
from vxds.locks.format import HEADER, CorruptLock, Header, Problem
from vxds.locks.recovery import restore_set_aside
from vxds.locks.shards import Shard, line_id, listed_files, shard_file
from vxds.locks.splits import Split, split_problems
from vxds.locks.store import Lock, read_lock
from vxds.project.config import Config
from vxds.verify.findings import ERROR, Finding
from vxds.verify.line_scan import ShardScan, group_getter, scan, scan_shards, workers
from vxds.verify.model import (
    CACHE_FILE,
    CHECKS_VERSION,
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
    return [ctx.finding(target, "VX201", ERROR, f"no lock at {where}; {_remedy(target, where)}", file=where)]


def _remedy(target: Target, where: str) -> str:
    """How the missing lock comes back: a frozen (or imported) version is never relocked."""
    if target.entry is not None and (target.entry.frozen or target.entry.imported is not None):
        return f"{target.key} is frozen: restore its lock from Git ('git checkout HEAD -- {where}')"
    return f"run 'vxds lock {target.key}'"


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
    digests = ShardDigests.under(ctx.config.cache_dir) if ctx.options.use_cache else None
    try:
        lock, checked = _read_and_check(ctx, target, digests)
    finally:
        if digests is not None:
            digests.save()
    return lock, checked


def _read_and_check(
    ctx: Context, target: Target, digests: ShardDigests | None
) -> tuple[Lock | None, Checked]:
    try:
        lock = read_lock(target.path, digests=digests)
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
    try:
        findings = _line_findings(ctx, target, lock)
    except CorruptLock as exc:  # a file the digest cache vouched for changed since: read it now
        return None, Checked(_corrupt(ctx, target, exc.problems), header, resources)
    return lock, Checked(findings, header, resources, tuple(ctx.cache.added[before:]))


# --- checking many locks at once -------------------------------------------------------------

# Below this many bytes of lock lines, worker processes cost more than they save.
PARALLEL_BYTES = 64 << 20
_worker: Context | None = None


def _start_worker(config: Config, passed: set[str], use_cache: bool) -> None:
    global _worker
    cache = ResultCache(None)
    cache.passed = passed
    _worker = Context(config, Options(use_cache=use_cache), cache)


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
        initargs=(ctx.config, ctx.cache.passed, ctx.options.use_cache),
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
    rule = group_by if group_by is not None and not allow_overlap else None
    claim = lock.header.disjoint_by  # checked whatever the manifest says (VX403)
    body = {
        "checks": CHECKS_VERSION,
        "splits": {name: split.digest for name, split in sorted(lock.splits.items())},
        "group_by": rule,
    }
    leak_key = digest_json(body if claim is None else {**body, "disjoint_by": claim})
    needs_leaks = len(lock.splits) > 1 and leak_key not in ctx.cache
    scanned = rule or claim
    problems: list[Problem] = []
    ids: dict[str, list[str]] = {}
    groups: dict[str, dict[Any, str]] = {}
    for name, split in sorted(lock.splits.items()):
        found = _split_lines(ctx, lock.header, name, split, scanned, needs_leaks)
        if found is None:
            problems.extend(split_problems(name, split))
        elif needs_leaks:
            ids[name], groups[name] = found
    if problems:
        return _corrupt(ctx, target, problems)
    if not needs_leaks:
        return []
    findings = _leaks(ctx, target, ids, groups, rule)
    if claim is not None:
        findings += _false_claim(ctx, target, claim, groups if claim == scanned else _groups(lock, claim))
    if not findings:
        ctx.cache.add(leak_key)
    return findings


def _groups(lock: Lock, field: str) -> dict[str, dict[Any, str]]:
    """Each split's ``field`` values (as ``line_scan`` keys them), each with an id: for a
    claim the manifest's ``group_by`` scan did not cover (a lock of an earlier entry)."""
    get = group_getter(field)
    out: dict[str, dict[Any, str]] = {}
    for name, split in sorted(lock.splits.items()):
        keys = out[name] = {}
        for line in split.lines():
            record = orjson.loads(line)
            key = get(record)
            if key is not None:
                keys.setdefault(key if type(key) is str else canonical_json(key), record["id"])
    return out


def _false_claim(
    ctx: Context, target: Target, claim: str, groups: dict[str, dict[Any, str]]
) -> list[Finding]:
    """VX403: ``lock.toml`` claims ``disjoint_by`` a field, and a value of it is in two splits."""
    from vxds.recipes.resolver import _listing, _shared, _shown_key

    leaks = _shared(groups)
    if not leaks:
        return []
    listed = [
        f"{_shown_key(key)} ({', '.join(f'{s}: {groups[s][key]}' for s in sorted(splits))})"
        for key, splits in sorted(leaks.items(), key=lambda kv: _shown_key(kv[0]))
    ]
    message = (
        f"{HEADER} claims disjoint_by {claim}, but {len(leaks)} value(s) of it are in more than "
        f"one split: {_listing(listed)}; relock it ('vxds lock {target.key}')"
    )
    return [ctx.finding(target, "VX403", ERROR, message)]


def _split_lines(
    ctx: Context, header: Header, name: str, split: Split, group_by: str | None, keep: bool
) -> tuple[list[str], dict[Any, str]] | None:
    """Check a split's lines shard by shard, skipping shards whose digest passed before
    (unless ``keep``: then every shard's ids and group keys are returned, for the leak
    checks); None when a line is at fault (``split_problems`` then names it)."""
    files = split.files(name)
    listed = header.shards.get(name, ())
    digests = [digest for _, (_, digest) in listed_files(header, name)]
    keys = [_lines_key(digest, listed[i].types if listed else ()) for i, digest in enumerate(digests)]
    todo = [i for i, key in enumerate(keys) if keep or key not in ctx.cache]
    jobs = [(b"".join(files[i][1]), group_by if keep else None, keep) for i in todo]
    processes = 1 if _worker is not None else workers(ctx.options.jobs)  # none inside a worker
    scans = dict(zip(todo, scan_shards(jobs, processes), strict=True))
    if not all(s.ok for s in scans.values()):
        return None
    _check_types(name, listed, scans)
    sharded = len(files) > 1
    edges = _edge_keys(header.shards[name]) if sharded else []
    unchecked = [i for i, key in enumerate(edges) if key not in ctx.cache]
    if unchecked and not _edges_ok(header.shards[name], [files[i][1] for i in unchecked], unchecked):
        return None
    if sharded and not all(s.clean for s in scans.values()) and scan(b"".join(split.chunks), None) is None:
        return None  # two ids one name once normalised, in two shards
    for key in edges:
        ctx.cache.add(key)
    for i, found in scans.items():
        if found.clean or not sharded:  # a shard alone says nothing of twins in other shards
            ctx.cache.add(keys[i])
    if not keep:
        return [], {}
    groups: dict[Any, str] = {}
    for i in range(len(files)):
        for key, rid in (scans[i].groups or {}).items():
            groups.setdefault(key, rid)
    return [rid for i in range(len(files)) for rid in scans[i].ids or ()], groups


def _lines_key(digest: str, types: tuple[tuple[str, int], ...]) -> str:
    """The result-cache key of a shard whose lines passed: by its digest, and by the types its
    header line lists (a lock listing other types for the same file is checked again)."""
    listed = f":{orjson.dumps(types).decode()}" if types else ""
    return f"lines:{CHECKS_VERSION}:{digest}{listed}"


def _check_types(name: str, listed: Sequence[Shard], scans: dict[int, ShardScan]) -> None:
    """Each scanned shard's resources by type against what its line in lock.toml lists."""
    problems = []
    for i, found in sorted(scans.items()):
        if listed and listed[i].types and listed[i].types != found.types:
            file = shard_file(name, listed[i].first)
            counted = ", ".join(f"{kind} {n}" for kind, n in found.types)
            message = f"{file} holds {counted or 'no resource'}, not the types {HEADER} lists for it"
            problems.append(Problem(message, kind="split-digest", file=file))
    if problems:
        raise CorruptLock(Path(HEADER), problems)


def _edge_keys(shards: Sequence[Shard]) -> list[str]:
    """A result-cache key per shard for ``_edges_ok``: its digest, first id and the next's."""
    nexts = [*(s.first for s in shards[1:]), None]
    return [
        f"edges:{CHECKS_VERSION}:" + digest_json([s.digest, s.first, after])
        for s, after in zip(shards, nexts, strict=True)
    ]


def _edges_ok(shards: Sequence[Shard], files: Sequence[Sequence[bytes]], which: Sequence[int]) -> bool:
    """Each shard of ``which`` (``files`` holds their chunks) starts with the first id its
    header line lists and ends before the next's."""
    try:
        for i, chunks in zip(which, files, strict=True):
            first = line_id(chunks[0][: chunks[0].find(b"\n")])
            last = line_id(chunks[-1][chunks[-1].rfind(b"\n", 0, len(chunks[-1]) - 1) + 1 :])
            if first != shards[i].first or (i + 1 < len(shards) and last >= shards[i + 1].first):
                return False
    except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, ValueError):
        return False
    return True


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


def lines_pass(config: Config, lock: Lock, *, jobs: int | None = None) -> bool:
    """Whether every line of ``lock`` passes the VX3xx line checks (not leaks): shards whose
    pass ``.vxds/verified.json`` remembers are not parsed again, and new passes are remembered.
    False when a line is at fault (``read_lock(deep=True)`` names it). For ``materialize``."""
    ctx = Context(config, Options(jobs=jobs), ResultCache(config.cache_dir / CACHE_FILE))
    try:
        passed = all(
            _split_lines(ctx, lock.header, name, split, None, False) is not None
            for name, split in sorted(lock.splits.items())
        )
    except CorruptLock:  # a shard's types differ from what lock.toml lists
        passed = False
    ctx.cache.save()  # only passes are ever added
    return passed
