"""The materializer protocol: how a layout (files, BIDS, CSV, fw-dataset) is written.

A materializer is a class with a ``name`` and a ``materialize(job)`` method. It reads the
locked resources from ``job`` and asks ``job.placer`` to place resource bytes (checked and
renamed into place by the placer) or to write files it generates. It never writes to disk
itself, so every file in OUT is verified, atomic and recorded in the receipt. Third
parties register theirs in the ``vxds.materializers`` entry-point group: the entry-point
name is the module name users pass to ``-m``, the object the class. One may also have a
``preflight(splits)`` method, called before anything is written, that raises a ``VxdsError``
when the run cannot be done (a converter it needs is not installed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from vxds.locks.format import Header
from vxds.locks.splits import Split
from vxds.materialize.place import Placer
from vxds.resource import Resource


@dataclass(frozen=True)
class Job:
    """One materializer's view of a run: the lock's splits to write and where to put them."""

    name: str  # the dataset's name (or "dataset" for bare lockfiles)
    version: int | None
    lock_digest: str
    header: Header | None  # None for lockfiles given without their lock.toml
    splits: Mapping[str, Split]
    placer: Placer
    module: str  # the name the materializer was chosen by
    notices: list[str] = field(default_factory=list)
    # Programs that made files of this run (dcm2niix for DICOM), name -> version: the receipt's.
    tools: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}" if self.version is not None else self.name

    def resources(self, split: str) -> Iterator[Resource]:
        return self.splits[split].resources()

    def notice(self, text: str) -> None:
        """A line for the user that is not an error (say, resources a layout leaves out)."""
        self.notices.append(f"{self.module}: {text}")


class Materializer(Protocol):
    name: ClassVar[str]

    def materialize(self, job: Job) -> None: ...
