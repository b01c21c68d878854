"""``LockedDataset.path``: a file on this machine holding a resource's locked bytes, checked.

* A folder source: the file itself, once its digest matches the lock. An unchanged file
  (same size, modification time and inode) is not read again: the hash cache ``vxds lock``
  keeps, or ``.vxds/path-hashes.json`` for files hashed here, knows its digest.
* Any other source (a bucket, a catalog): a copy under ``.vxds/files/<algorithm>/<hex>``,
  content-addressed by the locked hash, written from a checked read into a temporary file
  that is renamed in whole (``vxds.fs.StagedFile``), and checked again when handed out.
* The source no longer has the locked bytes and there is a store: the store's own file
  (a local store), else a copy from the store's bytes as above.
* A DICOM series or a Zarr: a folder ``.vxds/series/<hex>/`` of its member files, copied
  from checked reads (``SeriesFiles``, source then store), built under a temporary name and
  renamed whole; an existing one is checked against the lock before it is handed out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vxds.errors import SourceError
from vxds.fs import StagedFile, files_under, make_dirs
from vxds.hashing import HashCache, hash_file_key
from vxds.locks.verified_read import IntegrityError, VerifiedReader, expected, mismatch
from vxds.resource import Resource

if TYPE_CHECKING:
    from vxds.api.dataset import LockedDataset

SERIES = ("DICOMSeries", "Zarr")
LOST = (IntegrityError, SourceError, FileNotFoundError)  # the source no longer has the bytes
Lookup = Callable[[Resource, tuple[int, int, int]], "str | None"]


def local_path(dataset: LockedDataset, resource: Resource) -> Path:
    """Where the resource's checked bytes are (a folder of members for a series)."""
    if resource.hash is None:
        raise SourceError(f"{resource.id}: the lock records no hash, so its bytes cannot be checked")
    if resource.type in SERIES:
        return _series_folder(dataset, resource)
    try:
        return _from_source(dataset, resource)
    except LOST:
        if dataset.store is None:
            raise
    return _from_store(dataset, resource)


def _from_source(dataset: LockedDataset, resource: Resource) -> Path:
    source = dataset.source
    if hasattr(source, "local_file") and resource.type != "ClinicalRecord":
        path, st = source.local_file(resource)
        check_file(dataset, resource, path, st, getattr(source, "cached_digest", None))
        return Path(path)
    return _cached_copy(dataset, resource, lambda: source.open(resource))


def _from_store(dataset: LockedDataset, resource: Resource) -> Path:
    store = dataset.store
    local = store.local_path(resource)
    if local is not None and os.path.isfile(local):
        check_file(dataset, resource, local, os.stat(local))
        return Path(local)
    return _cached_copy(dataset, resource, lambda: store.open(resource))


def check_file(
    dataset: LockedDataset, resource: Resource, path: str, st: os.stat_result, lookup: Lookup | None = None
) -> None:
    """``IntegrityError`` unless the file at ``path`` holds the resource's locked bytes."""
    want = expected(resource)
    assert want is not None
    if want[0] != "blake3":  # another algorithm: read it through the checking reader
        with VerifiedReader(resource, open(path, "rb")) as reader:
            while reader.read(1 << 20):
                pass
        return
    key = (st.st_size, st.st_mtime_ns, st.st_ino)
    cache = _hash_cache(dataset)
    digest = (lookup(resource, key) if lookup is not None else None) or cache.get(path, key)
    if digest is None:
        digest, key = hash_file_key(path)
        cache.put(path, key, digest)
        cache.save()
    problem = mismatch(resource, digest.partition(":")[2], key[0])
    if problem is not None:
        raise IntegrityError(f"{problem} ({path})")


def _hash_cache(dataset: LockedDataset) -> HashCache:
    found = dataset._sources.get("path-hashes")
    if not isinstance(found, HashCache):
        found = dataset._sources["path-hashes"] = HashCache(dataset.cache_dir / "path-hashes.json")
    return found


def _cached_copy(dataset: LockedDataset, resource: Resource, opener: Callable[[], BinaryIO]) -> Path:
    """The copy under ``.vxds/files/``, made from a checked read when missing or damaged."""
    algorithm, hexdigest = expected(resource) or ("", "")
    target = dataset.cache_dir / "files" / algorithm / hexdigest[:2] / hexdigest
    if target.is_file():
        try:
            check_file(dataset, resource, str(target), os.stat(target))
            return target
        except IntegrityError:
            target.unlink(missing_ok=True)  # damaged: made again
    make_dirs(target.parent)
    with StagedFile(target.parent, hexdigest) as out, VerifiedReader(resource, opener()) as reader:
        while block := reader.read(8 << 20):
            out.write(block)
        out.commit(target, durable=False)
    return target


def _series_folder(dataset: LockedDataset, resource: Resource) -> Path:
    """``.vxds/series/<hex>/``: the members' checked copies, renamed into place whole."""
    from vxds.api.series import SeriesFiles

    hexdigest = (expected(resource) or ("", ""))[1]
    target = dataset.cache_dir / "series" / hexdigest
    if target.is_dir():
        try:
            SeriesFiles(resource, [(name, str(target / name)) for name in files_under(target)])
            return target
        except (IntegrityError, SourceError, OSError):
            shutil.rmtree(target, ignore_errors=True)  # damaged: made again
    members: Any = dataset.open(resource)
    make_dirs(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{hexdigest[:16]}.", suffix=".tmp", dir=target.parent))
    try:
        for name in members.names:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            with members.open(name) as src, open(staging / name, "wb") as out:
                shutil.copyfileobj(src, out, 8 << 20)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise  # else another process made it meanwhile
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
