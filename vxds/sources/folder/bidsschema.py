"""The BIDS specification's machine-readable schema (``bidsschematools``), loaded once.

Everything vxds knows about BIDS names comes from here: the entities in their order, their
short keys and value formats, the datatypes, suffixes and extensions, and which files are
companions of a data file. The schema is loaded on first use and cached (importing it costs
milliseconds, which ``vxds --help`` does not pay).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any


@dataclass(frozen=True)
class Entity:
    name: str  # the schema's name: "subject", "acquisition", "run"
    key: str  # the short key in file names: "sub", "acq", "run"
    index: bool  # an index (digits), else a label (letters and digits)

    @property
    def attr(self) -> str:
        """The attrs key vxds uses: ``subject``/``session``, else the short key."""
        return self.name if self.key in ("sub", "ses") else self.key


@dataclass(frozen=True)
class Association:
    """A file the schema associates with a data file (events, bval, channels ...)."""

    suffix: str | None  # None: the data file's own suffix
    extensions: tuple[str, ...]
    inherit: bool  # may sit in a parent folder with fewer entities


@dataclass(frozen=True)
class BidsSchema:
    version: str
    entities: tuple[Entity, ...]  # in the specification's order
    datatypes: frozenset[str]
    suffixes: frozenset[str]
    extensions: frozenset[str]
    top_level_stems: frozenset[str]  # README, participants, dataset_description ...
    associations: tuple[Association, ...]

    @cached_property
    def keys(self) -> dict[str, Entity]:
        """The entities by their short key in file names."""
        return {entity.key: entity for entity in self.entities}

    @cached_property
    def bare_stems(self) -> frozenset[str]:
        """Names that are BIDS with no entities: a suffix (``T1w``) or a top-level stem."""
        return self.suffixes | self.top_level_stems


def _association(rule: Any) -> Association:
    target = rule["target"]
    extension = target.get("extension")
    extensions = tuple(extension) if isinstance(extension, list) else (str(extension),)
    return Association(target.get("suffix"), extensions, bool(rule.get("inherit")))


@cache
def bids_schema() -> BidsSchema:
    from bidsschematools import schema as bst

    loaded = bst.load_schema()
    objects = loaded["objects"]
    entities = tuple(
        Entity(name, objects["entities"][name]["name"], objects["entities"][name].get("format") == "index")
        for name in loaded["rules"]["entities"]
    )
    common = loaded["rules"]["files"]["common"]
    stems = {rule.get("stem") or str(rule.get("path", "")).split(".")[0] for rule in common["core"].values()}
    stems |= {rule["stem"] for rule in common["tables"].values() if "stem" in rule}
    return BidsSchema(
        version=str(loaded["bids_version"]),
        entities=entities,
        datatypes=frozenset(objects["datatypes"]),
        suffixes=frozenset(v["value"] for v in objects["suffixes"].values()),
        extensions=frozenset(v["value"] for v in objects["extensions"].values()),
        top_level_stems=frozenset(s for s in stems if s.isalnum() or "_" in s),
        associations=tuple(_association(rule) for rule in loaded["meta"]["associations"].values()),
    )
