"""``verify --data``: start hashing the locks' large files before the checks run.

``vxds verify`` calls ``start`` before it imports the checks (the ``vxds.verify`` package
imports every one of them), so a large file's bytes are read and hashed on another thread
while Python imports, reads the manifest and checks the locks. It lives beside the command
because it must not import ``vxds.verify``; it imports only what reading a lock header
(``tomllib``) and its lines (``orjson``) needs.

Nothing here decides a finding. The lock is not checked yet, so its paths are only hashed
when they resolve inside the source folder to a regular file. The digests wait, keyed by
path with the stat the bytes had; ``check_data`` takes one only for a path it reached
through its own checks, when the file's stat is still that one.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from vxds.hashing import PREFIX, StatKey, hash_file_key

LARGE = 32 << 20  # smaller files are hashed by the check itself, where threads do not pay
NOT_ONE_FILE = ("ClinicalRecord", "DICOMSeries", "Zarr")  # as verify/data.py: built from more files


class Prefetch:
    """Digests of large files, hashed on a background thread; ``get`` waits for them."""

    def __init__(self, paths: list[str]) -> None:
        self._digests: dict[str, tuple[str, StatKey]] = {}
        self._thread = threading.Thread(target=self._hash, args=(paths,), name="vxds-prefetch", daemon=True)
        self._thread.start()

    def _hash(self, paths: list[str]) -> None:
        for path in paths:
            try:
                self._digests[path] = hash_file_key(path)
            except Exception:  # the check reads the file again and reports what it finds
                continue

    def get(self, path: str, key: StatKey) -> str | None:
        """The digest of ``path`` if it was hashed with exactly this stat ``key``."""
        self._thread.join()
        found = self._digests.get(path)
        return found[0] if found is not None and found[1] == key else None


def start(root: Path, locks: Path, default_source: str | None, specs: Sequence[str]) -> Prefetch:
    """Start hashing the large files of the locks under ``locks`` (only ``specs``' if given)."""
    names = {spec.partition("@")[0] for spec in specs}
    paths: list[str] = []
    for header in sorted(locks.glob("*/*/lock.toml")):
        if names and header.parent.parent.name not in names:
            continue
        paths.extend(_large_files(root, header, default_source))
    return Prefetch(list(dict.fromkeys(paths)))  # a file in two locks is hashed once


def _large_files(root: Path, header: Path, default_source: str | None) -> Iterator[str]:
    try:
        with open(header, "rb") as fh:
            head = tomllib.load(fh)
        url = head.get("source", {}).get("url") or default_source
        splits = sorted(head.get("splits", {}))
    except (OSError, ValueError, AttributeError):
        return
    if not isinstance(url, str) or ":" in url:  # a plain folder path only
        return
    folder = os.path.realpath(root / url)  # as the folder source and the data check resolve it
    for split in splits:
        try:
            with open(header.parent / f"resources.{split}.jsonl", "rb") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            path = _large_file(folder, line)
            if path is not None:
                yield path


def _large_file(folder: str, line: bytes) -> str | None:
    """The path of a line's file when it is large, blake3-hashed and inside ``folder``."""
    try:
        record = orjson.loads(line)
        rel, size, digest = record.get("uri") or record["id"], record.get("size"), record.get("hash")
    except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
        return None
    if record.get("type") in NOT_ONE_FILE or not isinstance(size, int) or size < LARGE:
        return None
    if not isinstance(digest, str) or not digest.startswith(PREFIX) or not isinstance(rel, str):
        return None
    path = os.path.join(folder, rel)
    real = os.path.realpath(path)
    if not real.startswith(folder + os.sep) or not os.path.isfile(real):
        return None
    return path
