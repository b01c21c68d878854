"""Is a lock already published on the default branch's upstream? ``vxds lock`` warns before
it rewrites such a lock.

The upstream is the first of ``origin/HEAD``, ``origin/main`` and ``origin/master`` that names
a commit (what a clone from a host has); a repository without such a remote has none, and
nothing is published as far as ``vxds lock`` knows (``vxds verify --base REV`` names it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vxds.errors import VxdsError
from vxds.locks.format import HEADER
from vxds.project.config import Config

if TYPE_CHECKING:
    from vxds.git.repo import Repository

UPSTREAMS = ("origin/HEAD", "origin/main", "origin/master")


@dataclass
class Upstream:
    """The upstream commit, looked up once per run and only when a lock is to be rewritten."""

    config: Config
    _found: tuple[Repository, str, str] | None = field(default=None, init=False)  # repo, sha, ref
    _looked: bool = field(default=False, init=False)

    def _lookup(self) -> tuple[Repository, str, str] | None:
        if not self._looked:
            self._looked = True
            from vxds.git.repo import Repository

            try:
                repo = Repository(self.config.root)
            except VxdsError:  # not a Git repository: nothing is published
                return None
            ref = next((r for r in UPSTREAMS if repo.is_commit(r)), None)
            self._found = None if ref is None else (repo, repo.commit(ref), ref)
        return self._found

    def warning(self, name: str, version: int) -> str | None:
        """Why rewriting ``name@version``'s lock is a mistake, when it is published upstream."""
        found = self._lookup()
        if found is None:
            return None
        repo, sha, ref = found
        folder = f"{repo.relative(self.config.locks)}/{name}/{version}".lstrip("/")
        if repo.blob(sha, f"{folder}/{HEADER}") is None:
            return None
        return (
            f"{name}@{version} is published at {ref} and this rewrites its lock; to keep it, "
            f"'git checkout {ref} -- {folder}' and 'vxds bump {name}' (the change becomes "
            f"{name}@{version + 1})"
        )
