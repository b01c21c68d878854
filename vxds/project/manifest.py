"""Load and validate ``datasets.yaml``.

Two forms are accepted: the seed's list of entries, and a mapping with shared
``defaults:`` and a ``datasets:`` list. The file is checked against
``vxds/schemas/manifest.schema.json``; every problem is reported with the file, line and
field, and all of them are reported at once. The YAML is read within bounds by
``yaml_loader``; schema errors become sentences in ``manifest_schema``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from vxds.errors import ManifestError, NotFoundError, UsageError
from vxds.hashing import canonical_json, digest_json
from vxds.project.manifest_schema import schema, schema_problems

if TYPE_CHECKING:  # PyYAML is imported only where a manifest is parsed: a remembered one is not
    import yaml

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


def _items(data: Any) -> tuple[dict[str, Any], list[Any], tuple[str, ...]]:
    """The shared defaults, the entries and where the entries are, in either form."""
    if isinstance(data, dict):
        return dict(data.get("defaults") or {}), data["datasets"], ("datasets",)
    return {}, data, ()


def _entries(path: Path, data: Any, lines: Sequence[int], default_source: str | None) -> list[Entry]:
    defaults, items, _ = _items(data)
    out = []
    for item, line in zip(items, lines, strict=True):
        merged = {**defaults, **item}
        merged["params"] = {**defaults.get("params", {}), **item.get("params", {})}
        out.append(
            Entry(
                name=merged["name"],
                version=merged["version"],
                script_location=merged.get("script_location", ""),
                script=(path.parent / merged.get("script_location", "")).resolve(),
                manifest=path,
                line=line,
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
    """Every problem of the entries; with no ``root`` (a remembered text), lines are not looked
    up and any problem means the caller parses the text to report it."""

    def line_of(at: list[Any]) -> int:
        from vxds.project.yaml_loader import line_of as line_in

        return line_in(root, at) if root is not None else 1

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


# --- remembering a parsed text --------------------------------------------------------------

# Bump when the parse or the entry rules change: a cache of another format is an empty one.
CACHE_FORMAT = 1
_CACHE_KEPT = 4  # texts remembered: the working tree's and a few Git revisions'
_JSON_INTS = (-(2**63), 2**64 - 1)  # what orjson writes and reads back as the same int


def _plain(value: Any) -> bool:
    """True when a JSON round trip gives ``value`` back exactly, types included."""
    kind = type(value)
    if kind is str:
        return not any("\ud800" <= char <= "\udfff" for char in value)  # orjson refuses these
    if kind is dict:
        return all(type(key) is str and _plain(key) and _plain(item) for key, item in value.items())
    if kind is list:
        return all(_plain(item) for item in value)
    if kind is int:
        return bool(_JSON_INTS[0] <= value <= _JSON_INTS[1])
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is bool


class _Parsed:
    """``.vxds/manifest-cache``: for the last few manifest texts, keyed by a digest of the text,
    the schema and ``CACHE_FORMAT``, that the text passed the schema and, when its data is
    plain JSON and it had no problem, the data and the line of each entry."""

    def __init__(self, text: str, cache_dir: Path | None) -> None:
        from vxds.fs import JsonCache

        self.cache: JsonCache | None = None
        self.record: dict[str, Any] | None = None
        if cache_dir is None:
            return
        self.key = digest_json({"format": CACHE_FORMAT, "manifest": text, "schema": schema()})
        self.cache = JsonCache(cache_dir / "manifest-cache", CACHE_FORMAT)
        record = self.cache.table("texts").get(self.key)
        self.record = record if isinstance(record, dict) else None

    def remembered(self) -> tuple[Any, list[int]] | None:
        """The data and entry lines written for this text, when they read back whole."""
        record = self.record or {}
        data, lines = record.get("data"), record.get("lines")
        if data is None or record.get("check") != digest_json([self.key, data, lines]):
            return None
        return data, lines  # type: ignore[return-value]  # checked: what we wrote

    def remember(self, record: dict[str, Any]) -> None:
        if self.cache is None:
            return
        if "data" in record:
            record["check"] = digest_json([self.key, record["data"], record["lines"]])
        texts = self.cache.table("texts")
        texts.pop(self.key, None)
        texts[self.key] = record
        while len(texts) > _CACHE_KEPT:
            del texts[next(iter(texts))]
        self.cache.mark()
        self.cache.save()  # only a cache: a failure to write is ignored


def _from_cache(
    path: Path, shown: Path, parsed: _Parsed, default_source: str | None, require_scripts: bool
) -> Manifest | None:
    """The manifest from a remembered parse; None when there is none or it has any problem
    (the YAML path then reports it, with its lines)."""
    remembered = parsed.remembered()
    if remembered is None:
        return None
    data, lines = remembered
    try:
        entries = _entries(path, data, lines, default_source)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # not what this format writes: parse the text instead
    if _entry_problems(shown, None, entries, (), require_scripts):
        return None
    return Manifest(path=path, entries=tuple(entries))


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
    parsed = _Parsed(text, cache_dir)
    manifest = _from_cache(path, shown, parsed, default_source, require_scripts)
    return manifest or _parse(path, shown, text, parsed, default_source, require_scripts)


def _parse(
    path: Path, shown: Path, text: str, parsed: _Parsed, default_source: str | None, require_scripts: bool
) -> Manifest:
    """The YAML path: read, check and build the entries, and remember what can be."""
    from vxds.project.yaml_loader import compose, construct, duplicate_keys, line_of

    root = compose(text, shown)
    problems = list(duplicate_keys(root, shown))
    data = [] if root is None else construct(root, shown)
    if parsed.record is None:
        problems += schema_problems(shown, root, data)
    if problems:
        raise ManifestError(problems)
    _, items, base = _items(data)
    lines = [line_of(root, [*base, index]) for index in range(len(items))]
    entries = _entries(path, data, lines, default_source)
    problems = _entry_problems(shown, root, entries, base, require_scripts)
    if not problems and _plain(data):
        parsed.remember({"data": data, "lines": lines})
    elif parsed.record is None:
        parsed.remember({})  # passed the schema: not checked against it again
    if problems:
        raise ManifestError(problems)
    return Manifest(path=path, entries=tuple(entries))
