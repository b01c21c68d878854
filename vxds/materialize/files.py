"""``files``: every resource's bytes at ``OUT/<split>/<id>``, DICOM series and Zarrs as folders.

A clinical record's bytes are its row as canonical JSON (what the source serves for it).
"""

from __future__ import annotations

from typing import ClassVar

from vxds.materialize.base import Job


class FilesMaterializer:
    name: ClassVar[str] = "files"

    def materialize(self, job: Job) -> None:
        for split in sorted(job.splits):
            for resource in job.resources(split):
                rel = f"{split}/{resource.id}"
                if resource.type in ("DICOMSeries", "Zarr"):
                    job.placer.place_series(resource, rel, module=job.module)
                else:
                    job.placer.place(resource, rel, module=job.module)
