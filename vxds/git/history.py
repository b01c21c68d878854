"""How a dataset's lock changed across Git history: ``vxds log``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from vxds.git.repo import CommitInfo, Repository
from vxds.locks.diff import DatasetDiff, diff_sides
from vxds.locks.refs import Side, revision_side, select
from vxds.project.config import Config
from vxds.project.manifest import parse_spec


@dataclass(frozen=True)
class LogEntry:
    commit: CommitInfo
    diffs: list[DatasetDiff]  # one per version of the dataset that the commit changed


def _empty(label: str) -> Side:
    return Side(label, {})


def log(config: Config, spec: str, *, max_count: int | None = None) -> Iterator[LogEntry]:
    """Commits that changed ``NAME`` (any version) or ``NAME@V``'s lock, newest first."""
    name, version = parse_spec(spec)
    repo = Repository(config.root)
    folder = f"{repo.relative(config.locks)}/{name}" + (f"/{version}" if version is not None else "")
    for commit in repo.commits([folder.lstrip("/")], max_count=max_count):
        new = select(revision_side(repo, config, commit.hexsha, commit.short), [spec])
        if commit.parent is not None:
            old = select(revision_side(repo, config, commit.parent, commit.parent[:7]), [spec])
        else:
            old = _empty("(none)")
        diffs = [d for d in diff_sides(old, new) if not d.empty]
        yield LogEntry(commit, diffs)
