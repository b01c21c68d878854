"""One split as one BIDS dataset under ``OUT/bids/<split>/``.

A resource from a BIDS dataset in the source keeps its path in that dataset (derivatives
stay under ``derivatives/<pipeline>/``; files that are not BIDS, like FreeSurfer's, keep
theirs), and its companions (``tree``) travel with it. An image from elsewhere gets a name
from its attrs (``naming``). The split's resources of a type with a converter
(``Converter``: DICOM series to NIfTI, ``dicom``) are handed to it together, after the
others (it may need to see them all, to number runs); a DICOM series in a BIDS dataset's
``sourcedata/`` is left out (the dataset holds its data already). The dataset-level files
come last (``dataset``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vxds.materialize.base import Job
from vxds.materialize.bids import dataset
from vxds.materialize.bids.dicom import Placed
from vxds.materialize.bids.naming import (
    BidsName,
    bids_path,
    column_descriptions,
    json_bytes,
    participants_tsv,
    sidecar,
)
from vxds.materialize.bids.tree import DESCRIPTION, SourceTree, is_sidecar, join, parent, relative
from vxds.resource import Resource
from vxds.sources.folder.bids import split_name

# A converter places a split's resources of one type as the files BIDS wants for them (DICOM
# series as NIfTI and sidecars) under the split's folder (``bids/<split>``), failing those it
# cannot place through the placer's ledger, and returns their paths there and what it ran.
Converter = Callable[[Job, Sequence[Resource], str], Placed]
IMAGE_TYPES = frozenset({"Volume", "Mask"})
FOLDER_TYPES = frozenset({"Zarr", "DICOMSeries"})  # placed as a folder of member files


def is_written(rel: str) -> bool:
    """A dataset-level file ``dataset`` writes (from the source's bytes) rather than copies."""
    if rel == DESCRIPTION or rel in dataset.ROW_TABLES or rel in dataset.ROW_TABLES.values():
        return True
    parts = rel.split("/")
    return len(parts) == 3 and parts[0] == "derivatives" and parts[2] == DESCRIPTION


@dataclass
class SplitWriter:
    job: Job
    split: str
    tree: SourceTree
    converters: Mapping[str, Converter]
    placed: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (root, path)
    roots: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)
    pipelines: set[str] = field(default_factory=set)  # "derivatives/<name>"
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)
    sidecars: list[Resource] = field(default_factory=list)  # placed with the data they apply to
    scans: list[tuple[Resource, str]] = field(default_factory=list)  # written with placed rows
    converting: defaultdict[str, list[Resource]] = field(default_factory=lambda: defaultdict(list))
    tools: dict[str, str] = field(default_factory=dict)  # converters run: for GeneratedBy

    @property
    def out(self) -> str:
        return f"bids/{self.split}"

    def run(self) -> None:
        for resource in self.job.resources(self.split):
            self._resource(resource)
        self._convert()
        self._companions()
        self._scans_tables()
        self._notice_left_out()
        if self.placed or self.records or self.subjects:  # subjects: of converted files too
            dataset_root = next(iter(self.roots)) if len(self.roots) == 1 else None
            self._dataset_files(dataset_root)

    def _notice_left_out(self) -> None:
        orphans = sum(1 for r in self.sidecars if r.id not in self.placed)
        if orphans:
            self.left_out["JSON sidecars of no data file in the split"] = orphans
        if self.left_out:
            kinds = ", ".join(f"{n} {t}" for t, n in sorted(self.left_out.items()))
            self.job.notice(
                f"split {self.split}: {kinds} have no place in BIDS and were left out (use -m files)"
            )

    # --- the split's resources ------------------------------------------------------------

    def _resource(self, resource: Resource) -> None:
        if resource.type == "Table" and resource.attrs.get("suffix") == "participants":
            self.columns.update(column_descriptions(resource))
        if resource.type == "ClinicalRecord":
            if isinstance(resource.attrs.get("subject"), str):
                self.records.setdefault(str(resource.attrs["subject"]), dict(resource.attrs))
            return
        root = self.tree.root(resource.id)
        if resource.type == "DICOMSeries" and root is not None:
            if relative(resource.id, root).startswith("sourcedata/"):
                self.left_out["DICOMSeries in a BIDS dataset's sourcedata/"] += 1
                return
            root = None
        if resource.type in self.converters:
            self.converting[resource.type].append(resource)
            return
        if root is None:
            self._by_attrs(resource)
            return
        self.roots.add(root)
        if is_sidecar(split_name(resource.id.rsplit("/", 1)[-1])):
            self.sidecars.append(resource)
        else:
            self._place(resource, root)

    def _convert(self) -> None:
        for kind, resources in sorted(self.converting.items()):
            done = self.converters[kind](self.job, resources, self.out)
            for rel in done.paths:
                self._note(rel)
            self.tools.update(done.tools)
        self.job.tools.update(self.tools)

    def _place(self, resource: Resource, root: str) -> None:
        if resource.id in self.placed:
            return
        rel = relative(resource.id, root)
        self.placed[resource.id] = (root, rel)
        if is_written(rel):
            return
        name = split_name(rel.rsplit("/", 1)[-1])
        if (name.suffix, name.extension) == ("scans", ".tsv"):
            self.scans.append((resource, rel))
            return
        where, module = f"{self.out}/{rel}", self.job.module
        if resource.type in FOLDER_TYPES:
            self.job.placer.place_series(resource, where, module=module)
        else:
            self.job.placer.place(resource, where, module=module)
        self._note(rel)

    def _note(self, rel: str) -> None:
        parts = rel.split("/")
        if parts[0].startswith("sub-") and len(parts) > 1:
            self.subjects.add(parts[0][4:])
        elif parts[0] == "derivatives" and len(parts) > 2:
            self.pipelines.add("/".join(parts[:2]))

    def _by_attrs(self, resource: Resource) -> None:
        """An image from outside a BIDS dataset: a name from its attrs, a sidecar from them."""
        if resource.type not in IMAGE_TYPES and resource.type != "Zarr":
            self.left_out[resource.type] += 1
            return
        try:
            rel = bids_path(resource)
        except BidsName as exc:
            self.job.placer.ledger.fail_text(resource.id, f"({self.job.module})", f"{exc}; not placed")
            return
        self.placed[resource.id] = ("", rel)
        self.job.placer.place(resource, f"{self.out}/{rel}", module=self.job.module)
        self._note(rel)
        meta = sidecar(resource)
        if meta:
            stem = rel[: -len(str(resource.attrs["extension"]))]
            self.job.placer.write(f"{self.out}/{stem}.json", json_bytes(meta), module=self.job.module)

    def _companions(self) -> None:
        """What the placed files need from their datasets (root files only for one dataset)."""
        single = len(self.roots) == 1
        for rid, (root, _) in list(self.placed.items()):
            if rid not in self.tree.by_id or root not in self.roots:
                continue
            for companion in self.tree.companions(rid, root):
                if single or parent(companion.id) != root:
                    self._place(companion, root)

    def _scans_tables(self) -> None:
        """Each ``scans.tsv`` with the rows of the files placed beside it (by ``filename``)."""
        for resource, rel in self.scans:
            data = self.job.placer.fetch(resource, module=self.job.module)
            folder = parent(rel) + "/" if "/" in rel else ""
            here = {r[len(folder) :].encode() for _, r in self.placed.values() if r.startswith(folder)}
            rows = None if data is None else dataset.rows_where(data, b"filename", here)
            if rows is not None:
                self._write(rel, rows)
                self._note(rel)

    # --- dataset-level files ----------------------------------------------------------------

    def _source_bytes(self, rid: str) -> bytes | None:
        resource = self.tree.by_id.get(rid)
        return None if resource is None else self.job.placer.fetch(resource, module=self.job.module)

    def _write(self, rel: str, data: bytes) -> None:
        self.job.placer.write(f"{self.out}/{rel}", data, module=self.job.module)

    def _description(self, root: str | None, folder: str) -> None:
        pipeline = folder.split("/")[1] if folder else None
        data = None if root is None else self._source_bytes(join(root, join(folder, DESCRIPTION)))
        generated = dataset.generated_by(self.job, self.split, tools={} if folder else self.tools)
        carried = (
            None
            if data is None
            else dataset.carried_description(data, generated, derivative=pipeline is not None)
        )
        if carried is None:
            carried = json_bytes(
                dataset.new_description(self.job, self.split, pipeline=pipeline, generated=generated)
            )
        self._write(join(folder, DESCRIPTION), carried)

    def _dataset_files(self, root: str | None) -> None:
        self._description(root, "")
        for pipeline in sorted(self.pipelines):
            self._description(root, pipeline)
        for table, described in dataset.ROW_TABLES.items():
            data = None if root is None else self._source_bytes(join(root, table))
            rows = None if data is None else dataset.subject_rows(data, self.subjects)
            if rows is not None:
                self._write(table, rows)
                sidecar_json = self.tree.by_id.get(join(str(root), described))
                if sidecar_json is not None:
                    self.job.placer.place(sidecar_json, f"{self.out}/{described}", module=self.job.module)
        if root is None and (self.subjects or self.records):
            self._participants()  # a BIDS dataset without one gets none added
        if not any(rel.startswith("README") for rel in self._top_level()):
            readme = f"{self.job.key}, split {self.split}, written by vxds materialize"
            self._write("README", f"{readme} from lock {self.job.lock_digest}.\n".encode())

    def _participants(self) -> None:
        """A participants table from the split's clinical records, for a source without one."""
        listed = sorted(self.subjects) if self.subjects else sorted(self.records)
        table = participants_tsv(listed, self.records)
        self._write("participants.tsv", table)
        header = table.split(b"\n", 1)[0].decode().split("\t")
        described = {c: self.columns[c] for c in header if c in self.columns}
        if described:
            self._write("participants.json", json_bytes(described))

    def _top_level(self) -> set[str]:
        return {rel for _, rel in self.placed.values() if "/" not in rel}
