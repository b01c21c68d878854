"""The source protocol: what a recipe's client asks of a place that holds data.

A source lists its resources, sorted by id, reports a ``snapshot`` string that is recorded
in the lock, finds one resource by id and version, and opens a resource's bytes. Third
parties add sources through the ``vxds.sources`` entry-point group: the entry-point name is
the URL scheme, the object a class taking ``(url, context)``.
"""

from __future__ import annotations

import bisect
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from vxds.errors import NotFoundError, SourceError
from vxds.progress import NO_PROGRESS, Progress
from vxds.resource import Resource


@dataclass(frozen=True)
class SourceContext:
    """What every source is given besides its URL."""

    base: Path  # relative URLs are resolved against this folder (the project root)
    cache_dir: Path | None = None  # where a source may keep local caches
    progress: Progress = field(default=NO_PROGRESS)
    jobs: int | None = None  # parallelism for hashing and reading
    # [tool.vxds.storage]: options for remote stores (endpoint, profile, credentials ...).
    # They may hold secrets: a source never writes them into a resource, a lock or a message.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Resolve as of this snapshot (``vxds lock --at``). A source that keeps history reads
    # it; any other source refuses a snapshot other than its current one.
    at: str | None = None


def check_at(source: Source, at: str | None) -> None:
    """Refuse ``at`` for a source without history unless it names its current snapshot."""
    if at is not None and not source.time_travel and source.snapshot != at:
        raise SourceError(
            f"source {source.url!r} keeps no history: it is at snapshot {source.snapshot!r}, not {at!r}"
        )


@runtime_checkable
class Source(Protocol):
    url: str

    @property
    def time_travel(self) -> bool:
        """True when the source keeps its history and resolves as of ``context.at`` (a
        catalog); False when it holds only its current state, which ``check_at`` compares."""

    @property
    def snapshot(self) -> str: ...

    def resources(self) -> Sequence[Resource]: ...

    def get(self, id: str, version: int | str | None = None) -> Resource: ...

    def open(self, resource: Resource) -> BinaryIO: ...


class IndexedSource(ABC):
    """A source that can list everything it holds; lookups use a sorted index."""

    url: str
    time_travel: ClassVar[bool] = False

    def __init__(self, url: str, context: SourceContext) -> None:
        self.url = url
        self.context = context
        self._resources: list[Resource] | None = None
        self._ids: list[str] = []
        self._by_id: dict[str, Resource] = {}
        self._scan_lock = threading.Lock()  # materialize opens resources from several threads

    @abstractmethod
    def _scan(self) -> list[Resource]:
        """Every resource the source holds, in any order."""

    @property
    @abstractmethod
    def snapshot(self) -> str: ...

    @abstractmethod
    def open(self, resource: Resource) -> BinaryIO: ...

    def resources(self) -> Sequence[Resource]:
        if self._resources is None:
            with self._scan_lock:  # one scan, however many threads ask at once
                if self._resources is None:
                    found = sorted(self._scan(), key=lambda r: r.id)
                    self._ids = [r.id for r in found]
                    self._by_id = {r.id: r for r in found}
                    self._resources = found
        return self._resources

    def get(self, id: str, version: int | str | None = None) -> Resource:
        self.resources()
        found = self._by_id.get(id)
        if found is None:
            raise NotFoundError(f"{self.url}: no resource {id!r}")
        if version is not None and found.version != version:
            raise NotFoundError(
                f"{self.url}: resource {id!r} is at version {found.version!r}, not {version!r}"
                " (this source keeps only the current version)"
            )
        return found

    def with_prefix(self, prefix: str) -> Iterator[Resource]:
        """Resources whose id starts with ``prefix``, in id order."""
        items = self.resources()
        start = bisect.bisect_left(self._ids, prefix) if prefix else 0
        for resource in items[start:]:
            if not resource.id.startswith(prefix):
                break
            yield resource


PROTOCOL = ("url", "time_travel", "snapshot", "resources", "get", "open")


def missing_members(source: object) -> list[str]:
    """The members of the ``Source`` protocol that ``source`` lacks."""
    return [name for name in PROTOCOL if not hasattr(type(source), name) and not hasattr(source, name)]
