"""Generate the deterministic, synthetic clinical-trial imaging sample data.

Usage::

    python scripts/make_sample_data.py [OUT]

OUT defaults to ``sample-data/`` at the repository root.  OUT is deleted and
recreated.  The result is two small BIDS 1.9.0 datasets, ``basel/`` and
``zurich/``, imitating a multiple-sclerosis imaging trial: T1w, T2w and FLAIR
volumes per session, a ``participants.tsv`` with clinical data, and a
``derivatives/lesions`` dataset holding binary lesion masks for part of the
T2w volumes.

Everything is synthetic and fully deterministic: all randomness comes from
``numpy.random.default_rng`` seeded by a fixed seed plus a stable key (so the
output of one file never depends on the order files are generated in), gzip
streams are written with a fixed header (no mtime, no file name), JSON has
sorted keys, and every text file uses ``\\n`` line endings.  Running the script
twice yields byte-identical trees.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import sys
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

SEED = 20240917
SHAPE = (16, 16, 10)
ZOOMS = (1.0, 1.0, 3.0)
BIDS_VERSION = "1.9.0"
MODALITIES = ("T1w", "T2w", "FLAIR")
AUTHORS = ["vxds developers"]
README_TITLE = "# vxds sample data"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "sample-data"

# A fixed namespace: every DICOM UID is 2.25.<uuid5(namespace, key)>, see _uid().
UID_NAMESPACE = uuid.UUID("5f0c6a52-8d4e-4b1e-9a57-7d2c1f3e0b11")
DICOM_SERIES = ("basel", "BS01", "01", "T2w")  # trial, subject, session, modality
STUDY_DATE = "20210315"  # fixed, synthetic; never taken from the clock

Files = dict[str, bytes]  # POSIX path relative to OUT -> file content
Array = npt.NDArray[np.float64]


# --------------------------------------------------------------------------
# Study design
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanner:
    """An MR scanner and the trial protocol's timing on it (seconds, degrees)."""

    manufacturer: str
    model: str
    field_strength: float
    institution: str
    station: str
    protocol: dict[str, dict[str, float]]


@dataclass(frozen=True)
class Session:
    label: str
    scanner: str
    has_mask: bool


@dataclass(frozen=True)
class Subject:
    label: str
    age: int | None
    sex: str
    site: str
    edss: float | None
    sessions: tuple[Session, ...]


@dataclass(frozen=True)
class Trial:
    name: str
    title: str
    readme: str
    sites: dict[str, str]
    subjects: tuple[Subject, ...]
    inherit_flair: bool


SIEMENS_3T = {
    "T1w": {"RepetitionTime": 2.3, "EchoTime": 0.00226, "FlipAngle": 8},
    "T2w": {"RepetitionTime": 6.0, "EchoTime": 0.096, "FlipAngle": 150},
    "FLAIR": {
        "RepetitionTime": 9.0,
        "EchoTime": 0.081,
        "InversionTime": 2.5,
        "FlipAngle": 150,
    },
}
PHILIPS_15T = {
    "T1w": {"RepetitionTime": 0.025, "EchoTime": 0.0046, "FlipAngle": 30},
    "T2w": {"RepetitionTime": 4.5, "EchoTime": 0.1, "FlipAngle": 90},
    "FLAIR": {
        "RepetitionTime": 11.0,
        "EchoTime": 0.14,
        "InversionTime": 2.8,
        "FlipAngle": 90,
    },
}
PHILIPS_3T = {
    "T1w": {"RepetitionTime": 0.0082, "EchoTime": 0.0038, "FlipAngle": 8},
    "T2w": {"RepetitionTime": 3.0, "EchoTime": 0.08, "FlipAngle": 90},
    "FLAIR": {
        "RepetitionTime": 4.8,
        "EchoTime": 0.125,
        "InversionTime": 1.65,
        "FlipAngle": 90,
    },
}

USB = "University Hospital Basel"
USZ = "University Hospital Zurich"
SCANNERS = {
    "usb-a": Scanner("Siemens", "Prisma", 3, USB, "USB-A", SIEMENS_3T),
    "usb-b": Scanner("Siemens", "Skyra", 3, USB, "USB-B", SIEMENS_3T),
    "usz-15": Scanner("Philips", "Ingenia", 1.5, USZ, "USZ", PHILIPS_15T),
    "usz-3": Scanner("Philips", "Ingenia CX", 3, USZ, "USZ", PHILIPS_3T),
}


def _ses(*specs: tuple[str, bool]) -> tuple[Session, ...]:
    """Sessions ses-01, ses-02, ... from (scanner, has_mask) pairs."""
    return tuple(
        Session(f"{index:02d}", scanner, has_mask) for index, (scanner, has_mask) in enumerate(specs, start=1)
    )


BASEL = Trial(
    name="basel",
    title="Basel synthetic MS imaging trial",
    readme=(
        "Synthetic two-site multiple-sclerosis imaging trial (Basel).\n"
        "\n"
        "Eight participants scanned at University Hospital Basel on two 3 T\n"
        "Siemens scanners (sites USB-A and USB-B); four have a follow-up\n"
        "session. Each session holds T1w, T2w and FLAIR volumes. Lesion\n"
        "masks for part of the T2w volumes are in derivatives/lesions.\n"
        "\n"
        "All images and clinical data are synthetic and were produced by\n"
        "scripts/make_sample_data.py in the vxds repository. No real\n"
        "person's data is contained in this dataset.\n"
    ),
    sites={
        "USB-A": "University Hospital Basel, scanner A (Siemens Prisma, 3 T)",
        "USB-B": "University Hospital Basel, scanner B (Siemens Skyra, 3 T)",
    },
    subjects=(
        Subject("BS01", 34, "F", "USB-A", 2.0, _ses(("usb-a", True), ("usb-a", True))),
        Subject("BS02", 41, "M", "USB-A", 3.5, _ses(("usb-a", True), ("usb-a", False))),
        Subject("BS03", 29, "F", "USB-B", 1.5, _ses(("usb-b", True))),
        Subject("BS04", 52, "F", "USB-A", 4.0, _ses(("usb-a", False), ("usb-a", True))),
        Subject("BS05", 47, "M", "USB-B", None, _ses(("usb-b", True))),
        Subject("BS06", 38, "F", "USB-B", 2.5, _ses(("usb-b", False))),
        Subject("BS07", 61, "M", "USB-A", 6.0, _ses(("usb-a", True), ("usb-a", True))),
        Subject("BS08", 26, "F", "USB-B", 1.0, _ses(("usb-b", False))),
    ),
    inherit_flair=False,
)

ZURICH = Trial(
    name="zurich",
    title="Zurich synthetic MS imaging trial",
    readme=(
        "Synthetic single-site multiple-sclerosis imaging trial (Zurich).\n"
        "\n"
        "Six participants scanned at University Hospital Zurich (site USZ)\n"
        "on a 1.5 T and, after a scanner replacement, a 3 T Philips scanner;\n"
        "three have a follow-up session. Each session holds T1w, T2w and\n"
        "FLAIR volumes. Metadata shared by all FLAIR images lives in the\n"
        "top-level FLAIR.json (BIDS inheritance principle). Lesion masks\n"
        "for part of the T2w volumes are in derivatives/lesions.\n"
        "\n"
        "All images and clinical data are synthetic and were produced by\n"
        "scripts/make_sample_data.py in the vxds repository. No real\n"
        "person's data is contained in this dataset.\n"
    ),
    sites={"USZ": "University Hospital Zurich"},
    subjects=(
        Subject("ZH01", 45, "F", "USZ", 3.0, _ses(("usz-15", True), ("usz-3", False))),
        Subject("ZH02", None, "M", "USZ", 2.0, _ses(("usz-15", True))),
        Subject("ZH03", 33, "F", "USZ", 1.5, _ses(("usz-15", True), ("usz-3", True))),
        Subject("ZH04", 58, "M", "USZ", 5.5, _ses(("usz-3", False))),
        Subject("ZH05", 39, "F", "USZ", 0.0, _ses(("usz-3", True), ("usz-3", False))),
        Subject("ZH06", 64, "F", "USZ", 6.5, _ses(("usz-3", False))),
    ),
    inherit_flair=True,
)

TRIALS = (BASEL, ZURICH)

# Signal per tissue class; lesions are T1-hypo-, T2- and FLAIR-hyperintense.
CONTRAST = {
    "T1w": {"scalp": 900, "gm": 600, "wm": 850, "csf": 200, "lesion": 420},
    "T2w": {"scalp": 500, "gm": 800, "wm": 550, "csf": 1600, "lesion": 1300},
    "FLAIR": {"scalp": 400, "gm": 700, "wm": 550, "csf": 100, "lesion": 1250},
}
NOISE_SIGMA = 12.0


# --------------------------------------------------------------------------
# Deterministic primitives
# --------------------------------------------------------------------------


def _rng(*key: str) -> np.random.Generator:
    """A generator seeded by SEED and a stable key, independent of call order."""
    return np.random.default_rng([SEED, zlib.crc32("/".join(key).encode())])


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Standard normal samples via Box-Muller on ``rng.random`` (stable bits)."""
    u1, u2 = 1.0 - rng.random(shape), rng.random(shape)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _gzip(data: bytes) -> bytes:
    """Gzip with a fixed header: no mtime, no file name, OS 'unknown'."""
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflate.compress(data) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _tsv(rows: list[list[str]]) -> bytes:
    return "".join("\t".join(row) + "\n" for row in rows).encode()


# --------------------------------------------------------------------------
# Synthetic anatomy and images
# --------------------------------------------------------------------------


def _affine() -> Array:
    """RAS+ affine with the grid centred on the scanner origin."""
    affine = np.diag([*ZOOMS, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * z for n, z in zip(SHAPE, ZOOMS, strict=True)]
    return affine


def _world_coordinates() -> tuple[Array, Array, Array]:
    affine = _affine()
    ijk = np.indices(SHAPE, dtype=float)
    xyz = np.tensordot(affine[:3, :3], ijk, axes=1) + affine[:3, 3, None, None, None]
    return xyz[0], xyz[1], xyz[2]


def _sigmoid(value: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-value))


def _anatomy(trial: str, subject: str) -> dict[str, Array]:
    """Soft tissue fractions of a subject's ellipsoid 'head'; they sum to the head."""
    scale = 0.9 + 0.1 * _rng(trial, subject, "anatomy").random()
    x, y, z = _world_coordinates()
    r = np.sqrt((x / 7.2) ** 2 + (y / 7.6) ** 2 + (z / 13.0) ** 2) / scale
    r_ventricle = np.sqrt((x / 1.6) ** 2 + (y / 3.0) ** 2 + (z / 7.0) ** 2) / scale
    head = _sigmoid((1.0 - r) / 0.06)
    brain = _sigmoid((0.8 - r) / 0.06)
    core = _sigmoid((0.55 - r) / 0.08)
    ventricle = _sigmoid((1.0 - r_ventricle) / 0.2)
    return {
        "scalp": head - brain,
        "gm": brain * (1.0 - core),
        "wm": brain * core * (1.0 - ventricle),
        "csf": brain * core * ventricle,
    }


def _lesion_load(trial: str, subject: str, session_index: int, anatomy: dict[str, Array]) -> Array:
    """Lesion map in [0, 1]; each follow-up session adds one new lesion."""
    rng = _rng(trial, subject, "lesions")
    candidates = np.flatnonzero(anatomy["wm"] > 0.5)
    count = int(rng.integers(2, 4)) + session_index
    centres = rng.choice(candidates, size=count, replace=False)
    widths = rng.uniform(0.8, 1.3, size=count)
    x, y, z = _world_coordinates()
    load = np.zeros(SHAPE)
    for centre, width in zip(centres, widths, strict=True):
        cx, cy, cz = (axis.flat[centre] for axis in (x, y, z))
        distance2 = ((x - cx) ** 2 + (y - cy) ** 2) / width**2 + ((z - cz) / 2.0) ** 2
        load = np.maximum(load, np.exp(-0.5 * distance2))
    return load * (anatomy["wm"] + anatomy["csf"] > 0.3)


def _image(
    modality: str, anatomy: dict[str, Array], lesions: Array, rng: np.random.Generator
) -> npt.NDArray[np.int16]:
    """Rician-noised int16 magnitude image for one modality."""
    contrast = CONTRAST[modality]
    signal = sum(anatomy[tissue] * contrast[tissue] for tissue in anatomy)
    signal = signal * (1.0 - lesions) + contrast["lesion"] * lesions
    signal = signal * rng.uniform(0.95, 1.05)
    real = signal + NOISE_SIGMA * _normal(rng, SHAPE)
    imaginary = NOISE_SIGMA * _normal(rng, SHAPE)
    return np.rint(np.hypot(real, imaginary)).astype(np.int16)


def _nifti_gz(data: npt.NDArray[np.int16] | npt.NDArray[np.uint8]) -> bytes:
    img = nib.Nifti1Image(data, _affine(), dtype=data.dtype)
    img.set_qform(_affine(), code="scanner")
    img.set_sform(_affine(), code="scanner")
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"vxds synthetic sample data"
    return _gzip(img.to_bytes())


# --------------------------------------------------------------------------
# DICOM source data
# --------------------------------------------------------------------------


def _uid(*key: str) -> UID:
    """A deterministic DICOM UID: the UUID-derived root 2.25 plus a name-based UUID."""
    return UID(f"2.25.{uuid.uuid5(UID_NAMESPACE, '/'.join(key)).int}")


def _ds(value: float) -> str:
    """A DICOM decimal string without float noise (and without '-0')."""
    return f"{round(value, 6) + 0.0:g}"


def _dicom_bytes(ds: Dataset) -> bytes:
    """Serialise a complete DICOM Part 10 file (explicit VR little endian)."""
    buffer = io.BytesIO()
    if int(pydicom.__version__.split(".")[0]) >= 3:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    else:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        pydicom.dcmwrite(buffer, ds, write_like_original=False)
    return buffer.getvalue()


def _dicom_header(key: tuple[str, str, str, str], subject: Subject, scanner: Scanner) -> Dataset:
    """Patient, study, series and equipment attributes shared by a series."""
    trial, _, session, modality = key
    protocol = scanner.protocol[modality]
    ds = Dataset()
    ds.StudyInstanceUID = _uid(*key[:3], "study")
    ds.SeriesInstanceUID = _uid(*key, "series")
    ds.FrameOfReferenceUID = _uid(*key[:3], "frame-of-reference")
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = STUDY_DATE
    ds.StudyID = f"{trial}-{session}"
    ds.SeriesNumber = MODALITIES.index(modality) + 1
    ds.SeriesDescription = f"{modality} 2D axial (synthetic)"
    ds.PatientName = ds.PatientID = f"sub-{subject.label}"
    ds.PatientSex = subject.sex
    if subject.age is not None:
        ds.PatientAge = f"{subject.age:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.Modality = "MR"
    ds.Manufacturer = scanner.manufacturer
    ds.ManufacturerModelName = scanner.model
    ds.InstitutionName = scanner.institution
    ds.StationName = scanner.station
    ds.MagneticFieldStrength = _ds(scanner.field_strength)
    ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "SK", "2D"
    ds.RepetitionTime = _ds(protocol["RepetitionTime"] * 1000)  # DICOM uses ms
    ds.EchoTime = _ds(protocol["EchoTime"] * 1000)
    ds.FlipAngle = _ds(protocol["FlipAngle"])
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds(ZOOMS[2])
    return ds


def _dicom_slice(header: Dataset, image: npt.NDArray[np.int16], k: int) -> Dataset:
    """Slice k of a RAS+ volume as an MR image; rows run along j, columns along i."""
    ds = Dataset()
    ds.update(header)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = _uid(header.SeriesInstanceUID, f"instance-{k + 1}")
    ds.InstanceNumber = k + 1
    x, y, z = _affine()[:3] @ [0.0, 0.0, float(k), 1.0]
    ds.ImagePositionPatient = [_ds(-x), _ds(-y), _ds(z)]  # RAS+ -> LPS+
    ds.ImageOrientationPatient = ["-1", "0", "0", "0", "-1", "0"]
    ds.PixelSpacing = [_ds(ZOOMS[1]), _ds(ZOOMS[0])]
    ds.SliceLocation = _ds(z)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = SHAPE[1], SHAPE[0]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = np.ascontiguousarray(image[:, :, k].T).astype("<i2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = _uid("vxds", "make_sample_data")
    ds.file_meta.ImplementationVersionName = "VXDS_SAMPLE_1"
    ds.preamble = b"\0" * 128
    return ds


def _dicom_series(
    trial: Trial, subject: Subject, session: Session, modality: str, image: npt.NDArray[np.int16]
) -> Files:
    """The volume as the scanner's DICOM series, one file per slice, in sourcedata/."""
    key = (trial.name, subject.label, session.label, modality)
    header = _dicom_header(key, subject, SCANNERS[session.scanner])
    folder = f"{trial.name}/sourcedata/sub-{subject.label}/ses-{session.label}/dicom/{modality}"
    return {
        f"{folder}/IM{k + 1:04d}.dcm": _dicom_bytes(_dicom_slice(header, image, k)) for k in range(SHAPE[2])
    }


# --------------------------------------------------------------------------
# BIDS metadata
# --------------------------------------------------------------------------


def _sidecar(scanner: Scanner, modality: str) -> dict[str, Any]:
    return {
        "Modality": "MR",
        "MagneticFieldStrength": scanner.field_strength,
        "Manufacturer": scanner.manufacturer,
        "ManufacturersModelName": scanner.model,
        "InstitutionName": scanner.institution,
        "StationName": scanner.station,
        "MRAcquisitionType": "2D",
        "SliceThickness": ZOOMS[2],
        **scanner.protocol[modality],
    }


def _dataset_description(trial: Trial) -> dict[str, Any]:
    return {
        "Name": f"vxds sample data: {trial.title}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": AUTHORS,
        "GeneratedBy": [{"Name": "vxds-make-sample-data", "Description": "scripts/make_sample_data.py"}],
    }


def _derivative_description(trial: Trial) -> dict[str, Any]:
    return {
        "Name": f"Lesion masks: {trial.title}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "License": "CC0",
        "Authors": AUTHORS,
        "DatasetLinks": {"raw": "../../"},
        "GeneratedBy": [
            {
                "Name": "synthetic-lesion-seg",
                "Version": "1.0.0",
                "Description": "Thresholded ground-truth lesion model of the synthetic images.",
            }
        ],
        "SourceDatasets": [{"URL": "bids:raw:"}],
    }


def _participants_tsv(trial: Trial) -> bytes:
    def value(item: object) -> str:
        return "n/a" if item is None else str(item)

    rows = [["participant_id", "age", "sex", "site", "edss"]]
    rows += [[f"sub-{s.label}", value(s.age), s.sex, s.site, value(s.edss)] for s in trial.subjects]
    return _tsv(rows)


def _participants_json(trial: Trial) -> dict[str, Any]:
    return {
        "participant_id": {"Description": "Unique participant identifier"},
        "age": {"Description": "Age of the participant at baseline (ses-01)", "Units": "year"},
        "sex": {
            "Description": "Sex of the participant",
            "Levels": {"F": "female", "M": "male"},
        },
        "site": {"Description": "Acquisition site", "Levels": dict(trial.sites)},
        "edss": {
            "Description": "Expanded Disability Status Scale score at baseline (0.0 to 10.0 in steps of 0.5)",
        },
    }


def _factor_out_shared(sidecars: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Move fields equal across all sidecars into the returned dict (in place)."""
    first, *rest = sidecars.values()
    shared = {k: v for k, v in first.items() if all(s.get(k, None) == v for s in rest)}
    for sidecar in sidecars.values():
        for key in shared:
            del sidecar[key]
    return shared


# --------------------------------------------------------------------------
# Tree assembly
# --------------------------------------------------------------------------


def _session_files(
    trial: Trial, subject: Subject, index: int, session: Session
) -> tuple[Files, dict[str, dict[str, Any]]]:
    """Image files (plus masks) and, separately, the not yet serialised sidecars."""
    anatomy = _anatomy(trial.name, subject.label)
    lesions = _lesion_load(trial.name, subject.label, index, anatomy)
    scanner = SCANNERS[session.scanner]
    stem = f"sub-{subject.label}/ses-{session.label}/anat/sub-{subject.label}_ses-{session.label}"
    files: Files = {}
    sidecars: dict[str, dict[str, Any]] = {}
    for modality in MODALITIES:
        rng = _rng(trial.name, subject.label, session.label, modality)
        image = _image(modality, anatomy, lesions, rng)
        files[f"{trial.name}/{stem}_{modality}.nii.gz"] = _nifti_gz(image)
        if (trial.name, subject.label, session.label, modality) == DICOM_SERIES:
            files.update(_dicom_series(trial, subject, session, modality, image))
        sidecars[f"{trial.name}/{stem}_{modality}.json"] = _sidecar(scanner, modality)
    if session.has_mask:
        mask = (lesions >= 0.5).astype(np.uint8)
        prefix = f"{trial.name}/derivatives/lesions/{stem}_desc-lesion_mask"
        files[f"{prefix}.nii.gz"] = _nifti_gz(mask)
        files[f"{prefix}.json"] = _json(
            {
                "Sources": [f"bids:raw:{stem}_T2w.nii.gz"],
                "Type": "Lesion",
            }
        )
    return files, sidecars


def _trial_files(trial: Trial) -> Files:
    files: Files = {
        f"{trial.name}/dataset_description.json": _json(_dataset_description(trial)),
        f"{trial.name}/README": trial.readme.encode(),
        f"{trial.name}/participants.tsv": _participants_tsv(trial),
        f"{trial.name}/participants.json": _json(_participants_json(trial)),
        f"{trial.name}/derivatives/lesions/dataset_description.json": _json(_derivative_description(trial)),
    }
    sidecars: dict[str, dict[str, Any]] = {}
    for subject in trial.subjects:
        for index, session in enumerate(subject.sessions):
            session_files, session_sidecars = _session_files(trial, subject, index, session)
            files.update(session_files)
            sidecars.update(session_sidecars)
    if trial.inherit_flair:
        flair = {path: s for path, s in sidecars.items() if path.endswith("_FLAIR.json")}
        files[f"{trial.name}/FLAIR.json"] = _json(_factor_out_shared(flair))
    files.update({path: _json(sidecar) for path, sidecar in sidecars.items()})
    return files


def _readme() -> bytes:
    return (
        f"{README_TITLE}\n"
        "\n"
        "Small, **entirely synthetic** clinical-trial imaging data used by the vxds\n"
        "tests and examples. Two BIDS 1.9.0 datasets imitate a multiple-sclerosis\n"
        "trial:\n"
        "\n"
        "- `basel/`: 8 subjects (sub-BS01..sub-BS08), two 3 T sites (USB-A, USB-B)\n"
        "- `zurich/`: 6 subjects (sub-ZH01..sub-ZH06), site USZ at 1.5 T and 3 T;\n"
        "  FLAIR metadata shared by all images is inherited from `zurich/FLAIR.json`\n"
        "\n"
        "Each session has T1w, T2w and FLAIR volumes (16x16x10 voxels, 1x1x3 mm,\n"
        "int16). `derivatives/lesions/` holds binary uint8 lesion masks for about\n"
        "two thirds of the T2w volumes. `participants.tsv` holds age, sex, site and\n"
        "EDSS, with `n/a` for missing values. `basel/sourcedata/` holds the DICOM\n"
        "series behind one T2w volume (sub-BS01, ses-01). No real person's data is\n"
        "included.\n"
        "\n"
        "Do not edit by hand. Regenerate (byte for byte identical) with:\n"
        "\n"
        "    python scripts/make_sample_data.py\n"
    ).encode()


def build_tree() -> Files:
    """All files of the sample-data tree, keyed by relative POSIX path."""
    files: Files = {"README.md": _readme()}
    for trial in TRIALS:
        files.update(_trial_files(trial))
    return dict(sorted(files.items()))


def _check_safe_to_replace(out: Path) -> None:
    """Refuse to delete a non-empty directory that this script did not create."""
    if not out.exists():
        return
    readme = out / "README.md"
    ours = readme.is_file() and readme.read_text().startswith(README_TITLE)
    if out.is_dir() and (ours or not any(out.iterdir())):
        return
    sys.exit(f"refusing to replace {out}: it does not look like generated sample data")


def write_tree(out: Path, files: Files) -> None:
    _check_safe_to_replace(out)
    shutil.rmtree(out, ignore_errors=True)
    for relative, content in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"usage: {Path(__file__).name} [OUT]", file=sys.stderr)
        return 2
    out = Path(argv[0]) if argv else DEFAULT_OUT
    files = build_tree()
    write_tree(out, files)
    print(f"wrote {len(files)} files, {sum(map(len, files.values()))} bytes to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
