"""Imported locks (VX209, VX210): the lock is the registry's, byte for byte, at the pinned commit.

The registry is fetched at the ``commit`` of the entry's ``import:`` block into the bare
cache under ``.vxds/registry/`` (nothing when it is there already). A registry that cannot
be reached is a warning: the lock's own integrity is checked as for any other.
"""

from __future__ import annotations

from vxds.errors import VxdsError
from vxds.verify.findings import ERROR, WARNING, Finding
from vxds.verify.model import Context, Target


def check_import(ctx: Context, target: Target) -> list[Finding]:
    """VX209: an imported lock differs from the registry's; VX210: the registry is unreachable."""
    entry = target.entry
    if entry is None or entry.imported is None or target.lock is None:
        return []
    from vxds.locks.store import same_on_disk  # the registry and Git: only for an imported lock
    from vxds.registry.fetch import RegistryError, cache_for, fetch, resolved
    from vxds.registry.read import registry_lock

    block = entry.imported
    url, commit = block["url"], block["commit"]
    try:
        bare = cache_for(ctx.config.cache_dir, url)
        try:
            resolved(bare, commit)
        except RegistryError:
            fetch(bare, url, commit)
        found = registry_lock(bare, commit, url, block["name"], block["version"])
    except RegistryError as exc:
        return [
            ctx.finding(target, "VX210", WARNING, f"imported lock not checked against its registry: {exc}")
        ]
    except VxdsError as exc:
        return [
            ctx.finding(target, "VX209", ERROR, f"the registry's lock at {commit[:12]} cannot be read: {exc}")
        ]
    if not same_on_disk(found.as_local(entry.name), target.path):
        message = (
            f"{target.key} differs from {block['name']}@{block['version']} in {url} at {commit[:12]} "
            f"(edited by hand?); put it back with 'vxds update {target.key} --rev {commit}'"
        )
        return [ctx.finding(target, "VX209", ERROR, message)]
    return []
