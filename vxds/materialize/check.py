"""Checking a materialized folder against its receipt and its lock (codes VX701-VX707).

``check_output(out, lock)`` returns findings, never raises for what it finds:

* VX701 error: OUT is not a folder, or has no readable receipt;
* VX702 error: the receipt was written for another lock than the one given;
* VX703 error: a file the receipt lists is missing;
* VX704 error: a file's size or content differs from the receipt;
* VX705 error: the run that wrote OUT could not place a resource;
* VX706 warning: a file in OUT that the receipt does not list;
* VX707 warning: a run was interrupted (its journal is still there).

The codes are documented with examples and fixes in ``docs/materialize.md``. The receipt
is untrusted: a path in it that leaves OUT makes it unreadable (VX701), and files are
reached without following a symlinked folder (one VX704 per such folder, nothing read
below it). Only the last component may be a symlink (``--mode symlink`` places those);
the size of what it points to is never shown.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from blake3 import blake3

from vxds.hashing import PREFIX
from vxds.locks.store import Lock
from vxds.materialize.inside import SymlinkOnTheWay, is_link, open_file
from vxds.materialize.receipt import JOURNAL, OWN, Receipt, ReceiptError, read_receipt
from vxds.verify.findings import ERROR, WARNING, Finding


def _files_on_disk(out: Path) -> set[str]:
    """Every file and symlink under ``out`` (POSIX relative paths), vxds' own files left out."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(out):
        rel = Path(folder).relative_to(out).as_posix()
        prefix = "" if rel == "." else rel + "/"
        if not prefix:
            dirs[:] = [d for d in dirs if d not in OWN]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            if prefix or name not in OWN:
                found.add(prefix + name)
    return found


def check_output(out: Path, lock: Lock | None = None, *, rehash: bool = True) -> list[Finding]:
    """Findings about ``out`` against its receipt and, when given, the lock it should hold.

    ``rehash`` reads every file again (the default); without it sizes are compared only.
    """
    shown = out.as_posix()
    if not out.is_dir():
        return [Finding("VX701", ERROR, f"{shown} is not a folder", file=shown)]
    try:
        receipt = read_receipt(out)
    except ReceiptError as exc:
        return [Finding("VX701", ERROR, str(exc), file=shown)]
    if receipt is None:
        return [
            Finding(
                "VX701", ERROR, f"{shown} has no receipt; it was not written by vxds materialize", file=shown
            )
        ]
    findings = _against_lock(shown, receipt, lock)
    findings += _files(out, shown, receipt, rehash)
    for failure in receipt.failed:
        what = _one_line(str(failure.get("resource") or failure.get("path")))
        message = _one_line(str(failure.get("message")))
        findings.append(Finding("VX705", ERROR, f"{what} was not placed: {message}", receipt.dataset, shown))
    if os.path.lexists(out / JOURNAL):
        findings.append(
            Finding(
                "VX707", WARNING, "a materialize run into this folder was interrupted", receipt.dataset, shown
            )
        )
    return findings


def _against_lock(shown: str, receipt: Receipt, lock: Lock | None) -> list[Finding]:
    if lock is None or lock.digest == receipt.lock_digest:
        return []
    return [
        Finding(
            "VX702",
            ERROR,
            f"{shown} holds lock {receipt.lock_digest} ({receipt.dataset or 'lockfiles'}),"
            f" not {lock.digest} ({lock.header.key})",
            lock.header.key,
            shown,
        )
    ]


def _one_line(text: str) -> str:
    """``text`` with line breaks and control characters escaped (it came from a file)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _files(out: Path, shown: str, receipt: Receipt, rehash: bool) -> list[Finding]:
    findings = []
    dataset = receipt.dataset
    symlinked: dict[str, int] = {}
    for rel, entry in sorted(receipt.files.items()):
        where = f"{shown}/{rel}"
        try:
            problem = _differs(out, rel, entry.size, entry.hash, rehash)
        except SymlinkOnTheWay as exc:
            symlinked[exc.folder] = symlinked.get(exc.folder, 0) + 1
            continue
        except OSError:
            findings.append(Finding("VX703", ERROR, f"{rel} is missing", dataset, where))
            continue
        if problem is not None:
            findings.append(Finding("VX704", ERROR, f"{rel} {problem}", dataset, where))
    for folder, count in sorted(symlinked.items()):
        message = f"{folder} is a symlink; the {count} file(s) the receipt lists below it were not read"
        findings.append(Finding("VX704", ERROR, message, dataset, f"{shown}/{folder}"))
    for rel in sorted(_files_on_disk(out) - set(receipt.files)):
        findings.append(Finding("VX706", WARNING, f"{rel} is not in the receipt", dataset, f"{shown}/{rel}"))
    return findings


def _differs(out: Path, rel: str, size: int, digest: str, rehash: bool) -> str | None:
    """How ``OUT/rel`` differs from the receipt, or None; ``OSError`` when it cannot be read."""
    fd = open_file(out, rel, follow_last=True)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "is not a file"
        if st.st_size != size:
            if is_link(out, rel):  # what it points to may be anything: its size is not shown
                return "is a symlink to something else than the receipt says"
            return f"has {st.st_size} bytes, the receipt says {size}"
        if rehash and _hash_fd(fd) != digest:
            return "does not match its hash in the receipt"
        return None
    finally:
        os.close(fd)


def _hash_fd(fd: int) -> str:
    hasher = blake3(max_threads=blake3.AUTO)
    while block := os.read(fd, 8 << 20):
        hasher.update(block)
    return PREFIX + hasher.hexdigest()


def receipt_dataset(out: Path) -> str | None:
    """The ``name@version`` a folder's receipt names (to find its lock), if any."""
    try:
        receipt = read_receipt(out)
    except ReceiptError:
        return None
    return receipt.dataset if receipt is not None else None
