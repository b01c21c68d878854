"""Load and validate ``datasets.yaml``.

Two forms are accepted: the seed's list of entries, and a mapping with shared
``defaults:`` and a ``datasets:`` list. The file is checked against
``vxds/schemas/manifest.schema.json``; every problem is reported with the file, line and
field, and all of them are reported at once. The YAML is read within bounds by
``yaml_loader``; schema errors become sentences in ``manifest_schema``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from vxds.errors import ManifestError, NotFoundError, UsageError
from vxds.hashing import canonical_json, digest_bytes, digest_json

if TYPE_CHECKING:
    from vxds.fs import JsonCache

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
    from vxds.project.yaml_loader import compose, construct

    node = compose(text, Path(where))
    return None if node is None else construct(node, Path(where))


# --- from data to entries ----------------------------------------------------------------


def _entries(path: Path, lines: Sequence[int], data: Any, default_source: str | None) -> list[Entry]:
    if isinstance(data, dict):
        defaults, items = dict(data.get("defaults") or {}), data["datasets"]
    else:
        defaults, items = {}, data
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
                line=lines[index],
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


LineOf = Callable[[Sequence[Any]], int]  # the line of the node at a path of keys


def _entry_problems(
    path: Path, line_of: LineOf, entries: list[Entry], base: tuple[Any, ...], require_scripts: bool
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
            line = line_of([*base, index, "script_location"])
            message = "an imported dataset has no recipe here; remove it or the import: block"
            problems.append((line, f"dataset {entry.key}: field 'script_location': {message}"))
        elif require_scripts and entry.imported is None and not entry.script.is_file():
            line = line_of([*base, index, "script_location"])
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
            line = line_of([*base, index, "params"])
            problems.append((line, f"dataset {entry.key}: field 'params' must hold plain JSON values: {exc}"))
    return [f"{path}:{line}: {message}" for line, message in sorted(problems)]


def _shown(path: Path) -> Path:
    """``path`` as a user would type it: relative to the current folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


# --- remembered parses ----------------------------------------------------------------------

PARSED = 1  # the format of the parse remembered in .vxds/manifest: bump when the rules change


def _cache(cache_dir: Path | None) -> JsonCache | None:
    if cache_dir is None:
        return None
    from vxds.fs import JsonCache

    return JsonCache(cache_dir / "manifest", PARSED)


def _key(text: str) -> str:
    """The text and the schema it was checked against, both as bytes: a new schema (a new
    vxds) or one byte of the manifest changed is another key."""
    import pkgutil  # lighter to import than importlib.resources

    schema_bytes = pkgutil.get_data("vxds.schemas", "manifest.schema.json") or b""
    return digest_bytes(b"%d\0%s\0%s" % (len(schema_bytes), schema_bytes, text.encode("utf-8")))


def _plain(value: Any) -> bool:
    """Whether a JSON round trip gives ``value`` back exactly (no YAML date, no NaN ...)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    return isinstance(value, float) and math.isfinite(value)


def _remembered(cache: JsonCache | None, key: str) -> tuple[Any, list[int]] | None:
    """The data and entry lines of this text's earlier parse, if it had no problem."""
    if cache is None or cache.data.get("key") != key:
        return None
    data, lines = cache.data.get("data"), cache.data.get("lines")
    if data is None or not isinstance(lines, list) or not all(type(n) is int for n in lines):
        return None
    items = data.get("datasets") if isinstance(data, dict) else data
    return (data, lines) if isinstance(items, list) and len(items) == len(lines) else None


def _remember(cache: JsonCache | None, key: str, data: Any, lines: list[int]) -> None:
    """Keep a parse that had no problem: its data only when it survives JSON (the schema's
    pass is kept either way, so jsonschema is not imported again for it)."""
    if cache is None:
        return
    cache.data = {"key": key, "data": data if _plain(data) else None, "lines": lines}
    cache.mark()
    cache.save()  # only a cache: a failure to write is ignored


# --- loading ------------------------------------------------------------------------------


def load_manifest(
    path: Path,
    *,
    default_source: str | None = None,
    require_scripts: bool = True,
    cache_dir: Path | None = None,
    text: str | None = None,
) -> Manifest:
    """Read and validate a manifest; raise ``ManifestError`` listing every problem.

    With ``cache_dir``, a text parsed without a problem before is taken from
    ``.vxds/manifest`` (neither YAML nor the schema is loaded for it); only its entries are
    checked again (a script that is gone). Any problem is worded by the YAML path, with its
    line. ``text`` is the manifest's content when it does not come from ``path`` (a Git
    revision); ``path`` still names it and locates its scripts.
    """
    path, shown = path.resolve(), _shown(path)
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([f"{shown}: manifest not found"], hint="run 'vxds init' to create one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{shown}: cannot read manifest: {exc}"]) from None
    cache, key = _cache(cache_dir), _key(text)
    remembered = _remembered(cache, key)
    if remembered is not None:
        data, lines = remembered
        entries = _entries(path, lines, data, default_source)
        base = ("datasets",) if isinstance(data, dict) else ()
        if not _entry_problems(shown, lambda _keys: 0, entries, base, require_scripts):
            return Manifest(path=path, entries=tuple(entries))
    return _parse(path, shown, text, default_source, require_scripts, cache, key)


def _parse(
    path: Path,
    shown: Path,
    text: str,
    default_source: str | None,
    require_scripts: bool,
    cache: JsonCache | None,
    key: str,
) -> Manifest:
    """The YAML path: every problem found, each with its file and line."""
    from functools import partial

    from vxds.project.manifest_schema import schema_problems
    from vxds.project.yaml_loader import compose, construct, duplicate_keys, line_of

    root = compose(text, shown)
    problems = list(duplicate_keys(root, shown))
    data = [] if root is None else construct(root, shown)
    known_valid = cache is not None and cache.data.get("key") == key
    if not known_valid:
        problems += schema_problems(shown, root, data)
    if problems:
        raise ManifestError(problems)
    base = ("datasets",) if isinstance(data, dict) else ()
    items = data["datasets"] if isinstance(data, dict) else data
    lines = [line_of(root, [*base, index]) for index in range(len(items))]
    entries = _entries(path, lines, data, default_source)
    problems = _entry_problems(shown, partial(line_of, root), entries, base, require_scripts)
    if not known_valid:
        _remember(cache, key, data, lines)
    if problems:
        raise ManifestError(problems)
    return Manifest(path=path, entries=tuple(entries))
