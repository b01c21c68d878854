"""The store check (VX8xx): every stored resource of a lock is in the content-addressed store.

It runs when a store is given (``vxds verify --store URL``) or configured
(``[tool.vxds.store] url``). The store is listed once per run; with ``--base`` only the
locks that are new or changed since that revision are checked (what a push before merging
must have sent). It is the "forgot to push" check for CI and the ``vxds-push-check`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vxds.errors import VxdsError
from vxds.locks.splits import split_file
from vxds.resource import Resource
from vxds.verify.findings import ERROR, Finding
from vxds.verify.model import Context, Target

if TYPE_CHECKING:
    from vxds.store.cas import Store


@dataclass
class StoreState:
    """The store's listing (or why there is none) and the locks published at ``--base``."""

    url: str
    store: Store | None = None
    present: set[str] | None = None
    error: str | None = None
    reported: bool = False  # the listing failure is one finding, not one per lock
    base_digests: dict[str, str] = field(default_factory=dict)


def store_state(ctx: Context) -> StoreState | None:
    url = ctx.options.store or ctx.config.store
    if url is None:
        return None
    if ctx.store is None:
        from vxds.store.cas import open_store  # only when a store is named: its backends cost

        state = StoreState(url)
        try:
            state.store = open_store(url, base=ctx.config.root, options=ctx.config.storage)
            state.present = set(state.store.listing())
            if ctx.options.base is not None:
                state.base_digests = _digests_at(ctx, ctx.options.base)
        except VxdsError as exc:
            state.error = exc.message
        ctx.store = state
    assert isinstance(ctx.store, StoreState)
    return ctx.store


def _digests_at(ctx: Context, rev: str) -> dict[str, str]:
    """Each lock's digest at ``rev`` (name@version -> digest)."""
    from vxds.git.repo import Repository
    from vxds.locks.refs import revision_side

    side = revision_side(Repository(ctx.config.root), ctx.config, rev)
    return {ref.key: ref.header.digest for ref in side.locks.values() if ref.header is not None}


def check_store(ctx: Context, target: Target) -> list[Finding]:
    """VX801: a resource of the lock is not in the store; VX802: the store cannot be listed."""
    state = store_state(ctx)
    if state is None or target.lock is None or target.header is None:
        return []
    if state.base_digests.get(target.key) == target.header.digest:
        return []  # published unchanged at --base: pushed when it was published
    if state.present is None:
        if state.reported:
            return []
        state.reported = True
        return [ctx.finding(target, "VX802", ERROR, f"cannot list the store {state.url!r}: {state.error}")]
    from vxds.store.cas import stored_digest

    findings = []
    for name, split in sorted(target.lock.splits.items()):
        for number, line in enumerate(split.lines(), 1):
            resource = Resource.from_line(line)
            found = _missing(target, state, resource, stored_digest(resource))
            if found is not None:
                where = {"file": ctx.config.relative(target.path / split_file(name)), "line": number}
                findings.append(ctx.finding(target, "VX801", ERROR, found, **where))
    return findings


def _missing(target: Target, state: StoreState, resource: Resource, digest: str | None) -> str | None:
    if digest is None or digest in (state.present or ()):
        return None
    from vxds.store.cas import key_of

    return f"{resource.id}: not in the store {state.url!r} ({key_of(digest)}); run 'vxds push {target.key}'"
