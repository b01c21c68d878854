"""A registry's manifest and locks read from the Git objects of a fetched commit.

The registry's layout is a vxds project's default one: ``datasets.yaml`` and ``locks/`` at
the top of the repository. Locks are read through ``vxds.locks.refs`` (format 1 or the
sharded format 2), every line checked against the header's counts and digests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from vxds.errors import NotFoundError
from vxds.git.repo import Repository
from vxds.locks.refs import revision_side, whole_lock
from vxds.locks.store import Lock
from vxds.project.config import Config
from vxds.project.manifest import Entry


class BareRepository(Repository):
    """The registry cache: a bare repository, read only through Git objects."""

    def __init__(self, bare: Path) -> None:  # no super().__init__: it refuses a bare repository
        import git

        self.repo = git.Repo(bare)
        self.root = bare.resolve()


@dataclass(frozen=True)
class RegistryLock:
    """The lock of ``entry`` in a registry at one commit."""

    entry: Entry
    lock: Lock

    def as_local(self, name: str) -> Lock:
        """The lock renamed to ``name`` (``--as``); everything else is the registry's bytes."""
        return Lock(replace(self.lock.header, name=name), self.lock.splits)


def registry_lock(bare: Path, commit: str, url: str, name: str, version: int | None) -> RegistryLock:
    """``name@version`` (no version: the highest the registry's manifest declares) at ``commit``."""
    repo = BareRepository(bare)
    config = Config(
        root=repo.root,
        manifest=repo.root / "datasets.yaml",
        locks=repo.root / "locks",
        source=None,
        pyproject=None,
    )
    side = revision_side(repo, config, commit, label=f"{url}@{commit[:12]}")
    if side.manifest is None:
        raise NotFoundError(f"registry {url} at {commit[:12]}: no readable datasets.yaml")
    entry = side.manifest.find(name, version)
    ref = side.locks.get((entry.name, entry.version))
    if ref is None or ref.header is None:
        raise NotFoundError(f"registry {url} at {commit[:12]}: no lock for {entry.key}")
    return RegistryLock(entry, whole_lock(ref))
