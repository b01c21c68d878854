"""Adding an entry to ``datasets.yaml`` with a line-level edit, so comments and order survive."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vxds.errors import ManifestError


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        plain = value and value.strip() == value and "\n" not in value
        if plain:
            try:
                if yaml.safe_load(f"k: {value}") == {"k": value}:
                    return value
            except yaml.YAMLError:
                pass
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def render_entry(fields: Mapping[str, Any], indent: int) -> list[str]:
    """An entry as block YAML lines: ``- name: x`` then its other keys aligned under it."""
    pad = " " * indent
    return [
        f"{pad}{'- ' if n == 0 else '  '}{key}: {_scalar(value)}"
        for n, (key, value) in enumerate(fields.items())
    ]


def _datasets_node(root: yaml.Node | None, path: Path) -> yaml.SequenceNode | None:
    if root is None:
        return None
    node: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        node = next(
            (v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "datasets"), None
        )
    if not isinstance(node, yaml.SequenceNode):
        raise ManifestError([f"{path}: cannot find the list of datasets to add to"])
    if node.flow_style:
        raise ManifestError(
            [
                f"{path}:{node.start_mark.line + 1}: the datasets list is written in flow style "
                "([...]); add the entry by hand"
            ]
        )
    return node


def with_entry(text: str, path: Path, fields: Mapping[str, Any]) -> str:
    """``text`` with a new entry appended to its datasets list, everything else untouched."""
    from vxds.project.yaml_loader import compose  # bounded: the text may not have been validated

    node = _datasets_node(compose(text, path), path)
    lines = text.splitlines()
    if node is None or not node.value:
        indent = node.start_mark.column if node is not None else 0
        at = len(lines)
    else:
        indent = node.start_mark.column
        end = node.value[-1].end_mark
        at = end.line if end.column == 0 else end.line + 1
        while at > 0 and not lines[at - 1].strip():
            at -= 1
    block = render_entry(fields, indent)
    before, after = lines[:at], lines[at:]
    if before and before[-1].strip():
        block = ["", *block]
    if after and after[0].strip():
        block = [*block, ""]
    return "\n".join([*before, *block, *after]) + "\n"


# --- vxds bump: NAME@N frozen, NAME@N+1 after it -----------------------------------------


def _entry_node(root: yaml.Node | None, path: Path, name: str, version: int) -> yaml.MappingNode:
    node = _datasets_node(root, path)
    for item in node.value if node is not None else []:
        if isinstance(item, yaml.MappingNode) and _value(item, "name") == name:
            found = _value(item, "version")
            if found is not None and found.isdigit() and int(found) == version:
                if item.flow_style:
                    where = f"{path}:{item.start_mark.line + 1}"
                    raise ManifestError(
                        [f"{where}: {name}@{version} is written in flow style; bump it by hand"]
                    )
                return item
    raise ManifestError([f"{path}: no entry for {name}@{version} to bump"])


def _pair(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    return next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _value(node: yaml.MappingNode, key: str) -> str | None:
    pair = _pair(node, key)
    return pair[1].value if pair is not None and isinstance(pair[1], yaml.ScalarNode) else None


def _block_end(node: yaml.MappingNode) -> int:
    """The line after the entry's last line (0-based), trailing blank lines left out."""
    last: yaml.Node = node
    while isinstance(last, yaml.CollectionNode) and not last.flow_style and last.value:
        # a block collection ends where the next token starts: its last scalar ends exactly
        item = last.value[-1]
        last = item[1] if isinstance(last, yaml.MappingNode) else item
    end = last.end_mark
    return int(end.line if end.column == 0 else end.line + 1)


def _replace(line: str, node: yaml.Node, text: str) -> str:
    return line[: node.start_mark.column] + text + line[node.end_mark.column :]


def with_bump(text: str, path: Path, name: str, version: int) -> str:
    """``text`` with ``name@version`` marked ``frozen: true`` and a copy of its entry (same
    script, entrypoint, params and source, its comments too) as ``version + 1`` after it."""
    from vxds.project.yaml_loader import compose

    node = _entry_node(compose(text, path), path, name, version)
    lines = text.splitlines()
    first, end = node.start_mark.line, _block_end(node)
    version_key, version_value = _pair(node, "version") or (node, node)
    copy = lines[first:end]
    at = version_value.start_mark.line - first
    copy[at] = _replace(copy[at], version_value, str(version + 1))
    frozen = _pair(node, "frozen")
    if frozen is not None:
        row = frozen[1].start_mark.line - first
        copy = [line for n, line in enumerate(copy) if n != row]
        lines[frozen[1].start_mark.line] = _replace(lines[frozen[1].start_mark.line], frozen[1], "true")
        added = []
    else:
        added = [" " * version_key.start_mark.column + "frozen: true"]
    row = version_value.start_mark.line + 1
    after = lines[end:]
    gap = [""] if after and after[0].strip() else []
    out = [*lines[:row], *added, *lines[row:end], "", *copy, *gap, *after]
    return "\n".join(out) + "\n"


def with_import(text: str, path: Path, name: str, version: int, block: Mapping[str, Any]) -> str:
    """``text`` with the ``import:`` value of ``name@version`` replaced by ``block`` (``vxds
    update``); the lines around it, and comments on other lines, are left as they were."""
    from vxds.project.yaml_loader import compose

    node = _entry_node(compose(text, path), path, name, version)
    pair = _pair(node, "import")
    if pair is None:
        raise ManifestError([f"{path}:{node.start_mark.line + 1}: {name}@{version} has no import: block"])
    value = pair[1]
    lines = text.splitlines()
    start, end = value.start_mark, value.end_mark
    if isinstance(value, yaml.MappingNode) and not value.flow_style:  # a block mapping: its lines
        end_line = _block_end(value)
        head = lines[pair[0].start_mark.line][: pair[0].end_mark.column] + ": " + _scalar(dict(block))
        return "\n".join([*lines[: pair[0].start_mark.line], head, *lines[end_line:]]) + "\n"
    edited = lines[start.line][: start.column] + _scalar(dict(block)) + lines[end.line][end.column :]
    return "\n".join([*lines[: start.line], edited, *lines[end.line + 1 :]]) + "\n"


@dataclass(frozen=True)
class Bumped:
    name: str
    frozen: int  # the version marked frozen: true
    added: int  # the version added after it


def bump_dataset(manifest: Path, name: str, *, default_source: str | None = None) -> Bumped:
    """``vxds bump NAME``: freeze NAME's highest version and add the next one after it.

    The edit is checked before it is written: it must leave a valid manifest.
    """
    from vxds.fs import atomic_write_text
    from vxds.project.manifest import load_manifest

    current = load_manifest(manifest, default_source=default_source, require_scripts=False)
    version = current.find(name).version
    text = manifest.read_text(encoding="utf-8")
    edited = with_bump(text, manifest, name, version)
    load_manifest(manifest, default_source=default_source, require_scripts=False, text=edited)
    atomic_write_text(manifest, edited)
    return Bumped(name, version, version + 1)
