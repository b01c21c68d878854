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

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vxds.errors import ConfigError, RecipeError, VxdsError
from vxds.hashing import digest_text
from vxds.locks.disjoint import claimed
from vxds.locks.format import SPLIT_RE, Header
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock
from vxds.progress import NO_PROGRESS, Progress
from vxds.project.config import Config
from vxds.project.manifest import Entry
from vxds.recipes import audit, spill
from vxds.recipes.checker import MAX_LISTED as MAX_LISTED
from vxds.recipes.checker import _Checker
from vxds.recipes.checker import _group_getter as _group_getter
from vxds.recipes.checker import _listing as _listing
from vxds.recipes.checker import _shared as _shared
from vxds.recipes.checker import _shown_key as _shown_key
from vxds.recipes.checker import from_source as from_source
from vxds.recipes.client import Client
from vxds.recipes.decorator import choose, escapes, load_script, run
from vxds.recipes.fingerprint import Run, context_of, fresh_modules, listing_digest
from vxds.resource import Resource
from vxds.sources import Source, SourceContext, open_source
from vxds.sources.base import check_at, scan


def _items(split: str, value: object, label: str) -> Iterable[object]:
    if isinstance(value, (str, bytes, Mapping, Resource)) or not isinstance(value, Iterable):
        raise RecipeError(f"{label}: split {split!r} must be a list of resources, got {type(value).__name__}")
    return value


def _splits_of(output: object, label: str) -> Mapping[Any, object]:
    """The recipe's output, refused unless it is a dict of well-named splits."""
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
    return output


def build_splits(
    output: object,
    *,
    label: str,
    group_by: str | None = None,
    allow_group_overlap: bool = False,
    progress: Progress = NO_PROGRESS,
    source: Source | None = None,
    work: Path | None = None,
) -> dict[str, Split]:
    """Validate a recipe's output and turn it into sorted, canonical splits.

    With ``source``, hashless records naming its resources are resolved (``from_source``).
    With ``work`` (a ``spill.workspace``) the splits' lines stay in files there, read a shard
    at a time, so they must be used before it is removed; without, they are in memory.
    """
    if work is None:  # the splits outlive a temporary workspace: read into memory
        with tempfile.TemporaryDirectory(prefix="vxds-lock-") as temporary:
            built = build_splits(
                output,
                label=label,
                group_by=group_by,
                allow_group_overlap=allow_group_overlap,
                progress=progress,
                source=source,
                work=Path(temporary),
            )
            return {name: spill.in_memory(split) for name, split in built.items()}
    output = _splits_of(output, label)
    checker = _Checker(group_by, allow_group_overlap, source, work=work)
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
    _unscanned: dict[str, Source] = field(default_factory=dict)  # opened for a fingerprint only

    def _source_context(self) -> SourceContext:
        return SourceContext(
            base=self.config.root,
            cache_dir=self.config.cache_dir,
            progress=self.progress,
            jobs=self.jobs,
            options=self.config.storage,
            at=self.at,
            executor=self.config.executor,
        )

    def source(self, url: str | None, label: str) -> Source:
        url = url or self.config.source
        if not url:
            raise ConfigError(f"{label}: no source; {_source_fix(self.config)}")
        if url not in self.sources:
            opened = self._unscanned.pop(url, None) or open_source(url, self._source_context())
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
        return self.resolve_recorded(entry)[0]

    def resolve_recorded(self, entry: Entry, work: Path | None = None) -> tuple[Lock, Run]:
        """Run the entry's recipe and build its lock, recording what the run read; with
        ``work`` (a ``spill.workspace``), the lock's lines stay in files there."""
        label = f"dataset {entry.key} ({self.config.relative(entry.manifest)}:{entry.line})"
        script_text = read_script(entry.script, label)
        source = self.source(entry.source, label)
        context = context_of(self.config, source)
        started = time.time_ns()
        with fresh_modules(context, entry.script) as modules, audit.record() as reads:
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
                    work=work,
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
        header = claimed(header, entry.group_by, entry.allow_group_overlap)  # lock.toml's disjoint_by

        def listing() -> str | None:  # asked only when a fingerprint is kept: the cache file is large
            return None if self.at is not None else listing_digest(source, saved_before=started)

        return Lock(header, splits), Run(
            entry.script, entry.params, entry.digest(), listing, reads, started, context, modules
        )

    def listing_digest(self, url: str | None) -> str | None:
        """The listing digest of the source at ``url`` now, without scanning it (None when
        it has none, or it cannot be opened): what a recipe's fingerprint is checked against."""
        url = url or self.config.source
        if not url or self.at is not None:
            return None
        opened = self.sources.get(url) or self._unscanned.get(url)
        if opened is None:
            try:
                opened = self._unscanned[url] = open_source(url, self._source_context())
            except VxdsError:
                return None
        return listing_digest(opened)

    def resolve_script(
        self,
        script: Path,
        *,
        entrypoint: str | None,
        source: str | None,
        params: Mapping[str, Any],
        work: Path | None = None,
    ) -> dict[str, Split]:
        """Run a recipe script outside the manifest (``vxds lock --file``)."""
        label = f"recipe script {script}"
        opened = self.source(source, label)
        module = load_script(script, label=label)
        func = choose(module, entrypoint, label=label, script=script)
        output = run(func, Client(opened), params, label=label, script=script)
        with escapes(_output_of(label, func, script), script.resolve()):
            return build_splits(output, label=label, progress=self.progress, source=opened, work=work)


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


def _source_fix(config: Config) -> str:
    """Where a missing source is set: the project's files, or ``--source`` outside a project."""
    if config.in_project:
        return "set 'source' in the manifest or in [tool.vxds]"
    return "pass --source URL (outside a project there is no [tool.vxds] to set it in)"
