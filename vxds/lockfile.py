"""Locks on disk: ``locks/<name>/<version>/lock.toml`` and one ``resources.<split>.jsonl``
per split.

Each split file is the sorted canonical lines of its resources, ``\\n``-terminated. The
header records what the lock was made from (recipe, params, manifest entry, source and
snapshot), each split's count and blake3 digest, and a digest over all of that. The format
is versioned (``format = 1``); a reader refuses a format it does not know.

A lock is *stale* when its recipe, params or manifest entry no longer match, *corrupt*
when it cannot be read or a digest does not match its content, *missing* when absent.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from blake3 import blake3

from vxds.errors import LockError
from vxds.fsutil import atomic_write, exclusive, fsync_dir, make_dirs, pid_alive
from vxds.hashing import PREFIX, digest_json, hash_file
from vxds.resource import InvalidResource, Resource, check_id, normalize

FORMAT = 1
HEADER = "lock.toml"
SPLIT_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
SPLIT_FILE_RE = re.compile(r"resources\.([A-Za-z0-9_-]+)\.jsonl\Z")
CHUNK_LINES = 8192


def split_file(split: str) -> str:
    return f"resources.{split}.jsonl"


def digest_chunks(chunks: Sequence[bytes]) -> str:
    """Digest of the concatenated chunks, hashed a block of chunks at a time."""
    hasher = blake3()
    for i in range(0, len(chunks), CHUNK_LINES):
        hasher.update(b"".join(chunks[i : i + CHUNK_LINES]))
    return PREFIX + hasher.hexdigest()


@dataclass(frozen=True)
class Split:
    """One split's content: its file's bytes in chunks, with count and digest.

    A chunk is one newline-terminated line (a lock being built) or a run of them (a lock
    read from disk); the file is their concatenation. Splits compare by count and digest.
    """

    chunks: list[bytes] = field(compare=False, repr=False)
    count: int
    digest: str

    @classmethod
    def from_lines(cls, lines: Sequence[bytes]) -> Split:
        """From sorted canonical lines without their newlines."""
        return cls.from_terminated([line + b"\n" for line in lines])

    @classmethod
    def from_terminated(cls, lines: list[bytes]) -> Split:
        """From sorted, newline-terminated lines, kept as they are.

        Not joined: the lines are freed in sort order, not allocation order, so joining
        them would hold a second copy of the content rather than replace the first.
        """
        return cls(lines, len(lines), digest_chunks(lines))

    @classmethod
    def from_bytes(cls, data: bytes) -> Split:
        return cls([data] if data else [], data.count(b"\n"), digest_chunks([data]))

    def lines(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            yield from chunk.splitlines()

    def resources(self) -> Iterator[Resource]:
        for line in self.lines():
            yield Resource.from_line(line)


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
            "splits": {name: {"count": c, "digest": d} for name, (c, d) in sorted(self.splits.items())},
        }
        if self.merged:
            body["merged"] = True
        return body

    @property
    def digest(self) -> str:
        return digest_json(self.body())


def recipe_digest(script_digest: str, entrypoint: str | None, params: Mapping[str, Any]) -> str:
    return digest_json({"entrypoint": entrypoint, "params": dict(params), "script": script_digest})


@dataclass(frozen=True)
class Lock:
    header: Header
    splits: dict[str, Split] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.header.digest

    def resources(self, split: str | None = None) -> Iterator[Resource]:
        """Resources of one split, or of every split in name order."""
        names = [split] if split is not None else sorted(self.splits)
        for name in names:
            yield from self.splits[name].resources()


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
    out += ["", "[lock]"]
    if header.merged:
        out += [
            "# Merged by Git (vxds merge-driver), not written by a recipe: relock before release.",
            "merged = true",
        ]
    out += [f"digest = {_toml_str(header.digest)}", ""]
    return "\n".join(out)


# --- reading -----------------------------------------------------------------------------


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
    "unreadable",  # lock.toml cannot be read
    "toml",  # lock.toml is not valid TOML
    "format",  # no 'format', or one this vxds does not read
    "header",  # a header table or field is missing or malformed
    "recipe-digest",  # recipe.digest does not match what it covers
    "lock-digest",  # lock.digest does not match the header
    "unlisted-split",  # a resources.<split>.jsonl the header does not list
    "missing-split",  # a split the header lists has no file
    "split-digest",  # a split file's digest, line count or final newline is wrong
    "json",  # a line is not JSON
    "schema",  # a line breaks the resource rules
    "unsafe-id",  # an id that is absolute or climbs out with '..'
    "canonical",  # a line is valid but not in canonical form
    "order",  # ids out of order
    "duplicate",  # an id repeats
)


class CorruptLock(LockError):
    """A lock that cannot be trusted; ``problems`` says why, one ``Problem`` each."""

    def __init__(self, where: Path, problems: Sequence[Problem]) -> None:
        self.where = where
        self.problems = list(problems)
        super().__init__(
            f"{where}: corrupt lock: " + "; ".join(self.problems),
            hint="relock it with 'vxds lock', or restore it from Git",
        )


def _get(table: Mapping[str, Any], path: str, kind: type | tuple[type, ...], problems: list[Problem]) -> Any:
    value: Any = table
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        problems.append(
            Problem(
                f"{HEADER}: '{path}' is missing or not a {getattr(kind, '__name__', 'value')}", kind="header"
            )
        )
        return None
    return value


def parse_header(text: str, where: Path) -> tuple[Header, str]:
    """Parse ``lock.toml``; return the header and the digest it claims."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        data = tomlkit.parse(text).unwrap()
    except TOMLKitError as exc:
        line = getattr(exc, "line", None)
        problem = Problem(f"{HEADER} is not valid TOML: {exc}", kind="toml", line=line if line else None)
        raise CorruptLock(where, [problem]) from None
    fmt = data.get("format")
    if type(fmt) is not int or fmt != FORMAT:  # not bool, not float
        what = "has no 'format'" if fmt is None else f"has format {fmt!r}"
        raise CorruptLock(
            where, [Problem(f"{HEADER} {what}; this vxds reads format {FORMAT}", kind="format")]
        )
    problems = [
        Problem(f"{HEADER}: [{table}] is missing or not a table", kind="header")
        for table in ("dataset", "recipe", "manifest", "source", "splits", "lock")
        if not isinstance(data.get(table), dict)
    ]
    if problems:
        raise CorruptLock(where, problems)
    fields = {
        key: _get(data, path, kind, problems)
        for key, path, kind in (
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
    }
    claimed_recipe = _get(data, "recipe.digest", str, problems)
    merged = data["lock"].get("merged", False)
    if not isinstance(merged, bool):
        problems.append(Problem(f"{HEADER}: 'lock.merged' is not true or false", kind="header"))
    entrypoint = data["recipe"].get("entrypoint")
    splits: dict[str, tuple[int, str]] = {}
    for name, info in data["splits"].items():
        count = _get(info, "count", int, problems) if isinstance(info, dict) else None
        digest = _get(info, "digest", str, problems) if isinstance(info, dict) else None
        if not SPLIT_RE.match(name) or count is None or digest is None:
            problems.append(Problem(f"{HEADER}: split {name!r} is malformed", kind="header"))
        else:
            splits[name] = (count, digest)
    params: Any = None
    if fields["params"] is not None:
        try:
            params = orjson.loads(fields["params"])
        except orjson.JSONDecodeError:
            params = None
        if not isinstance(params, dict):
            problems.append(Problem(f"{HEADER}: 'recipe.params' is not a JSON object", kind="header"))
    if problems:
        raise CorruptLock(where, problems)
    fields.pop("params")
    claimed = fields.pop("digest")
    header = Header(
        entrypoint=entrypoint if isinstance(entrypoint, str) else None,
        params=params,
        splits=splits,
        merged=merged,
        **fields,
    )
    if claimed_recipe != header.recipe_digest:
        message = f"{HEADER}: 'recipe.digest' does not match the script digest, entrypoint and params"
        raise CorruptLock(where, [Problem(message, kind="recipe-digest")])
    return header, claimed


def line_problems(split: str, data: bytes) -> Iterator[Problem]:
    """Line-level checks of a split file's bytes: JSON, schema, canonical form, order, duplicates."""
    previous: str | None = None
    name = split_file(split)
    for number, line in enumerate(data.splitlines(), start=1):
        where = f"{name}:{number}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Problem(f"{where}: {exc}", kind="json", file=name, line=number)
            continue
        try:
            record = normalize(value)
        except InvalidResource as exc:
            kind = "unsafe-id" if _unsafe_id(value) else "schema"
            yield Problem(f"{where}: {exc}", kind=kind, file=name, line=number)
            continue
        if orjson.dumps(record, option=orjson.OPT_SORT_KEYS) != line:
            yield Problem(f"{where}: line is not in canonical form", kind="canonical", file=name, line=number)
        rid = record["id"]
        if previous is not None and rid <= previous:
            kind, words = ("duplicate", "repeats") if rid == previous else ("order", "is out of order")
            yield Problem(f"{where}: id {rid!r} {words}", kind=kind, file=name, line=number)
        previous = rid


def _unsafe_id(value: object) -> bool:
    """True when a line's id is a string that ``check_id`` refuses (absolute, ``..`` ...)."""
    rid = value.get("id") if isinstance(value, dict) else None
    if not isinstance(rid, str):
        return False
    try:
        check_id(rid)
    except InvalidResource:
        return True
    return False


def _stream(path: Path) -> tuple[str, int, bool]:
    """Digest, line count and "ends with a newline" of a file, read in blocks."""
    hasher, count, last = blake3(), 0, b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            hasher.update(block)
            count += block.count(b"\n")
            last = block[-1:]
    return PREFIX + hasher.hexdigest(), count, last == b"\n"


def _checked(directory: Path, *, load: bool, deep: bool) -> tuple[Header, dict[str, Split]]:
    """The header, and (with ``load``) the splits, after every digest and count check."""
    try:
        text = (directory / HEADER).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{directory}: no {HEADER}; the lock is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptLock(directory, [Problem(f"cannot read {HEADER}: {exc}", kind="unreadable")]) from None
    header, claimed = parse_header(text, directory)
    problems: list[Problem] = []
    if claimed != header.digest:
        problems.append(Problem("the lock digest does not match the header", kind="lock-digest"))
    on_disk = {m.group(1) for p in directory.iterdir() if (m := SPLIT_FILE_RE.match(p.name))}
    for extra in sorted(on_disk - set(header.splits)):
        name = split_file(extra)
        problems.append(Problem(f"{name} is not listed in {HEADER}", kind="unlisted-split", file=name))
    splits: dict[str, Split] = {}
    for name, (count, digest) in sorted(header.splits.items()):
        path = directory / split_file(name)
        try:
            if load:
                data = path.read_bytes()
                split = splits[name] = Split.from_bytes(data)
                actual, lines, newline_end = split.digest, split.count, not data or data.endswith(b"\n")
            else:
                actual, lines, newline_end = _stream(path)
        except OSError:
            problems.append(
                Problem(f"{split_file(name)} is missing", kind="missing-split", file=split_file(name))
            )
            continue
        file = split_file(name)
        if not newline_end:
            problems.append(Problem(f"{file} does not end with a newline", kind="split-digest", file=file))
        if actual != digest:
            problems.append(Problem(f"{file} does not match its digest", kind="split-digest", file=file))
        if lines != count:
            message = f"{file} has {lines} lines, {HEADER} says {count}"
            problems.append(Problem(message, kind="split-digest", file=file))
        if deep and load:
            problems.extend(line_problems(name, data))
    if problems:
        raise CorruptLock(directory, problems)
    return header, splits


def read_lock(directory: Path, *, deep: bool = False) -> Lock:
    """Read and check a lock; ``CorruptLock`` lists every problem found.

    Digests and counts are always checked; ``deep`` also checks every line.
    """
    return Lock(*_checked(directory, load=True, deep=deep))


def check_lock(directory: Path) -> Header:
    """The same checks as ``read_lock`` (but not ``deep``), streaming the files: nothing is kept."""
    return _checked(directory, load=False, deep=False)[0]


# --- writing -----------------------------------------------------------------------------
#
# A write puts the new lock in ``.<version>.tmp-<pid>-<random>/`` beside the old one, flushes
# it to the disk, moves the old lock to ``.<version>.old-<pid>-<random>/``, renames the new
# one into place, flushes the folder and removes the old one. A process killed in the middle
# leaves one of those folders behind; the next write removes it (``leftovers``), or puts a
# set-aside lock back when it is the only copy (``_recover``), and ``vxds verify`` reports it.

_ASIDE_RE = re.compile(r"\.(?P<version>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-[0-9a-f]+)?\Z")


def guard_file(cache_dir: Path, name: str, version: int) -> Path:
    """The advisory lock held while ``name@version`` is written: under the project's
    git-ignored ``.vxds/``, never in the committed lock folder."""
    return cache_dir / "writing" / f"{name}@{version}.lock"


def _aside(directory: Path) -> Iterator[tuple[Path, str, int]]:
    """Folders that writes of ``directory`` left beside it: (path, "tmp" or "old", pid)."""
    try:
        names = sorted(os.listdir(directory.parent))
    except OSError:
        return
    for name in names:
        match = _ASIDE_RE.match(name)
        if match and match["version"] == directory.name:
            yield directory.parent / name, match["kind"], int(match["pid"])


def _mtime(path: Path) -> int | None:
    try:
        return path.lstat().st_mtime_ns
    except OSError:
        return None


def leftovers(directory: Path) -> list[Path]:
    """What killed writes left beside the lock ``directory`` and no live write owns.

    A temporary or set-aside folder is a leftover when its process is gone, or when it is
    older than the lock in place (its pid may have been reused since). A set-aside lock
    while no lock is in place is not: it is the lock, and ``_recover`` puts it back.
    """
    lock_time = _mtime(directory / HEADER)
    found = []
    for path, kind, pid in _aside(directory):
        if kind == "old" and lock_time is None:
            continue
        mtime = _mtime(path)
        if mtime is not None and (not pid_alive(pid) or (lock_time is not None and mtime < lock_time)):
            found.append(path)
    return found


def leftovers_of_dataset(folder: Path) -> list[Path]:
    """``leftovers`` of every version in a dataset's folder (``locks/<name>/``), including
    versions whose first lock was killed before it was ever in place."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    versions = sorted({match["version"] for name in names if (match := _ASIDE_RE.match(name))})
    return [path for version in versions for path in leftovers(folder / version)]


def _restore(directory: Path) -> None:
    if directory.exists() or not directory.parent.is_dir():
        return
    for path, kind, _ in _aside(directory):
        if kind == "old":
            os.replace(path, directory)
            fsync_dir(directory.parent)
            return


def _recover(directory: Path, guard: Path | None = None) -> None:
    """Put back a lock left aside by a write that was killed between its two renames.

    Runs no recipe code, so readers may call it. With the ``guard`` writers hold
    (``guard_file``), it waits for a write in progress instead of racing its renames.
    """
    with exclusive(guard):
        _restore(directory)


def same_on_disk(lock: Lock, directory: Path) -> bool:
    """True when ``directory`` already holds exactly these bytes."""
    try:
        if (directory / HEADER).read_text(encoding="utf-8") != render_header(lock.header):
            return False
        names = {p.name for p in directory.iterdir() if SPLIT_FILE_RE.match(p.name)}
    except (OSError, UnicodeDecodeError):
        return False
    if names != {split_file(s) for s in lock.splits}:
        return False
    try:
        return all(hash_file(directory / split_file(s)) == split.digest for s, split in lock.splits.items())
    except OSError:
        return False


def write_lock(lock: Lock, directory: Path, *, guard: Path | None = None) -> bool:
    """Write a lock atomically and durably; return False when it was already identical on disk.

    With ``guard`` (``guard_file``) the write holds that advisory lock, so a second writer
    of the same lock waits for the first. Leftovers of killed writes are cleaned up first.
    On any failure the previous lock is left as it was; a failure of the file system is a
    ``LockError`` naming the dataset and the path.
    """
    try:
        with exclusive(guard):
            _restore(directory)
            for path in leftovers(directory):
                shutil.rmtree(path, ignore_errors=True)
            if same_on_disk(lock, directory):
                return False
            _swap_in(lock, directory)
    except OSError as exc:
        raise LockError(
            f"{exc.filename or directory}: cannot write the lock of {lock.header.key}: {_reason(exc)}"
        ) from None
    return True


def _reason(exc: OSError) -> str:
    """What went wrong, without the path (the message names it once)."""
    return exc.strerror or (str(exc.args[0]) if exc.args else type(exc).__name__)


def _swap_in(lock: Lock, directory: Path) -> None:
    """Write the lock beside ``directory`` and swap it in; an ``OSError`` names the file it
    was writing by its final path."""
    parent = directory.parent
    make_dirs(parent)
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    tmp, old = parent / f".{directory.name}.tmp-{tag}", parent / f".{directory.name}.old-{tag}"
    files = [(split_file(name), split.chunks) for name, split in sorted(lock.splits.items())]
    files.append((HEADER, [render_header(lock.header).encode("utf-8")]))
    try:
        tmp.mkdir()
        for name, chunks in files:
            try:
                atomic_write(tmp / name, chunks)  # flushes the file and the folder
            except OSError as exc:
                exc.filename = str(directory / name)
                raise
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


def stale_split_files(folder: Path, splits: Collection[str]) -> list[Path]:
    """The ``resources.<split>.jsonl`` files in ``folder`` of splits not in ``splits``."""
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / n for n in names if (m := SPLIT_FILE_RE.match(n)) and m.group(1) not in splits]


def write_splits(
    splits: Mapping[str, Split], folder: Path, *, unchanged: Collection[str] = ()
) -> tuple[list[Path], list[Path]]:
    """Make ``folder`` hold exactly these splits as bare ``resources.<split>.jsonl`` files
    (``vxds lock --file``); return the files written and the files removed.

    Each file is written with ``atomic_write`` (but the splits named in ``unchanged``, which
    are on disk already); every other ``resources.<split>.jsonl`` in ``folder``, an earlier
    run's, is removed. Nothing else in ``folder`` is touched.
    """
    written: list[Path] = []
    try:
        make_dirs(folder)
        for name, split in sorted(splits.items()):
            if name not in unchanged:
                written.append(folder / split_file(name))
                atomic_write(written[-1], split.chunks)
        removed = stale_split_files(folder, splits)
        for path in removed:
            path.unlink(missing_ok=True)
        if removed:
            fsync_dir(folder)
    except OSError as exc:
        raise LockError(f"{exc.filename or folder}: cannot write: {_reason(exc)}") from None
    return written, removed


def lock_dir(locks: Path, name: str, version: int) -> Path:
    """Where the lock of ``name@version`` lives under the locks folder."""
    return locks / name / str(version)
