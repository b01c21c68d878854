"""Choosing a source from its URL.

A URL without a scheme, or with ``file:``, is a local folder. Any other scheme is looked
up in the ``vxds.sources`` entry-point group.
"""

from __future__ import annotations

import re

from vxds.errors import SourceError
from vxds.sources.base import IndexedSource, Source, SourceContext, missing_members

__all__ = ["IndexedSource", "Source", "SourceContext", "open_source", "scheme_of"]

_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]+):")


def scheme_of(url: str) -> str:
    """``s3://b/p`` -> ``s3``; a plain path (or a Windows drive) -> ``file``."""
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else "file"


def open_source(url: str, context: SourceContext) -> Source:
    scheme = scheme_of(url)
    if scheme == "file":
        from vxds.sources.folder.source import FolderSource

        return FolderSource(url, context)
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group="vxds.sources")}
    if scheme not in found:
        known = ", ".join(sorted(found)) or "none"
        raise SourceError(f"source {url!r}: no source handles the scheme {scheme!r} (installed: {known})")
    try:
        factory = found[scheme].load()
    except Exception as exc:
        raise SourceError(f"source {url!r}: cannot load the {scheme!r} plugin: {exc}") from exc
    source: Source = factory(url, context)
    missing = missing_members(source)
    if missing:
        raise SourceError(
            f"source {url!r}: the {scheme!r} plugin does not implement the source protocol"
            f" (missing: {', '.join(missing)})",
            hint="subclass vxds.sources.base.IndexedSource, or see docs/sources.md",
        )
    return source
