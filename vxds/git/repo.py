"""Everything that talks to Git, through GitPython.

Locks at a revision are read from Git objects: nothing is checked out and the working tree
and index are never touched. Split files are streamed from ``git cat-file`` one process per
file, so two revisions can be merge-joined line by line without holding either in memory.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from vxds.errors import UsageError, VxdsError

if TYPE_CHECKING:
    import git


class GitError(VxdsError):
    """A Git repository, revision or object that cannot be used."""


@dataclass(frozen=True)
class Blob:
    """A file in a commit's tree, by its object id."""

    hexsha: str


@dataclass(frozen=True)
class CommitInfo:
    hexsha: str
    short: str
    date: str  # ISO 8601 with the author's offset
    author: str
    subject: str
    parent: str | None  # first parent


def git_dir() -> Path | None:
    """The Git directory of the repository around the current folder, or None outside one.

    A plain ``git`` call rather than GitPython: the merge driver runs once per merged file
    and must start fast.
    """
    result = subprocess.run(
        ["git", "rev-parse", "--absolute-git-dir"], capture_output=True, text=True, check=False
    )
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def merge_file(ours: str, base: str, theirs: str) -> int:
    """Git's own three-way line merge of one file into ``ours``; its exit status."""
    labels = ["-L", "ours", "-L", "base", "-L", "theirs"]
    return subprocess.run(["git", "merge-file", *labels, ours, base, theirs], check=False).returncode


class Repository:
    """A Git repository found from a folder inside its working tree."""

    def __init__(self, start: Path) -> None:
        import git

        try:
            self.repo = git.Repo(start, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(
                f"{start}: not inside a Git repository",
                hint="run it inside a Git working tree ('git init' makes one); "
                "'vxds diff A B' can still compare two lock folders by path",
            ) from None
        if self.repo.working_tree_dir is None:
            raise GitError(f"{start}: a bare repository has no working tree")
        self.root = Path(self.repo.working_tree_dir).resolve()

    def relative(self, path: Path) -> str:
        """``path`` as a '/'-separated path inside the repository ('' for its root)."""
        try:
            rel = path.resolve().relative_to(self.root)
        except ValueError:
            raise UsageError(f"{path} is outside the Git repository at {self.root}") from None
        return "" if str(rel) == "." else rel.as_posix()

    def commit(self, rev: str) -> str:
        """The full sha of the commit ``rev`` names; ``GitError`` when it names none."""
        import git

        try:
            return str(self.repo.rev_parse(f"{rev}^{{commit}}").hexsha)
        except (git.BadName, git.BadObject, ValueError, IndexError, git.GitCommandError):
            raise GitError(f"unknown revision {rev!r}", hint="give a branch, tag or commit sha") from None

    def is_commit(self, rev: str) -> bool:
        try:
            self.commit(rev)
        except GitError:
            return False
        return True

    def merge_base(self, a: str, b: str) -> str:
        bases = self.repo.merge_base(self.commit(a), self.commit(b))
        if not bases:
            raise GitError(f"{a} and {b} have no common ancestor")
        return str(bases[0].hexsha)

    def _tree(self, sha: str, path: str) -> git.Tree | None:
        tree = self.repo.commit(sha).tree
        if not path:
            return tree
        try:
            item = tree / path
        except KeyError:
            return None
        return item if item.type == "tree" else None

    def listdir(self, sha: str, path: str) -> dict[str, Blob | None]:
        """The entries of folder ``path`` at commit ``sha``: a file's Blob, None for a folder."""
        tree = self._tree(sha, path)
        if tree is None:
            return {}
        return {item.name: Blob(item.hexsha) if item.type == "blob" else None for item in tree}

    def blob(self, sha: str, path: str) -> Blob | None:
        try:
            item = self.repo.commit(sha).tree / path
        except KeyError:
            return None
        return Blob(item.hexsha) if item.type == "blob" else None

    def read(self, blob: Blob) -> bytes:
        data: bytes = self.repo.odb.stream(bytes.fromhex(blob.hexsha)).read()
        return data

    @contextmanager
    def stream(self, blob: Blob) -> Iterator[IO[bytes]]:
        """Yield a binary stream of the blob's bytes, read from its own ``git cat-file``."""
        with subprocess.Popen(
            ["git", "cat-file", "blob", blob.hexsha],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as proc:
            assert proc.stdout is not None
            try:
                yield proc.stdout
            finally:
                proc.stdout.close()
                proc.kill()

    def commits(self, paths: list[str], max_count: int | None = None) -> Iterator[CommitInfo]:
        """Commits that changed any of ``paths``, newest first (following the first parent)."""
        for commit in self.repo.iter_commits("HEAD", paths=paths, first_parent=True, max_count=max_count):
            message = commit.message if isinstance(commit.message, str) else commit.message.decode()
            yield CommitInfo(
                hexsha=commit.hexsha,
                short=commit.hexsha[:7],
                date=commit.authored_datetime.isoformat(),
                author=str(commit.author.name),
                subject=message.splitlines()[0] if message else "",
                parent=commit.parents[0].hexsha if commit.parents else None,
            )

    def set_config(self, section: str, option: str, value: str) -> bool:
        """Set a repository-local config value; return True when it changed."""
        import configparser

        with self.repo.config_reader("repository") as reader:
            try:
                current = reader.get_value(section, option)
            except (configparser.NoSectionError, configparser.NoOptionError):
                current = None
        if current == value:
            return False
        with self.repo.config_writer("repository") as writer:
            writer.set_value(section, option, value)
        return True
