"""A folder tree as a source: one resource per file, DICOM series as one resource each.

* ``id`` and ``uri``: the POSIX path relative to the folder (a DICOM series': ``dicom``).
* ``version`` and ``hash``: ``blake3:<hex>`` of the bytes (a series': of its listing).
* ``type``: Volume, Mask, DICOMSeries, Zarr, Table or File; each row of a record table is
  also a ClinicalRecord with id ``<table>#<row key>``.
* ``attrs``: BIDS entities from the path, merged with inherited JSON sidecars; a volume's
  NIfTI header fields; a series' DICOM header fields (never identifying ones, ``ps3_15``).

Hidden files and folders (a leading dot) are skipped, but for a BIDS dataset's
``.bidsignore`` and a Zarr's members (``listing``). Symlinked folders are not followed; a
symlinked file is read through its link when it resolves inside the folder. A link leading
outside it, or a name no resource id can hold (not UTF-8, a control character, a
backslash, a drive letter), stops the scan with one error naming each, before any file is
read: a source never leaves its folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from vxds import hashing
from vxds.errors import SourceError
from vxds.executor import for_url
from vxds.fs import files_under
from vxds.hashing import FileChanged, HashCache, StatKey, digest_bytes
from vxds.resource import Resource, checked
from vxds.sources.base import IndexedSource, SourceContext
from vxds.sources.folder import dicom
from vxds.sources.folder.cache import TreeCache, cache_folder, racy_after, tree_digest
from vxds.sources.folder.index import (
    FOLDERS,
    ZARRS,
    FolderIndex,
    Group,
    Kept,
    digests_of,
    entry,
    groups,
    kept,
)
from vxds.sources.folder.nifti import Headers
from vxds.sources.folder.patch import Patch, patch
from vxds.sources.folder.root import folder_path as folder_path  # re-exported
from vxds.sources.folder.root import folder_root
from vxds.sources.folder.tree import TreeBuilder, TreeFile, record_tables
from vxds.sources.folder.walk import WalkedFile, leads_out, shown, walk

FEW_FILES = 256  # a rebuild of at most this many files and bytes reads them without the caches
FEW_BYTES = 64 << 20
CACHED_SHARE = 64  # ... and when the tree holds at least 64 times as many (the caches' size)


def _series_names(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n[0] != "." and os.path.isfile(f"{folder}/{n}"))


def _snapshot(kept: Kept, digests: dict[str, str]) -> str:
    """The digest of every file's ``path<TAB>digest`` line, sorted (a tab sorts before any
    character a path can hold, so by path): the kept entries' lines as they are, and those
    of the files in ``digests``."""
    text = "".join([*(entry[4] for entry in kept.values()), *(f"{r}\t{d}\n" for r, d in digests.items())])
    lines = sorted(text.split("\n")[:-1])
    return digest_bytes(("\n".join(lines) + "\n" if lines else "").encode("utf-8"))


class FolderSource(IndexedSource):
    """A local folder, read with the stat-cached, parallel hasher.

    Its snapshot is the digest of every file's path and digest: equal snapshots mean equal
    contents.
    """

    def __init__(self, url: str, context: SourceContext) -> None:
        super().__init__(url, context)
        self.root = folder_root(url, context.base)
        self._digests: dict[str, str] = {}
        self._real_root: str | None = None
        self._safe_parents: set[str] = set()
        self._real_folders: dict[str, str] = {}  # folder -> its real path (``_real_folder``)
        self._hash_cache: HashCache | None = None
        self._few = False  # this scan rebuilds a few files: reading them beats loading the caches
        self._tree: TreeCache | None = None  # stat'ed by ``listing_digest``, for the scan

    # --- hashing -----------------------------------------------------------------------

    def _hash_all(self, files: list[WalkedFile]) -> tuple[dict[str, str], dict[str, WalkedFile]]:
        """Digests by path, and the files that changed since they were listed, as hashed."""
        cache = HashCache(self._caches / "hashes.json" if self._caches else None)
        digests: dict[str, str] = {}
        todo: list[WalkedFile] = []
        for f in files:
            known = cache.get(f.path, f.key)
            if known is None:
                todo.append(f)
            else:
                digests[f.rel] = known
        moved: dict[str, WalkedFile] = {}
        if todo:
            racy = racy_after()
            for f, (digest, key) in zip(todo, self._hash_files(todo), strict=True):
                digests[f.rel] = digest
                if key != f.key:  # written since it was listed: describe the bytes hashed
                    moved[f.rel] = f._replace(size=key[0], key=key)
                if key[1] < racy:  # a file changed just now might change again unseen
                    cache.put(f.path, key, digest)
            cache.save()
        return digests, moved

    def _hash_files(self, todo: list[WalkedFile]) -> list[tuple[str, StatKey]]:
        task = self.context.progress.task(f"hashing {self.url}", total=len(todo))
        try:
            return hashing.map_files(
                lambda path, _size: hashing.hash_file_key(path),
                ((f.path, f.size) for f in todo),
                jobs=self.context.jobs,
                on_done=lambda _size: task.advance(),
                executor=for_url(self.context.executor),
            )
        except FileChanged as exc:
            raise SourceError(f"source {self.url!r}: {exc.message}") from None
        except OSError as exc:
            raise SourceError(f"source {self.url!r}: cannot read {exc.filename}: {exc.strerror}") from None
        finally:
            task.close()

    def listing_digest(self, *, saved_before: int | None = None) -> str | None:
        """The tree cache's root digest (``cache.tree_digest``): what a recipe's fingerprint keeps.

        The stats made to check it are kept for this source's scan, which then lists again
        only the folders they found changed."""
        settings = "\n".join(record_tables(self.context.options))
        tree = None
        if saved_before is None and self._resources is None:
            tree = self._tree = TreeCache(cache_folder(self.context.cache_dir, self.root))
        return tree_digest(self.context.cache_dir, self.root, settings, saved_before=saved_before, tree=tree)

    # --- scanning ----------------------------------------------------------------------

    def _scan(self) -> list[Resource]:
        folder = cache_folder(self.context.cache_dir, self.root)
        tree, self._tree = self._tree or TreeCache(folder), None
        index = FolderIndex(folder, self._settings())
        if tree.stale is None:
            listing = tree.unchanged_listing(str(self.root))  # stats only: no folder is listed
        else:  # stat'ed just now, by ``listing_digest``
            listing = None if tree.stale else tree.root
        cached = index.whole(listing) if listing is not None else None
        if cached is None and tree.stale:
            changed = patch(self.root, tree, index, self.url)
            if changed is not None:
                return self._index(changed, index, tree.token)
        if cached is None:
            files, series = walk(self.root, tree, url=self.url)
            listing = tree.save()
            cached = index.whole(listing) if listing is not None else None
            if cached is None:
                plan = groups(files, series, racy_after())
                sidecars = [f for f in files if f.rel.endswith(".json")]
                whole = Patch(plan, {}, set(), sidecars, listing, len(files))
                return self._index(whole, index, tree.token, complete=True)
        self._snapshot, self._rows = cached.snapshot, cached.rows
        return cached.resources

    def _index(
        self, work: Patch, index: FolderIndex, token: str | None, *, complete: bool = False
    ) -> list[Resource]:
        """Reuse every group the index vouches for, hash and build the others, keep them all."""
        plan, listing = work.plan, work.root
        reused = {(g.kind, g.rel): e for g in plan if (e := index.reusable(g)) is not None}
        todo = [g for g in plan if (g.kind, g.rel) not in reused]
        self._digests = {}
        for old in reused.values():
            self._digests.update(digests_of(old))
        for g in todo:
            self._digests.update(index.known(g))
        unknown = [f for g in todo for f in g.files if f.rel not in self._digests]
        rebuilt = sum(len(g.files) for g in todo)
        few = rebuilt <= FEW_FILES and rebuilt * CACHED_SHARE <= work.total
        self._few = few and sum(f.size for f in unknown) <= FEW_BYTES
        hashed, moved = self._hash_all(unknown)
        self._digests.update(hashed)
        if moved:  # the listing no longer describes these files: keep none of their folders
            todo = [g._replace(files=[moved.get(f.rel, f) for f in g.files]) for g in todo]
            listing = None
        self._snapshot = _snapshot(work.kept, self._digests)
        built = self._build(todo, work.sidecars)
        found: list[Resource] = []
        entries = {**work.kept, **reused}
        found.extend(kept(entries.values()))
        for old in entries.values():
            if old[3]:
                self._rows.update((rid, body.encode()) for rid, body in old[3].items())
        for g in todo:
            made = [checked(resource) for resource in built.get((g.kind, g.rel), ())]
            found.extend(made)
            if g.settled and not any(f.rel in moved for f in g.files):
                entries[g.kind, g.rel] = entry(g, made, self._rows, self._digests)
        touched = None if complete else work.touched
        index.save(listing, self._snapshot, token, entries, touched=touched)
        return found

    def _settings(self) -> str:
        """What resources depend on besides the files (the index is kept per settings)."""
        options = self.context.options
        return "\n".join(record_tables(options)) + "\ndicom:1:" + ",".join(dicom.allowed(options))

    @property
    def _caches(self) -> Path | None:
        """Where the hash and header caches are, or None when this scan rebuilds so few files
        that reading them (and their headers) again costs less than loading the caches."""
        return None if self._few else self.context.cache_dir

    def _dicom_headers(self) -> dicom.DicomHeaders:
        return dicom.DicomHeaders(self._caches, dicom.allowed(self.context.options))

    def _build(self, todo: list[Group], sidecars: list[WalkedFile]) -> dict[tuple[str, str], list[Resource]]:
        """The resources of each group in ``todo``, by (kind, rel); ``sidecars``: every JSON file."""
        files = [f for g in todo if g.kind == FOLDERS for f in g.files]
        zarrs: dict[str, list[TreeFile]] = {g.rel: list(g.files) for g in todo if g.kind == ZARRS}
        executor = for_url(self.context.executor)
        dicom_headers = self._dicom_headers()
        if executor.remote:  # the headers the caches lack are read on the cluster's workers
            dicom_headers.prefetch(files, executor)
        plain, series = dicom.group(files, dicom_headers)
        dicom_headers.cache.save()
        headers = Headers(self._caches, {f.rel: (f.path, f.key) for f in plain})
        if executor.remote:
            headers.prefetch(executor)
        builder = TreeBuilder(
            self.url,
            self._digests,
            self._read,
            record_tables=record_tables(self.context.options),
            header=headers,
        )
        made = builder.build(list(plain), zarrs, context=sidecars)
        headers.cache.save()
        self._rows = builder.rows
        out: dict[tuple[str, str], list[Resource]] = {}
        for r in made:
            if r.id in zarrs:
                key = (ZARRS, r.id)
            else:
                key = (FOLDERS, builder.tables.get(r.id, r.id).rpartition("/")[0])
            out.setdefault(key, []).append(r)
        for s in series:
            out.setdefault((FOLDERS, s.folder), []).append(dicom.series_resource(s, self._digests))
        return out

    def _read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    # --- reading ---------------------------------------------------------------------

    def _open_file(self, resource: Resource) -> BinaryIO:
        path = self.local_path(resource)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise SourceError(f"source {self.url!r}: cannot open {resource.id}: {exc.strerror}") from None

    def local_path(self, resource: Resource) -> str:
        """Where a file or series resource lives on disk (``vxds materialize`` links to it).

        The folders on the way must stay inside the tree, and so must the file: it may be a
        link, as a scan lists linked files, but not one leading out of the tree.
        """
        path = self._inside(resource)
        self._refuse_link_out(resource.id, path)
        return path

    def local_file(self, resource: Resource) -> tuple[str, os.stat_result]:
        """``local_path`` and its stat, one ``lstat`` for a plain file (FileNotFoundError if none)."""
        path = self._inside(resource)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            self._refuse_link_out(resource.id, path)
            st = os.stat(path)
        return path, st

    def _inside(self, resource: Resource) -> str:
        root = self._root_real()
        rel = resource.uri or resource.id
        plain = rel[:1] not in ("", "/", ".") and "/." not in rel and "//" not in rel and rel[-1] != "/"
        path = f"{root}/{rel}" if plain else os.path.normpath(os.path.join(root, rel))  # the same path
        parent = path.rpartition("/")[0]
        if parent not in self._safe_parents:
            real = self._real_folder(parent)
            if not path.startswith(root + "/") or not (real == root or real.startswith(root + "/")):
                raise SourceError(f"resource {resource.id!r} points outside the source folder")
            self._safe_parents.add(parent)
        return path

    def _real_folder(self, folder: str) -> str:
        """``os.path.realpath(folder)``, from its parent's when that is known and ``folder``
        is no link: one ``lstat`` per folder rather than one per folder on its path."""
        known = self._real_folders.get(folder)
        if known is None:
            up, _, name = folder.rpartition("/")
            above = self._real_folders.get(up)
            if above is None and up.startswith(self._root_real() + "/"):  # from its own parent's
                above = self._real_folder(up)
            plain = above is not None and name not in ("", ".", "..") and not os.path.islink(folder)
            known = f"{above}/{name}" if plain else os.path.realpath(folder)
            self._real_folders[folder] = known
        return known

    def _root_real(self) -> str:
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
            self._real_folders[self._real_root] = self._real_root
        return self._real_root

    def _refuse_link_out(self, rid: str, path: str) -> None:
        target = leads_out(path, self._root_real())
        if target is not None:
            raise SourceError(
                f"source {self.url!r}: {shown(rid)} is a symbolic link to {shown(target)}, "
                "outside the source folder; not read"
            )

    def cached_digest(self, resource: Resource, key: tuple[int, int, int]) -> str | None:
        """The digest the hash cache holds for the resource's file, if its stat ``key``
        (size, mtime, inode) is unchanged since it was hashed; None otherwise."""
        if self._hash_cache is None:
            cache_dir = self.context.cache_dir
            self._hash_cache = HashCache(cache_dir / "hashes.json" if cache_dir else None)
        return self._hash_cache.get(f"{self.root}/{resource.uri or resource.id}", key)

    def members(self, resource: Resource) -> list[tuple[str, str]]:
        """The files of a DICOM series or a Zarr: ``(name, path)`` sorted by name, a Zarr's
        names being paths inside it (dot-files included)."""
        in_root = resource.type == "DICOMSeries" and not resource.uri  # a series of the tree's root
        folder = self._root_real() if in_root else self.local_path(resource)
        try:
            names = files_under(folder) if resource.type == "Zarr" else _series_names(folder)
        except OSError as exc:
            raise SourceError(f"source {self.url!r}: cannot list {resource.id}: {exc.strerror}") from None
        uid = resource.attrs.get("SeriesInstanceUID") if resource.type == "DICOMSeries" else None
        if isinstance(uid, str):  # the folder's files of this series, as a scan grouped them
            names = dicom.of_series(self._dicom_headers(), folder, names, uid)
        for name in names:
            self._refuse_link_out(f"{resource.id}/{name}", f"{folder}/{name}")
        return [(name, f"{folder}/{name}") for name in names]
