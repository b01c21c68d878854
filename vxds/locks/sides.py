"""The words of ``vxds diff`` (and ``-d NAME[@V]``) turned into the two sides to compare:
a revision, ``A...B``, ``REV:NAME@V``, a dataset in the working tree, or a lock path."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from vxds.errors import NotFoundError, UsageError
from vxds.git.repo import GitError, Repository
from vxds.locks.format import HEADER
from vxds.locks.refs import LockRef, Side, file_lock, folder_lock, revision_side, worktree_side
from vxds.project.config import Config

SPEC_RE = re.compile(r"[a-z0-9_-]+(@[1-9][0-9]*)?\Z")  # a dataset name as the manifest allows


def select(side: Side, specs: list[str]) -> Side:
    """Only the locks named by ``-d NAME`` or ``-d NAME@V``."""
    if not specs:
        return side
    from vxds.project.manifest import parse_spec  # not at import: it loads YAML

    wanted = [parse_spec(spec) for spec in specs]
    locks = {
        key: ref
        for key, ref in side.locks.items()
        if any(ref.name == name and (version is None or ref.version == version) for name, version in wanted)
    }
    return replace(side, locks=locks, specs=tuple(specs))


def _one(side: Side, spec: str) -> Side:
    """The lock (or, for a bare name, every version) that ``spec`` names within ``side``."""
    from vxds.project.manifest import parse_spec

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
