"""Checking a manifest against ``vxds/schemas/manifest.schema.json``, in sentences.

``schema_problems`` validates the data read from the YAML and turns every jsonschema error
into ``file:line: dataset 'x': field 'y' must be ...``, with the line found in the YAML
graph, all of them at once and in line order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # PyYAML is imported only where a manifest is parsed (issue 20)
    import yaml


@cache
def schema() -> dict[str, Any]:
    import pkgutil  # lighter to import than importlib.resources, which every verify run would

    data = pkgutil.get_data("vxds.schemas", "manifest.schema.json")
    assert data is not None  # the package's own data file
    loaded: dict[str, Any] = json.loads(data)
    return loaded


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
        from vxds.project.yaml_loader import child, key_node, line_of, shown_value

        path = list(error.absolute_path)
        where = self.where(path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = [k for k in error.schema.get("properties", {}) if k]
            node = child(self.root, path[0]) if path else self.root
            for part in path[1:]:
                node = child(node, part)
            for key in sorted(set(error.instance) - set(known), key=str):
                knode = key_node(node, str(key))
                line = knode.start_mark.line + 1 if knode is not None else line_of(self.root, path)
                yield line, f"{where}: unknown key {key!r}; expected one of: {', '.join(known)}"
            return
        if error.validator == "required":
            for key in error.validator_value:
                if isinstance(error.instance, dict) and key not in error.instance:
                    yield line_of(self.root, path), f"{where}: missing required field {key!r}"
            return
        if error.validator == "type" and not path:
            yield 1, "the manifest must be a list of datasets or a mapping with a 'datasets' list"
            return
        fieldname = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
        label = f"field {fieldname!r}" if fieldname else "value"
        got = shown_value(repr(error.instance), 60)
        yield line_of(self.root, path), f"{where}: {label} {_expected(error)}, got {got}"


def schema_problems(path: Path, root: yaml.Node | None, data: Any) -> list[str]:
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
