"""What a run placed and what the previous run recorded: entries, journal and outcome.

The ledger holds the previous run's entries (from its receipt and journal), this run's
entries (each appended to the journal as it is placed, so a killed run's files are known to
the next one) and the outcome a command summarises: counts, failures, copy fallbacks and
notices. It answers whether a recorded file is still in place, and at the end keeps the
files the previous run placed that this one does not want (still recorded, so a later run
knows them), or removes them when asked to ``prune``. Paths from the previous run are
removed or read only through ``inside`` (no symlink followed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vxds.errors import VxdsError
from vxds.fs import files_under
from vxds.hashing import hash_file
from vxds.materialize.inside import SymlinkOnTheWay, open_file, remove_file, remove_folder
from vxds.materialize.receipt import Entry, Journal
from vxds.resource import Resource


@dataclass(frozen=True)
class Failure:
    resource: str | None
    path: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "path": self.path, "message": self.message}


@dataclass
class Outcome:
    """What a run did, for the summary a command prints."""

    placed: int = 0
    unchanged: int = 0
    removed: int = 0
    kept: int = 0  # files of an earlier run this one does not want, left in place (no prune)
    failures: list[Failure] = field(default_factory=list)
    fallbacks: dict[tuple[str, str], int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


def stat_key(path: str | Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def oserror_text(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


class Ledger:
    """One run's record of OUT; thread-safe."""

    def __init__(self, out: Path, previous: dict[str, Entry]) -> None:
        self.out = out
        self.previous = previous
        self.entries: dict[str, Entry] = {}
        self.kept: dict[str, Entry] = {}  # an earlier run's files left in place: still recorded
        self.prune = False  # remove them instead
        self.outcome = Outcome()
        self._lock = threading.Lock()
        self._journal = Journal(out)

    # --- recording -----------------------------------------------------------------------

    def fail(self, rid: str | None, rel: str, exc: BaseException) -> None:
        if isinstance(exc, VxdsError):
            text = exc.message
        elif isinstance(exc, OSError):
            text = oserror_text(exc)
        else:
            text = str(exc)
        self.fail_text(rid, rel, text)

    def fail_text(self, rid: str | None, rel: str, text: str) -> None:
        if rid is not None:  # the failure names the resource; its message says only what went wrong
            text = text.removeprefix(f"{rid}: ")
        with self._lock:
            self.outcome.failures.append(Failure(rid, rel, text))

    def fallback(self, mode: str, reason: str) -> None:
        with self._lock:
            self.outcome.fallbacks[(mode, reason)] = self.outcome.fallbacks.get((mode, reason), 0) + 1

    def record(self, rel: str, entry: Entry, *, placed: bool) -> None:
        with self._lock:
            self.entries[rel] = entry
            if placed:
                self.outcome.placed += 1
                self._journal.add(rel, entry)
            else:
                self.outcome.unchanged += 1

    def record_placed(self, placed: list[tuple[str, Entry]]) -> None:
        """``record`` of files placed, journalled in one write."""
        with self._lock:
            self.entries.update(placed)
            self.outcome.placed += len(placed)
            self._journal.add_all(placed)

    def retag(self, rel: str, rid: str | None, module: str) -> None:
        """Name the resource and module of a file found in place (a run may move it)."""
        with self._lock:
            entry = self.entries[rel]
            if entry.resource != rid or entry.module != module:
                self.entries[rel] = Entry(entry.hash, entry.size, rid, entry.locked, module, entry.stat)

    # --- what is there already -----------------------------------------------------------

    def existing(self, rel: str) -> bytes | None:
        """The bytes a previous run recorded at ``rel``, if still there unchanged (a file
        vxds generated: read without following any symlink)."""
        entry = self.previous.get(rel)
        if entry is None:
            return None
        try:
            fd = open_file(self.out, rel, follow_last=False)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if entry.stat != (st.st_size, st.st_mtime_ns, st.st_ino):
                return None
            return fh.read()

    def in_place(
        self, rel: str, target: str, locked: str | None, check: Callable[[str], bool]
    ) -> bool | None:
        """True when ``OUT/rel`` already holds the right bytes (recorded, or re-hashed);
        False when something else is there; None when nothing is."""
        try:
            st = os.stat(target)
        except FileNotFoundError:  # (a dangling link too: creating over it fails, then it is replaced)
            return None
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return False
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        entry = self.previous.get(rel)
        if entry is not None and entry.locked == locked and entry.stat == key:
            self.record(rel, entry, placed=False)
            return True
        if not check(target):
            return False
        digest = hash_file(target)
        self.record(
            rel, Entry(digest, key[0], (entry.resource if entry else None), locked, None, key), placed=False
        )
        return True

    def series_in_place(
        self, resource: Resource, rel: str, members: list[tuple[str, str]], module: str
    ) -> bool:
        """True (and recorded) when the folder ``OUT/rel`` holds exactly the series' files as
        the previous run placed them."""
        if os.path.islink(self.out / rel):  # replaced (the link itself), never looked into
            return False
        entries = {}
        for name, _ in members:
            entry = self.previous.get(f"{rel}/{name}")
            try:
                if (
                    entry is None
                    or entry.locked != resource.hash
                    or entry.stat != stat_key(self.out / rel / name)
                ):
                    return False
            except OSError:
                return False
            entries[f"{rel}/{name}"] = entry
        try:
            on_disk = files_under(self.out / rel)
        except OSError:
            return False
        if on_disk != sorted(name for name, _ in members):
            return False
        for path, entry in entries.items():
            self.record(
                path,
                Entry(entry.hash, entry.size, resource.id, entry.locked, module, entry.stat),
                placed=False,
            )
        return True

    # --- the end of a run ----------------------------------------------------------------

    def finish(self) -> None:
        """Keep (or with ``prune`` remove) what is no longer wanted, close the journal, note
        the copy fallbacks."""
        if self.prune:
            self._remove_unwanted()
        else:
            self._keep_unwanted()
        self._journal.close()
        for (mode, reason), count in sorted(self.outcome.fallbacks.items()):
            self.outcome.notices.append(
                f"{mode} was not possible for {count} file(s) ({reason}); copied them"
            )

    def abort(self) -> None:
        with contextlib.suppress(VxdsError):  # a full disk: the lines that fit are kept
            self._journal.close()

    def _keep_unwanted(self) -> None:
        """Leave the previous run's files this run does not want where they are, recorded in
        the receipt still (a later ``--prune`` removes them); one gone since is forgotten."""
        for rel in sorted(self.previous):
            if rel not in self.entries and os.path.lexists(self.out / rel):
                self.kept[rel] = self.previous[rel]
        self.outcome.kept = len(self.kept)

    def _remove_unwanted(self) -> None:
        """Files the previous run placed that this run does not want, or that failed now.

        Their paths come from the receipt and journal (checked to stay inside OUT when read);
        nothing is removed through a symlinked folder, one note per such folder."""
        refused: set[str] = set()
        for rel in sorted(self.previous):
            if rel in self.entries:
                continue
            try:
                if remove_file(self.out, rel):
                    self.outcome.removed += 1
            except SymlinkOnTheWay as exc:
                refused.add(exc.folder)
                continue
            except OSError:
                continue
            self._prune(rel)
        for folder in sorted(refused):
            self.outcome.notices.append(f"{self.out}/{folder} is a symlink; nothing was removed through it")

    def _prune(self, rel: str) -> None:
        parts = rel.split("/")[:-1]
        while parts:
            try:
                remove_folder(self.out, "/".join(parts))
            except OSError:
                return
            parts.pop()
