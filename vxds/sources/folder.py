"""A folder tree as a source: one resource per file, DICOM series as one resource each.

* ``id`` and ``uri``: the POSIX path relative to the folder.
* ``version`` and ``hash``: ``blake3:<hex>`` of the bytes (for a DICOM series, of its
  listing of names and file digests).
* ``type``: Volume, Mask, DICOMSeries, Table or File; each row of a table is also a
  ClinicalRecord with id ``<table>#<row key>``.
* ``attrs``: BIDS entities from the path, merged with inherited JSON sidecars.

Hidden files and folders (a leading dot) are skipped. Symlinked folders are not followed;
a symlinked file is read through its link, as its content is what the tree shows.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from vxds.errors import SourceError
from vxds.hashing import HashCache, canonical_json, digest_bytes, digest_json, hash_files
from vxds.resource import Resource
from vxds.sources import bids
from vxds.sources.base import IndexedSource, SourceContext


@dataclass(frozen=True)
class _File:
    rel: str
    path: str
    size: int
    key: tuple[int, int, int]


def folder_path(url: str, base: Path) -> Path:
    """The folder a ``./dir``, ``/abs/dir`` or ``file://`` URL names."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif url.startswith("file:"):
        url = url[len("file:") :]
    path = Path(url)
    return path if path.is_absolute() else base / path


def _is_series(files: list[os.DirEntry[str]], has_subdirs: bool) -> bool:
    return bool(files) and not has_subdirs and all(f.name.lower().endswith(".dcm") for f in files)


def walk(root: Path) -> tuple[list[_File], dict[str, list[_File]]]:
    """Files of the tree, and DICOM series folders (rel path -> their files)."""
    files: list[_File] = []
    series: dict[str, list[_File]] = {}
    stack = [("", str(root))]
    while stack:
        rel, path = stack.pop()
        try:
            entries = list(os.scandir(path))  # unsorted: resources are sorted by id later
        except OSError as exc:
            raise SourceError(f"cannot read folder {path}: {exc.strerror}") from None
        here: list[os.DirEntry[str]] = []
        subdirs = False
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirs = True
                stack.append((f"{rel}{entry.name}/", entry.path))
            elif entry.is_file():
                here.append(entry)
        found = [_stat(rel + e.name, e) for e in here]
        if rel and _is_series(here, subdirs):
            series[rel.rstrip("/")] = found
        else:
            files.extend(found)
    return files, series


def _stat(rel: str, entry: os.DirEntry[str]) -> _File:
    st = entry.stat()
    return _File(rel, entry.path, st.st_size, (st.st_size, st.st_mtime_ns, st.st_ino))


class FolderSource(IndexedSource):
    """A local folder, read with the stat-cached, parallel hasher."""

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        self.root = folder_path(url, context.base)
        if not self.root.is_dir():
            raise SourceError(f"source {url!r}: folder {self.root} does not exist")
        self._digests: dict[str, str] = {}
        self._rows: dict[str, bytes] = {}

    # --- hashing -----------------------------------------------------------------------

    def _hash_all(self, files: list[_File]) -> dict[str, str]:
        cache = HashCache(self.context.cache_dir / "hashes.json" if self.context.cache_dir else None)
        digests: dict[str, str] = {}
        todo: list[_File] = []
        for f in files:
            known = cache.get(f.path, f.key)
            if known is None:
                todo.append(f)
            else:
                digests[f.rel] = known
        if todo:
            task = self.context.progress.task(f"hashing {self.url}", total=len(todo))
            try:
                fresh = hash_files(
                    ((f.path, f.size) for f in todo),
                    jobs=self.context.jobs,
                    on_done=lambda _size: task.advance(),
                )
                for f, digest in zip(todo, fresh, strict=True):
                    digests[f.rel] = digest
                    cache.put(f.path, f.key, digest)
            except OSError as exc:
                raise SourceError(
                    f"source {self.url!r}: cannot read {exc.filename}: {exc.strerror}"
                ) from None
            finally:
                task.close()
            cache.save()
        return digests

    # --- scanning ----------------------------------------------------------------------

    def _scan(self) -> list[Resource]:
        files, series = walk(self.root)
        every = files + [f for members in series.values() for f in members]
        self._digests = self._hash_all(every)
        sidecars = _Sidecars(self.root, files)
        out: list[Resource] = []
        for f in files:
            out.extend(self._file_resources(f, sidecars))
        for rel, members in series.items():
            out.append(self._series_resource(rel, members))
        return out

    def _file_resources(self, f: _File, sidecars: _Sidecars) -> Iterator[Resource]:
        digest = self._digests[f.rel]
        folder, _, filename = f.rel.rpartition("/")
        name = bids.split_name(filename)
        kind = bids.resource_type(f.rel, name)
        attrs = sidecars.attrs_for(folder, name)
        if kind == "Table":
            table = self._read_table(f)
            attrs = {**attrs, "columns": table.columns, "rows": len(table.rows)}
            yield from self._records(f.rel, table)
        yield Resource(id=f.rel, version=digest, type=kind, hash=digest, size=f.size, uri=f.rel, attrs=attrs)

    def _records(self, rel: str, table: bids.Table) -> Iterator[Resource]:
        """One ClinicalRecord per row; its hash and ``open()`` bytes are the canonical row."""
        for key, row in zip(table.keys, table.rows, strict=True):
            body = canonical_json(row)
            digest = digest_bytes(body)
            rid = f"{rel}#{key}"
            self._rows[rid] = body
            yield Resource(
                id=rid,
                version=digest,
                type="ClinicalRecord",
                hash=digest,
                size=len(body),
                uri=rid,
                attrs=bids.record_attrs(row),
            )

    def _read_table(self, f: _File) -> bids.Table:
        try:
            text = Path(f.path).read_text(encoding="utf-8-sig")
            return bids.read_table(text, bids.split_name(f.rel.rsplit("/", 1)[-1]).extension)
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"source {self.url!r}: cannot read table {f.rel}: {exc}") from None
        except bids.TableError as exc:
            raise SourceError(f"source {self.url!r}: table {f.rel}, {exc}") from None

    def _series_resource(self, rel: str, members: list[_File]) -> Resource:
        listing = [[m.rel.rsplit("/", 1)[-1], self._digests[m.rel]] for m in members]
        digest = digest_json(sorted(listing))
        attrs = bids.path_attrs(rel + "/")
        attrs.pop("extension", None)
        attrs["files"] = len(members)
        size = sum(m.size for m in members)
        return Resource(
            id=rel, version=digest, type="DICOMSeries", hash=digest, size=size, uri=rel, attrs=attrs
        )

    # --- the protocol ------------------------------------------------------------------

    @cached_property
    def snapshot(self) -> str:
        """Digest of every file's path and digest: equal snapshots mean equal contents."""
        self.resources()
        lines = "".join(f"{rel}\t{digest}\n" for rel, digest in sorted(self._digests.items()))
        return digest_bytes(lines.encode("utf-8"))

    def open(self, resource: Resource) -> BinaryIO:
        if resource.type == "ClinicalRecord":
            self.get(resource.id)  # NotFoundError for an unknown row
            return io.BytesIO(self._rows[resource.id])
        if resource.type == "DICOMSeries":
            raise SourceError(f"{resource.id} is a DICOM series (a folder); open its files one by one")
        # The folders on the way must stay inside the tree; the file itself may be a link,
        # as a scan lists linked files.
        root = self.root.resolve()
        path = Path(os.path.normpath(root / (resource.uri or resource.id)))
        if not path.is_relative_to(root) or not path.parent.resolve().is_relative_to(root):
            raise SourceError(f"resource {resource.id!r} points outside the source folder")
        try:
            return open(path, "rb")
        except OSError as exc:
            raise SourceError(f"source {self.url!r}: cannot open {resource.id}: {exc.strerror}") from None


class _Sidecars:
    """JSON sidecars by folder, loaded on first use, applied by the inheritance principle."""

    def __init__(self, root: Path, files: list[_File]) -> None:
        self.root = root
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
        return {**bids.merge_sidecars(layers), **attrs} if layers else attrs

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
            try:
                data = orjson.loads((self.root / rel).read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise SourceError(f"sidecar {rel}: not readable JSON: {exc}") from None
            if not isinstance(data, dict):
                raise SourceError(f"sidecar {rel}: expected a JSON object, got {type(data).__name__}")
            self._loaded[rel] = data
        return self._loaded[rel]
