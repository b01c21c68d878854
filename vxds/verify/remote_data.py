"""``verify --data --executor URL`` for a source that is not a folder: bytes re-hashed on the
cluster's workers, each opening the same source with the same options.

A resource the source builds from several objects (rows, DICOM series, Zarr stores) and one
locked in another algorithm are checked here, as without an executor; every other one is
streamed and hashed by a worker, and its outcome (a digest, or the finding's code and
message) comes back to be compared with the lock exactly as a local check compares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from vxds.executor import for_url
from vxds.hashing import PREFIX
from vxds.resource import Resource
from vxds.sources import Source, SourceContext, open_source
from vxds.verify.data import SPECIAL, line_where, opened_finding, rehash, source_options
from vxds.verify.findings import Finding
from vxds.verify.model import Context, Target

READERS = 16  # objects a task reads at once: a store answers each after a round trip


def check_remote(
    ctx: Context, target: Target, source: Source, todo: list[tuple[str, int, Resource]]
) -> list[Finding]:
    """The findings of ``data._check_opened`` for each of ``todo``, the reads on the workers."""
    from vxds.verify.data import _check_opened

    sent = [i for i, (_, _, r) in enumerate(todo) if _remote(r)]
    work = Rehash(source.url, str(ctx.config.root), source_options(ctx))
    resources = [todo[i][2] for i in sent]
    outcomes = dict(
        zip(
            sent,
            for_url(ctx.config.executor).map_batches(work, resources, [r.size or 0 for r in resources]),
            strict=True,
        )
    )
    findings: list[Finding] = []
    for index, (split, number, resource) in enumerate(todo):
        if index in outcomes:
            where = line_where(ctx, target, split, number)
            found = opened_finding(ctx, target, resource, outcomes[index], where)
        else:
            found = _check_opened(ctx, target, source, split, number, resource)
        if found is not None:
            findings.append(found)
    return findings


def _remote(resource: Resource) -> bool:
    return resource.type not in SPECIAL and resource.hash is not None and resource.hash.startswith(PREFIX)


@dataclass(frozen=True)
class Rehash:
    """A task's work: ``data.rehash`` of each resource, from the source at ``url``."""

    url: str
    base: str
    options: Mapping[str, Any]

    def __call__(self, batch: list[Resource]) -> list[tuple[str, str]]:
        source = _opened(self)
        with ThreadPoolExecutor(max_workers=min(READERS, len(batch) or 1)) as pool:
            return list(pool.map(partial(rehash, source), batch))


_sources: dict[tuple[str, str, str], Source] = {}  # per worker process: one per source


def _opened(work: Rehash) -> Source:
    key = (work.url, work.base, repr(sorted(work.options.items())))
    if key not in _sources:
        _sources[key] = open_source(work.url, SourceContext(base=Path(work.base), options=work.options))
    return _sources[key]
