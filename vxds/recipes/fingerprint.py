"""A recipe's fingerprint: what its last run read, so that an unchanged recipe is not run again.

``record`` keeps, after a run whose lock is on disk, everything the run depended on: the
script's digest, each project module it imported and each other file it opened for reading
(path, stat key and digest), each folder it listed (path, stat key and the digest of its
names), the params and entry digests, vxds' lock-format version and version, the source's
listing digest and the lock's digest with the stat keys of its files. ``stale`` answers
whether any of it changed, naming the first difference, or None when nothing did and the
recipe need not run. Docs: docs/recipes.md, "When a recipe is skipped".

Stat keys are trusted as git trusts its index: a file or folder modified less than
``RACY_NS`` before the run started could have changed again within one tick of a coarse
clock, so its stamp has no digest and it never vouches for itself (the next run reruns).
A file whose key changed is hashed again, so a touch that leaves the bytes alone does not
rerun. The fingerprint is one file per dataset version under ``.vxds/recipes/``, written
atomically; a missing or unreadable one means the recipe runs.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import vxds
from vxds.fs import JsonCache, files_under
from vxds.hashing import digest_bytes, digest_json, hash_file
from vxds.locks.format import FORMAT
from vxds.project.config import Config
from vxds.recipes.audit import Reads
from vxds.sources import Source
from vxds.sources.folder.cache import RACY_NS

VERSION = 1
Stamp = list[Any]  # [path, key or None (absent, or not a regular file/folder), digest or None]

_INSTALLED = tuple(
    {os.path.join(p, "") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
)
_VXDS = os.path.join(os.path.dirname(os.path.abspath(vxds.__file__)), "")


def fingerprint_path(cache_dir: Path, name: str, version: int) -> Path:
    return cache_dir / "recipes" / f"{name}@{version}.json"


def forget(path: Path) -> None:
    """Remove a fingerprint; one that cannot be removed is left (it never outlives its lock:
    the lock's stat keys are in it)."""
    with suppress(OSError):
        path.unlink(missing_ok=True)


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _file_key(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return _key(st) if stat.S_ISREG(st.st_mode) else None


def _folder_key(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_ino] if stat.S_ISDIR(st.st_mode) else None


def _file_digest(path: str) -> str | None:
    try:
        return hash_file(path)
    except (OSError, ValueError):
        return None


def _names_digest(path: str) -> str | None:
    try:
        names = sorted(os.listdir(path))
    except (OSError, ValueError):
        return None
    return digest_bytes("\n".join(names).encode("utf-8", "surrogateescape"))


def file_stamp(path: str, racy: int) -> Stamp:
    """A file's stamp; with no digest when it was modified after ``racy`` (ns)."""
    key = _file_key(path)
    digest = _file_digest(path) if key is not None and key[1] < racy else None
    return [path, key, digest]


def folder_stamp(path: str, racy: int) -> Stamp:
    key = _folder_key(path)
    digest = _names_digest(path) if key is not None and key[0] < racy else None
    return [path, key, digest]


def file_unchanged(stamp: Stamp) -> bool:
    path, key, digest = stamp
    now = _file_key(path)
    if key is None or now is None:
        return key is None and now is None  # absent then and now
    if digest is None:
        return False  # it was too recent to vouch for itself
    return bool(now == key or _file_digest(path) == digest)


def folder_unchanged(stamp: Stamp) -> bool:
    path, key, digest = stamp
    now = _folder_key(path)
    if key is None or now is None:
        return key is None and now is None
    if digest is None:
        return False
    return bool(now == key or _names_digest(path) == digest)


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path.startswith(folder) for folder in folders)


@dataclass(frozen=True)
class Context:
    """What decides which recorded paths a fingerprint keeps: the project's root, the local
    cache (vxds' own state) and the source folder (its listing digest covers what is in it)."""

    root: Path
    cache_dir: Path
    source_root: Path | None

    def ignored(self, path: str) -> bool:
        """Paths vxds or Python itself owns, and source files the listing digest covers."""
        if "__pycache__" in path or _under(path, (*_INSTALLED, _VXDS, os.path.join(self.cache_dir, ""))):
            return True
        if self.source_root is None:
            return False
        real, top = os.path.realpath(path), os.path.realpath(self.source_root)
        if real == top:
            return True
        if not real.startswith(os.path.join(top, "")):
            return False
        return not any(part.startswith(".") for part in os.path.relpath(real, top).split(os.sep))

    def project_file(self, path: str | None) -> bool:
        """A module file of the project: below its root, not installed, not vxds itself."""
        if path is None or not path.startswith(os.path.join(str(self.root), "")):
            return False
        return not _under(path, (*_INSTALLED, _VXDS))


def context_of(config: Config, source: Source | None) -> Context:
    """Which paths a fingerprint of a recipe reading ``source`` keeps."""
    root = getattr(source, "root", None)
    return Context(config.root, config.cache_dir, root if isinstance(root, Path) else None)


def listing_digest(source: Source, *, saved_before: int | None = None) -> str | None:
    """A source's listing digest: only sources with one (a folder) let a recipe be skipped."""
    method = getattr(source, "listing_digest", None)
    if method is None:
        return None
    found = method(saved_before=saved_before)
    return found if isinstance(found, str) else None


def _module_files(context: Context) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and context.project_file(os.path.abspath(path)):
            found[name] = os.path.abspath(path)
    return found


@contextmanager
def fresh_modules(context: Context, script: Path) -> Iterator[dict[str, str]]:
    """Run a recipe with the project's modules out of ``sys.modules``, so that each of its
    imports is seen (and so is any other module, not installed, named like a neighbour of the
    script, which its import would otherwise take from an earlier recipe); the modules taken
    out are put back afterwards, so the caller's imports are as they were. Yields the files
    of the project modules loaded by the end of the run, by module name."""
    try:
        neighbours = {name.removesuffix(".py") for name in os.listdir(script.parent)}
    except OSError:
        neighbours = set()
    taken: dict[str, ModuleType] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        path = os.path.abspath(path)
        mine = name.partition(".")[0] in neighbours and not _under(path, (*_INSTALLED, _VXDS))
        if mine or context.project_file(path):
            taken[name] = sys.modules.pop(name)
    loaded: dict[str, str] = {}
    try:
        yield loaded
    finally:
        loaded.update(_module_files(context))
        sys.modules.update(taken)


def vxds_versions() -> list[Any]:
    """vxds' lock format and version, and Python's: any change makes every recipe run again."""
    return [FORMAT, vxds.__version__, sys.version]


def _lock_stamps(directory: Path, racy: int) -> list[Stamp] | None:
    """Key-only stamps of the lock folder and every file in it; None when one is too recent
    to trust (the lock was written just now: the next run checks it by running)."""
    try:
        files = files_under(directory)
    except OSError:
        return None
    folders = sorted({str(directory)} | {str(directory / f).rpartition("/")[0] for f in files})
    keys = [(path, _folder_key(path)) for path in folders]
    keys += [(str(directory / f), _file_key(str(directory / f))) for f in files]
    if any(key is None or key[-2] >= racy for _, key in keys):  # [.., mtime_ns, inode]
        return None
    return [[path, key, None] for path, key in keys]


def _lock_intact(stamps: list[Stamp]) -> bool:
    for path, key, _ in stamps:
        now = _folder_key(path) if len(key) == 2 else _file_key(path)
        if now != key:
            return False
    return True


@dataclass(frozen=True)
class Run:
    """One run of a recipe, as ``record`` needs it."""

    script: Path
    params: Mapping[str, Any]
    entry_digest: str
    source: Callable[[], str | None]  # the source's listing digest as the run saw it (None: none)
    reads: Reads
    started: int  # time.time_ns() before the recipe ran
    context: Context
    modules: Mapping[str, str]  # project modules loaded by the end of the run -> their files


def record(path: Path, run: Run, *, lock_digest: str, splits: Mapping[str, int], lock_dir: Path) -> bool:
    """Write the fingerprint of ``run``; False (and any old one removed) when the run cannot
    be repeated by skipping it: unrepeatable, or something it depends on was too recent."""
    racy, context = run.started - RACY_NS, run.context
    lock = _lock_stamps(lock_dir, racy)
    source = run.source() if lock is not None else None
    if lock is None or source is None:
        forget(path)
        return False
    data: dict[str, Any] = {
        "vxds": vxds_versions(),
        "unrepeatable": run.reads.unrepeatable,
        "entry": run.entry_digest,
        "params": digest_json(dict(run.params)),
        "script": file_stamp(str(run.script), racy),
        "modules": [
            [name, *file_stamp(file, racy)]
            for name, file in sorted(run.modules.items())  # what `import` events name, and more
        ],
        "opened": [file_stamp(p, racy) for p in sorted(run.reads.opened) if not context.ignored(p)],
        "listed": [folder_stamp(p, racy) for p in sorted(run.reads.listed) if not context.ignored(p)],
        "source": source,
        "lock": {"dir": str(lock_dir), "digest": lock_digest, "splits": dict(splits), "files": lock},
        "recorded": time.time_ns(),
    }
    cache = JsonCache(path, VERSION)
    cache.data = data
    cache.mark()
    return cache.save()


@dataclass(frozen=True)
class Recorded:
    """A fingerprint read back: the lock it vouches for, and its raw data."""

    digest: str
    splits: dict[str, int]
    data: dict[str, Any]


def load(path: Path) -> Recorded | None:
    data = JsonCache(path, VERSION).data
    try:
        lock = data["lock"]
        return Recorded(str(lock["digest"]), {str(k): int(v) for k, v in lock["splits"].items()}, data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def stale(
    recorded: Recorded,
    *,
    script: Path,
    params: Mapping[str, Any],
    entry_digest: str,
    source: Callable[[], str | None],
    lock_dir: Path,
) -> str | None:
    """Why the recipe must run again (the first difference found), or None when nothing it
    read changed and the lock in ``lock_dir`` is the one it wrote. ``source`` is called (last
    but one, it is the costly check) for the source's listing digest now."""
    data = recorded.data
    try:
        return _stale_inputs(data, script, params, entry_digest) or _stale_world(data, source, lock_dir)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return "its fingerprint could not be read"


def _stale_inputs(
    data: dict[str, Any], script: Path, params: Mapping[str, Any], entry_digest: str
) -> str | None:
    if data["unrepeatable"] is not None:
        return f"its last run did what cannot be repeated ({data['unrepeatable']})"
    if data["vxds"] != vxds_versions():
        return "vxds' lock format or version, or Python's, changed"
    if data["params"] != digest_json(dict(params)):
        return "its params changed"
    if data["entry"] != entry_digest:
        return "its manifest entry changed"
    if data["script"][0] != str(script) or not file_unchanged(data["script"]):
        return "its script changed"
    for name, *stamp in data["modules"]:
        if not file_unchanged(stamp):
            return f"module {name} changed"
    return None


def _stale_world(data: dict[str, Any], source: Callable[[], str | None], lock_dir: Path) -> str | None:
    for stamp in data["opened"]:
        if not file_unchanged(stamp):
            return f"{stamp[0]}, which it read, changed"
    for stamp in data["listed"]:
        if not folder_unchanged(stamp):
            return f"the listing of {stamp[0]}, which it read, changed"
    if data["source"] != source():
        return "its source changed"
    if data["lock"]["dir"] != str(lock_dir) or not _lock_intact(data["lock"]["files"]):
        return "the lock on disk is not the one it wrote"
    return None
