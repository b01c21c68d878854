"""``vxds gc``: the objects of a store that no lock references, and removing them.

What is kept: every stored digest of every lock at the named revisions (by default every
branch and tag, remote-tracking branches included) and in the working tree, and the member
objects of each series manifest among them. Everything else under ``blake3/`` goes, and so
do the temporary files of writes killed a day ago or more; a dry run only says what would.
A catalog's own object store (``NAME.objects`` beside ``NAME.db``) holds every version the
catalog ever ingested, referenced or not: removing from it is refused.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vxds.errors import UsageError
from vxds.project.config import Config
from vxds.store.cas import SERIES, TOP, Store
from vxds.store.wanted import lock_refs, wanted

STALE_SECONDS = 24 * 3600  # a temporary file this old belongs to no write under way


@dataclass
class GcReport:
    store: str
    revisions: int  # how many revisions' locks were read (the working tree besides)
    kept: int = 0
    removed: list[tuple[str, int]] = field(default_factory=list)  # (digest, size)
    temporaries: int = 0  # files of writes killed more than a day ago (a folder store)
    dry_run: bool = True

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.removed)


def every_commit(config: Config) -> list[str]:
    """Every commit reachable from a branch or tag (``--all-revs``)."""
    from vxds.git.repo import Repository

    repo = Repository(config.root)
    return [commit.hexsha for commit in repo.repo.iter_commits("--all")]


def referenced(config: Config, store: Store, revs: Sequence[str], present: dict[str, int]) -> set[str]:
    """The digests the locks at ``revs`` and in the working tree need, with series members."""
    needed: dict[str, object] = {}
    for rev in [*revs, None]:
        for digest, item in wanted(lock_refs(config, [], [rev] if rev else [])).items():
            needed.setdefault(digest, item.resource.type)
    keep = set(needed)
    for digest, kind in needed.items():
        if kind in SERIES and digest in present:
            keep.update(member for _, member in store.manifest(digest))
    return keep


def gc(config: Config, store: Store, revs: Sequence[str], *, dry_run: bool = True) -> GcReport:
    """Remove (or, in a dry run, list) the objects no lock at ``revs`` references."""
    present = store.listing()
    keep = referenced(config, store, revs, present)
    report = GcReport(store.url, len(revs), dry_run=dry_run)
    report.removed = sorted((digest, size) for digest, size in present.items() if digest not in keep)
    report.kept = len(present) - len(report.removed)
    stale = _stale_temporaries(store)
    report.temporaries = len(stale)
    if not dry_run:
        _refuse_a_catalog(store)
        for digest, _ in report.removed:
            store.delete(digest)
        for path in stale:
            path.unlink(missing_ok=True)
    return report


def _refuse_a_catalog(store: Store) -> None:
    root = getattr(store.backend, "root", None)
    if isinstance(root, Path) and root.name.endswith(".objects"):
        db = root.with_name(root.name.removesuffix(".objects") + ".db")
        if db.is_file():
            raise UsageError(
                f"store {store.url!r} is the object store of the catalog {db.name}, which keeps every"
                " version it ingested: vxds gc does not remove from it"
            )


def _stale_temporaries(store: Store) -> list[Path]:
    """What killed writes left in a folder store, a day old or more (a bucket has none:
    an unfinished upload is no object)."""
    finder = getattr(store.backend, "stale_temporaries", None)
    return finder(TOP, time.time() - STALE_SECONDS) if finder is not None else []
