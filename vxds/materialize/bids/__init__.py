"""``bids``: one BIDS dataset per split under ``OUT/bids/<split>/``, valid where the source is.

* a resource from a BIDS dataset in the source keeps its path there: raw files their names,
  derivatives theirs under ``derivatives/<pipeline>/``, files that are not BIDS (FreeSurfer's
  ``mri/T1.mgz``) theirs; EEG, microscopy and OME-Zarr data included (``layout``);
* the files BIDS wants beside them travel too, from the source when the recipe did not
  select them: sidecars, ``events.tsv``, ``.bval``/``.bvec``, ``channels.tsv``, ``scans.tsv``,
  ``sessions.tsv``, the dataset's top-level files (``tree``), every one checked (against
  the lock when locked, else against the source's index) and in the receipt;
* ``dataset_description.json`` carried with vxds added to ``GeneratedBy`` (generated where the
  source has none, ``DatasetType: derivative`` under ``derivatives/<pipeline>/``), and
  ``participants.tsv``/``samples.tsv`` with every column and the split's subjects' rows
  (``dataset``);
* an image from a source not laid out as BIDS gets a name and sidecar from its attrs
  (``naming``), with ``participants.tsv`` from the split's clinical records.

DICOM series (and tables, files outside a BIDS dataset) are left out with a notice unless a
converter for their type is registered (``BidsMaterializer.converters``); an image or Zarr
that cannot be named is a failure.
"""

from __future__ import annotations

from typing import ClassVar

from vxds.errors import VxdsError
from vxds.materialize.base import Job
from vxds.materialize.bids.layout import Converter, SplitWriter
from vxds.materialize.bids.naming import BidsName, bids_path, participants_tsv
from vxds.materialize.bids.tree import SourceTree
from vxds.resource import Resource

__all__ = ["BidsMaterializer", "BidsName", "Converter", "bids_path", "participants_tsv"]


def source_tree(job: Job) -> SourceTree:
    """The source's index with every locked resource of the run over it."""
    resources: list[Resource] = []
    source = job.placer.access.source
    if source is not None:
        try:
            resources.extend(source.resources())
        except VxdsError as exc:
            job.notice(f"the source could not be listed ({exc}); only locked companions are placed")
    for split in sorted(job.splits):
        resources.extend(job.resources(split))
    return SourceTree(resources)


class BidsMaterializer:
    name: ClassVar[str] = "bids"
    # By resource type: what places a resource as other files (DICOMSeries -> NIfTI).
    converters: ClassVar[dict[str, Converter]] = {}

    def materialize(self, job: Job) -> None:
        tree = source_tree(job)
        for split in sorted(job.splits):
            SplitWriter(job, split, tree, self.converters).run()
