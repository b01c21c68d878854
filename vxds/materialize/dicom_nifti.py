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
  unless the project allows it (``[tool.vxds] dicom_allow``). Output names never hold a
  header value (``-f series``).
* **Several outputs.** A series dcm2niix splits (echoes, phase, one volume per image) gives
  each output a ``postfix`` (dcm2niix's: ``_e2``, ``_ph``, ``_i00001``); ``entities`` is the
  BIDS entity it stands for (``echo``, ``part``) where there is one, else None.

Not covered: entities BIDS requires beyond datatype and suffix (``task`` for ``func/bold``),
fieldmap ``IntendedFor``, and anything dcm2niix itself cannot convert (it names the reason).
"""

from __future__ import annotations

import fnmatch
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
_POSTFIX_ENTITIES = ((re.compile(r"_e(\d+)\Z"), "echo"), (re.compile(r"_ph\Z"), "part"))
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
        hint='map it in [tool.vxds.dicom_bids], e.g. "MR:*localizer*" = "anat/T1w"',
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
        raise ConversionError("dcm2niix is not installed", hint="pip install 'vxds[dicom]'")
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
    return Conversion(files, "dcm2niix", converter_version(binary))


def _converted(path: Path, datatype: str, suffix: str) -> Converted:
    name = path.name
    extension = next((e for e in EXTENSIONS if name.endswith(e)), None)
    if extension is None or not name.startswith(_STEM):
        raise ConversionError(f"dcm2niix wrote an unexpected file {name!r}")
    postfix = name[len(_STEM) : -len(extension)]
    entities: dict[str, str] | None = {} if not postfix else None
    for pattern, entity in _POSTFIX_ENTITIES:
        found = pattern.match(postfix)
        if found is not None:
            entities = {entity: found.group(1) if found.groups() else "phase"}
    return Converted(path, datatype, suffix, extension, postfix, entities)


def _strip_sidecar(path: Path, allow: tuple[str, ...]) -> None:
    """The sidecar without any attribute the PS3.15 profile removes (unless allowed)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConversionError(f"dcm2niix wrote an unreadable sidecar {path.name}: {exc}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"dcm2niix wrote a sidecar {path.name} that is not a JSON object")
    atomic_write(path, orjson.dumps(without_identifying(data, allow), option=orjson.OPT_INDENT_2))
