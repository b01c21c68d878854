"""The client a recipe receives: a small, read-only view of one source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from vxds.resource import Resource
from vxds.sources.base import IndexedSource, Source


def _matches(value: Any, wanted: Any) -> bool:
    if callable(wanted):
        try:
            return bool(wanted(value))
        except (TypeError, ValueError):
            return False
    return bool(value == wanted)


class Client:
    """What a recipe may ask of its source.

    ``query(type="Volume", suffix="T2w", age=lambda a: a and a > 40)``: attributes match
    exactly, or when a callable given for them returns true; a resource without the
    attribute does not match.
    """

    def __init__(self, source: Source) -> None:
        self.source = source

    @property
    def snapshot(self) -> str:
        return self.source.snapshot

    def get(self, id: str, version: int | str | None = None) -> Resource:
        """The resource ``id`` (at ``version``, if given); ``NotFoundError`` if absent."""
        return self.source.get(id, version)

    get_resource = get  # the seed's name

    def list(self, prefix: str = "", type: str | None = None) -> Iterator[Resource]:
        """Resources whose id starts with ``prefix``, in id order, optionally of one type."""
        if isinstance(self.source, IndexedSource):
            found: Iterator[Resource] = self.source.with_prefix(prefix)
        else:
            found = (r for r in self.source.resources() if r.id.startswith(prefix))
        return (r for r in found if type is None or r.type == type)

    def query(self, type: str | None = None, prefix: str = "", **attrs: Any) -> Iterator[Resource]:
        """Resources of ``type`` under ``prefix`` whose attrs match every keyword."""
        checks: list[tuple[str, Any | Callable[[Any], bool]]] = list(attrs.items())
        for resource in self.list(prefix, type):
            values = resource.attrs
            if all(key in values and _matches(values[key], wanted) for key, wanted in checks):
                yield resource

    def open(self, resource: Resource | str) -> BinaryIO:
        """A binary file with the resource's bytes."""
        if isinstance(resource, str):
            resource = self.get(resource)
        return self.source.open(resource)
