"""Resources from a tree of named files, wherever the tree lives.

The folder source and the object-store source list files differently, but turn them into
resources the same way, here, so that a bucket prefix and a folder holding the same files
give the same ids, types and attrs:

* one resource per file, ``id`` and ``uri`` its POSIX path relative to the tree's root;
* a folder holding only ``.dcm`` files (and no folders) is one ``DICOMSeries``, and a
  ``*.zarr`` folder (``*.ome.zarr``) one ``Zarr``, every member in it, dot-files such as
  ``.zattrs`` included; either's hash is the digest of its listing of member paths
  (relative to the folder) and file digests;
* ``type`` from the name (Volume, Mask, Table, File); each row of a record table
  (``participants.tsv``, and the tables ``[tool.vxds] record_tables`` names) is also a
  ``ClinicalRecord`` with id ``<table>#<row key>``, whose bytes are the canonical row;
* ``attrs``: BIDS entities from the path, merged with inherited JSON sidecars (a table's
  JSON describes its columns and is not merged), and a volume's NIfTI header fields.

What differs between trees is given to ``TreeBuilder``: each file's digest and version,
a function that reads a (small) file's bytes for sidecars and tables, and optionally one
that reads a volume's header attrs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from vxds.errors import SourceError
from vxds.hashing import canonical_json, digest_bytes, digest_json
from vxds.resource import Resource
from vxds.sources.folder import bids


class TreeFile(Protocol):
    """What the builder needs of a file: its path in the tree and its size."""

    @property
    def rel(self) -> str: ...

    @property
    def size(self) -> int: ...


Reader = Callable[[str], bytes]  # rel path -> bytes; raises OSError when it cannot
HeaderReader = Callable[[str], dict[str, Any]]  # rel path -> a volume's header attrs ({} if none)

RECORD_TABLES = ("participants.tsv",)  # always record tables, wherever they are


def record_tables(options: Mapping[str, Any]) -> list[str]:
    """``[tool.vxds] record_tables``, which the configuration hands sources in their options."""
    value = options.get("record_tables", [])
    return [str(p) for p in value] if isinstance(value, list) else []


def is_record_table(rel: str, patterns: Sequence[str]) -> bool:
    """``participants.tsv``, or a table a pattern names: a pattern with a ``/`` is matched
    against the path from the tree's root, one without against the file name."""
    name = rel.rpartition("/")[2]
    for pattern in (*RECORD_TABLES, *patterns):
        if fnmatch.fnmatchcase(rel if "/" in pattern else name, pattern):
            return True
    return False


def is_series(names: Iterable[str], has_subfolders: bool) -> bool:
    """A folder of DICOM files and nothing else is one series."""
    listed = list(names)
    return bool(listed) and not has_subfolders and all(name.lower().endswith(".dcm") for name in listed)


def split_series(files: Iterable[TreeFile]) -> tuple[list[TreeFile], dict[str, list[TreeFile]]]:
    """Files of a flat listing (such as a bucket's keys), and its DICOM series folders."""
    by_folder: dict[str, list[TreeFile]] = {}
    parents: set[str] = set()
    zarrs: dict[str, list[TreeFile]] = {}
    for f in files:
        root = bids.zarr_root(f.rel)
        if root is not None:
            zarrs.setdefault(root, []).append(f)
            continue
        folder = f.rel.rpartition("/")[0]
        by_folder.setdefault(folder, []).append(f)
        parts = folder.split("/") if folder else []
        parents.update("/".join(parts[:i]) for i in range(1, len(parts)))
    plain: list[TreeFile] = []
    series: dict[str, list[TreeFile]] = {}
    for folder, members in by_folder.items():
        names = [m.rel.rpartition("/")[2] for m in members]
        if folder and is_series(names, folder in parents):
            series[folder] = members
        else:
            plain.extend(members)
    return plain, {**series, **zarrs}


class TreeBuilder:
    """Builds every resource of a tree; ``rows`` keeps each clinical row's bytes by id."""

    def __init__(
        self,
        url: str,
        digests: Mapping[str, str],
        read: Reader,
        version: Callable[[str], int | str] | None = None,
        *,
        record_tables: Sequence[str] = (),
        header: HeaderReader | None = None,
    ) -> None:
        self.url = url
        self.digests = digests
        self.read = read
        self.version = version or digests.__getitem__
        self.record_tables = tuple(record_tables)
        self.header = header
        self.rows: dict[str, bytes] = {}
        self.tables: dict[str, str] = {}  # a clinical row's id -> its table's path

    def build(
        self,
        files: list[TreeFile],
        series: Mapping[str, list[TreeFile]],
        *,
        context: Iterable[TreeFile] | None = None,
    ) -> list[Resource]:
        """The resources of ``files`` and ``series``; sidecars are looked for among
        ``context`` (by default ``files``), which holds every JSON file that may apply."""
        sidecars = Sidecars(files if context is None else context, self._read_json)
        out: list[Resource] = []
        for f in files:
            out.extend(self._file_resources(f, sidecars))
        for rel, members in series.items():
            out.append(self._series_resource(rel, members, sidecars))
        return out

    def _file_resources(self, f: TreeFile, sidecars: Sidecars) -> Iterator[Resource]:
        digest = self.digests[f.rel]
        folder, _, filename = f.rel.rpartition("/")
        name = bids.split_name(filename)
        kind = bids.resource_type(f.rel, name)
        attrs = sidecars.attrs_for(folder, name)
        if kind == "Table" and is_record_table(f.rel, self.record_tables):
            table = self._read_table(f.rel, name)
            attrs = {**attrs, "columns": table.columns, "rows": len(table.rows)}
            yield from self._records(f.rel, table, bids.path_attrs(f.rel, name))
        elif kind in ("Volume", "Mask") and self.header is not None:
            attrs = {**self.header(f.rel), **attrs}  # a sidecar's RepetitionTime is the truth
        version = self.version(f.rel)
        yield Resource(id=f.rel, version=version, type=kind, hash=digest, size=f.size, uri=f.rel, attrs=attrs)

    def _records(self, rel: str, table: bids.Table, path: dict[str, Any]) -> Iterator[Resource]:
        """One ClinicalRecord per row; its hash and ``open()`` bytes are the canonical row."""
        for key, row in zip(table.keys, table.rows, strict=True):
            body = canonical_json(row)
            digest = digest_bytes(body)
            rid = f"{rel}#{key}"
            self.rows[rid] = body
            self.tables[rid] = rel
            yield Resource(
                id=rid,
                version=digest,
                type="ClinicalRecord",
                hash=digest,
                size=len(body),
                uri=rid,
                attrs=bids.record_attrs(row, path),
            )

    def _read_table(self, rel: str, name: bids.Name) -> bids.Table:
        try:
            # Universal newlines, as a file opened in text mode reads them.
            text = self.read(rel).decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
            return bids.read_table(text, name.extension)
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"source {self.url!r}: cannot read table {rel}: {exc}") from None
        except bids.TableError as exc:
            raise SourceError(f"source {self.url!r}: table {rel}, {exc}") from None

    def _read_json(self, rel: str) -> dict[str, Any]:
        try:
            data = orjson.loads(self.read(rel))
        except (OSError, orjson.JSONDecodeError) as exc:
            raise SourceError(f"sidecar {rel}: not readable JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SourceError(f"sidecar {rel}: expected a JSON object, got {type(data).__name__}")
        return data

    def _series_resource(self, rel: str, members: list[TreeFile], sidecars: Sidecars) -> Resource:
        """A DICOM series or a Zarr: its members named by their paths inside the folder."""
        digest = series_digest((m.rel[len(rel) + 1 :], self.digests[m.rel]) for m in members)
        folder, _, filename = rel.rpartition("/")
        if bids.is_zarr(filename):  # named and parsed as one file
            kind, attrs = "Zarr", sidecars.attrs_for(folder, bids.split_name(filename))
        else:
            kind, attrs = "DICOMSeries", bids.path_attrs(rel + "/")
            attrs.pop("extension", None)
        attrs["files"] = len(members)
        size = sum(m.size for m in members)
        return Resource(id=rel, version=digest, type=kind, hash=digest, size=size, uri=rel, attrs=attrs)


def series_listing(members: Iterable[tuple[str, str]]) -> bytes:
    """The canonical listing of a series or Zarr: ``[[name, digest], ...]`` sorted by name."""
    return canonical_json(sorted([name, digest] for name, digest in members))


def series_digest(members: Iterable[tuple[str, str]]) -> str:
    """A series' hash: the digest of its canonical listing."""
    return digest_json(sorted([name, digest] for name, digest in members))


class Sidecars:
    """JSON sidecars by folder, loaded on first use, applied by the inheritance principle."""

    def __init__(self, files: Iterable[TreeFile], load: Callable[[str], dict[str, Any]]) -> None:
        self.load = load
        self.by_dir: dict[str, list[tuple[bids.Name, str]]] = {}
        self.dataset_roots: set[str] = set()
        self._loaded: dict[str, dict[str, Any]] = {}
        self._folder_cache: dict[str, dict[str, Any]] = {}
        self._candidate_cache: dict[str, list[tuple[bids.Name, str]]] = {}
        for f in files:
            folder, _, name = f.rel.rpartition("/")
            if name == "dataset_description.json":
                self.dataset_roots.add(folder)
            elif name.endswith(".json"):
                self.by_dir.setdefault(folder, []).append((bids.split_name(name), f.rel))

    def attrs_for(self, folder: str, name: bids.Name) -> dict[str, Any]:
        """A file's attrs: entities from its path, merged over the sidecars that apply."""
        attrs = bids.name_attrs(self._folder_attrs(folder), name)
        if name.suffix is None or name.extension == ".json":
            return attrs
        layers = [self._load(r) for n, r in self._candidates(folder) if bids.sidecar_applies(n, name)]
        if not layers:
            return attrs
        if name.extension.lower() in bids.TABULAR_EXTENSIONS:  # its columns', not the file's
            return {**attrs, "descriptions": bids.merge_sidecars(layers)}
        return {**bids.merge_sidecars(layers), **attrs}

    def _folder_attrs(self, folder: str) -> dict[str, Any]:
        found = self._folder_cache.get(folder)
        if found is None:
            found = self._folder_cache[folder] = bids.folder_attrs(folder)
        return dict(found)

    def _candidates(self, folder: str) -> list[tuple[bids.Name, str]]:
        """Sidecars that may apply to files in ``folder``, least specific first (cached)."""
        found = self._candidate_cache.get(folder)
        if found is None:
            found = []
            for level in self._ancestors(folder):
                here = sorted(self.by_dir.get(level, ()), key=lambda item: (len(item[0].entities), item[1]))
                found.extend(here)
            self._candidate_cache[folder] = found
        return found

    def _ancestors(self, folder: str) -> list[str]:
        """Folders from the BIDS dataset root (or the source root) down to ``folder``."""
        parts = folder.split("/") if folder else []
        chain = ["/".join(parts[:i]) for i in range(len(parts) + 1)]
        for index in range(len(chain) - 1, -1, -1):
            if chain[index] in self.dataset_roots:
                return chain[index:]
        return chain

    def _load(self, rel: str) -> dict[str, Any]:
        if rel not in self._loaded:
            self._loaded[rel] = self.load(rel)
        return self._loaded[rel]
