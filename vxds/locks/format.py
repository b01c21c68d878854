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

import contextlib
import errno
import glob
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson
from blake3 import blake3

from vxds.errors import LockError
from vxds.fs import atomic_write, exclusive, fsync_dir, make_dirs, pid_alive
from vxds.hashing import PREFIX, digest_json, hash_file
from vxds.resource import InvalidResource, Resource, check_id, check_uri, nfc, normalize

FORMAT = 1
HEADER = "lock.toml"
SPLIT_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
SPLIT_FILE_RE = re.compile(r"resources\.([A-Za-z0-9_-]+)\.jsonl\Z")
CHUNK_LINES = 8192
NAME_RE = re.compile(r"[a-z0-9_-]+\Z")  # a dataset name, as the manifest allows
MAX_INT = 2**63 - 1  # counts and versions must fit the 64 bits every digest is computed over


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
    ``path`` is the file a split was read from, named when one of its lines is bad.
    """

    chunks: list[bytes] = field(compare=False, repr=False)
    count: int
    digest: str
    path: Path | None = field(default=None, compare=False, repr=False)

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
    def from_bytes(cls, data: bytes, path: Path | None = None) -> Split:
        return cls([data] if data else [], data.count(b"\n"), digest_chunks([data]), path)

    def lines(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            yield from split_lines(chunk)

    def resources(self) -> Iterator[Resource]:
        """Each line as a ``Resource``, parsed but not validated (``read_lock(deep=True)``
        checks every line); ``CorruptLock`` names a line that is no resource record at all."""
        for number, line in enumerate(self.lines(), start=1):
            try:
                resource = Resource.from_line(line)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                file = self.path.name if self.path is not None else "split"
                where = self.path.parent if self.path is not None else Path(file)
                reason = str(exc) if isinstance(exc, orjson.JSONDecodeError) else "not a resource record"
                problem = Problem(f"{file}:{number}: {reason}", kind="json", file=file, line=number)
                raise CorruptLock(where, [problem]) from None
            yield resource


def split_lines(data: bytes) -> list[bytes]:
    """The lines of split-file bytes: the one splitter every reader uses.

    Lines end with ``\\n`` and nothing else (``bytes.splitlines`` would also split on a bare
    ``\\r``, hiding a resource from the readers that count ``\\n``); the text after the last
    ``\\n``, if any, is a line too, so that no byte is ever silently dropped.
    """
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


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
    if isinstance(value, int) and not 0 <= value <= MAX_INT:
        problems.append(Problem(f"{HEADER}: '{path}' is out of range (0 to 2**63-1)", kind="header"))
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
    if fields["name"] is not None and not NAME_RE.match(fields["name"]):
        message = f"{HEADER}: 'dataset.name' {fields['name']!r} is not a dataset name"
        problems.append(Problem(message, kind="header"))
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
    """Line-level checks of a split file's bytes: JSON, schema, canonical form, order and
    duplicates, ids that are one name once Unicode-normalised among them."""
    previous: str | None = None
    name = split_file(split)
    normalised: dict[str, tuple[str, int]] = {}  # NFC form of a non-ASCII id -> (id, line)
    for number, line in enumerate(split_lines(data), start=1):
        record, found = _parse_line(line, f"{name}:{number}")
        yield from (Problem(text, kind=kind, file=name, line=number) for kind, text in found)
        if record is None:
            continue
        rid = record["id"]
        if previous is not None and rid <= previous:
            kind, words = ("duplicate", "repeats") if rid == previous else ("order", "is out of order")
            yield Problem(f"{name}:{number}: id {rid!r} {words}", kind=kind, file=name, line=number)
        twin, at = normalised.setdefault(nfc(rid), (rid, number))
        if twin != rid:
            message = f"{name}:{number}: ids {twin!r} (line {at}) and {rid!r} are one name in NFC"
            yield Problem(message, kind="duplicate", file=name, line=number)
        previous = rid


def _parse_line(line: bytes, where: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """A line's record (None if it has none) and its problems as ``(kind, text)``."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return None, [("json", f"{where}: {exc}")]
    try:
        record = normalize(value)
    except InvalidResource as exc:
        return None, [("unsafe-id" if _unsafe_id(value) else "schema", f"{where}: {exc}")]
    if orjson.dumps(record, option=orjson.OPT_SORT_KEYS) != line:
        return record, [("canonical", f"{where}: line is not in canonical form")]
    return record, []


def _unsafe_id(value: object) -> bool:
    """True when a line's id or uri is a string that ``check_id`` or ``check_uri`` refuses."""
    if not isinstance(value, dict):
        return False
    for check, field_value in ((check_id, value.get("id")), (check_uri, value.get("uri"))):
        if isinstance(field_value, str):
            try:
                check(field_value)
            except InvalidResource:
                return True
    return False


def open_lock_file(path: Path) -> BinaryIO:
    """A lock file opened for reading, which must be a regular file.

    Not a link (it could lead anywhere), nor a folder, FIFO or device (a FIFO would hang
    the reader, ``/dev/zero`` never ends): vxds writes none of these, and Git can hold links.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        if exc.errno != errno.ENOENT and path.is_symlink():
            raise OSError(errno.ELOOP, "it is a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "it is not a regular file", str(path))
    return os.fdopen(fd, "rb")


@dataclass(frozen=True)
class _Facts:
    """What the header's checks need to know about a split file's bytes."""

    digest: str
    count: int
    newline_end: bool
    carriage_return: int | None  # the line of the first '\r'

    @classmethod
    def of(cls, blocks: Iterator[bytes]) -> _Facts:
        hasher, count, last, cr = blake3(), 0, b"\n", None
        for block in blocks:
            hasher.update(block)
            if cr is None and (at := block.find(b"\r")) >= 0:
                cr = count + block.count(b"\n", 0, at) + 1
            count += block.count(b"\n")
            last = block[-1:] or last
        return cls(PREFIX + hasher.hexdigest(), count, last == b"\n", cr)

    def problems(self, file: str, count: int, digest: str) -> Iterator[Problem]:
        if self.carriage_return is not None:
            line = self.carriage_return
            message = f"{file}:{line}: a carriage return ('\\r'); lines end with '\\n' only"
            yield Problem(message, kind="split-digest", file=file, line=line)
        if not self.newline_end:
            yield Problem(f"{file} does not end with a newline", kind="split-digest", file=file)
        if self.digest != digest:
            yield Problem(f"{file} does not match its digest", kind="split-digest", file=file)
        if self.count != count:
            message = f"{file} has {self.count} lines, {HEADER} says {count}"
            yield Problem(message, kind="split-digest", file=file)


def _read_split(path: Path, load: bool) -> tuple[bytes | None, _Facts]:
    """A split file's facts and, with ``load``, its bytes (otherwise read in blocks, not kept)."""
    with open_lock_file(path) as fh:
        if load:
            data = fh.read()
            return data, _Facts.of(iter([data]))
        return None, _Facts.of(iter(lambda: fh.read(1 << 20), b""))


def read_header(directory: Path) -> tuple[Header, str]:
    """``lock.toml`` of a lock folder, parsed: the header and the digest it claims."""
    try:
        with open_lock_file(directory / HEADER) as fh:
            text = fh.read().decode("utf-8")
    except FileNotFoundError:
        raise LockError(f"{directory}: no {HEADER}; the lock is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = Problem(f"cannot read {HEADER}: {reason}", kind="unreadable")
        raise CorruptLock(directory, [problem]) from None
    return parse_header(text, directory)


def _checked(directory: Path, *, load: bool, deep: bool) -> tuple[Header, dict[str, Split]]:
    """The header, and (with ``load``) the splits, after every digest and count check."""
    header, claimed = read_header(directory)
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
        file = path.name
        try:
            data, facts = _read_split(path, load)
        except FileNotFoundError:
            problems.append(Problem(f"{file} is missing", kind="missing-split", file=file))
            continue
        except OSError as exc:
            reason = exc.strerror or str(exc)
            problems.append(Problem(f"cannot read {file}: {reason}", kind="unreadable", file=file))
            continue
        problems.extend(facts.problems(file, count, digest))
        if data is not None:
            splits[name] = Split([data] if data else [], facts.count, facts.digest, path)
            if deep:
                problems.extend(line_problems(name, data))
    if problems:
        raise CorruptLock(directory, problems)
    return header, splits


_T = TypeVar("_T")


def lock_identity(directory: Path) -> tuple[int, ...] | None:
    """What changes when ``write_lock`` swaps the folder (its inode) or rewrites the header."""
    try:
        folder, header = os.stat(directory), os.stat(directory / HEADER)
    except OSError:
        return None
    return folder.st_dev, folder.st_ino, folder.st_ctime_ns, header.st_ino, header.st_mtime_ns


def settled(directory: Path, read: Callable[[], _T]) -> _T:
    """``read()``, once more when the lock was swapped while it was read.

    A ``vxds lock`` in another process replaces the whole folder: a read across the swap
    sees the old header with new splits (or no folder), which is not corruption.
    """
    restore_set_aside(directory)
    before = lock_identity(directory)
    try:
        return read()
    except (LockError, OSError):
        if before is not None and lock_identity(directory) == before:
            raise  # nothing moved: the lock is what was read
    restore_set_aside(directory)  # which also waits out a writer between its two renames
    before = lock_identity(directory)
    try:
        return read()
    except (LockError, OSError):
        if lock_identity(directory) == before:
            raise  # nothing moved (or there is no lock at all)
        raise LockError(
            f"{directory}: the lock changed while it was read (another 'vxds lock' is writing it)",
            hint="run the command again",
        ) from None


def set_aside(directory: Path) -> list[Path]:
    """Locks left aside (``.<version>.old-*``) by a ``vxds lock`` killed between its renames."""
    try:
        return sorted(directory.parent.glob(f".{glob.escape(directory.name)}.old-*"))
    except OSError:
        return []


def restore_set_aside(directory: Path) -> bool:
    """Put back a lock that a killed ``vxds lock`` left aside: a reader may, no recipe runs.

    A live writer is between its two renames for an instant only, so the lock is put back
    when it is still missing a moment later. True when there is a lock afterwards.
    """
    if (directory / HEADER).exists():
        return True
    if not set_aside(directory):
        return False
    time.sleep(0.1)
    if not directory.exists():
        with contextlib.suppress(OSError):  # a writer finished its swap meanwhile: read its lock
            _recover(directory)
    return (directory / HEADER).exists()


def read_lock(directory: Path, *, deep: bool = False) -> Lock:
    """Read and check a lock; ``CorruptLock`` lists every problem found.

    Digests and counts are always checked; ``deep`` also checks every line. A lock swapped
    by a concurrent ``vxds lock`` is read again; a lock set aside by a killed one is restored.
    """
    return Lock(*settled(directory, lambda: _checked(directory, load=True, deep=deep)))


def check_lock(directory: Path) -> Header:
    """The same checks as ``read_lock`` (but not ``deep``), streaming the files: nothing is kept."""
    return settled(directory, lambda: _checked(directory, load=False, deep=False))[0]


def read_split_file(path: Path) -> Split:
    """A bare ``resources.<split>.jsonl`` (no header vouches for it), with every line checked."""
    match = SPLIT_FILE_RE.match(path.name)
    split = match.group(1) if match else path.name
    try:
        data, facts = _read_split(path, True)
    except OSError as exc:
        raise LockError(f"{path}: cannot read: {exc.strerror or exc}") from None
    assert data is not None
    problems = list(facts.problems(path.name, facts.count, facts.digest))
    problems += line_problems(split, data)
    if problems:
        raise CorruptLock(path, problems)
    return Split([data] if data else [], facts.count, facts.digest, path)


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
