"""Load and validate ``datasets.yaml``.

Two forms are accepted: the seed's list of entries, and a mapping with shared
``defaults:`` and a ``datasets:`` list. The file is checked against
``vxds/schemas/manifest.schema.json``; every problem is reported with the file, line and
field, and all of them are reported at once. The YAML is read within bounds by
``yaml_loader``; schema errors become sentences in ``manifest_schema``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from vxds.errors import ManifestError, NotFoundError, UsageError
from vxds.hashing import canonical_json, digest_json
from vxds.project.manifest_schema import schema, schema_problems
from vxds.project.yaml_loader import compose, construct, duplicate_keys, line_of

DEFAULT_HELD_OUT = ("test", "val", "validation")


@dataclass(frozen=True)
class Entry:
    """One dataset version as the manifest declares it, with defaults applied."""

    name: str
    version: int
    script_location: str
    script: Path
    manifest: Path
    line: int
    description: str = ""
    entrypoint: str | None = None
    source: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    group_by: str | None = None
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    allow_group_overlap: bool = False
    frozen: bool = False  # published and closed: its lock is checked, never rewritten
    refresh: str = "auto"  # "always": its recipe runs on every lock, never skipped
    # ``import:`` (vxds import): url, rev, commit, name, version of the registry's lock; such
    # an entry has no recipe here and is frozen: checked, never run or relocked
    imported: Mapping[str, Any] | None = None

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def digest_fields(self) -> dict[str, Any]:
        """What the entry digest covers: everything that can change the lock.

        The description, ``frozen`` and ``refresh`` are left out on purpose: editing prose,
        freezing a version or choosing when its recipe runs does not make its lock stale.
        """
        return {
            "allow_group_overlap": self.allow_group_overlap,
            "entrypoint": self.entrypoint,
            "group_by": self.group_by,
            "held_out": list(self.held_out),
            "name": self.name,
            "params": dict(self.params),
            "script_location": PurePosixPath(self.script_location).as_posix(),
            "source": self.source,
            "version": self.version,
        }

    def digest(self) -> str:
        return digest_json(self.digest_fields())


@dataclass(frozen=True)
class Manifest:
    path: Path
    entries: tuple[Entry, ...]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def names(self) -> list[str]:
        return sorted({entry.name for entry in self.entries})

    def versions(self, name: str) -> list[int]:
        return sorted(entry.version for entry in self.entries if entry.name == name)

    def find(self, name: str, version: int | None = None) -> Entry:
        """The entry for ``name@version`` (no version: the highest)."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(f"no dataset named {name!r} in {self.path.name} (datasets: {known})")
        wanted = max(versions) if version is None else version
        for entry in self.entries:
            if entry.name == name and entry.version == wanted:
                return entry
        listed = ", ".join(map(str, versions))
        raise NotFoundError(
            f"dataset {name!r} has no version {wanted} in {self.path.name} (versions: {listed})"
        )

    def select(self, specs: Sequence[str]) -> list[Entry]:
        """Entries for ``NAME`` or ``NAME@V`` specs; a bare name means its highest version."""
        return [self.find(*parse_spec(spec)) for spec in specs]


def parse_spec(spec: str) -> tuple[str, int | None]:
    """``"name@2"`` -> ``("name", 2)``; ``"name"`` -> ``("name", None)``."""
    name, sep, version = spec.partition("@")
    if not name:
        raise UsageError(f"{spec!r} is not a dataset; expected NAME or NAME@VERSION")
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"{spec!r}: the version after '@' must be a positive integer")
    return name, int(version)


def parse_value(text: str, where: str) -> Any:
    """One YAML value given outside the manifest (``vxds lock --param``), read within the
    same bounds; ``ManifestError`` naming ``where`` if it is not plain data."""
    node = compose(text, Path(where))
    return None if node is None else construct(node, Path(where))


# --- from data to entries ----------------------------------------------------------------


def _entries(path: Path, root: yaml.Node | None, data: Any, default_source: str | None) -> list[Entry]:
    if isinstance(data, dict):
        defaults, items = dict(data.get("defaults") or {}), data["datasets"]
        base: tuple[str, ...] = ("datasets",)
    else:
        defaults, items, base = {}, data, ()
    out = []
    for index, item in enumerate(items):
        merged = {**defaults, **item}
        merged["params"] = {**defaults.get("params", {}), **item.get("params", {})}
        out.append(
            Entry(
                name=merged["name"],
                version=merged["version"],
                script_location=merged.get("script_location", ""),
                script=(path.parent / merged.get("script_location", "")).resolve(),
                manifest=path,
                line=line_of(root, [*base, index]),
                description=merged.get("description", ""),
                entrypoint=merged.get("entrypoint"),
                source=merged.get("source", default_source),
                params=merged["params"],
                group_by=merged.get("group_by"),
                held_out=tuple(merged.get("held_out", DEFAULT_HELD_OUT)),
                allow_group_overlap=merged.get("allow_group_overlap", False),
                frozen=merged.get("frozen", False) or "import" in merged,
                refresh=merged.get("refresh", "auto"),
                imported=merged.get("import"),
            )
        )
    return out


def _entry_problems(
    path: Path, root: yaml.Node | None, entries: list[Entry], base: tuple[Any, ...], require_scripts: bool
) -> list[str]:
    problems: list[tuple[int, str]] = []
    first: dict[tuple[str, int], int] = {}
    for index, entry in enumerate(entries):
        ident = (entry.name, entry.version)
        if ident in first:
            problems.append(
                (entry.line, f"dataset {entry.key} is declared twice (first at line {first[ident]})")
            )
        first.setdefault(ident, entry.line)
        if entry.imported is not None and entry.script_location:
            line = line_of(root, [*base, index, "script_location"])
            message = "an imported dataset has no recipe here; remove it or the import: block"
            problems.append((line, f"dataset {entry.key}: field 'script_location': {message}"))
        elif require_scripts and entry.imported is None and not entry.script.is_file():
            line = line_of(root, [*base, index, "script_location"])
            problems.append(
                (
                    line,
                    f"dataset {entry.key}: field 'script_location': "
                    f"script {entry.script_location!r} does not exist",
                )
            )
        try:
            canonical_json(dict(entry.params))
        except TypeError as exc:
            line = line_of(root, [*base, index, "params"])
            problems.append((line, f"dataset {entry.key}: field 'params' must hold plain JSON values: {exc}"))
    return [f"{path}:{line}: {message}" for line, message in sorted(problems)]


def _shown(path: Path) -> Path:
    """``path`` as a user would type it: relative to the current folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _validity_key(text: str) -> str:
    return digest_json({"manifest": text, "schema": schema()})


def _known_valid(text: str, cache_dir: Path | None) -> bool:
    """True when this exact text passed this exact schema before (saves importing jsonschema)."""
    if cache_dir is None:
        return False
    from vxds.fs import JsonCache

    marker = JsonCache(cache_dir / "manifest-valid", 1)
    return marker.data.get("key") == _validity_key(text)


def _remember_valid(text: str, cache_dir: Path | None) -> None:
    if cache_dir is None:
        return
    from vxds.fs import JsonCache

    marker = JsonCache(cache_dir / "manifest-valid", 1)
    marker.data["key"] = _validity_key(text)
    marker.mark()
    marker.save()  # only a cache: a failure to write is ignored


def load_manifest(
    path: Path,
    *,
    default_source: str | None = None,
    require_scripts: bool = True,
    cache_dir: Path | None = None,
    text: str | None = None,
) -> Manifest:
    """Read and validate a manifest; raise ``ManifestError`` listing every problem.

    With ``cache_dir``, a text that passed the schema before is not checked against it again.
    ``text`` is the manifest's content when it does not come from ``path`` (a Git revision);
    ``path`` still names it and locates its scripts.
    """
    path, shown = path.resolve(), _shown(path)
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([f"{shown}: manifest not found"], hint="run 'vxds init' to create one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{shown}: cannot read manifest: {exc}"]) from None
    root = compose(text, shown)
    problems = list(duplicate_keys(root, shown))
    data = [] if root is None else construct(root, shown)
    if not _known_valid(text, cache_dir):
        problems += schema_problems(shown, root, data)
        if not problems:
            _remember_valid(text, cache_dir)
    if problems:
        raise ManifestError(problems)
    entries = _entries(path, root, data, default_source)
    base = ("datasets",) if isinstance(data, dict) else ()
    problems = _entry_problems(shown, root, entries, base, require_scripts)
    if problems:
        raise ManifestError(problems)
    return Manifest(path=path, entries=tuple(entries))
