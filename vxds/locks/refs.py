"""Locks to compare, wherever they are: the working tree, a Git revision, or a path.

A ``LockRef`` is one lock that has not been read yet: its header (checked) and a way to
stream each split's lines. The lines are checked against the header's count and digest as
they are read, so a corrupt lock is an error even though it is never held in memory.
A ``Side`` is a set of them, one per ``name@version``, with the manifest that goes with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from vxds.errors import LockError, ManifestError, NotFoundError, UsageError
from vxds.git.repo import Blob, GitError, Repository
from vxds.locks.format import HEADER, CorruptLock, Header, Problem, parse_header
from vxds.locks.recovery import restore_set_aside
from vxds.locks.shards import is_lock_file, listed_files
from vxds.locks.splits import SPLIT_FILE_RE, Split, line_problems, open_lock_file
from vxds.locks.store import Lock, lock_identity, read_header, settled
from vxds.locks.stream_checks import check_header, checked_lines
from vxds.project.config import Config
from vxds.project.manifest import Entry, Manifest, load_manifest, parse_spec

VERSION_RE = re.compile(r"[1-9][0-9]*\Z")
SPEC_RE = re.compile(r"[a-z0-9_-]+(@[1-9][0-9]*)?\Z")  # a dataset name as the manifest allows

Lines = Callable[[str], AbstractContextManager[Iterator[bytes]]]


@dataclass(frozen=True)
class LockRef:
    """One lock to read: ``header`` is None for a bare ``resources.<split>.jsonl``."""

    name: str
    version: int | None
    label: str  # where it is, for messages: a path, or REV:path
    header: Header | None
    splits: tuple[str, ...]
    lines: Lines = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass
class Side:
    """One side of a comparison."""

    label: str
    locks: dict[tuple[str, int | None], LockRef]
    manifest: Manifest | None = None
    single: bool = False  # one lock named on purpose: paired with the other side's one lock
    commit: str | None = None  # a revision's commit sha
    worktree: bool = False  # the project's own working tree (not a path given on the command line)
    specs: tuple[str, ...] = ()  # the NAME[@V] it was narrowed to ('select'); () for all

    def entry(self, name: str, version: int | None) -> Entry | None:
        if self.manifest is None or version is None:
            return None
        return next((e for e in self.manifest if e.name == name and e.version == version), None)


# --- the working tree and paths ----------------------------------------------------------


def _folder_header(directory: Path) -> Header:
    header, claimed = read_header(directory)
    files = {p.name for p in directory.iterdir() if is_lock_file(p.name)}
    check_header(header, claimed, files, directory)
    return header


def folder_lock(directory: Path, label: str) -> LockRef:
    """The lock in a folder holding ``lock.toml``.

    Its lines are read later, split by split: if a ``vxds lock`` in another process swaps
    the folder in between, reading them says so rather than calling the lock corrupt.
    """
    identity = lock_identity(directory)
    header = settled(directory, lambda: _folder_header(directory))

    def file_lines(name: str, listed: tuple[int, str]) -> Iterator[bytes]:
        with open_lock_file(directory / name) as fh:
            yield from checked_lines(fh, f"{label}/{name}", listed)

    @contextmanager
    def lines(split: str) -> Iterator[Iterator[bytes]]:
        chained = _chained(file_lines, listed_files(header, split))
        try:
            yield chained
        except (CorruptLock, OSError):
            if lock_identity(directory) != identity:
                raise LockError(
                    f"{label}: the lock changed while it was read (another 'vxds lock' is writing it)",
                    hint="run the command again",
                ) from None
            raise
        finally:
            chained.close()  # closes the file being read, if the reader stopped early

    return LockRef(header.name, header.version, label, header, tuple(sorted(header.splits)), lines)


def file_lock(path: Path, label: str) -> LockRef:
    """A bare ``resources.<split>.jsonl``: one split, no header; named after its folder."""
    match = SPLIT_FILE_RE.match(path.name)
    if match is None:
        raise UsageError(f"{label}: not a lock folder or a resources.<split>.jsonl file")
    split = match.group(1)

    @contextmanager
    def lines(_: str) -> Iterator[Iterator[bytes]]:
        with open_lock_file(path) as fh:
            yield checked_lines(fh, label, None)

    return LockRef(path.resolve().parent.name or "lock", None, label, None, (split,), lines)


def worktree_side(config: Config, label: str = "working tree") -> Side:
    """Every lock under the project's locks folder, with the project's manifest."""
    locks: dict[tuple[str, int | None], LockRef] = {}
    if config.locks.is_dir():
        for folder in sorted(config.locks.iterdir()):
            _restore_set_aside(folder)
            for version_dir in sorted(folder.iterdir()) if folder.is_dir() else ():
                if VERSION_RE.match(version_dir.name) and (version_dir / HEADER).is_file():
                    ref = folder_lock(version_dir, config.relative(version_dir))
                    locks[(ref.name, ref.version)] = ref
    try:
        manifest = load_manifest(
            config.manifest, default_source=config.source, require_scripts=False, cache_dir=config.cache_dir
        )
    except ManifestError:
        manifest = None  # leak checks then use the default held-out splits and no group_by
    return Side(label, locks, manifest, worktree=True)


def _restore_set_aside(folder: Path) -> None:
    """Put back the locks of one dataset that a killed ``vxds lock`` left aside."""
    for aside in folder.glob(".*.old-*") if folder.is_dir() else ():
        version = aside.name[1:].partition(".old-")[0]
        if VERSION_RE.match(version):
            restore_set_aside(folder / version)


# --- a Git revision ----------------------------------------------------------------------


def revision_side(repo: Repository, config: Config, rev: str, label: str | None = None) -> Side:
    """Every lock under the locks folder at ``rev``, read from Git objects."""
    sha = repo.commit(rev)
    shown = label or rev
    locks_path = repo.relative(config.locks)
    locks: dict[tuple[str, int | None], LockRef] = {}
    for name, blob in sorted(repo.listdir(sha, locks_path).items()):
        if blob is not None:
            continue
        for version, vblob in sorted(repo.listdir(sha, _join(locks_path, name)).items()):
            if vblob is None and VERSION_RE.match(version):
                path = _join(locks_path, name, version)
                files = repo.listdir(sha, path)
                if HEADER in files:
                    ref = _revision_lock(repo, files, f"{shown}:{path}")
                    locks[(ref.name, ref.version)] = ref
    return Side(shown, locks, _revision_manifest(repo, config, sha), commit=sha)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _revision_lock(repo: Repository, files: dict[str, Blob | None], label: str) -> LockRef:
    where = Path(label)
    header_blob = files[HEADER]
    assert header_blob is not None
    try:
        text = repo.read(header_blob).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptLock(where, [Problem(f"cannot read {HEADER}: {exc}", kind="unreadable")]) from None
    header, claimed = parse_header(text, where)
    blobs = {name: b for name, b in files.items() if b is not None and is_lock_file(name)}
    check_header(header, claimed, set(blobs), where)

    def file_lines(name: str, listed: tuple[int, str]) -> Iterator[bytes]:
        with repo.stream(blobs[name]) as stream:
            yield from checked_lines(stream, f"{label}/{name}", listed)

    @contextmanager
    def lines(split: str) -> Iterator[Iterator[bytes]]:
        chained = _chained(file_lines, listed_files(header, split))
        try:
            yield chained
        finally:
            chained.close()  # closes the blob being read, if the reader stopped early

    return LockRef(header.name, header.version, label, header, tuple(sorted(header.splits)), lines)


def _chained(
    file_lines: Callable[[str, tuple[int, str]], Iterator[bytes]], files: list[tuple[str, tuple[int, str]]]
) -> Generator[bytes, None, None]:
    """The lines of a split's files one after another, each file checked as it ends."""
    for name, listed in files:
        yield from file_lines(name, listed)


def _revision_manifest(repo: Repository, config: Config, sha: str) -> Manifest | None:
    blob = repo.blob(sha, repo.relative(config.manifest))
    if blob is None:
        return None
    try:
        text = repo.read(blob).decode("utf-8")
        return load_manifest(config.manifest, default_source=config.source, require_scripts=False, text=text)
    except (UnicodeDecodeError, ManifestError):
        return None


# --- what the user typed -----------------------------------------------------------------


def select(side: Side, specs: list[str]) -> Side:
    """Only the locks named by ``-d NAME`` or ``-d NAME@V``."""
    if not specs:
        return side
    wanted = [parse_spec(spec) for spec in specs]
    locks = {
        key: ref
        for key, ref in side.locks.items()
        if any(ref.name == name and (version is None or ref.version == version) for name, version in wanted)
    }
    return replace(side, locks=locks, specs=tuple(specs))


def _one(side: Side, spec: str) -> Side:
    """The lock (or, for a bare name, every version) that ``spec`` names within ``side``."""
    name, version = parse_spec(spec)
    chosen = select(side, [spec])
    if not chosen.locks:
        what = f"{name}@{version}" if version is not None else f"dataset {name!r}"
        raise NotFoundError(f"{side.label}: no lock for {what}")
    chosen.single = version is not None
    chosen.label = f"{side.label}:{spec}" if side.label != "working tree" else spec
    return chosen


@dataclass
class SideFinder:
    """Turns the words of ``vxds diff`` into sides."""

    config: Config
    _repo: Repository | None = None
    _worktree: Side | None = None

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = Repository(self.config.root)
        return self._repo

    def worktree(self) -> Side:
        """The working tree's locks, read once however many words name them."""
        if self._worktree is None:
            self._worktree = worktree_side(self.config)
        return self._worktree

    def revision(self, rev: str) -> Side:
        return revision_side(self.repo, self.config, rev)

    def side(self, word: str) -> Side:
        """A revision, ``REV:name@V``, ``name@V`` or ``name`` in the working tree, or a path."""
        if ":" in word and not Path(word).exists():
            rev, _, spec = word.rpartition(":")
            if rev and spec and _looks_like_spec(spec):
                return _one(self.revision(rev), spec)
        path = Path(word)
        if path.exists() and (path.is_file() or (path / HEADER).is_file()):
            label = word.rstrip("/")
            return Side(label, _path_locks(path, label), self.worktree().manifest, single=True)
        if self._is_dataset(word):
            return _one(self.worktree(), word)
        return self.revision(word)

    def _is_dataset(self, word: str) -> bool:
        """Whether ``word`` names a dataset (``name@V``, or a name that is not also a revision).

        Raises ``UsageError`` when it is neither, or ambiguous.
        """
        if not _looks_like_spec(word):
            return False
        if "@" in word:
            return True
        is_dataset = self._dataset_exists(word)
        try:
            is_rev = self.repo.is_commit(word)
        except GitError:
            if is_dataset:
                return True
            raise
        if is_dataset and is_rev:
            raise UsageError(
                f"{word!r} is both a dataset and a Git revision",
                hint=f"write {word}@VERSION for the dataset, or {word}^{{commit}} for the revision",
            )
        if not is_dataset and not is_rev:
            raise UsageError(
                f"{word!r} is not a Git revision, a dataset, or a lock path",
                hint="give a branch, tag or sha, NAME@VERSION, REV:NAME@VERSION, or a lock folder",
            )
        return is_dataset

    def _dataset_exists(self, name: str) -> bool:
        return (self.config.locks / name).is_dir()

    def sides(self, words: list[str]) -> tuple[Side, Side]:
        """OLD and NEW from zero, one or two words (``A...B`` and ``A..B`` as one word)."""
        if len(words) > 2:
            raise UsageError("give at most two things to compare: OLD and NEW")
        if not words:
            return self.revision("HEAD"), self.worktree()
        if len(words) == 1:
            word = words[0]
            for sep in ("...", ".."):
                if sep in word and not Path(word).exists():
                    a, _, b = word.partition(sep)
                    a, b = a or "HEAD", b or "HEAD"
                    if sep == "...":
                        base = self.repo.merge_base(a, b)
                        return self.revision_labelled(base, f"merge-base({a}, {b})"), self.revision(b)
                    return self.revision(a), self.revision(b)
            if ":" not in word and not Path(word).exists() and self._is_dataset(word):
                # like 'git diff PATH': this dataset's lock at HEAD against the working tree
                return _one(self.revision("HEAD"), word), _one(self.worktree(), word)
            old = self.side(word)
            if old.single:
                raise UsageError(
                    f"{word!r} names one lock; say what to compare it with",
                    hint=f"vxds diff {word} OTHER",
                )
            return old, self.worktree()
        return self.side(words[0]), self.side(words[1])

    def revision_labelled(self, rev: str, label: str) -> Side:
        return revision_side(self.repo, self.config, rev, label)


def _looks_like_spec(word: str) -> bool:
    return SPEC_RE.match(word) is not None


def _path_locks(path: Path, label: str) -> dict[tuple[str, int | None], LockRef]:
    ref = file_lock(path, label) if path.is_file() else folder_lock(path, label)
    return {(ref.name, ref.version): ref}


def lock_at(config: Config, rev: str, spec: str) -> Lock:
    """The whole lock of ``NAME@V`` (or ``NAME``: its highest version) at a Git revision."""
    name, version = parse_spec(spec)
    side = revision_side(Repository(config.root), config, rev)
    refs = [r for (n, v), r in side.locks.items() if n == name and (version is None or v == version)]
    if not refs:
        raise NotFoundError(f"{rev}: no lock for {spec}")
    ref = max(refs, key=lambda r: r.version or 0)
    assert ref.header is not None
    splits = {}
    problems: list[Problem] = []
    for split in ref.splits:
        with ref.lines(split) as lines:
            splits[split] = Split.from_lines(list(lines))
        for file, chunks in splits[split].files(split):  # as read_lock(deep=True)
            problems += line_problems(split, b"".join(chunks), file)
    if problems:
        raise CorruptLock(Path(ref.label), problems)
    return Lock(ref.header, splits)
