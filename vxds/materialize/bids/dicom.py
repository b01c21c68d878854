"""``-m bids``'s converter for ``DICOMSeries``: each series as NIfTI at its BIDS name.

Every series of a split is converted by dcm2niix (``vxds.materialize.dicom_nifti``: NIfTI,
JSON sidecar, ``.bval``/``.bvec`` for diffusion; no PS3.15 attribute in what it writes), and
its files are named:

* ``sub``/``ses`` from the series' attrs (the ``sub-*``/``ses-*`` folders above its files);
* datatype and suffix from ``[tool.vxds.dicom_bids]``, then the defaults (``bids_target``);
* ``task`` (for ``func``): the SeriesDescription's letters and digits (``rs_fMRI 2mm`` ->
  ``rsfMRI2mm``), ``unknown`` when it has none; the sidecar gets it as ``TaskName``;
* ``run``: when two series of the split would get the same name, each gets ``run-<n>`` in
  SeriesNumber order (then SeriesInstanceUID), so no series overwrites another;
* ``echo``/``part`` from dcm2niix's postfix (``_e2``, ``_ph``, ``_real``, ``_imaginary``; the
  magnitude beside a phase image gets ``part-mag``). A series dcm2niix splits by anything
  else (``_i00001`` per image, ``_c3`` per coil, ``_ADC``) has no BIDS name: it fails whole.

A series that cannot be named or converted is a failure naming it (the run exits 1); the
others are converted. The converter's name and version go to ``GeneratedBy`` and the receipt.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vxds.errors import VxdsError
from vxds.materialize.base import Job
from vxds.materialize.bids.naming import BidsName, bids_path, json_bytes
from vxds.materialize.dicom_nifti import ConversionError, Converted, bids_target, convert
from vxds.resource import Resource

Rules = tuple[tuple[str, str], ...]
_NOT_LABEL = re.compile(r"[^A-Za-z0-9]+")


@dataclass
class Placed:
    """What a converter placed: paths under the split's folder, and the programs it ran."""

    paths: list[str] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)  # name -> version


@dataclass
class Plan:
    resource: Resource
    attrs: dict[str, Any]  # subject, session, datatype, task, run
    suffix: str


def _options(job: Job) -> tuple[Rules, tuple[str, ...]]:
    """``[tool.vxds.dicom_bids]`` and ``dicom_allow``, as the configuration hands the source."""
    context = getattr(job.placer.access.source, "context", None)
    options = getattr(context, "options", None) or {}
    rules = tuple((str(r[0]), str(r[1])) for r in options.get("dicom_bids", []) if len(r) == 2)
    return rules, tuple(str(name) for name in options.get("dicom_allow", []))


def task_label(attrs: Mapping[str, Any]) -> str:
    """The ``task`` of a func series: its description's letters and digits, else ``unknown``."""
    label = _NOT_LABEL.sub("", str(attrs.get("SeriesDescription") or ""))
    return label or "unknown"


def _plan(resource: Resource, rules: Rules) -> Plan:
    """Where the series goes (before it is converted); ``ConversionError``/``BidsName`` if nowhere."""
    datatype, suffix = bids_target(resource.attrs, rules)
    attrs: dict[str, Any] = {"subject": resource.attrs.get("subject"), "datatype": datatype}
    if attrs["subject"] is None:
        raise BidsName("no subject in its attrs (no sub-<label> folder above its files)")
    if resource.attrs.get("session") is not None:
        attrs["session"] = resource.attrs["session"]
    if datatype == "func":
        attrs["task"] = task_label(resource.attrs)
    bids_path(Resource(resource.id, 1, "Volume", attrs={**attrs, "suffix": suffix, "extension": ".nii.gz"}))
    return Plan(resource, attrs, suffix)


def _order(plan: Plan) -> tuple[int, str, str]:
    number = plan.resource.attrs.get("SeriesNumber")
    uid = plan.resource.attrs.get("SeriesInstanceUID")
    return (number if isinstance(number, int) else 0, str(uid or ""), plan.resource.id)


def number_runs(plans: Iterable[Plan]) -> None:
    """``run`` for the series that would share a name (the module doc)."""
    same: dict[tuple[str, tuple[tuple[str, Any], ...]], list[Plan]] = defaultdict(list)
    for plan in plans:
        same[(plan.suffix, tuple(sorted(plan.attrs.items())))].append(plan)
    for group in same.values():
        if len(group) > 1:
            for n, plan in enumerate(sorted(group, key=_order), start=1):
                plan.attrs["run"] = str(n)


def names(plan: Plan, files: Sequence[Converted]) -> list[tuple[str, Converted]]:
    """Each output's path in the dataset; ``ConversionError`` for a postfix of no entity."""
    unknown = sorted({f.postfix for f in files if f.entities is None})
    if unknown:
        raise ConversionError(
            f"dcm2niix split it into images BIDS has no entity for (postfix {', '.join(unknown)});"
            " not converted",
            hint="leave the series out of the split in the recipe, or convert it yourself",
        )
    phase = any(f.entities and "part" in f.entities for f in files)
    named = []
    for f in files:
        attrs = {**plan.attrs, **(f.entities or {}), "suffix": f.suffix, "extension": f.extension}
        if phase:
            attrs.setdefault("part", "mag")
        named.append((bids_path(Resource(plan.resource.id, 1, "Volume", attrs=attrs)), f))
    return named


def _convert(job: Job, plan: Plan, out: str, options: tuple[Rules, tuple[str, ...]], done: Placed) -> None:
    work = Path(job.placer.claims.tmp_name(plan.resource.id))
    work.mkdir()
    try:  # the staged DICOM copies hold PHI: removed here, and with OUT's tmp folder at the end
        members = job.placer.access.members(plan.resource)
        conversion = convert(plan.resource, members, work, rules=options[0], allow=options[1])
        for rel, f in names(plan, conversion.files):
            job.placer.write(f"{out}/{rel}", _file_bytes(plan, f), module=job.module)
            done.paths.append(rel)
        done.tools[conversion.converter] = conversion.version
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _file_bytes(plan: Plan, f: Converted) -> bytes:
    """An output's bytes; a func sidecar gets the ``TaskName`` BIDS requires (its task label)."""
    data = f.path.read_bytes()
    if f.extension != ".json" or "task" not in plan.attrs:
        return data
    sidecar = orjson.loads(data)
    sidecar.setdefault("TaskName", plan.attrs["task"])
    return json_bytes(sidecar)


def to_nifti(job: Job, series: Sequence[Resource], out: str) -> Placed:
    """Convert the split's series into ``out`` (``bids/<split>``); failures named, not raised."""
    options = _options(job)
    plans, done = [], Placed()
    for resource in series:
        try:
            plans.append(_plan(resource, options[0]))
        except (ConversionError, BidsName) as exc:
            _fail(job, resource, exc)
    number_runs(plans)
    for plan in plans:
        try:
            _convert(job, plan, out, options, done)
        except (VxdsError, BidsName, OSError) as exc:
            _fail(job, plan.resource, exc)
    return done


def _fail(job: Job, resource: Resource, exc: Exception) -> None:
    text = exc.message if isinstance(exc, VxdsError) else str(exc)
    if isinstance(exc, VxdsError) and exc.hint:
        text += f" ({exc.hint})"
    job.placer.ledger.fail_text(resource.id, f"({job.module})", text)
