"""The locks a query reads: one checked lock folder per ``name@version`` (and revision).

A working-tree lock is its own folder. A lock at a Git revision is copied blob by blob from
Git's objects (``git cat-file``, no checkout) into a temporary folder laid out like the
locks folder, so both are checked by ``check_lock`` and read by DuckDB the same way.
``lock_files`` is the one place that names the files holding a split's lines.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from vxds.errors import LockError
from vxds.git.repo import Repository
from vxds.locks.format import HEADER, Header
from vxds.locks.recovery import restore_set_aside
from vxds.locks.shards import split_files
from vxds.locks.store import check_lock
from vxds.project.config import Config

VERSION_RE = re.compile(r"[1-9][0-9]*\Z")


@dataclass(frozen=True)
class LockFolder:
    """A checked lock: its header, the folder its files are in, and the revision it is at."""

    header: Header
    directory: Path
    label: str  # where it is, for messages: locks/NAME/V, or REV:locks/NAME/V
    rev: str | None = None  # None: the working tree

    @property
    def key(self) -> str:
        return f"{self.header.name}@{self.header.version}"

    def files(self, split: str) -> list[Path]:
        return [self.directory / name for name in lock_files(self.header, split)]


def lock_files(header: Header, split: str) -> list[str]:
    """The files holding ``split``'s lines in order, relative to the lock folder: the split
    file of a format-1 lock or of a split of one shard, else each shard's."""
    return split_files(header, split)


def worktree_locks(config: Config, *, cache: bool = True) -> list[LockFolder]:
    """Every lock under the project's locks folder, each checked (digests and counts); with
    ``cache``, a file the stat-keyed digests under ``.vxds/`` vouch for is not read again."""
    from vxds.locks.digest_cache import ShardDigests

    digests = ShardDigests.under(config.cache_dir) if cache else None
    try:
        return [
            LockFolder(check_lock(path, digests=digests), path, config.relative(path))
            for path in _version_dirs(config.locks)
        ]
    finally:
        if digests is not None:
            digests.save()


def _version_dirs(locks: Path) -> list[Path]:
    """``locks/<name>/<version>/`` folders holding a lock, set-aside ones put back first."""
    found = []
    for folder in sorted(locks.iterdir()) if locks.is_dir() else ():
        for aside in folder.glob(".*.old-*") if folder.is_dir() else ():
            version = aside.name[1:].partition(".old-")[0]
            if VERSION_RE.match(version):
                restore_set_aside(folder / version)
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            if VERSION_RE.match(path.name) and (path / HEADER).is_file():
                found.append(path)
    return found


def revision_locks(repo: Repository, config: Config, rev: str, into: Path) -> list[LockFolder]:
    """Every lock under the locks folder at ``rev``, copied from Git into ``into`` and checked."""
    sha = repo.commit(rev)
    locks_path = repo.relative(config.locks)
    found = []
    for name, blob in sorted(repo.listdir(sha, locks_path).items()):
        if blob is not None:
            continue
        for version, vblob in sorted(repo.listdir(sha, _join(locks_path, name)).items()):
            path = _join(locks_path, name, version)
            if vblob is None and VERSION_RE.match(version):
                folder = _copy_folder(repo, sha, path, into / name / version)
                if folder is not None:
                    found.append(LockFolder(_checked_at(folder, rev, path), folder, f"{rev}:{path}", rev))
    return found


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _copy_folder(repo: Repository, sha: str, path: str, target: Path) -> Path | None:
    """The files of the folder ``path`` at ``sha`` written to ``target``; None without a lock."""
    files = repo.listdir(sha, path)
    if files.get(HEADER) is None:
        return None
    target.mkdir(parents=True)
    for name, blob in sorted(files.items()):
        if blob is not None:
            with repo.stream(blob) as stream, open(target / name, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
    return target


def _checked_at(folder: Path, rev: str, path: str) -> Header:
    """``check_lock`` of a copied folder, its errors naming ``REV:path`` rather than the copy."""
    try:
        return check_lock(folder)
    except LockError as exc:
        message = exc.message.replace(str(folder), f"{rev}:{path}")
        raise LockError(message, hint=exc.hint) from None
