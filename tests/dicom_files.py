"""Real DICOM files for tests, written with pydicom (headers a scanner export would have)."""

from __future__ import annotations

import io
import re
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


def identifying_values() -> dict[str, Any]:
    """A distinctive value for every attribute of the PS3.15 basic profile that vxds does not
    keep (keyword -> value), of the attribute's own VR, for a header that has all of them."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.sequence import Sequence

    from vxds.sources.folder.ps3_15 import BASIC_PROFILE, RETAINED

    values: dict[str, Any] = {}
    for n, keyword in enumerate(sorted(BASIC_PROFILE - set(RETAINED)), start=100):
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        if tag >> 16 in (0x0000, 0x0002, 0xFFFC):  # command, file meta, padding: not in a dataset
            continue
        values[keyword] = _value_of(dictionary_VR(tag).split(" ")[0], n, Sequence)
    return values


def _value_of(vr: str, n: int, sequence: Any) -> Any:
    text = {
        "DA": f"1801{n % 12 + 1:02d}{n % 28 + 1:02d}",
        "TM": f"0{n % 10}1{n % 6}{n % 6}7",
        "AS": f"{n % 1000:03d}Y",
    }
    if vr in text:
        return text[vr]
    if vr == "DT":
        return f"1802{n % 12 + 1:02d}01120000"
    if vr == "UI":
        return f"1.2.826.0.1.3680043.8.498.77{n}"
    if vr in ("IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
        return 7770000 + n if vr not in ("US", "SS") else 7000 + n
    if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
        return f"PHIBYTES{n}".encode().ljust(12, b"\0")
    if vr == "SQ":
        item = Dataset()
        item.PatientName = f"Seq^Phi{n}"
        return sequence([item])
    if vr == "CS":
        return f"PHI{n}"
    return f"Phi{vr}{n}"  # PN, LO, SH, LT, ST, UT, UC, UR, AE


def found_in(text: str, values: list[str]) -> list[str]:
    """The values that appear in ``text`` as whole tokens: a short number such as a US
    attribute's 7300 is a leak on its own, not as four digits inside a digest or an mtime."""
    return [v for v in values if re.search(rf"(?<![0-9A-Za-z]){re.escape(v)}(?![0-9A-Za-z])", text)]


def grep_values(values: dict[str, Any]) -> list[str]:
    """The values above as they could appear in text (a lock, a message, a sidecar)."""
    found = []
    for value in values.values():
        if isinstance(value, bytes):
            found.append(value.rstrip(b"\0").decode())
        elif isinstance(value, (str, int)):
            found.append(str(value))
        else:
            found.append(str(value[0].PatientName))
    return found
