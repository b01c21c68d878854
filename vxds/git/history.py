"""How a dataset's lock changed across Git history: ``vxds log``.

Each version is compared with the same version at the commit's first parent (a version new
in the commit: with nothing, so every resource is added), whether the dataset is named
alone or with its version, so ``vxds log NAME`` and ``vxds log NAME@V`` agree on a commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from vxds.errors import NotFoundError
from vxds.git.repo import CommitInfo, Repository
from vxds.locks.changes import Change
from vxds.locks.diff import HELD_OUT, DatasetDiff, diff_refs
from vxds.locks.refs import Side, revision_side
from vxds.locks.sides import select
from vxds.project.config import Config
from vxds.project.manifest import load_manifest, parse_spec


@dataclass(frozen=True)
class LogEntry:
    commit: CommitInfo
    diffs: list[DatasetDiff]  # one per version of the dataset that the commit changed


@dataclass(frozen=True)
class IdChange:
    """What one commit did to one resource in one dataset version."""

    dataset: str
    version: int | None
    change: Change


@dataclass(frozen=True)
class IdEntry:
    commit: CommitInfo
    changes: list[IdChange]


def version_diffs(old: Side, new: Side) -> list[DatasetDiff]:
    """Every ``name@version`` on either side against the same version on the other."""
    out = []
    for key in sorted(set(old.locks) | set(new.locks), key=lambda k: (k[0], k[1] or 0)):
        a, b = old.locks.get(key), new.locks.get(key)
        entry = new.entry(*key) or old.entry(*key)
        held_out = entry.held_out if entry else HELD_OUT
        diff = diff_refs(a, b, group_by=entry.group_by if entry else None, held_out=held_out)
        if not diff.empty:
            out.append(diff)
    return out


def _folder(repo: Repository, config: Config, spec: str | None) -> str:
    folder = repo.relative(config.locks)
    if spec is not None:
        name, version = parse_spec(spec)
        folder += f"/{name}" + (f"/{version}" if version is not None else "")
    return folder.lstrip("/")


def _check_known(repo: Repository, config: Config, spec: str, folder: str) -> None:
    """``NotFoundError`` unless the manifest declares ``spec`` or Git history holds its locks."""
    name, version = parse_spec(spec)
    manifest = load_manifest(config.manifest, default_source=config.source, require_scripts=False)
    if name in manifest.names() and (version is None or version in manifest.versions(name)):
        return
    if next(iter(repo.commits([folder], max_count=1)), None) is None:
        manifest.find(name, version)  # raises, naming the datasets or versions there are
        raise NotFoundError(f"no lock of {spec} in the Git history")


def _sides(repo: Repository, config: Config, commit: CommitInfo, spec: str | None) -> tuple[Side, Side]:
    specs = [spec] if spec is not None else []
    new = select(revision_side(repo, config, commit.hexsha, commit.short), specs)
    if commit.parent is None:
        return Side("(none)", {}), new
    return select(revision_side(repo, config, commit.parent, commit.parent[:7]), specs), new


def log(config: Config, spec: str, *, max_count: int | None = None) -> Iterator[LogEntry]:
    """Commits that changed ``NAME`` (any version) or ``NAME@V``'s lock, newest first.

    An unknown ``NAME`` (not in the manifest, never locked) is a ``NotFoundError``.
    """
    repo = Repository(config.root)
    folder = _folder(repo, config, spec)
    _check_known(repo, config, spec, folder)
    for commit in repo.commits([folder], max_count=max_count):
        yield LogEntry(commit, version_diffs(*_sides(repo, config, commit, spec)))


def id_log(
    config: Config, rid: str, spec: str | None = None, *, max_count: int | None = None
) -> Iterator[IdEntry]:
    """Commits that changed resource ``rid`` in any lock (or in ``NAME[@V]``), newest first."""
    repo = Repository(config.root)
    folder = _folder(repo, config, spec)
    if spec is not None:
        _check_known(repo, config, spec, folder)
    shown = 0
    for commit in repo.commits([folder]):
        found = [
            IdChange(diff.name, diff.new_version or diff.old_version, change)
            for diff in version_diffs(*_sides(repo, config, commit, spec))
            for change in diff.changes
            if change.id == rid
        ]
        if found:
            yield IdEntry(commit, found)
            shown += 1
            if max_count is not None and shown >= max_count:
                return
