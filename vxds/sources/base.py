"""The source protocol: what a recipe's client asks of a place that holds data.

A source lists its resources, sorted by id, reports a ``snapshot`` string that is recorded
in the lock, finds one resource by id and version, and opens a resource's bytes. Third
parties add sources through the ``vxds.sources`` entry-point group: the entry-point name is
the URL scheme, the object a class taking ``(url, context)``.

``scan()`` is optional: a source that has it lists itself when asked, before any recipe
runs; one without it is listed by reading its ``snapshot`` (see ``scan``).
"""

from __future__ import annotations

import bisect
import io
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
    # Where per-object work runs: None or ``local`` (this machine), or a Dask scheduler's
    # URL (``--executor``, ``[tool.vxds.executor]``; see ``vxds.executor``).
    executor: str | None = None


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


@runtime_checkable
class Scanning(Protocol):
    """A source that can be told to list itself now (``IndexedSource`` does)."""

    def scan(self) -> None: ...


def scan(source: Source) -> None:
    """List ``source`` now, so that one that cannot be read fails with its own error here
    rather than from inside a recipe. A source without ``scan()`` (a bare ``Source``
    implementation) has its ``snapshot`` read instead, which a source answers from its
    listing when the two come together."""
    if isinstance(source, Scanning):
        source.scan()
    else:
        source.snapshot  # noqa: B018 (the protocol's only call that may list a bare source)


class IndexedSource(ABC):
    """A source that can list everything it holds; lookups use a sorted index.

    A subclass implements ``_scan()`` and ``_open_file()``. ``_scan()`` returns every
    resource and may set ``_snapshot`` (what ``snapshot`` answers) and ``_rows`` (the bytes
    of each ClinicalRecord, which ``open`` serves); a source whose snapshot or ``open``
    works otherwise overrides them.
    """

    url: str
    time_travel: ClassVar[bool] = False

    def __init__(self, url: str, context: SourceContext) -> None:
        cls = type(self)
        if cls.open is IndexedSource.open and cls._open_file is IndexedSource._open_file:
            raise TypeError(f"{cls.__name__} implements neither _open_file() nor open()")
        self.url = url
        self.context = context
        self._resources: list[Resource] | None = None
        self._ids: list[str] = []
        self._by_id: dict[str, Resource] = {}
        self._scan_lock = threading.Lock()  # materialize opens resources from several threads
        self._snapshot = ""
        self._rows: dict[str, bytes] = {}

    @abstractmethod
    def _scan(self) -> list[Resource]:
        """Every resource the source holds, in any order."""

    def _open_file(self, resource: Resource) -> BinaryIO:
        """The bytes of a resource that is a file (not a table row or a DICOM series)."""
        raise NotImplementedError  # __init__ refuses a class without this or its own open()

    def scan(self) -> None:
        """List the source now, once: later calls, and ``resources()``, reuse the listing."""
        self.resources()

    @property
    def snapshot(self) -> str:
        """What ``_scan()`` recorded in ``_snapshot`` (listing the source first)."""
        self.scan()
        return self._snapshot

    def open(self, resource: Resource) -> BinaryIO:
        """A table row from ``_rows``, a file through ``_open_file``; a DICOM series is a
        folder, whose files are opened one by one."""
        if resource.type == "ClinicalRecord":
            self.get(resource.id)  # NotFoundError for an unknown row
            return io.BytesIO(self._rows[resource.id])
        if resource.type in ("DICOMSeries", "Zarr"):
            what = "a DICOM series" if resource.type == "DICOMSeries" else "a Zarr store"
            raise SourceError(f"{resource.id} is {what} (a folder); open its files one by one")
        return self._open_file(resource)

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
