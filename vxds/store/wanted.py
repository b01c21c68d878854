"""Which bytes the locks need: every stored resource of the chosen locks, once per digest.

Locks are read through ``vxds.locks.refs`` (the working tree, or Git revisions read from
Git's objects), so any lock format those read is read here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vxds.errors import UsageError
from vxds.locks.refs import LockRef, Side, revision_side, worktree_side
from vxds.locks.sides import select
from vxds.project.config import Config
from vxds.resource import Resource
from vxds.store.cas import stored_digest


@dataclass(frozen=True)
class Wanted:
    """One digest a lock needs: the first resource (and lock) found with it."""

    digest: str
    resource: Resource
    source: str | None  # the lock's source URL
    lock: str  # name@version, for messages


def lock_refs(config: Config, specs: Sequence[str], revs: Sequence[str]) -> list[LockRef]:
    """The locks ``specs`` name (every lock when there are none) in the working tree, or at
    each of ``revs`` when any are given."""
    sides = [worktree_side(config)] if not revs else [_revision(config, rev) for rev in revs]
    refs: list[LockRef] = []
    for side in sides:
        chosen = select(side, list(specs))
        if specs and not chosen.locks:
            raise UsageError(f"{side.label}: no lock for {', '.join(specs)}")
        refs.extend(ref for _, ref in sorted(chosen.locks.items(), key=lambda item: str(item[0])))
    return refs


def _revision(config: Config, rev: str) -> Side:
    from vxds.git.repo import Repository

    return revision_side(Repository(config.root), config, rev)


def every_ref_name(config: Config) -> list[str]:
    """Every branch and tag of the repository (remote-tracking branches included)."""
    from vxds.git.repo import Repository

    repo = Repository(config.root)
    return sorted({ref.path for ref in repo.repo.refs if not ref.path.endswith("/HEAD")})


def resources_of(ref: LockRef) -> Iterable[Resource]:
    for split in ref.splits:
        with ref.lines(split) as lines:
            for line in lines:
                yield Resource.from_line(line)


def wanted(refs: Iterable[LockRef]) -> dict[str, Wanted]:
    """Each stored digest the locks need, with the resource that first needs it."""
    found: dict[str, Wanted] = {}
    for ref in refs:
        source = ref.header.source if ref.header is not None else None
        for resource in resources_of(ref):
            digest = stored_digest(resource)
            if digest is not None and digest not in found:
                found[digest] = Wanted(digest, resource, source, ref.key)
    return found
