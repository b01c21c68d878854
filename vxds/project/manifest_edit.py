"""Adding an entry to ``datasets.yaml`` with a line-level edit, so comments and order survive."""

from __future__ import annotations

import json
from collections.abc import Mapping
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
