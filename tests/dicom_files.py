"""Real DICOM files for tests, written with pydicom (headers a scanner export would have)."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

MR_UID = "1.2.826.0.1.3680043.8.498.1"
CT_UID = "1.2.826.0.1.3680043.8.498.2"
STUDY_UID = "1.2.826.0.1.3680043.8.498.9"


def dicom_bytes(series_uid: str = MR_UID, instance: int = 1, **attrs: Any) -> bytes:
    """One image of a series: a 2x2 slice with the preamble, ``DICM`` and a file meta group."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    sop = generate_uid(entropy_srcs=[series_uid, str(instance)])
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop
    ds.Modality = "MR"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(8)
    ds.preamble = b"\0" * 128
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
