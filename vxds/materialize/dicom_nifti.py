"""One DICOM series to NIfTI with ``dcm2niix``, and where BIDS puts the result.

``convert(resource, members, work)`` copies the series' member files into a folder of their
own (a series' folder may hold other series and stray files), checking the copied bytes
against the locked listing, runs ``dcm2niix -b y -ba y -z y`` on it and returns every file
it produced (``.nii.gz``, the ``.json`` sidecar, ``.bval``/``.bvec`` for diffusion) with the
BIDS datatype and suffix the series maps to, and the converter's version for the receipt
and ``GeneratedBy``.

* **Mapping.** ``bids_target(attrs, rules)`` tries the project's rules (``[tool.vxds.dicom_bids]``,
  in file order), then ``DEFAULT_RULES``: each is a glob, matched without regard to case
  against ``"<Modality>:<SeriesDescription>"``, and a ``"datatype/suffix"``. A series no rule
  matches is a one-line error naming it.
* **No PHI in a sidecar.** dcm2niix's anonymisation (``-ba y``) drops the patient's name, id
  and birth date, but keeps the institution, station, serial numbers and comments: every key
  the PS3.15 profile names (``vxds.sources.folder.ps3_15``) is removed from the sidecar,
  unless the project allows it (``[tool.vxds] dicom_allow``). The NIfTI header's free-text
  fields go too: dcm2niix writes the acquisition time into ``descrip`` and ImageComments into
  ``aux_file`` (both blanked unless ``AcquisitionTime``/``ImageComments`` is allowed). Output
  names never hold a header value (``-f series``).
* **Several outputs.** A series dcm2niix splits (echoes, phase, one volume per image) gives
  each output a ``postfix`` (dcm2niix's: ``_e2``, ``_ph``, ``_i00001``); ``entities`` is the
  BIDS entity it stands for (``echo``, ``part``) where there is one, else None.

Where each file goes in a BIDS dataset (subject, session, ``run``, ``task``) is decided by
``vxds.materialize.bids.dicom``. Not covered: fieldmap ``IntendedFor``, and anything dcm2niix
itself cannot convert (it names the reason).
"""

from __future__ import annotations

import fnmatch
import gzip
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vxds.errors import VxdsError
from vxds.fs import atomic_write
from vxds.hashing import digest_bytes
from vxds.resource import Resource
from vxds.sources.folder.ps3_15 import without_identifying
from vxds.sources.folder.tree import series_digest

DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("MR:*flair*", "anat/FLAIR"),
    ("MR:*mprage*", "anat/T1w"),
    ("MR:*mp-rage*", "anat/T1w"),
    ("MR:*t1*", "anat/T1w"),
    ("MR:*t2*", "anat/T2w"),
    ("MR:*dwi*", "dwi/dwi"),
    ("MR:*dti*", "dwi/dwi"),
    ("MR:*diff*", "dwi/dwi"),
    ("PT:*", "pet/pet"),
)
EXTENSIONS = (".nii.gz", ".json", ".bval", ".bvec")
_STEM = "series"
# dcm2niix's postfix parts with a BIDS entity: echo number, phase/real/imaginary images.
_ECHO = re.compile(r"e(\d+)\Z")
_PARTS = {"ph": "phase", "real": "real", "imaginary": "imag"}
_TIMEOUT = 600


class ConversionError(VxdsError):
    """A DICOM series cannot be converted (no converter, no mapping, or the converter failed)."""


@dataclass(frozen=True)
class Converted:
    """One file dcm2niix produced, and where BIDS puts it."""

    path: Path
    datatype: str
    suffix: str
    extension: str
    postfix: str  # "" for a series converted to one volume
    entities: Mapping[str, str] | None  # the BIDS entities the postfix stands for; None: none known


@dataclass(frozen=True)
class Conversion:
    files: list[Converted]
    converter: str  # "dcm2niix"
    version: str  # e.g. "v1.0.20260724"


def bids_target(attrs: Mapping[str, Any], rules: Iterable[tuple[str, str]] = ()) -> tuple[str, str]:
    """``(datatype, suffix)`` for a series, from the first rule its Modality and description match."""
    key = f"{attrs.get('Modality', '')}:{attrs.get('SeriesDescription', '')}".lower()
    for pattern, target in (*rules, *DEFAULT_RULES):
        if fnmatch.fnmatchcase(key, pattern.lower()):
            datatype, _, suffix = target.partition("/")
            return datatype, suffix
    raise ConversionError(
        f"no BIDS datatype/suffix for a {attrs.get('Modality', 'DICOM')} series described"
        f" {str(attrs.get('SeriesDescription', ''))[:80]!r}",
        hint='map it in [tool.vxds.dicom_bids] (e.g. "MR:*localizer*" = "anat/T1w"),'
        " or leave it out of the split in the recipe",
    )


def converter() -> str:
    """The ``dcm2niix`` binary: the PyPI wheel's (``vxds[dicom]``), else one on PATH."""
    try:
        import dcm2niix  # type: ignore[import-untyped,unused-ignore]

        path = str(dcm2niix.bin)
        if os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("dcm2niix")
    if found is None:
        raise ConversionError(
            "dcm2niix is not installed: converting DICOM needs the vxds[dicom] extra",
            hint="pip install 'vxds[dicom]'",
        )
    return found


def converter_version(binary: str | None = None) -> str:
    """``dcm2niix -v``'s version (``v1.0.20260724``)."""
    out = _run([binary or converter(), "-v"], check=False)
    found = re.search(r"version (v[\w.\-]+)", out)
    if found is None:
        raise ConversionError(f"dcm2niix -v printed no version: {out.strip()[:120]!r}")
    return found.group(1)


def _run(args: list[str], *, check: bool = True) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConversionError(f"cannot run {args[0]}: {exc}") from None
    if check and done.returncode != 0:
        last = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        why = last[-1].strip()[:200] if last else f"exit status {done.returncode}"
        raise ConversionError(f"dcm2niix failed (exit {done.returncode}): {why}")
    return done.stdout + done.stderr


def stage(resource: Resource, members: Sequence[tuple[str, str]], folder: Path) -> None:
    """Copy the members into ``folder``, checking the copies against the locked listing."""
    listing = []
    for name, path in members:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConversionError(f"{resource.id}: cannot read its file {name}: {exc.strerror}") from None
        (folder / name).write_bytes(data)
        listing.append((name, digest_bytes(data)))
    if resource.hash is not None and series_digest(listing) != resource.hash:
        raise ConversionError(f"{resource.id}: its files do not match the locked hash {resource.hash}")


def convert(
    resource: Resource,
    members: Sequence[tuple[str, str]],
    work: Path,
    *,
    rules: Iterable[tuple[str, str]] = (),
    allow: Iterable[str] = (),
) -> Conversion:
    """Convert one series into ``work/out`` (``work`` an empty folder the caller removes)."""
    datatype, suffix = bids_target(resource.attrs, rules)
    binary = converter()
    staged, out = work / "dicom", work / "out"
    staged.mkdir()
    out.mkdir()
    stage(resource, members, staged)
    _run([binary, "-b", "y", "-ba", "y", "-z", "y", "-f", _STEM, "-o", str(out), str(staged)])
    files = [_converted(path, datatype, suffix) for path in sorted(out.iterdir())]
    if not any(f.extension == ".nii.gz" for f in files):
        raise ConversionError(f"{resource.id}: dcm2niix wrote no NIfTI image")
    kept = tuple(allow)
    for f in files:
        if f.extension == ".json":
            _strip_sidecar(f.path, kept)
        elif f.extension == ".nii.gz":
            _strip_header(f.path, kept)
    return Conversion(files, "dcm2niix", converter_version(binary))


def _converted(path: Path, datatype: str, suffix: str) -> Converted:
    name = path.name
    extension = next((e for e in EXTENSIONS if name.endswith(e)), None)
    if extension is None or not name.startswith(_STEM):
        raise ConversionError(f"dcm2niix wrote an unexpected file {name!r}")
    postfix = name[len(_STEM) : -len(extension)]
    return Converted(path, datatype, suffix, extension, postfix, postfix_entities(postfix))


def postfix_entities(postfix: str) -> dict[str, str] | None:
    """The BIDS entities of a dcm2niix postfix (``_e2_ph``: echo 2, part phase); None when a
    part of it stands for none (``_i00001``, ``_ADC``, ``_c3``)."""
    entities: dict[str, str] = {}
    for part in postfix.split("_")[1:] if postfix.startswith("_") else ([postfix] if postfix else []):
        echo = _ECHO.match(part)
        if echo is not None:
            entities["echo"] = str(int(echo.group(1)))
        elif part in _PARTS:
            entities["part"] = _PARTS[part]
        else:
            return None
    return entities


def _strip_sidecar(path: Path, allow: tuple[str, ...]) -> None:
    """The sidecar without any attribute the PS3.15 profile removes (unless allowed)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConversionError(f"dcm2niix wrote an unreadable sidecar {path.name}: {exc}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"dcm2niix wrote a sidecar {path.name} that is not a JSON object")
    atomic_write(path, orjson.dumps(without_identifying(data, allow), option=orjson.OPT_INDENT_2))


# NIfTI-1 header fields of free text (offset, length): where dcm2niix puts header values.
_TEXT_FIELDS = (((148, 80), ("AcquisitionTime",)), ((228, 24), ("ImageComments",)))


def _strip_header(path: Path, allow: tuple[str, ...]) -> None:
    """The image with its ``descrip`` (``TE=..;Time=<AcquisitionTime>``) and ``aux_file``
    (ImageComments) blanked, unless the attribute they hold is allowed."""
    try:
        data = bytearray(gzip.decompress(path.read_bytes()))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ConversionError(f"dcm2niix wrote an unreadable image {path.name}: {exc}") from None
    if len(data) < 348 or int.from_bytes(data[:4], "little") != 348:
        raise ConversionError(f"dcm2niix wrote {path.name}, which is not a NIfTI-1 image")
    for (offset, length), keywords in _TEXT_FIELDS:
        if not set(keywords) & set(allow):
            data[offset : offset + length] = bytes(length)
    atomic_write(path, gzip.compress(bytes(data), mtime=0))
