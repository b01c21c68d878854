"""Which names of a folder the folder source sees: everything but hidden entries, with two
exceptions.

A leading dot hides a file or folder (``.git``, ``.DS_Store``, ``.vxds``), except

* inside a Zarr store, whose dot-files (``.zattrs``, ``.zgroup``, ``0/.zarray``) are its data;
* a ``.bidsignore`` file beside a ``dataset_description.json``: the BIDS validator reads it at
  a dataset's root, so it is part of the dataset and travels with ``-m bids``. Anywhere else
  (and as a folder) it stays hidden, as every other dot-file does.
"""

from __future__ import annotations

import os

from vxds.sources.folder import bids
from vxds.sources.folder.cache import Listing, TreeCache

BIDSIGNORE = ".bidsignore"
DESCRIPTION = "dataset_description.json"


def listing(rel: str, path: str, tree: TreeCache | None) -> tuple[Listing, tuple[int, int]]:
    """A folder's visible file and folder names (from the cache when it is unchanged), and
    its (mtime, inode) key for the cache."""
    st = os.stat(path)
    key = (st.st_mtime_ns, st.st_ino)
    cached = tree.get(rel, key) if tree is not None else None
    if cached is not None:
        return cached, key
    names: list[str] = []
    subdirs: list[str] = []
    members = bids.zarr_root(rel) is not None
    with os.scandir(path) as entries:
        for entry in entries:
            if members or not entry.name.startswith("."):
                (subdirs if entry.is_dir(follow_symlinks=False) else names).append(entry.name)
            elif entry.name == BIDSIGNORE and not entry.is_dir(follow_symlinks=False):
                names.append(entry.name)
    if not members and BIDSIGNORE in names and DESCRIPTION not in names:
        names.remove(BIDSIGNORE)
    return (names, subdirs), key
