"""Published locks must not change: ``vxds verify --base REV``.

A ``name@version`` whose lock exists at ``REV`` (say ``origin/main``) is published: people
have trained on it. If the working tree's lock of that version holds other resources, or
comes from another recipe or params, the change needs a new version instead. A lock that
only records a newer source snapshot (or a Git merge) with the same resources is not a
change of the dataset. Reads Git objects and lock headers only; runs no recipe code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vxds.git.repo import Repository
from vxds.locks.diff import diff_refs
from vxds.locks.format import Header
from vxds.locks.refs import LockRef, revision_side, worktree_side
from vxds.project.config import Config
from vxds.report.text import change_words


@dataclass(frozen=True)
class PublishedChange:
    key: str  # name@version
    path: str  # the lock folder, relative to the project
    message: str


def _what_changed(old: Header, new: Header) -> list[str]:
    what = []
    if dict(old.splits) != dict(new.splits):
        what.append("its resources")
    if old.recipe_digest != new.recipe_digest:
        what.append("its recipe or params")
    if old.entry_digest != new.entry_digest:
        what.append("its manifest entry")
    return what


def published_changes(config: Config, rev: str, keys: Iterable[str] | None = None) -> list[PublishedChange]:
    """Locks published at ``rev`` that the working tree changed or removed."""
    repo = Repository(config.root)
    base = revision_side(repo, config, rev)
    now = worktree_side(config)
    wanted = set(keys) if keys is not None else None
    out = []
    for key, old in sorted(base.locks.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if wanted is not None and old.key not in wanted:
            continue
        path = old.label.partition(":")[2]
        new = now.locks.get(key)
        if new is None:
            message = f"{old.key} is published at {rev} and its lock was removed"
            out.append(PublishedChange(old.key, path, message))
            continue
        assert old.header is not None
        assert new.header is not None
        what = _what_changed(old.header, new.header)
        if "its resources" in what and not diff_refs(old, new).changes:
            what.remove("its resources")  # the same resources in another lock format (1 -> 2)
        if what:
            out.append(PublishedChange(old.key, path, _message(old, new, rev, what)))
    return out


def _message(old: LockRef, new: LockRef, rev: str, what: list[str]) -> str:
    counts = diff_refs(old, new).counts() if "its resources" in what else None
    detail = f" ({change_words(counts)})" if counts is not None else ""
    return (
        f"{old.key} is published at {rev} and {' and '.join(what)} changed{detail}; "
        f"lock the change as a new version ({old.name}@{(old.version or 0) + 1}) instead"
    )
