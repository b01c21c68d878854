"""``--reproduce`` (VX6xx), ``--base`` (VX205, VX207 for frozen versions), locks merged by
Git (VX312) and a local source that is not there (VX208)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vxds.errors import VxdsError
from vxds.locks.format import HEADER
from vxds.project.config import Config
from vxds.verify.drift import FIX, unreachable
from vxds.verify.findings import ERROR, SKIPPED, WARNING, Finding
from vxds.verify.model import Context, Target

# --- --reproduce ---------------------------------------------------------------------------


def check_reproduce(ctx: Context, target: Target) -> list[Finding]:
    """VX6xx: re-run the recipe and compare its lock with the one on disk."""
    if not ctx.options.reproduce or target.entry is None:
        return []
    if ctx.options.no_exec:
        return [ctx.finding(target, "VX603", SKIPPED, "not re-run: --no-exec runs no recipe code")]
    if target.lock is None:
        if (target.path / HEADER).is_file():
            return [ctx.finding(target, "VX603", SKIPPED, "not re-run: the lock did not pass its own checks")]
        return []
    from vxds.locks.store import same_on_disk

    try:
        fresh = _resolver(ctx, target).resolve(target.entry)
    except VxdsError as exc:
        return [ctx.finding(target, "VX602", ERROR, f"the recipe failed: {exc.message}")]
    if same_on_disk(fresh, target.path):
        return []
    from vxds.locks.diff import diff_locks

    drift = ctx.drift[target.key] = diff_locks(target.lock, fresh)
    drift.old_label, drift.new_label = ctx.config.relative(target.path), "re-run of the recipe"
    counts = drift.counts()
    parts = [f"{n} {kind}" for kind, n in counts.items() if n and kind != "unchanged"]
    if drift.header:
        parts.append("header: " + ", ".join(h.field for h in drift.header))
    message = (
        f"re-running the recipe gives another lock: {'; '.join(parts)} ({counts['unchanged']} unchanged)"
    )
    return [ctx.finding(target, "VX601", ERROR, message)]


def _resolver(ctx: Context, target: Target) -> Any:
    """A resolver for re-running ``target``'s recipe: as of the lock's snapshot when its
    source keeps history (a catalog), so later changes to the source are not drift."""
    from vxds.recipes.resolver import Resolver

    if ctx.resolver is None:
        ctx.resolver = Resolver(ctx.config, progress=ctx.options.progress, jobs=ctx.options.jobs)
    assert target.entry is not None
    assert target.header is not None
    source = ctx.resolver.source(target.entry.source, target.key)
    if not source.time_travel:
        return ctx.resolver
    snapshot = target.header.snapshot
    if snapshot not in ctx.at_resolvers:
        ctx.at_resolvers[snapshot] = Resolver(
            ctx.config, progress=ctx.options.progress, jobs=ctx.options.jobs, at=snapshot
        )
    return ctx.at_resolvers[snapshot]


# --- --base and merges ---------------------------------------------------------------------


def check_published(ctx: Context, target: Target) -> list[Finding]:
    """VX205: a lock published at ``--base`` changed without a new version; VX207: a frozen
    version's lock is not byte for byte the one at ``--base``."""
    change = ctx.published.pop(target.key, None)
    if change is None:
        return []
    code = "VX207" if isinstance(change, FrozenChange) else "VX205"
    return [ctx.finding(target, code, ERROR, change.message, file=f"{change.path}/{HEADER}")]


@dataclass(frozen=True)
class FrozenChange:
    key: str
    path: str
    message: str


def published_by_key(
    config: Config, base: str, targets: Sequence[Target], specs: Sequence[str]
) -> dict[str, Any]:
    from vxds.git.published import published_changes

    keys = [t.key for t in targets] if specs else None
    changes: dict[str, Any] = {change.key: change for change in published_changes(config, base, keys)}
    frozen = [t for t in targets if t.entry is not None and t.entry.frozen and not t.entry.imported]
    for change in frozen_changes(config, base, frozen):
        if change.key in changes:  # one finding per lock: say it is frozen in the one there is
            old = changes[change.key]
            fix = f"it is frozen: true; put it back: 'git checkout {base} -- {old.path}'"
            changes[change.key] = FrozenChange(old.key, old.path, f"{old.message} ({fix})")
        else:
            changes[change.key] = change
    return changes


def frozen_changes(config: Config, base: str, targets: Sequence[Target]) -> list[FrozenChange]:
    """Frozen versions whose lock files differ from those at ``base`` (where they exist there)."""
    if not targets:
        return []
    from vxds.git.repo import Repository

    repo = Repository(config.root)
    sha = repo.commit(base)
    out = []
    for target in targets:
        folder = repo.relative(target.path)
        then = {name: blob for name, blob in repo.listdir(sha, folder).items() if blob is not None}
        if not then:
            continue  # not published at base: nothing to keep
        now = (
            {p.name: p for p in sorted(target.path.iterdir()) if p.is_file()} if target.path.is_dir() else {}
        )
        differ = sorted(
            name
            for name in then.keys() | now.keys()
            if name not in then or name not in now or repo.read(then[name]) != now[name].read_bytes()
        )
        if differ:
            message = (
                f"{target.key} is frozen (frozen: true) and its lock differs from {base} in "
                f"{', '.join(differ)}; put it back: 'git checkout {base} -- {folder}'"
            )
            out.append(FrozenChange(target.key, folder, message))
    return out


def check_merged(ctx: Context, target: Target) -> list[Finding]:
    """VX312: a lock written by the Git merge driver rather than by its recipe; VX313 (when
    ``lock.toml`` could not be read, so no split was checked) a merge left unresolved."""
    if target.header is None:
        return _conflicts(ctx, target)
    if not target.header.merged:
        return []
    message = f"merged by Git, not written by its recipe; relock before release: 'vxds lock {target.key}'"
    return [ctx.finding(target, "VX312", WARNING, message)]


def _conflicts(ctx: Context, target: Target) -> list[Finding]:
    """Conflicts in every file of a lock whose ``lock.toml`` holds one (then no split was
    read: a conflicted split of a readable ``lock.toml`` gets VX313 from its line checks)."""
    from vxds.locks.conflicts import conflicts_in, has_conflict, message

    try:
        header = (target.path / HEADER).read_bytes()
    except OSError:
        return []
    if not has_conflict(header):
        return []
    return [
        ctx.finding(
            target,
            "VX313",
            ERROR,
            message(line),
            file=f"{ctx.config.relative(target.path)}/{file}",
            line=line,
        )
        for file, line in conflicts_in(target.path)
    ]


def check_source(ctx: Context, target: Target) -> list[Finding]:
    """VX208 (warning): the lock's local source folder is gone, so nothing without ``--data``
    could see its data drift (``--data`` reports it as VX504 instead)."""
    url = target.header.source if target.header else None
    if ctx.options.data or not url or target.entry is None:
        return []
    problem = unreachable(ctx.config, url)
    if problem is None:
        return []
    message = f"{problem}: the lock cannot be checked against its data in this clone"
    return [ctx.finding(target, "VX208", WARNING, f"{message}; {FIX}")]
