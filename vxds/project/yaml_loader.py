"""Reading the YAML of ``datasets.yaml`` within bounds, and finding where things are in it.

``compose`` reads a text into PyYAML's node graph with PyYAML's safe loader, bounded:
limits are checked as the document is read, in one pass, so a hostile manifest costs no
more than its length (nesting, alias expansion, integers that fit 64 bits, finite floats,
plain values only, no tags). ``construct`` turns the graph into Python values. What
either refuses is a ``ManifestError`` naming the file, line and, when known, the field.

The rest reads positions from the graph: the line of the value at a path (``line_of``), the
node under a key (``child``, ``key_node``), the keys a mapping repeats (``duplicate_keys``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from vxds.errors import ManifestError

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
            problem = f"cannot read {shown_value(repr(node.value))} as {_tag(node)}{detail}"
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
            raise _Refused(f"{shown_value(node.value)} is out of range ({why})", None, node)
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


def shown_value(value: object, width: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _problem(exc: yaml.YAMLError, path: Path, root: yaml.Node | None, text: str = "") -> ManifestError:
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
        raise _problem(exc, path, None, text) from None
    try:
        node: yaml.Node | None = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _problem(exc, path, None, text) from None
    except _PYYAML_SLIPS as exc:
        line = loader.get_mark().line + 1
        raise ManifestError([f"{path}:{line}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return node


def construct(node: yaml.Node, path: Path) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _problem(exc, path, node) from None
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


def duplicate_keys(root: yaml.Node | None, path: Path) -> Iterator[str]:
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


def child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == str(key):
                found: yaml.Node = vnode
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item: yaml.Node = node.value[key]
        return item
    return None


def key_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for knode, _ in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == key:
                return knode
    return None


def line_of(root: yaml.Node | None, path: Sequence[Any]) -> int:
    """1-based line of the node at ``path``, or of its nearest existing ancestor."""
    node, best = root, root
    for part in path:
        node = child(node, part)
        if node is None:
            break
        best = node
    return best.start_mark.line + 1 if best is not None else 1
