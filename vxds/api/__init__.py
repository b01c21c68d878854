"""Locking and reading locks from Python code such as a training script or a notebook.

``vxds.lock("viseg_training@1")`` does what ``vxds lock`` does and returns one
``LockOutcome`` per dataset (docs/api.md). ``vxds.load_lock("viseg_training@1")`` returns a
``LockedDataset`` (``dataset``): the lock's header and splits, each split a sequence of
resources and the lock a map-style dataset over all of them, ``get(id)``, ``open(resource)``
for bytes checked against the lock as they are read (for a DICOM series or a Zarr, its
member files, ``SeriesFiles``), ``path(resource)`` for a checked local file (``paths``), and
``to_records()`` for plain dicts (a DataFrame is one call away, but no data-frame library is
imported here). ``loading`` finds the lock: in the project, in a folder, at a Git revision,
or in a registry (``git+URL@REV#NAME@V``). Nothing heavier than the lock reader is imported
until a resource is opened.
"""

from __future__ import annotations

from vxds.api.dataset import LockedDataset
from vxds.api.loading import load_lock, lock, query
from vxds.api.series import SeriesFiles

__all__ = ["LockedDataset", "SeriesFiles", "load_lock", "lock", "query"]
