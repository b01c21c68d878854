"""``--data`` with a store: the store's copy of what the source lost, or (``--from-store``)
of every resource, re-hashed against the lock.

When a store is given or configured, a resource the source no longer has the locked bytes
of (VX501, VX502) is read from the store: if the store's bytes are the locked ones, the
finding becomes the warning VX803 (the lock can still be materialized, from the store);
otherwise it stays an error, and says the store does not have them either. With
``--from-store`` the bytes are read from the store only: missing is VX801, other bytes VX804.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blake3 import blake3

from vxds.errors import VxdsError
from vxds.locks.splits import split_file
from vxds.resource import Resource
from vxds.verify.findings import ERROR, WARNING, Finding
from vxds.verify.model import Context, Target

if TYPE_CHECKING:
    from vxds.store.cas import Store

LOST = ("VX501", "VX502")  # the source no longer has the locked bytes
Todo = list[tuple[str, int, Resource]]  # (split, line number, resource)


def _store(ctx: Context) -> Store | None:
    from vxds.verify.store import store_state

    state = store_state(ctx)
    return state.store if state is not None and state.present is not None else None


def problem(store: Store, resource: Resource) -> str | None:
    """Why the store does not give the resource's locked bytes (None when it does)."""
    from vxds.store.cas import SERIES, key_of, stored_digest

    digest = stored_digest(resource)
    if digest is None:
        return "not kept in a store (no blake3 hash)"
    try:
        if resource.type in SERIES:
            members = store.manifest(digest)
            gone = [name for name, member in members if not store.has(member)]
            return f"its file {gone[0]} is not in the store" if gone else None
        hasher = blake3(max_threads=blake3.AUTO)
        size = 0
        with store.open(digest) as fh:
            while block := fh.read(8 << 20):
                hasher.update(block)
                size += len(block)
    except KeyError:
        return f"not in the store {store.url!r} ({key_of(digest)})"
    except VxdsError as exc:
        return exc.message
    if hasher.hexdigest() != digest or (resource.size is not None and size != resource.size):
        return f"the store's copy ({key_of(digest)}) does not match the lock"
    return None


def check_in_store(ctx: Context, target: Target, todo: Todo) -> list[Finding] | None:
    """``--from-store``: every resource re-hashed from the store (None: no store)."""
    store = _store(ctx)
    if not ctx.options.from_store or store is None:
        return None
    from vxds.store.cas import stored_digest

    findings = []
    for split, number, resource in todo:
        why = problem(store, resource) if stored_digest(resource) is not None else None
        if why is not None:
            code = "VX801" if why.startswith("not in the store") else "VX804"
            where = {"file": ctx.config.relative(target.path / split_file(split)), "line": number}
            findings.append(ctx.finding(target, code, ERROR, f"{resource.id}: {why}", **where))
    return findings


def rescued(ctx: Context, target: Target, todo: Todo, findings: list[Finding]) -> list[Finding]:
    """The source's findings, with each lost resource the store still has made a warning."""
    store = _store(ctx)
    if store is None or not any(f.code in LOST for f in findings):
        return findings
    by_place = {(ctx.config.relative(target.path / split_file(s)), n): r for s, n, r in todo}
    out = []
    for finding in findings:
        resource = by_place.get((finding.file or "", finding.line or 0))
        if finding.code not in LOST or resource is None:
            out.append(finding)
            continue
        why = problem(store, resource)
        where = {"file": finding.file, "line": finding.line}
        if why is None:
            message = f"{finding.message}; the locked bytes are in the store {store.url!r}"
            out.append(ctx.finding(target, "VX803", WARNING, message, **where))
        else:
            out.append(ctx.finding(target, finding.code, ERROR, f"{finding.message}; {why}", **where))
    return out
