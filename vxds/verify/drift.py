"""Does a lock's source still hold what was locked? Answered from the stat caches, no recipe run.

``source_drift`` compares the snapshot a lock recorded with the source's snapshot now. A
folder source answers from its tree and hash caches under ``.vxds/``, so only files whose
size, mtime or inode changed are hashed again: fast enough for ``vxds list --data``.
``unreachable`` says, without listing anything, whether a local source folder is gone (a
fresh clone without ``data/``), which no other check without ``--data`` would notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vxds.errors import VxdsError
from vxds.sources import SourceContext, open_source, scheme_of

if TYPE_CHECKING:
    from vxds.locks.format import Header
    from vxds.project.config import Config

DriftState = Literal["same", "drifted", "unreachable", "unknown"]
FIX = (
    "keep the data where every clone reaches it: a catalog ('vxds catalog'), a versioned bucket"
    " (s3://, gs:// or az:// with object versioning), or a content-addressed store"
)


@dataclass(frozen=True)
class Drift:
    state: DriftState
    detail: str = ""


def _context(config: Config) -> SourceContext:
    return SourceContext(base=config.root, cache_dir=config.cache_dir, options=config.storage)


def _snapshot(config: Config, url: str) -> str | Drift:
    """The source's snapshot now, or why it has none: unreachable, or no longer readable."""
    try:
        source = open_source(url, _context(config))
    except VxdsError as exc:
        return Drift("unreachable", f"{exc.message}; {FIX}")
    try:
        return source.snapshot
    except VxdsError as exc:
        return Drift("drifted", exc.message)


def source_drift(config: Config, header: Header, seen: dict[str, str | Drift] | None = None) -> Drift:
    """Whether the source of ``header`` changed since it was locked (``unknown``: no snapshot
    was recorded, or the lock has several sources). ``seen`` keeps each source's snapshot for
    the next lock of the same source."""
    url = header.source
    if not header.snapshot or not url or header.snapshot.startswith("merged:"):
        return Drift("unknown", "the lock records no single source snapshot")
    seen = {} if seen is None else seen
    if url not in seen:
        seen[url] = _snapshot(config, url)
    now = seen[url]
    if isinstance(now, Drift):
        return now
    if now == header.snapshot:
        return Drift("same")
    return Drift("drifted", f"the source {url} changed since the lock: 'vxds verify --data' says where")


def unreachable(config: Config, url: str) -> str | None:
    """Why the local folder ``url`` cannot be read, or None (also for a remote source: it is
    not contacted here)."""
    if scheme_of(url) != "file":
        return None
    from vxds.sources.folder.root import folder_root  # what opening the folder source checks

    try:
        folder_root(url, config.root)
    except VxdsError as exc:
        return exc.message
    return None
