"""``vxds verify``: every check that can be made on a project, as findings.

The checks run per dataset version (``Target``) in the order of ``LOCK_CHECKS``; each is a
function ``(Context, Target) -> list[Finding]``, so a new check is one more function in
that tuple. Codes are stable and documented in ``docs/checks.md``:

* VX1xx the manifest and recipe scripts;
* VX2xx lock presence, orphans, staleness and (``--base``) published locks that changed;
* VX3xx a corrupt lock (VX312: a lock merged by Git); VX4xx leakage between splits;
* VX5xx ``--data``: the bytes in the source; VX6xx ``--reproduce``: re-running recipes;
* VX7xx is reserved for checks of materialized outputs.

Nothing here imports or runs recipe code unless ``reproduce`` is asked without ``no_exec``.
Nothing is written to the repository; results of line checks are remembered under
``.vxds/`` (git-ignored), keyed by content digests, so unchanged locks are not re-parsed.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from blake3 import blake3

from vxds.config import Config
from vxds.errors import LockError, ManifestError, SourceError, UsageError, VxdsError
from vxds.findings import ERROR, SKIPPED, WARNING, Finding, sort_key
from vxds.hashing import PREFIX, canonical_json, digest_json, hash_files
from vxds.lockfile import (
    HEADER,
    CorruptLock,
    Header,
    Lock,
    Problem,
    line_problems,
    lock_dir,
    read_lock,
    split_file,
)
from vxds.manifest import Entry, Manifest, load_manifest, parse_spec
from vxds.progress import NO_PROGRESS, Progress
from vxds.resource import FIELDS, InvalidResource, Resource, check_id, validate_record
from vxds.sources import Source, SourceContext, open_source

# Bump when a line check changes, so results remembered by an older vxds are not trusted.
CHECKS_VERSION = 1
CACHE_FILE = "verified.json"
CHUNK_LINES = 8192

# Which code each kind of lock problem gets (kinds: ``lockfile.KINDS``).
PROBLEM_CODES = {
    "unreadable": "VX301",
    "toml": "VX301",
    "header": "VX301",
    "format": "VX302",
    "recipe-digest": "VX303",
    "lock-digest": "VX303",
    "unlisted-split": "VX304",
    "missing-split": "VX304",
    "split-digest": "VX304",
    "json": "VX305",
    "schema": "VX306",
    "canonical": "VX307",
    "order": "VX308",
    "duplicate": "VX309",
    "unsafe-id": "VX310",
}


@dataclass(frozen=True)
class Sample:
    """``--sample``: a number of resources per lock, or a percentage of each lock."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> Sample:
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if 0 < percent <= 100:
                    return cls(percent=percent)
            elif int(text) > 0:
                return cls(count=int(text))
        except ValueError:
            pass
        raise UsageError(
            f"--sample {text!r}: expected a positive number of resources or a percentage such as 5%"
        )

    def size(self, total: int) -> int:
        if self.count is not None:
            return min(self.count, total)
        assert self.percent is not None
        return min(total, max(1, -(-int(total * self.percent * 100) // 10000))) if total else 0

    def __str__(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.percent:g}%"


@dataclass(frozen=True)
class Options:
    no_exec: bool = False
    data: bool = False
    sample: Sample | None = None
    seed: int = 0
    reproduce: bool = False
    manifest_only: bool = False
    use_cache: bool = True
    jobs: int | None = None
    progress: Progress = NO_PROGRESS
    base: str | None = None  # a Git revision whose locks are published: they must not change


@dataclass
class Target:
    """One dataset version to check: a manifest entry, a lock on disk, or both."""

    key: str
    path: Path
    entry: Entry | None  # None: a lock with no dataset in the manifest (or an unreadable manifest)
    lock: Lock | None = None  # set once the lock passed every integrity check
    header: Header | None = None  # set once the header could be read
    resources: int = 0


@dataclass
class Report:
    """What ``run`` found, with what it looked at (for the summary line)."""

    findings: list[Finding]
    datasets: int
    resources: int
    data_checked: int = 0
    drift: dict[str, Any] = field(default_factory=dict)  # name@version -> DatasetDiff (--reproduce)

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == WARNING for f in self.findings)

    @property
    def skipped(self) -> int:
        return sum(f.severity == SKIPPED for f in self.findings)

    def summary(self) -> dict[str, int]:
        return {
            "datasets": self.datasets,
            "resources": self.resources,
            "data_checked": self.data_checked,
            "errors": self.errors,
            "warnings": self.warnings,
            "skipped": self.skipped,
        }


@dataclass
class Context:
    config: Config
    options: Options
    cache: ResultCache
    sources: dict[str, Source | VxdsError] = field(default_factory=dict)
    hashed: dict[str, str | None] = field(default_factory=dict)  # path -> digest (None: missing)
    prechecked: dict[str, Checked] = field(default_factory=dict)  # key -> done by ``precheck``
    data_checked: int = 0
    resolver: Any = None  # a vxds.resolver.Resolver, made on first use by --reproduce
    at_resolvers: dict[str, Any] = field(default_factory=dict)  # snapshot -> Resolver (time travel)
    published: dict[str, Any] = field(default_factory=dict)  # name@version -> PublishedChange (--base)
    drift: dict[str, Any] = field(default_factory=dict)  # name@version -> DatasetDiff (--reproduce)

    def finding(self, target: Target, code: str, severity: str, message: str, **where: Any) -> Finding:
        where.setdefault("file", self.config.relative(target.path / HEADER))
        return Finding(code, severity, message, dataset=target.key, **where)


class ResultCache:
    """Content digests whose checks passed before, kept in ``.vxds/verified.json``.

    A key is a digest of exactly the bytes (and settings) that were checked, so a
    remembered pass is as good as checking again; ``--no-cache`` ignores the file.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.passed: set[str] = set()
        self.added: list[str] = []
        if path is not None:
            try:
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                return
            if isinstance(data, dict) and data.get("version") == CHECKS_VERSION:
                keys = data.get("passed")
                if isinstance(keys, list):
                    self.passed = {k for k in keys if isinstance(k, str)}

    def __contains__(self, key: str) -> bool:
        return key in self.passed

    def add(self, key: str) -> None:
        if key not in self.passed:
            self.passed.add(key)
            self.added.append(key)

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        from vxds.fsutil import atomic_write_bytes

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                self.path, orjson.dumps({"version": CHECKS_VERSION, "passed": sorted(self.passed)})
            )
        except OSError:
            pass  # only a cache


# --- the project: manifest, scripts, which locks to check --------------------------------

_PROBLEM_RE = re.compile(r"(?P<file>.*?):(?P<line>\d+): (?P<message>.*)\Z", re.S)


def _manifest_findings(config: Config, error: ManifestError) -> list[Finding]:
    file = config.relative(config.manifest)
    out = []
    for problem in error.problems:
        match = _PROBLEM_RE.match(problem)
        if match:
            out.append(Finding("VX101", ERROR, match["message"], file=file, line=int(match["line"])))
        else:
            out.append(Finding("VX101", ERROR, problem.split(": ", 1)[-1], file=file))
    return out


def _script_findings(config: Config, entries: Sequence[Entry]) -> list[Finding]:
    return [
        Finding(
            "VX102",
            ERROR,
            f"the recipe script {entry.script_location} does not exist",
            dataset=entry.key,
            file=config.relative(entry.manifest),
            line=entry.line,
        )
        for entry in entries
        if not entry.script.is_file()
    ]


def _locks_on_disk(config: Config) -> dict[str, Path]:
    """``name@version`` -> folder of every lock under the locks folder (hidden ones skipped)."""
    found: dict[str, Path] = {}
    if not config.locks.is_dir():
        return found
    for name_dir in sorted(config.locks.iterdir()):
        if name_dir.name.startswith(".") or not name_dir.is_dir():
            continue
        for version_dir in sorted(name_dir.iterdir()):
            if not version_dir.name.startswith(".") and (version_dir / HEADER).is_file():
                found[f"{name_dir.name}@{version_dir.name}"] = version_dir
    return found


def _targets(
    config: Config, manifest: Manifest | None, specs: Sequence[str]
) -> tuple[list[Target], list[Finding]]:
    """What to check, and the orphan locks (locks with no dataset) among them."""
    on_disk = _locks_on_disk(config)
    if manifest is None:  # unreadable manifest: check the integrity of the locks alone
        names = {parse_spec(spec)[0] for spec in specs}
        keys = [k for k in on_disk if not names or k.partition("@")[0] in names]
        return [Target(k, on_disk[k], None) for k in keys], []
    entries = manifest.select(specs) if specs else list(manifest)
    targets = [Target(e.key, lock_dir(config.locks, e.name, e.version), e) for e in entries]
    orphans: list[Finding] = []
    if not specs:
        declared = {e.key for e in manifest}
        for key, path in on_disk.items():
            if key not in declared:
                targets.append(Target(key, path, None))
                manifest_file = config.relative(config.manifest)
                orphans.append(
                    Finding(
                        "VX202",
                        WARNING,
                        f"the lock {config.relative(path)} has no dataset {key} in {manifest_file}",
                        dataset=key,
                        file=config.relative(path / HEADER),
                    )
                )
    return targets, orphans


# --- checks of one lock --------------------------------------------------------------------


def check_presence(ctx: Context, target: Target) -> list[Finding]:
    """VX201: a dataset in the manifest has no lock."""
    if (target.path / HEADER).is_file():
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


@dataclass(frozen=True)
class Checked:
    """What ``check_integrity`` found about one lock (made here or in a worker process)."""

    findings: list[Finding]
    header: Header | None = None
    resources: int = 0
    passed: tuple[str, ...] = ()  # new ``ResultCache`` keys

    @property
    def ok(self) -> bool:
        return self.header is not None and not self.findings


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
            problems.extend(line_problems(name, data))
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
    from vxds.resolver import _group_getter as getter

    return getter(group_by)


_get_id = itemgetter("id")
_COLUMNS = [itemgetter(name) for name in sorted(FIELDS)]  # attrs, hash, id, size, type, uri, version
_BAD_ID_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\\:]")  # the "\n" separator is counted instead
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

    The same rules checked column by column, at C speed; anything unusual (a ':' in an id,
    an '@' in a uri ...) answers False, and the caller applies ``validate_record`` itself.
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
    if set(map(type, attrs)) != {dict} or set(map(type, types)) != {str}:
        return False
    return all(_TYPE.match(t) for t in set(types))


def _scan(
    data: bytes, group_of: Callable[[dict[str, Any]], Any] | None
) -> tuple[list[str], dict[Any, str]] | None:
    """The ids (and group keys) of a split file whose every line passes, else None.

    Lines are parsed a block at a time as one JSON array; the block re-serialised in
    canonical form must give back the same bytes, so every line is canonical JSON.
    ``None`` sends the file through ``lockfile.line_problems``, which names the lines.
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
            block = lines[start : start + CHUNK_LINES]
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
            if not valid_block(records):
                for record in records:  # the exact rules, one record at a time
                    validate_record(record)
            block_ids = list(map(_get_id, records))
            if group_of is not None:
                for record, rid in zip(records, block_ids, strict=True):
                    key = group_of(record)
                    if key is not None:
                        groups.setdefault(key if type(key) is str else canonical_json(key), rid)
            ids.extend(block_ids)
    except (InvalidResource, KeyError):
        return None
    finally:
        if enabled:
            gc.enable()
    if any(a >= b for a, b in pairwise(ids)):
        return None
    return ids, groups


def _leaks(
    ctx: Context,
    target: Target,
    ids: dict[str, list[str]],
    groups: dict[str, dict[Any, str]],
    group_by: str | None,
) -> list[Finding]:
    from vxds.resolver import _listing, _shared, _shown_key

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
    from vxds.status import staleness

    entry, header = target.entry, target.header
    if entry is None or header is None or header.key != entry.key or not entry.script.is_file():
        return []
    reasons = staleness(entry, header)
    if not reasons:
        return []
    message = "stale: " + "; ".join(reasons) + f"; run 'vxds lock {entry.key}'"
    return [ctx.finding(target, "VX203", ERROR, message)]


# --- --data --------------------------------------------------------------------------------


def _source(ctx: Context, url: str) -> Source | VxdsError:
    if url not in ctx.sources:
        # No cache folder: the bytes are read again, and nothing is written.
        context = SourceContext(base=ctx.config.root, cache_dir=None, jobs=ctx.options.jobs)
        try:
            ctx.sources[url] = open_source(url, context)
        except VxdsError as exc:
            ctx.sources[url] = exc
    return ctx.sources[url]


def _chosen(ctx: Context, target: Target, lock: Lock) -> Iterator[tuple[str, int, bytes]]:
    """(split, line number, line) of the resources to re-hash: all, or a seeded sample."""
    sample = ctx.options.sample
    every = [
        (name, number, line)
        for name, split in sorted(lock.splits.items())
        for number, line in enumerate(split.lines(), 1)
    ]
    if sample is None:
        yield from every
        return
    rng = random.Random(f"{ctx.options.seed}:{target.key}")
    picked = sorted(rng.sample(range(len(every)), sample.size(len(every))))
    for index in picked:
        yield every[index]


def check_data(ctx: Context, target: Target) -> list[Finding]:
    """VX5xx: re-hash the bytes of every (or a sample of) resource from the source."""
    if not ctx.options.data or not (target.path / HEADER).is_file():
        return []
    if target.lock is None or target.header is None:
        return [
            ctx.finding(target, "VX503", SKIPPED, "data not checked: the lock did not pass its own checks")
        ]
    url = target.header.source or ctx.config.source or ""
    source = _source(ctx, url) if url else SourceError("the lock names no source")
    if isinstance(source, VxdsError):
        return [ctx.finding(target, "VX504", ERROR, f"cannot open the source {url!r}: {source.message}")]
    from vxds.sources.folder import FolderSource

    todo = [(s, n, Resource.from_line(line)) for s, n, line in _chosen(ctx, target, target.lock)]
    ctx.data_checked += len(todo)
    if isinstance(source, FolderSource):
        return _check_folder(ctx, target, source, todo)
    return [f for item in todo if (f := _check_opened(ctx, target, source, *item)) is not None]


_SPECIAL = ("ClinicalRecord", "DICOMSeries")  # made by the folder source from more than one file


def _line_where(ctx: Context, target: Target, split: str, number: int) -> dict[str, Any]:
    return {"file": ctx.config.relative(target.path / split_file(split)), "line": number}


def _check_folder(
    ctx: Context, target: Target, source: Any, todo: list[tuple[str, int, Resource]]
) -> list[Finding]:
    """Plain files are hashed by path; rows and DICOM series are rebuilt by the source."""
    findings: list[Finding] = []
    inside = _Inside(source.root)
    files: list[tuple[str, int, Resource, str]] = []
    for split, number, resource in todo:
        if resource.type in _SPECIAL:
            found = _check_listed(ctx, target, source, resource, _line_where(ctx, target, split, number))
            if found is not None:
                findings.append(found)
            continue
        # The id passed the line checks; a uri of its own is checked here.
        path = inside(resource.uri or resource.id, checked=resource.uri in (None, resource.id))
        if path is None:
            message = f"{resource.id}: its uri {resource.uri!r} points outside the source; not read"
            findings.append(
                ctx.finding(target, "VX505", ERROR, message, **_line_where(ctx, target, split, number))
            )
            continue
        files.append((split, number, resource, path))
    findings += _hash_paths(ctx, target, files)
    return findings


class _Inside:
    """Paths under a source folder, refusing any that could lead outside it."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.folders: dict[str, bool] = {}  # folder -> it resolves inside the root
        self.real: dict[str, str] = {self.root: self.root}  # folder -> its real path

    def __call__(self, rel: str, *, checked: bool) -> str | None:
        if not checked:
            try:
                check_id(rel)  # relative, no '..', no drive, no backslash
            except InvalidResource:
                return None
        path = os.path.join(self.root, rel)
        folder = os.path.dirname(path)
        ok = self.folders.get(folder)
        if ok is None:  # a symlinked folder on the way could lead anywhere
            real = self._real(folder)
            ok = self.folders[folder] = real == self.root or real.startswith(self.root + os.sep)
        return path if ok else None

    def _real(self, folder: str) -> str:
        """``os.path.realpath(folder)``, one ``lstat`` per folder not seen before."""
        found = self.real.get(folder)
        if found is None:
            parent, name = os.path.split(folder)
            found = os.path.join(self._real(parent), name)
            if os.path.islink(found):
                found = os.path.realpath(found)
            self.real[folder] = found
        return found


def _hash_paths(ctx: Context, target: Target, files: list[tuple[str, int, Resource, str]]) -> list[Finding]:
    todo: list[tuple[str, int]] = []
    for _, _, resource, path in files:
        if path in ctx.hashed or resource.hash is None:
            continue
        try:
            size = os.stat(path).st_size
        except OSError:
            ctx.hashed[path] = None
            continue
        if resource.size is not None and size != resource.size:
            ctx.hashed[path] = f"size:{size}"
            continue
        todo.append((path, size))
    for (path, _), digest in zip(todo, hash_files(todo, jobs=ctx.options.jobs), strict=True):
        ctx.hashed[path] = digest
    findings = []
    for split, number, resource, path in files:
        problem = _compare(resource, ctx.hashed.get(path), path)
        if problem is not None:
            code, severity, message = problem
            findings.append(
                ctx.finding(target, code, severity, message, **_line_where(ctx, target, split, number))
            )
    return findings


def _compare(resource: Resource, actual: str | None, path: str) -> tuple[str, str, str] | None:
    """(code, severity, message) when a file's digest (or ``size:N``) does not match the lock."""
    if resource.hash is None:
        return "VX503", SKIPPED, f"{resource.id}: the lock records no hash to compare"
    if actual is None:
        return "VX501", ERROR, f"{resource.id}: missing from the source"
    if actual.startswith("size:"):
        return (
            "VX502",
            ERROR,
            f"{resource.id}: changed in the source ({actual[5:]} bytes, the lock says {resource.size})",
        )
    if not resource.hash.startswith(PREFIX):
        actual = _other_hash(resource.hash, path)
        if actual is None:
            return "VX503", SKIPPED, f"{resource.id}: cannot check a {resource.hash.partition(':')[0]} hash"
    if actual != resource.hash:
        return "VX502", ERROR, f"{resource.id}: changed in the source (hash differs)"
    return None


def _other_hash(expected: str, path: str) -> str | None:
    """The file's digest in the lock's algorithm, when hashlib knows it."""
    algorithm = expected.partition(":")[0]
    try:
        hasher = hashlib.new(algorithm)
    except ValueError:
        return None
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            hasher.update(block)
    return f"{algorithm}:{hasher.hexdigest()}"


def _check_listed(
    ctx: Context, target: Target, source: Source, resource: Resource, where: dict[str, Any]
) -> Finding | None:
    """A resource the source builds from several files: compare with what it lists now."""
    try:
        current = source.get(resource.id)
    except SourceError as exc:
        if isinstance(exc, KeyError):
            return ctx.finding(target, "VX501", ERROR, f"{resource.id}: missing from the source", **where)
        return ctx.finding(target, "VX504", ERROR, f"{resource.id}: {exc.message}", **where)
    if current.hash != resource.hash:
        return ctx.finding(
            target, "VX502", ERROR, f"{resource.id}: changed in the source (hash differs)", **where
        )
    return None


def _check_opened(
    ctx: Context, target: Target, source: Source, split: str, number: int, resource: Resource
) -> Finding | None:
    """Any other source: stream the bytes through ``Source.open``."""
    where = _line_where(ctx, target, split, number)
    if resource.hash is None or not resource.hash.startswith(PREFIX):
        return _check_listed(ctx, target, source, resource, where)
    hasher = blake3()
    try:
        with source.open(resource) as fh:
            while block := fh.read(1 << 20):
                hasher.update(block)
    except SourceError as exc:
        if isinstance(exc, KeyError):
            return ctx.finding(target, "VX501", ERROR, f"{resource.id}: missing from the source", **where)
        return ctx.finding(target, "VX504", ERROR, f"{resource.id}: {exc.message}", **where)
    except OSError as exc:
        return ctx.finding(
            target, "VX504", ERROR, f"{resource.id}: cannot read: {exc.strerror or exc}", **where
        )
    if PREFIX + hasher.hexdigest() != resource.hash:
        return ctx.finding(
            target, "VX502", ERROR, f"{resource.id}: changed in the source (hash differs)", **where
        )
    return None


# --- --reproduce ---------------------------------------------------------------------------


def check_reproduce(ctx: Context, target: Target) -> list[Finding]:
    """VX6xx: re-run the recipe and compare its lock with the one on disk."""
    if not ctx.options.reproduce or target.entry is None:
        return []
    if ctx.options.no_exec:
        return [ctx.finding(target, "VX603", SKIPPED, "not re-run: --no-exec runs no recipe code")]
    if target.lock is None:
        if (target.path / HEADER).is_file():
            return [ctx.finding(target, "VX603", SKIPPED, "not re-run: the lock did not pass its own checks")]
        return []
    from vxds.lockfile import same_on_disk

    try:
        fresh = _resolver(ctx, target).resolve(target.entry)
    except VxdsError as exc:
        return [ctx.finding(target, "VX602", ERROR, f"the recipe failed: {exc.message}")]
    if same_on_disk(fresh, target.path):
        return []
    from vxds.diff import diff_locks

    drift = ctx.drift[target.key] = diff_locks(target.lock, fresh)
    drift.old_label, drift.new_label = ctx.config.relative(target.path), "re-run of the recipe"
    counts = drift.counts()
    parts = [f"{n} {kind}" for kind, n in counts.items() if n and kind != "unchanged"]
    if drift.header:
        parts.append("header: " + ", ".join(h.field for h in drift.header))
    message = (
        f"re-running the recipe gives another lock: {'; '.join(parts)} ({counts['unchanged']} unchanged)"
    )
    return [ctx.finding(target, "VX601", ERROR, message)]


def _resolver(ctx: Context, target: Target) -> Any:
    """A resolver for re-running ``target``'s recipe: as of the lock's snapshot when its
    source keeps history (a catalog), so later changes to the source are not drift."""
    from vxds.resolver import Resolver

    if ctx.resolver is None:
        ctx.resolver = Resolver(ctx.config, progress=ctx.options.progress, jobs=ctx.options.jobs)
    assert target.entry is not None and target.header is not None
    source = ctx.resolver.source(target.entry.source, target.key)
    if not getattr(source, "time_travel", False):
        return ctx.resolver
    snapshot = target.header.snapshot
    if snapshot not in ctx.at_resolvers:
        ctx.at_resolvers[snapshot] = Resolver(
            ctx.config, progress=ctx.options.progress, jobs=ctx.options.jobs, at=snapshot
        )
    return ctx.at_resolvers[snapshot]


# --- --base and merges ---------------------------------------------------------------------


def check_published(ctx: Context, target: Target) -> list[Finding]:
    """VX205: a lock published at ``--base`` changed without a new version."""
    change = ctx.published.pop(target.key, None)
    if change is None:
        return []
    return [ctx.finding(target, "VX205", ERROR, change.message, file=f"{change.path}/{HEADER}")]


def _published(config: Config, base: str, targets: Sequence[Target], specs: Sequence[str]) -> dict[str, Any]:
    from vxds.published import published_changes

    keys = [t.key for t in targets] if specs else None
    return {change.key: change for change in published_changes(config, base, keys)}


def check_merged(ctx: Context, target: Target) -> list[Finding]:
    """VX312: a lock written by the Git merge driver rather than by its recipe."""
    if target.header is None or not target.header.merged:
        return []
    message = f"merged by Git, not written by its recipe; relock before release: 'vxds lock {target.key}'"
    return [ctx.finding(target, "VX312", WARNING, message)]


# The checks of one dataset version, in order; each sees what the earlier ones set on the target.
LOCK_CHECKS: tuple[Callable[[Context, Target], list[Finding]], ...] = (
    check_presence,
    check_integrity,
    check_merged,
    check_staleness,
    check_published,
    check_data,
    check_reproduce,
)


def run(config: Config, specs: Sequence[str] = (), options: Options | None = None) -> Report:
    """Check the project (or the named ``NAME[@V]`` datasets) and report what was found."""
    options = options or Options()
    try:
        manifest: Manifest | None = load_manifest(
            config.manifest, default_source=config.source, require_scripts=False, cache_dir=config.cache_dir
        )
        findings: list[Finding] = []
    except ManifestError as exc:
        manifest, findings = None, _manifest_findings(config, exc)
    if manifest is not None:
        entries = manifest.select(specs) if specs else list(manifest)
        findings += _script_findings(config, entries)
    if options.manifest_only:
        return Report(sorted(findings, key=sort_key), len(manifest.entries) if manifest else 0, 0)
    targets, orphans = _targets(config, manifest, specs)
    findings += orphans
    cache = ResultCache(config.cache_dir / CACHE_FILE if options.use_cache else None)
    ctx = Context(config, options, cache)
    ctx.prechecked = precheck(ctx, targets)
    if options.base is not None:
        ctx.published = _published(config, options.base, targets, specs)
    task = options.progress.task("verifying", total=len(targets))
    try:
        for target in targets:
            for check in LOCK_CHECKS:
                findings += check(ctx, target)
            target.lock = None  # release the lock's bytes before the next one is read
            task.advance()
    finally:
        task.close()
        cache.save()
    for change in ctx.published.values():  # published versions that are gone from the manifest too
        findings.append(Finding("VX205", ERROR, change.message, dataset=change.key, file=change.path))
    return Report(
        sorted(findings, key=sort_key),
        datasets=len(targets),
        resources=sum(t.resources for t in targets),
        data_checked=ctx.data_checked,
        drift=ctx.drift,
    )


def verify(
    config: Config,
    specs: Sequence[str] = (),
    *,
    no_exec: bool = False,
    data: bool = False,
    sample: Sample | None = None,
    seed: int = 0,
    reproduce: bool = False,
    manifest_only: bool = False,
    use_cache: bool = True,
    jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
    base: str | None = None,
) -> list[Finding]:
    """Every finding about the project, sorted by dataset, file, line and code."""
    options = Options(
        no_exec=no_exec,
        data=data,
        sample=sample,
        seed=seed,
        reproduce=reproduce,
        manifest_only=manifest_only,
        use_cache=use_cache,
        jobs=jobs,
        progress=progress,
        base=base,
    )
    return run(config, specs, options).findings
