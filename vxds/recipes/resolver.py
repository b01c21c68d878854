"""Manifest entry + recipe + source -> Lock.

The resolver runs a recipe, normalises and validates what it returns, refuses duplicate
ids, ids in two splits and (with ``group_by``) a group in two splits, and builds the lock's
canonical split files. It prints nothing; problems are ``RecipeError``s.

A record with no hash that names a resource of the source (``{"id": ..., "version": ...}``,
the old platform's seed style) is resolved against the source: it becomes that resource at
the asked-for version, with hash, size and attrs from the source (``type``, ``uri`` and
``attrs`` the record gives win, its attrs merged over the source's). A version the source
does not hold, or a bare ``{"id", "version"}`` naming nothing in the source, is a one-line
``RecipeError`` naming the record: a lock never holds a null hash for a source resource.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from vxds.errors import ConfigError, NotFoundError, RecipeError
from vxds.hashing import canonical_json, digest_text
from vxds.locks.format import SPLIT_RE, Header
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock
from vxds.progress import NO_PROGRESS, Progress
from vxds.project.config import Config
from vxds.project.manifest import Entry
from vxds.recipes.client import Client
from vxds.recipes.decorator import choose, escapes, load_script, run
from vxds.resource import InvalidResource, Resource, canonical_line, check_id, lookup, nfc_twins, normalize
from vxds.sources import Source, SourceContext, open_source
from vxds.sources.base import check_at, scan

MAX_LISTED = 10


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _group_getter(group_by: str) -> Callable[[dict[str, Any]], Any]:
    head, _, rest = group_by.partition(".")
    if head == "attrs" and rest and "." not in rest:
        return lambda record: record["attrs"].get(rest)  # the common case, made cheap
    return lambda record: lookup(record, group_by)


def _checked_record(item: object) -> dict[str, Any] | None:
    """The record of a resource a source already validated, built without copying attrs.

    Serialising it re-checks the one thing that could have changed since (attrs' keys).
    """
    if type(item) is not Resource or not item._checked or type(item.attrs) is not dict:
        return None
    return {
        "attrs": item.attrs,
        "hash": item.hash,
        "id": item.id,
        "size": item.size,
        "type": item.type,
        "uri": item.uri,
        "version": item.version,
    }


_SEED_KEYS = frozenset({"id", "version"})


def _given(item: object) -> dict[str, Any] | None:
    """The fields a hashless record gives (None values and empty attrs left out), else None."""
    if isinstance(item, Resource):
        if item._checked:
            return None
        fields: Mapping[Any, Any] = item.to_record()
    elif isinstance(item, Mapping):
        fields = item
    else:
        return None
    if fields.get("hash") is not None or not isinstance(fields.get("id"), str) or "version" not in fields:
        return None
    return {k: v for k, v in fields.items() if v is not None and not (k == "attrs" and not v)}


def _in_source(source: Source, rid: str) -> bool:
    try:
        source.get(rid)
    except NotFoundError:
        return False
    return True


def from_source(item: object, source: Source | None, where: str) -> object:
    """A hashless record that names a source resource, as that resource; else ``item``.

    Raises a one-line ``RecipeError`` (``where`` and the record named) when the record is
    seed-style or names a source resource, and the source has no such version.
    """
    given = _given(item) if source is not None else None
    if source is None or given is None:
        return item
    rid, version = given["id"], given.get("version")
    try:
        check_id(rid)
    except InvalidResource:
        return item  # normalize() names what is wrong with the id
    try:
        found = source.get(rid, version)
    except NotFoundError as exc:
        if set(given) <= _SEED_KEYS or _in_source(source, rid):
            named = f"record {{'id': {rid!r}, 'version': {version!r}}}"
            raise RecipeError(
                f"{where}: {named} has no hash and the source does not hold it: {exc}"
            ) from None
        return item
    record = found.to_record()
    attrs = given.get("attrs")
    if isinstance(attrs, Mapping):
        record["attrs"] = {**record["attrs"], **attrs}
    for key in ("type", "uri"):
        if key in given:
            record[key] = given[key]
    return record


def _shown_key(key: Any) -> str:
    return (canonical_json(key) if isinstance(key, str) else key).decode()


@dataclass
class _Checker:
    """Collects the ways a recipe's output breaks the rules, to report them all at once."""

    group_by: str | None
    allow_group_overlap: bool
    source: Source | None = None
    invalid: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # records naming what the source lacks
    ids: dict[str, list[str]] = field(default_factory=dict)  # split -> sorted ids
    groups: dict[str, dict[Any, str]] = field(default_factory=dict)  # split -> group key -> an id
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    def split(self, split: str, items: Iterable[object]) -> Split:
        """Validate one split's items; return them as a split of sorted canonical lines."""
        # Ids and lines in two parallel lists, sorted through an index: lighter than tuples.
        ids: list[str] = []
        lines: list[bytes] = []
        add_id, add_line = ids.append, lines.append
        check_groups = self.group_by is not None and not self.allow_group_overlap
        group_of = _group_getter(self.group_by) if self.group_by is not None else None
        groups = self.groups.setdefault(split, {})
        for index, item in enumerate(items):
            try:
                record = _checked_record(item) or normalize(self._resolve(item, split, index))
                # A copy with the newline: orjson's own result keeps a ~4 KiB buffer alive.
                line = canonical_line(record) + b"\n"
            except InvalidResource as exc:
                self.invalid.append(f"split {split!r}, item {index}: {exc}")
                continue
            rid = record["id"]
            add_id(rid)
            add_line(line)
            if check_groups and group_of is not None:
                key = group_of(record)
                if key is not None:
                    # Strings as they are, other values as canonical JSON bytes, so that
                    # True and 1 (equal in Python) stay different groups.
                    groups.setdefault(key if type(key) is str else canonical_json(key), rid)
        order = sorted(range(len(ids)), key=ids.__getitem__)
        ids = self.ids[split] = [ids[i] for i in order]
        repeated = [a for a, b in pairwise(ids) if a == b]
        if repeated:
            self.duplicates[split] = sorted(set(repeated))
        lines = [lines[i] for i in order]
        del order
        return Split.from_terminated(lines)

    def _resolve(self, item: object, split: str, index: int) -> object:
        try:
            return from_source(item, self.source, f"split {split!r}, item {index}")
        except RecipeError as exc:
            self.unresolved.append(str(exc))
            return item  # checked as it is, so that every other problem is found too

    def problems(self) -> list[str]:
        out = list((self.invalid + self.unresolved)[:MAX_LISTED])
        if len(self.invalid) + len(self.unresolved) > MAX_LISTED:
            out.append(f"... and {len(self.invalid) + len(self.unresolved) - MAX_LISTED} more invalid items")
        for split, ids in sorted(self.duplicates.items()):
            out.append(f"split {split!r} lists these ids more than once: {_listing(ids)}")
        twins = nfc_twins(chain.from_iterable(self.ids[s] for s in sorted(self.ids)))
        if twins:  # one name on macOS: one file would overwrite the other
            listed = [f"{a!r} and {b!r}" for a, b in twins]
            out.append(f"ids that are one name once Unicode-normalised (NFC): {_listing(listed)}")
        in_two = _shared(self.ids)
        if in_two:
            listed = [f"{rid} ({', '.join(sorted(s))})" for rid, s in sorted(in_two.items())]
            out.append(f"ids in more than one split: {_listing(listed)}")
        leaks = _shared(self.groups)
        if leaks:
            listed = [
                f"{_shown_key(key)} ({', '.join(f'{s}: {self.groups[s][key]}' for s in sorted(splits))})"
                for key, splits in sorted(leaks.items(), key=lambda kv: _shown_key(kv[0]))
            ]
            out.append(f"group_by {self.group_by}: groups in more than one split: {_listing(listed)}")
        return out


def _shared(by_split: Mapping[str, Collection[Any]]) -> dict[Any, set[str]]:
    """Values found in more than one split, with the splits they are in."""
    shared: dict[Any, set[str]] = {}
    names = sorted(by_split)
    for n, first in enumerate(names):
        for second in names[n + 1 :]:
            small, large = sorted((by_split[first], by_split[second]), key=len)
            lookup_set = set(small)  # only the smaller side is held as a set
            for value in large:
                if value in lookup_set:
                    shared.setdefault(value, set()).update((first, second))
    return shared


def _items(split: str, value: object, label: str) -> Iterable[object]:
    if isinstance(value, (str, bytes, Mapping, Resource)) or not isinstance(value, Iterable):
        raise RecipeError(f"{label}: split {split!r} must be a list of resources, got {type(value).__name__}")
    return value


def build_splits(
    output: object,
    *,
    label: str,
    group_by: str | None = None,
    allow_group_overlap: bool = False,
    progress: Progress = NO_PROGRESS,
    source: Source | None = None,
) -> dict[str, Split]:
    """Validate a recipe's output and turn it into sorted, canonical splits.

    With ``source``, hashless records naming its resources are resolved (``from_source``).
    """
    if not isinstance(output, Mapping):
        raise RecipeError(
            f"{label}: the recipe returned {type(output).__name__}; "
            "expected a dict of split name -> list of resources"
        )
    if not output:
        raise RecipeError(f"{label}: the recipe returned no splits")
    bad = [repr(name) for name in output if not isinstance(name, str) or not SPLIT_RE.match(name)]
    if bad:
        raise RecipeError(f"{label}: split names must be letters, digits, '_' or '-': {', '.join(bad)}")
    checker = _Checker(group_by, allow_group_overlap, source)
    splits: dict[str, Split] = {}
    task = progress.task("normalising resources")
    try:
        for split, value in output.items():
            splits[split] = checker.split(split, _items(split, value, label))
            task.advance(splits[split].count)
    finally:
        task.close()
    problems = checker.problems()
    if problems and problems == checker.unresolved[:1]:  # that one record alone: one line
        raise RecipeError(f"{label}: {problems[0]}")
    if problems:
        raise RecipeError(f"{label}: the recipe's output was refused:\n  " + "\n  ".join(problems))
    return dict(sorted(splits.items()))


@dataclass
class Resolver:
    """Resolves manifest entries, sharing one opened source per URL."""

    config: Config
    progress: Progress = NO_PROGRESS
    jobs: int | None = None
    at: str | None = None  # resolve as of this source snapshot (``vxds lock --at``)
    sources: MutableMapping[str, Source] = field(default_factory=dict)

    def source(self, url: str | None, label: str) -> Source:
        url = url or self.config.source
        if not url:
            raise ConfigError(f"{label}: no source; set 'source' in the manifest or in [tool.vxds]")
        if url not in self.sources:
            context = SourceContext(
                base=self.config.root,
                cache_dir=self.config.cache_dir,
                progress=self.progress,
                jobs=self.jobs,
                options=self.config.storage,
                at=self.at,
            )
            opened = open_source(url, context)
            # Listing now means a source that cannot be read fails with its own one-line
            # error here, not from inside the recipe's code.
            if self.at is not None:
                check_at(opened, self.at)
            else:
                scan(opened)
            self.sources[url] = opened
        return self.sources[url]

    def resolve(self, entry: Entry) -> Lock:
        """Run the entry's recipe and build its lock."""
        label = f"dataset {entry.key} ({self.config.relative(entry.manifest)}:{entry.line})"
        script_text = read_script(entry.script, label)
        source = self.source(entry.source, label)
        module = load_script(entry.script, label=label)
        func = choose(module, entry.entrypoint, label=label, script=entry.script)
        output = run(func, Client(source), entry.params, label=label, script=entry.script)
        with escapes(_output_of(label, func, entry.script), entry.script.resolve()):
            splits = build_splits(
                output,
                label=label,
                group_by=entry.group_by,
                allow_group_overlap=entry.allow_group_overlap,
                progress=self.progress,
                source=source,
            )
        header = Header(
            name=entry.name,
            version=entry.version,
            script=self.config.relative(entry.script),
            entrypoint=entry.entrypoint,
            params=dict(entry.params),
            script_digest=digest_text(script_text),
            entry_digest=entry.digest(),
            source=entry.source or self.config.source or "",
            snapshot=source.snapshot,
            splits={name: (split.count, split.digest) for name, split in splits.items()},
            shards=header_shards(splits),
        )
        return Lock(header, splits)

    def resolve_script(
        self, script: Path, *, entrypoint: str | None, source: str | None, params: Mapping[str, Any]
    ) -> dict[str, Split]:
        """Run a recipe script outside the manifest (``vxds lock --file``)."""
        label = f"recipe script {script}"
        opened = self.source(source, label)
        module = load_script(script, label=label)
        func = choose(module, entrypoint, label=label, script=script)
        output = run(func, Client(opened), params, label=label, script=script)
        with escapes(_output_of(label, func, script), script.resolve()):
            return build_splits(output, label=label, progress=self.progress, source=opened)


def _output_of(label: str, func: Callable[..., Any], script: Path) -> str:
    # Reading the output can run the recipe's code (a custom mapping or iterable's methods).
    return f"{label}: reading the output of recipe {func.__name__}() in {script}"


def read_script(script: Path, label: str) -> str:
    try:
        return script.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{label}: recipe script {script} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{label}: cannot read recipe script {script}: {exc}") from None
