"""Load and validate ``datasets.yaml``.

Two forms are accepted: the seed's list of entries, and a mapping with shared
``defaults:`` and a ``datasets:`` list. The file is checked against
``vxds/schemas/manifest.schema.json``; every problem is reported with the file, line and
field, and all of them are reported at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from vxds.errors import ManifestError, NotFoundError, UsageError
from vxds.hashing import canonical_json, digest_json

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

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def digest_fields(self) -> dict[str, Any]:
        """What the entry digest covers: everything that can change the lock.

        The description is left out on purpose: editing prose does not make a lock stale.
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


@cache
def schema() -> dict[str, Any]:
    text = resources.files("vxds.schemas").joinpath("manifest.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


# --- reading YAML with positions -------------------------------------------------------

# What a manifest may be: far beyond any real one, far below what exhausts the reader. Deeper
# nesting than MAX_DEPTH would exhaust Python's stack (and orjson's 254 levels); aliases that
# repeat more than MAX_ALIASED values are a "billion laughs", however small the text.
MAX_DEPTH = 100
MAX_ALIASED = 100_000
# Integers must fit the formats a manifest's values end up in: the lock's TOML and JSON.
INT_RANGE = (-(2**63), 2**63 - 1)
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


# What PyYAML's own code raises on some inputs instead of a YAMLError (a double-quoted
# "\U99999999" makes its scanner call chr() out of range; a bad !!int makes int() fail).
_PYYAML_SLIPS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class _Refused(yaml.YAMLError):
    """Valid YAML vxds will not read: too deep, too many aliases, a value out of range."""

    def __init__(self, problem: str, mark: Any, node: yaml.Node | None = None) -> None:
        super().__init__(problem)
        self.problem, self.mark, self.node = problem, mark, node


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: depth, alias expansion and values are checked as the
    document is read, in one pass, so a hostile manifest costs no more than its length."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # Per open node: [expanded size, expanded depth]; per finished anchor: the same.
        self._open: list[list[int]] = []
        self._anchored: dict[str, tuple[int, int]] = {}
        self._aliased = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return self._composed(parent, index)
        if len(self._open) >= MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._open.append([1, 1])
        try:
            node = self._composed(parent, index)
        finally:
            size, depth = self._open.pop()
        if event.anchor is not None:
            self._anchored[event.anchor] = (size, depth)
        self._add(size, depth, event.start_mark)
        return node

    def _composed(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        node = super().compose_node(parent, index)
        assert node is not None  # PyYAML returns None only at the end of the stream
        return node

    def _count_alias(self, event: Any) -> None:
        if event.anchor in self.anchors and event.anchor not in self._anchored:
            raise _Refused(f"alias *{event.anchor} is inside the value it names", event.start_mark)
        size, depth = self._anchored.get(event.anchor, (0, 0))  # unknown: PyYAML says so
        self._aliased += size
        if self._aliased > MAX_ALIASED:
            raise _Refused(
                f"aliases repeat more than {MAX_ALIASED:,} values; write the values out", event.start_mark
            )
        self._add(size, depth, event.start_mark)

    def _add(self, size: int, depth: int, mark: Any) -> None:
        """Count a finished child into its parent."""
        if self._open:
            parent = self._open[-1]
            parent[0] += size
            parent[1] = max(parent[1], depth + 1)
            if parent[1] > MAX_DEPTH:  # depth reached through aliases
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except _PYYAML_SLIPS as exc:
            # PyYAML's constructors fail this way on a bad !!int, !!float, !!bool or date;
            # only a ValueError's words (a date's "month must be in 1..12") help a reader.
            detail = f" ({exc})" if type(exc) is ValueError else ""
            problem = f"cannot read {_shown_value(repr(node.value))} as {_tag(node)}{detail}"
            raise _Refused(problem, None, node) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if not isinstance(key, yaml.ScalarNode):
                raise _Refused("a key must be a plain value, not a list or a mapping", key.start_mark, node)
        return super().construct_mapping(node, deep=deep)

    def refuse_tag(self, node: yaml.Node) -> Any:
        raise _Refused(f"the tag {_tag(node)} is not allowed: datasets.yaml holds plain values", None, node)

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        low, high = INT_RANGE
        # A long string is out of range in any base; not converting it spares int() the work.
        value = None if len(node.value) > 100 else self.construct_yaml_int(node)
        if value is None or not low <= value <= high:
            why = "integers in datasets.yaml take at most 64 bits"
            raise _Refused(f"{_shown_value(node.value)} is out of range ({why})", None, node)
        return value

    def construct_finite_float(self, node: yaml.ScalarNode) -> float:
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise _Refused(f"{node.value} is not a finite number (JSON has no inf or nan)", None, node)
        return value


_Loader.add_constructor(_INT_TAG, _Loader.construct_bounded_int)
_Loader.add_constructor(_FLOAT_TAG, _Loader.construct_finite_float)
_Loader.add_constructor(None, _Loader.refuse_tag)


def _tag(node: yaml.Node) -> str:
    """``!!int`` for YAML's own tags, the tag as written otherwise."""
    standard = "tag:yaml.org,2002:"
    return "!!" + node.tag.removeprefix(standard) if node.tag.startswith(standard) else node.tag


def _shown_value(value: object, width: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _yaml_problem(exc: yaml.YAMLError, path: Path, root: yaml.Node | None, text: str = "") -> ManifestError:
    """One line for what the YAML reader refused, naming the file, line and (when known) field."""
    if isinstance(exc, _Refused):
        mark = exc.mark or (exc.node.start_mark if exc.node is not None else None)
        name = _field_of(root, exc.node) if exc.node is not None else None
        where = f"field {name!r}: " if name is not None else ""
        return ManifestError([f"{path}{_at(mark)}: {where}{exc.problem}"])
    if isinstance(exc, yaml.constructor.ConstructorError):
        return ManifestError([f"{path}{_at(exc.problem_mark)}: cannot read this value: {exc.problem}"])
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return ManifestError([f"{path}{_at(mark)}: not valid YAML: {exc.problem or exc}"])
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        line = f":{text[: exc.position].count(chr(10)) + 1}" if isinstance(exc.position, int) else ""
        problem = f"character U+{exc.character:04X} is not allowed"
        return ManifestError([f"{path}{line}: not valid YAML: {problem}"])
    return ManifestError([f"{path}: not valid YAML: {str(exc).splitlines()[0]}"])


def _at(mark: Any) -> str:
    return f":{mark.line + 1}" if mark is not None else ""


def compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node graph of ``text``, read within the bounds above; ``ManifestError`` if not."""
    try:
        loader = _Loader(text)  # checks the text's characters already
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, path, None, text) from None
    try:
        node: yaml.Node | None = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, path, None, text) from None
    except _PYYAML_SLIPS as exc:
        line = loader.get_mark().line + 1
        raise ManifestError([f"{path}:{line}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return node


def parse_value(text: str, where: str) -> Any:
    """One YAML value given outside the manifest (``vxds lock --param``), read within the
    same bounds; ``ManifestError`` naming ``where`` if it is not plain data."""
    node = compose(text, Path(where))
    return None if node is None else _construct(node, Path(where))


def _construct(node: yaml.Node, path: Path) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, path, node) from None
    finally:
        loader.dispose()


def _nodes(root: yaml.Node | None) -> Iterator[yaml.Node]:
    """Every node of the graph once, however often aliases repeat it (no recursion either)."""
    seen: set[int] = set()
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.MappingNode):
            todo.extend(part for pair in reversed(node.value) for part in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(reversed(node.value))


def _field_of(root: yaml.Node | None, node: yaml.Node) -> str | None:
    """The key that ``node`` is the value (or a key inside the value) of, if any."""
    for parent in _nodes(root):
        if isinstance(parent, yaml.MappingNode):
            for key, value in parent.value:
                if value is node and isinstance(key, yaml.ScalarNode):
                    return str(key.value)
    return None


def _duplicate_keys(root: yaml.Node | None, path: Path) -> Iterator[str]:
    # Read from the composed graph before construction: PyYAML's merge keys (<<) rewrite
    # mappings while constructing, and an override of a merged key is not a repeat.
    for node in _nodes(root):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        yield f"{path}:{line}: key {key.value!r} repeats (first at line {seen[key.value]})"
                    seen.setdefault(key.value, line)


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == str(key):
                found: yaml.Node = vnode
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item: yaml.Node = node.value[key]
        return item
    return None


def _key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for knode, _ in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == key:
                return knode
    return None


def _line(root: yaml.Node | None, path: Sequence[Any]) -> int:
    """1-based line of the node at ``path``, or of its nearest existing ancestor."""
    node, best = root, root
    for part in path:
        node = _child(node, part)
        if node is None:
            break
        best = node
    return best.start_mark.line + 1 if best is not None else 1


# --- schema problems as sentences --------------------------------------------------------

_TYPE_WORDS = {
    "integer": "an integer",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
}


def _expected(error: Any) -> str:
    kind, value, sub = error.validator, error.validator_value, error.schema
    if kind == "type":
        return f"must be {_TYPE_WORDS.get(value, value)}"
    if kind == "pattern":
        hint = sub.get("description")
        return f"must match {value}" + (f" ({hint.rstrip('.')})" if hint else "")
    if kind == "minimum":
        return "must be a positive integer" if value == 1 else f"must be at least {value}"
    if kind == "maximum":
        return f"must be at most {value}"
    if kind == "minLength":
        return "must not be empty"
    return str(error.message)


class _Describer:
    """Turns jsonschema errors into ``file:line: dataset 'x': field 'y' ...`` sentences."""

    def __init__(self, path: Path, root: yaml.Node | None, data: Any, entries_at: tuple[Any, ...]):
        self.path, self.root, self.data, self.entries_at = path, root, data, entries_at

    def where(self, path: Sequence[Any]) -> str:
        """``dataset 'name'`` or ``entry 3`` for paths inside the entry list."""
        n = len(self.entries_at)
        if tuple(path[:n]) == self.entries_at and len(path) > n and isinstance(path[n], int):
            entries = self.data if not n else self.data.get("datasets")
            item = entries[path[n]] if isinstance(entries, list) else None
            name = item.get("name") if isinstance(item, dict) else None
            return f"dataset {name!r}" if isinstance(name, str) else f"entry {path[n] + 1}"
        if path and path[0] == "defaults":
            return "defaults"
        return "top level"

    def describe(self, error: Any) -> Iterator[tuple[int, str]]:
        path = list(error.absolute_path)
        where = self.where(path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = [k for k in error.schema.get("properties", {}) if k]
            node = _child(self.root, path[0]) if path else self.root
            for part in path[1:]:
                node = _child(node, part)
            for key in sorted(set(error.instance) - set(known), key=str):
                knode = _key_node(node, str(key))
                line = knode.start_mark.line + 1 if knode is not None else _line(self.root, path)
                yield line, f"{where}: unknown key {key!r}; expected one of: {', '.join(known)}"
            return
        if error.validator == "required":
            for key in error.validator_value:
                if isinstance(error.instance, dict) and key not in error.instance:
                    yield _line(self.root, path), f"{where}: missing required field {key!r}"
            return
        if error.validator == "type" and not path:
            yield 1, "the manifest must be a list of datasets or a mapping with a 'datasets' list"
            return
        fieldname = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
        label = f"field {fieldname!r}" if fieldname else "value"
        got = _shown_value(repr(error.instance), 60)
        yield _line(self.root, path), f"{where}: {label} {_expected(error)}, got {got}"


def _schema_problems(path: Path, root: yaml.Node | None, data: Any) -> list[str]:
    import jsonschema

    full = schema()
    entries_at: tuple[str, ...] = ()
    if isinstance(data, list):
        target = "entryList"
    elif isinstance(data, dict):
        target, entries_at = "document", ("datasets",)
    else:
        return [f"{path}:1: the manifest must be a list of datasets or a mapping with a 'datasets' list"]
    validator = jsonschema.Draft202012Validator({"$defs": full["$defs"], "$ref": f"#/$defs/{target}"})
    describer = _Describer(path, root, data, entries_at)
    found: list[tuple[int, str]] = []
    for error in validator.iter_errors(data):
        found.extend(describer.describe(error))
    return [f"{path}:{line}: {message}" for line, message in sorted(set(found))]


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
                script_location=merged["script_location"],
                script=(path.parent / merged["script_location"]).resolve(),
                manifest=path,
                line=_line(root, [*base, index]),
                description=merged.get("description", ""),
                entrypoint=merged.get("entrypoint"),
                source=merged.get("source", default_source),
                params=merged["params"],
                group_by=merged.get("group_by"),
                held_out=tuple(merged.get("held_out", DEFAULT_HELD_OUT)),
                allow_group_overlap=merged.get("allow_group_overlap", False),
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
        if require_scripts and not entry.script.is_file():
            line = _line(root, [*base, index, "script_location"])
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
            line = _line(root, [*base, index, "params"])
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
    problems = list(_duplicate_keys(root, shown))
    data = [] if root is None else _construct(root, shown)
    if not _known_valid(text, cache_dir):
        problems += _schema_problems(shown, root, data)
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
