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

* DICOM series are converted to NIfTI at their BIDS names (``dicom``, with dcm2niix: the
  ``vxds[dicom]`` extra, checked before anything is written), the converter in
  ``GeneratedBy`` and the receipt; one that cannot be named or converted is a failure.

Tables and files outside a BIDS dataset are left out with a notice; another resource type can
be handed to a converter of its own (``BidsMaterializer.converters``); an image or Zarr that
cannot be named is a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from vxds.errors import VxdsError
from vxds.locks.splits import Split
from vxds.materialize.base import Job
from vxds.materialize.bids import dicom
from vxds.materialize.bids.dicom import Placed
from vxds.materialize.bids.layout import Converter, SplitWriter
from vxds.materialize.bids.naming import BidsName, bids_path, participants_tsv
from vxds.materialize.bids.tree import SourceTree
from vxds.resource import Resource

__all__ = ["BidsMaterializer", "BidsName", "Converter", "Placed", "bids_path", "participants_tsv"]


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
    # By resource type: what places a split's resources as other files (DICOMSeries -> NIfTI).
    converters: ClassVar[dict[str, Converter]] = {"DICOMSeries": dicom.to_nifti}

    def preflight(self, splits: Mapping[str, Split]) -> None:
        """dcm2niix must be there when a split holds a DICOM series to convert (one outside a
        ``sourcedata/`` folder): else one error, exit 2."""
        if self.converters.get("DICOMSeries") is not dicom.to_nifti:
            return
        if any(
            r.type == "DICOMSeries" and "sourcedata" not in r.id.split("/")
            for split in splits.values()
            for r in split.resources()
        ):
            from vxds.materialize.dicom_nifti import converter

            converter()  # raises ConversionError naming the vxds[dicom] extra

    def materialize(self, job: Job) -> None:
        tree = source_tree(job)
        for split in sorted(job.splits):
            SplitWriter(job, split, tree, self.converters).run()
