"""New links to a folder source's files, made a batch at a time: ``place_all``'s fast path.

With ``--mode hardlink`` or ``symlink`` from a source with files on this machine and the hash
cache ``vxds lock`` keeps (the folder source), most resources of a fresh OUT need the same
few steps: find the source file (one ``lstat``, which the source also uses to refuse a file
outside its tree), find its size, mtime and inode in the hash cache with the locked digest,
link it straight to its final name (a link appears whole) and record it. A file the cache
does not know under that stat is hashed first (``hashing.hash_file_key``, which reads it
again if it changes meanwhile) and linked when it has the locked bytes and the stat it was
found with. ``Linker`` does only that, with the placer's own claims, source and ledger, and
records its links a journal batch at a time. A resource it cannot vouch for so (other bytes,
another size or stat; no source file; a folder on the way refused; a file system that cannot
link; a path an earlier run recorded) is left untouched and handed back: the placer's general
path then hashes it, copies it or reports why not, as it does for every other one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vxds.errors import VxdsError
from vxds.hashing import hash_file_key
from vxds.materialize.receipt import Entry, Journal
from vxds.resource import Resource

if TYPE_CHECKING:
    from vxds.materialize.place import Placer

# Resources that are not one file of the source: a series or Zarr is a folder, a clinical
# record is a row the source serves.
NOT_A_FILE = frozenset({"DICOMSeries", "Zarr", "ClinicalRecord"})


class Linker:
    """Links resources whose source file the hash cache vouches for; hands back the rest."""

    def __init__(self, placer: Placer) -> None:
        source: Any = placer.access.source  # one that ``usable`` accepted
        self._placer = placer
        self._local_file: Callable[[Resource], tuple[str, os.stat_result]] = source.local_file
        self._cached: Callable[[Resource, tuple[int, int, int]], str | None] = source.cached_digest
        self._previous = placer.ledger.previous
        self._done: list[tuple[str, Entry]] = []  # linked, not yet recorded

    @staticmethod
    def usable(placer: Placer) -> bool:
        """Whether this run's links can be made here: a link mode, no cluster, no store to
        fall back to, and a source that finds files and keeps a hash cache."""
        access = placer.access
        return (
            placer.mode in ("hardlink", "symlink")
            and placer.remote is None
            and access.store is None
            and hasattr(access.source, "local_file")
            and hasattr(access.source, "cached_digest")
        )

    def link(self, resource: Resource, rel: str, module: str) -> bool:
        """Link ``OUT/rel`` to ``resource``'s source file when the hash cache vouches for it
        (True); False, with nothing written, for the general path to place it."""
        if resource.type in NOT_A_FILE or rel in self._previous or resource.hash is None:
            return False
        try:
            target = self._placer.claims.parent(rel)
            src, st = self._local_file(resource)
            size = st.st_size
            key = (size, st.st_mtime_ns, st.st_ino)
            if resource.size not in (None, size):
                return False
            if self._cached(resource, key) != resource.hash and not self._hashes_to(resource, src, key):
                return False
            if self._placer.mode == "hardlink":
                os.link(src, target)
            else:
                os.symlink(os.path.abspath(src), target)
        except (OSError, VxdsError):  # the general path meets it again and says what it is
            return False
        self._done.append((rel, Entry(resource.hash, size, resource.id, resource.hash, module, key)))
        if len(self._done) >= Journal.FLUSH_EVERY:
            self.flush()
        return True

    @staticmethod
    def _hashes_to(resource: Resource, src: str, key: tuple[int, int, int]) -> bool:
        """A file the cache does not know (written just before ``vxds lock`` hashed it, say):
        whether it hashes to the locked blake3 with the stat it had when it was found."""
        digest, read_as = hash_file_key(src)
        return digest == resource.hash and read_as == key

    def flush(self) -> None:
        """Record the links made so far (journalled together) and count them on the bar."""
        if self._done:
            done, self._done = self._done, []
            self._placer.ledger.record_placed(done)
            self._placer.task.advance(len(done))
