"""The receipt a materialized folder keeps: which lock it holds and every file placed.

``OUT/.vxds-receipt.json`` is written atomically at the end of a run. While a run places
files it appends one line per placed file to ``OUT/.vxds-journal.jsonl``, so a run that is
interrupted leaves a record the next run trusts (every journalled file was verified before
it got its name) and finishes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vxds.fsutil import atomic_write_bytes

RECEIPT = ".vxds-receipt.json"
JOURNAL = ".vxds-journal.jsonl"
TMP_DIR = ".vxds-tmp"
LOCK_FILE = ".vxds-lock"
# Files vxds keeps in OUT for itself; never listed in a receipt.
OWN = frozenset({RECEIPT, JOURNAL, TMP_DIR, LOCK_FILE})
FORMAT = 1


class ReceiptError(ValueError):
    """A receipt that cannot be read; the message says why."""


@dataclass(frozen=True)
class Entry:
    """One placed file: its blake3, size, the resource it came from, and its stat key."""

    hash: str
    size: int
    resource: str | None = None  # the resource id; None for a generated file
    locked: str | None = None  # the resource's hash in the lock (to know when it changes)
    module: str | None = None
    stat: tuple[int, int, int] | None = None  # size, mtime_ns, inode when placed

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "size": self.size,
            "resource": self.resource,
            "locked": self.locked,
            "module": self.module,
            "stat": list(self.stat) if self.stat is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        stat = data.get("stat")
        return cls(
            hash=str(data["hash"]),
            size=int(data["size"]),
            resource=data.get("resource"),
            locked=data.get("locked"),
            module=data.get("module"),
            stat=(int(stat[0]), int(stat[1]), int(stat[2]))
            if isinstance(stat, list) and len(stat) == 3
            else None,
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

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "generator": self.generator,
            "dataset": self.dataset,
            "lock_digest": self.lock_digest,
            "source": self.source,
            "splits": {n: {"count": c, "digest": d} for n, (c, d) in sorted(self.splits.items())},
            "modules": sorted(self.modules),
            "files": {path: entry.to_json() for path, entry in sorted(self.files.items())},
            "failed": self.failed,
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def read_receipt(out: Path) -> Receipt | None:
    """The receipt in ``out``, or None when there is none; ``ReceiptError`` if unreadable."""
    path = out / RECEIPT
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ReceiptError(f"{path}: cannot read the receipt: {exc}") from None
    try:
        if data.get("format") != FORMAT:
            raise ReceiptError(f"{path}: receipt format {data.get('format')!r}; this vxds reads {FORMAT}")
        return Receipt(
            dataset=data.get("dataset"),
            lock_digest=str(data["lock_digest"]),
            source=data.get("source"),
            splits={n: (int(s["count"]), str(s["digest"])) for n, s in data["splits"].items()},
            modules=[str(m) for m in data["modules"]],
            files={str(p): Entry.from_json(e) for p, e in data["files"].items()},
            generator=str(data.get("generator", "")),
            failed=[dict(f) for f in data.get("failed", [])],
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ReceiptError):
            raise
        raise ReceiptError(f"{path}: the receipt is malformed ({type(exc).__name__}: {exc})") from None


def write_receipt(out: Path, receipt: Receipt) -> None:
    atomic_write_bytes(out / RECEIPT, receipt.to_bytes())


def read_journal(out: Path) -> dict[str, Entry]:
    """Entries an interrupted run recorded; a torn last line is ignored."""
    found: dict[str, Entry] = {}
    try:
        text = (out / JOURNAL).read_bytes()
    except OSError:
        return found
    for line in text.splitlines():
        try:
            data = orjson.loads(line)
            found[str(data["path"])] = Entry.from_json(data["entry"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return found


class Journal:
    """Appends one line per placed file, flushed every ``FLUSH_EVERY`` lines.

    A line lost to a kill costs only time: the next run places that file again.
    """

    FLUSH_EVERY = 256

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self._unflushed = 0

    def add(self, path: str, entry: Entry) -> None:
        self._fh.write(orjson.dumps({"path": path, "entry": entry.to_json()}) + b"\n")
        self._unflushed += 1
        if self._unflushed >= self.FLUSH_EVERY:
            self._fh.flush()
            self._unflushed = 0

    def close(self, *, remove: bool) -> None:
        self._fh.close()
        if remove:
            self.path.unlink(missing_ok=True)
