"""The project as a whole: the manifest, recipe scripts, and which locks to check."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from vxds.errors import ManifestError
from vxds.locks.format import HEADER
from vxds.locks.recovery import leftovers_of_dataset
from vxds.locks.store import lock_dir
from vxds.project.config import Config
from vxds.project.manifest import Entry, Manifest, parse_spec
from vxds.verify.findings import ERROR, WARNING, Finding
from vxds.verify.model import Target

# --- the project: manifest, scripts, which locks to check --------------------------------

_PROBLEM_RE = re.compile(r"(?P<file>.*?):(?P<line>\d+): (?P<message>.*)\Z", re.S)


def manifest_findings(config: Config, error: ManifestError) -> list[Finding]:
    file = config.relative(config.manifest)
    out = []
    for problem in error.problems:
        match = _PROBLEM_RE.match(problem)
        if match:
            out.append(Finding("VX101", ERROR, match["message"], file=file, line=int(match["line"])))
        else:
            out.append(Finding("VX101", ERROR, problem.split(": ", 1)[-1], file=file))
    return out


def script_findings(config: Config, entries: Sequence[Entry]) -> list[Finding]:
    return [
        Finding(
            "VX102",
            ERROR,
            f"the recipe script {entry.script_location} does not exist",
            dataset=entry.key,
            file=config.relative(entry.manifest),
            line=entry.line,
        )
        for entry in entries
        if entry.imported is None and not entry.script.is_file()
    ]


def _locks_on_disk(config: Config) -> dict[str, Path]:
    """``name@version`` -> folder of every lock under the locks folder (hidden ones skipped)."""
    found: dict[str, Path] = {}
    if not config.locks.is_dir():
        return found
    for name_dir in sorted(config.locks.iterdir()):
        if name_dir.name.startswith(".") or not name_dir.is_dir():
            continue
        for version_dir in sorted(name_dir.iterdir()):
            if not version_dir.name.startswith(".") and (version_dir / HEADER).is_file():
                found[f"{name_dir.name}@{version_dir.name}"] = version_dir
    return found


def leftover_findings(config: Config, names: set[str]) -> list[Finding]:
    """VX206: temporary and set-aside folders that killed ``vxds lock`` runs left beside
    locks (of the datasets in ``names``, or of all when empty); ``git add -A`` would commit them."""
    if not config.locks.is_dir():
        return []
    findings = []
    for folder in sorted(config.locks.iterdir()):
        if folder.name.startswith(".") or (names and folder.name not in names) or not folder.is_dir():
            continue
        for path in leftovers_of_dataset(folder):
            version = path.name[1:].rpartition(".")[0]
            key = f"{folder.name}@{version}"
            message = f"left over from a 'vxds lock' that was killed; 'vxds lock {key}' removes it"
            findings.append(
                Finding(
                    "VX206", WARNING, f"{message} (do not commit it)", dataset=key, file=config.relative(path)
                )
            )
    return findings


def find_targets(
    config: Config, manifest: Manifest | None, specs: Sequence[str]
) -> tuple[list[Target], list[Finding]]:
    """What to check, and the project's own findings: orphan locks (locks with no dataset)
    and what killed lock writes left beside them."""
    on_disk = _locks_on_disk(config)
    names = {parse_spec(spec)[0] for spec in specs}
    leftovers = leftover_findings(config, names)
    if manifest is None:  # unreadable manifest: check the integrity of the locks alone
        keys = [k for k in on_disk if not names or k.partition("@")[0] in names]
        return [Target(k, on_disk[k], None) for k in keys], leftovers
    entries = manifest.select(specs) if specs else list(manifest)
    targets = [Target(e.key, lock_dir(config.locks, e.name, e.version), e) for e in entries]
    orphans: list[Finding] = []
    if not specs:
        declared = {e.key for e in manifest}
        for key, path in on_disk.items():
            if key not in declared:
                targets.append(Target(key, path, None))
                manifest_file = config.relative(config.manifest)
                orphans.append(
                    Finding(
                        "VX202",
                        WARNING,
                        f"the lock {config.relative(path)} has no dataset {key} in {manifest_file}",
                        dataset=key,
                        file=config.relative(path / HEADER),
                    )
                )
    return targets, orphans + leftovers
