"""The source as materializing sees it: local paths where there are any, else streams."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from vxds.errors import SourceError
from vxds.materialize.transfer import StatKey
from vxds.resource import Resource
from vxds.sources.base import Source


class SourceAccess:
    """The source as materializing sees it: local paths where there are any, else streams."""

    def __init__(self, source: Source | None) -> None:
        self.source = source

    def _need(self) -> Source:
        if self.source is None:
            raise SourceError("no source to read from; pass --source or set [tool.vxds] source")
        return self.source

    @property
    def is_local(self) -> bool:
        """True for a source with files on this machine (a folder)."""
        return hasattr(self.source, "local_path")

    def local_path(self, resource: Resource) -> str | None:
        finder = getattr(self.source, "local_path", None)
        if finder is None or resource.type == "ClinicalRecord":
            return None
        path: str = finder(resource)
        return path

    def local_file(self, resource: Resource) -> tuple[str, os.stat_result] | None:
        """``local_path`` and the file's stat, from one system call where the source can."""
        finder = getattr(self.source, "local_file", None)
        if finder is None:
            path = self.local_path(resource)
            return None if path is None else (path, os.stat(path))
        if resource.type == "ClinicalRecord":
            return None
        found: tuple[str, os.stat_result] = finder(resource)
        return found

    def open(self, resource: Resource) -> BinaryIO:
        return self._need().open(resource)

    def cached(self, resource: Resource) -> Callable[[StatKey], str | None] | None:
        """A lookup of the source's hash cache for this resource's file, if it keeps one."""
        lookup = getattr(self.source, "cached_digest", None)
        if lookup is None:
            return None
        return lambda key: lookup(resource, key)

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        lister = getattr(self._need(), "members", None)
        if lister is None:
            raise SourceError(f"{resource.id}: this source cannot list the files of a {resource.type}")
        found: list[tuple[str, str]] = lister(resource)
        return found
