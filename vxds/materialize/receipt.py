"""The receipt a materialized folder keeps: which lock it holds and every file placed.

``OUT/.vxds-receipt.json`` is written atomically and durably at the end of a run. While a
run places files it appends them to ``OUT/.vxds-journal.jsonl``, a line per batch, so a
run that is interrupted leaves a record the next run trusts (every journalled file was
verified before it got its name) and finishes from.

Both are untrusted when read: anyone who can write OUT (or hand over a copy of it) can
forge them, and a run removes files they list. So every field is checked for its type,
every path must stay inside OUT (``path_problem``), and neither file is read through a
symlink; anything else is a ``ReceiptError`` naming the file and the field or line.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vxds.fs import atomic_write, fsync_dir
from vxds.materialize.durable import UnsafeOutput, open_own, read_own, write_error
from vxds.resource import InvalidResource, check_id

RECEIPT = ".vxds-receipt.json"
JOURNAL = ".vxds-journal.jsonl"
TMP_DIR = ".vxds-tmp"
LOCK_FILE = ".vxds-lock"
# Files vxds keeps in OUT for itself; never listed in a receipt.
OWN = frozenset({RECEIPT, JOURNAL, TMP_DIR, LOCK_FILE})
FORMAT = 1


_LINE = orjson.OPT_APPEND_NEWLINE
_DATASET = re.compile(r"[a-z0-9_-]+@[1-9][0-9]*")
_DIGEST = re.compile(r"[a-z0-9]+:[0-9a-f]+")


class ReceiptError(ValueError):
    """A receipt (or journal) that cannot be read or trusted; the one-line message says why."""


def path_problem(rel: object) -> str | None:
    """Why ``rel`` is not a path vxds may touch inside OUT, or None when it is one."""
    try:
        check_id(rel)
    except InvalidResource as exc:
        return str(exc)
    top = str(rel).split("/", 1)[0]
    if top in OWN:
        return f"{top!r} is a name vxds keeps for itself"
    return None


def _path(rel: object, where: str) -> str:
    problem = path_problem(rel)
    if problem is not None:
        raise ReceiptError(f"{where}: {rel!r} is not a path inside OUT ({problem})")
    return str(rel)


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string or null, got {type(value).__name__}")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True, init=False)
class Entry:
    """One placed file: its blake3, size, the resource it came from, and its stat key.

    The fields are declared in the order of their names, so that orjson writes an entry as
    the receipt does (keys sorted) straight from the dataclass; made in the order of
    ``__init__``, as before."""

    hash: str
    locked: str | None  # the resource's hash in the lock (to know when it changes)
    module: str | None
    resource: str | None  # the resource id; None for a generated file
    size: int
    stat: tuple[int, int, int] | None  # size, mtime_ns, inode when placed

    def __init__(
        self,
        hash: str,
        size: int,
        resource: str | None = None,
        locked: str | None = None,
        module: str | None = None,
        stat: tuple[int, int, int] | None = None,
    ) -> None:
        put = object.__setattr__  # frozen
        put(self, "hash", hash)
        put(self, "locked", locked)
        put(self, "module", module)
        put(self, "resource", resource)
        put(self, "size", size)
        put(self, "stat", stat)

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "size": self.size,
            "resource": self.resource,
            "locked": self.locked,
            "module": self.module,
            "stat": self.stat,  # a tuple is written as a JSON array
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        """An entry as recorded; ``TypeError``/``ValueError``/``KeyError`` for a bad field."""
        if not isinstance(data["hash"], str):
            raise TypeError(f"'hash' must be a string, got {type(data['hash']).__name__}")
        stat = data.get("stat")
        if isinstance(stat, list) and len(stat) == 3:
            key: tuple[int, int, int] | None = (
                _int(stat[0], "stat"),
                _int(stat[1], "stat"),
                _int(stat[2], "stat"),
            )
        else:
            key = None
        return cls(
            hash=data["hash"],
            size=_int(data["size"], "'size'"),
            resource=_optional_str(data, "resource"),
            locked=_optional_str(data, "locked"),
            module=_optional_str(data, "module"),
            stat=key,
        )


@dataclass(frozen=True)
class Receipt:
    dataset: str | None  # "name@version", or None for bare lockfiles
    lock_digest: str
    source: str | None
    splits: Mapping[str, tuple[int, str]]
    modules: list[str]
    files: dict[str, Entry] = field(default_factory=dict)
    generator: str = ""
    failed: list[dict[str, Any]] = field(default_factory=list)  # {resource, path, message}
    converters: dict[str, str] = field(default_factory=dict)  # program -> version (dcm2niix)

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "generator": self.generator,
            "dataset": self.dataset,
            "lock_digest": self.lock_digest,
            "source": self.source,
            "splits": {n: {"count": c, "digest": d} for n, (c, d) in sorted(self.splits.items())},
            "modules": sorted(self.modules),
            "files": self.files,  # sorted by orjson; each entry as its ``to_json`` (field order)
            "failed": self.failed,
        }
        if self.converters:  # only where a program made files: older receipts stay as they were
            body["converters"] = dict(sorted(self.converters.items()))
        return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def read_receipt(out: Path) -> Receipt | None:
    """The receipt in ``out``, or None when there is none; ``ReceiptError`` if unreadable
    or untrustworthy (a path outside OUT, a field of the wrong type, a symlink)."""
    path = out / RECEIPT
    try:
        data = orjson.loads(read_own(path))
    except FileNotFoundError:
        return None
    except UnsafeOutput as exc:
        raise ReceiptError(exc.message) from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ReceiptError(f"{path}: cannot read the receipt: {exc}") from None
    try:
        return _receipt(data, path)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ReceiptError):
            raise
        raise ReceiptError(f"{path}: the receipt is malformed ({type(exc).__name__}: {exc})") from None


def _receipt(data: Any, path: Path) -> Receipt:
    if data.get("format") != FORMAT:
        raise ReceiptError(f"{path}: receipt format {data.get('format')!r}; this vxds reads {FORMAT}")
    dataset = _optional_str(data, "dataset")
    if dataset is not None and not _DATASET.fullmatch(dataset):
        raise ReceiptError(f"{path}: dataset {dataset!r} is not NAME@VERSION")
    digest = data["lock_digest"]
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ReceiptError(f"{path}: lock_digest {digest!r} is not '<algorithm>:<hex>'")
    return Receipt(
        dataset=dataset,
        lock_digest=digest,
        source=_optional_str(data, "source"),
        splits={str(n): (_int(s["count"], "'count'"), str(s["digest"])) for n, s in data["splits"].items()},
        modules=[str(m) for m in data["modules"]],
        files={_path(p, f"{path}: files"): Entry.from_json(e) for p, e in data["files"].items()},
        generator=str(data.get("generator", "")),
        failed=[_failure(f) for f in data.get("failed", [])],
        converters={str(k): str(v) for k, v in data.get("converters", {}).items()},
    )


def _failure(data: Any) -> dict[str, Any]:
    for key in ("resource", "path", "message"):
        _optional_str(data, key)
    return {key: data.get(key) for key in ("resource", "path", "message")}


def write_receipt(out: Path, receipt: Receipt) -> None:
    """Write the receipt atomically and durably; a ``VxdsError`` naming it if that fails."""
    try:
        atomic_write(out / RECEIPT, receipt.to_bytes())
    except OSError as exc:
        raise write_error(out / RECEIPT, exc) from None


def read_journal(out: Path) -> dict[str, Entry]:
    """Entries an interrupted run recorded; a torn line (not JSON) is ignored, a line whose
    path leaves OUT or whose fields are wrong is a ``ReceiptError`` naming the line."""
    path = out / JOURNAL
    try:
        text = read_own(path)
    except UnsafeOutput as exc:
        raise ReceiptError(exc.message) from None
    except OSError:
        return {}
    found: dict[str, Entry] = {}
    for number, line in enumerate(text.split(b"\n"), 1):
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        where = f"{path}, line {number}"
        try:
            # a batch, [[path, entry], ...]; or one {"path": …, "entry": …}, as earlier vxds wrote
            pairs = data if isinstance(data, list) else [(data["path"], data["entry"])]
            for rel, entry in pairs:
                found[_path(rel, where)] = Entry.from_json(entry)
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, ReceiptError):
                raise
            raise ReceiptError(f"{where}: not a journal entry ({type(exc).__name__}: {exc})") from None
    return found


class Journal:
    """Appends the placed files, one line per batch (``add_all``). Every ``FLUSH_EVERY`` files are
    handed to the system in one write (so a killed run's lines are there for the next run), and fsynced
    at most every ``SYNC_SECONDS`` and at ``close`` (an fsync also forces out every link
    and folder made before it, which cost seconds over 100,000 files).

    A line lost to a kill or a crash costs only time: the next run places that file again.
    Write failures are ``VxdsError``s naming the journal (a full disk: ``DiskFull``).
    """

    FLUSH_EVERY = 256
    SYNC_SECONDS = 2.0

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL
        try:
            fd = open_own(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            self._fh = os.fdopen(fd, "ab")
            fsync_dir(out)  # the journal's name survives a crash with its lines
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self._unflushed = 0
        self._synced = time.monotonic()

    def add(self, path: str, entry: Entry) -> None:
        self.add_all([(path, entry)])

    def add_all(self, placed: list[tuple[str, Entry]]) -> None:
        """One line for the batch, ``[[path, entry], ...]``, in one write (a line torn by a
        kill loses that batch only: its files are placed again)."""
        # orjson writes the dataclass field by field, as ``to_json`` (the same bytes)
        try:
            self._fh.write(orjson.dumps(placed, option=_LINE))
        except OSError as exc:  # the buffer was full and its write failed
            raise write_error(self.path, exc) from None
        self._unflushed += len(placed)
        if self._unflushed >= self.FLUSH_EVERY:
            self.flush(sync=time.monotonic() - self._synced >= self.SYNC_SECONDS)

    def flush(self, *, sync: bool = True) -> None:
        """Hand every line added so far to the system; with ``sync``, put them on the disk."""
        try:
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
                self._synced = time.monotonic()
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self._unflushed = 0

    def close(self) -> None:
        """Flush and close; the file stays until ``remove_journal`` (after the receipt)."""
        if self._fh.closed:
            return
        try:
            self.flush()
        finally:
            with contextlib.suppress(OSError):  # lines that did not fit: placed again next run
                self._fh.close()


def remove_journal(out: Path) -> None:
    """Remove the journal once the receipt holds its entries (the removal fsynced too)."""
    (out / JOURNAL).unlink(missing_ok=True)
    fsync_dir(out)
