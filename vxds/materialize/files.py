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
            placements = ((resource, f"{split}/{resource.id}") for resource in job.resources(split))
            job.placer.place_all(placements, module=job.module)
