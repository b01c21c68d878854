"""Bare split files, as ``vxds lock --file SCRIPT -o DIR`` writes them: no ``lock.toml``.

A split that fits one shard is one ``resources.<split>.jsonl``, as the seed platform names
it. A split of several shards (the shard rule of ``vxds.locks.shards``, so no file is over
16 MiB) is its shard files, named as in a lock, ``resources.<split>.<key>.jsonl``, plus
``resources.<split>.shards.json``: the split's count and digest and its shards (file,
first id, count, digest), as ``lock.toml`` lists them, so a reader checks every shard and
their order. ``read_bare`` reads either form (``vxds materialize -f``), every line checked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import orjson

from vxds.errors import LockError
from vxds.fs import atomic_write, fsync_dir, make_dirs
from vxds.locks import shards as sharding
from vxds.locks.format import CorruptLock, Problem
from vxds.locks.shards import SHARD_FILE_RE, SPLIT_FILE_RE, listed_files
from vxds.locks.splits import Split, Twins, boundary_problems, line_problems, read_split, read_split_file

INDEX_RE = re.compile(r"resources\.([A-Za-z0-9_-]+)\.shards\.json\Z")


def index_file(split: str) -> str:
    return f"resources.{split}.shards.json"


def is_bare_file(name: str) -> bool:
    return any(r.match(name) for r in (SPLIT_FILE_RE, SHARD_FILE_RE, INDEX_RE))


class _Listing:
    """A split's shards as ``listed_files`` reads them from a header (see ``HasShards``)."""

    def __init__(self, split: str, count: int, digest: str, shards: Sequence[sharding.Shard]) -> None:
        self.splits = {split: (count, digest)}
        self.shards = {split: tuple(shards)} if shards else {}


def index_bytes(name: str, split: Split) -> bytes:
    shards = [
        {"count": s.count, "digest": s.digest, "file": sharding.shard_file(name, s.first), "first": s.first}
        for s in split.shards
    ]
    body = {"count": split.count, "digest": split.digest, "format": 2, "shards": shards, "split": name}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def bare_files(name: str, split: Split) -> list[tuple[str, Sequence[bytes]]]:
    """The files of one split in the ``--file`` form: its file(s), then its index if sharded."""
    files = split.files(name)
    return [*files, (index_file(name), [index_bytes(name, split)])] if split.shards else files


def stale_split_files(folder: Path, splits: Mapping[str, Split] | Collection[str]) -> list[Path]:
    """The bare split files in ``folder`` that these splits do not have: an earlier run's.
    (Given split names alone, every file of another split.)"""
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    if isinstance(splits, Mapping):
        keep = {file for name, split in splits.items() for file, _ in bare_files(name, split)}
        return [folder / n for n in names if is_bare_file(n) and n not in keep]
    ours = set(splits)
    return [folder / n for n in names if is_bare_file(n) and _split_of(n) not in ours]


def _split_of(name: str) -> str:
    match = SPLIT_FILE_RE.match(name) or SHARD_FILE_RE.match(name) or INDEX_RE.match(name)
    return match.group(1) if match else ""


def write_splits(
    splits: Mapping[str, Split], folder: Path, *, unchanged: Collection[str] = ()
) -> tuple[list[Path], list[Path]]:
    """Make ``folder`` hold exactly these splits as bare files (``vxds lock --file``);
    return the files written and the files removed.

    Each file is written with ``atomic_write`` (but those of the splits named in
    ``unchanged``, which are on disk already); every other bare split file in ``folder``,
    an earlier run's, is removed. Nothing else in ``folder`` is touched.
    """
    written: list[Path] = []
    try:
        make_dirs(folder)
        for name, split in sorted(splits.items()):
            if name not in unchanged:
                for file, chunks in bare_files(name, split):
                    written.append(folder / file)
                    atomic_write(written[-1], chunks)
        removed = stale_split_files(folder, splits)
        for path in removed:
            path.unlink(missing_ok=True)
        if removed:
            fsync_dir(folder)
    except OSError as exc:
        raise LockError(f"{exc.filename or folder}: cannot write: {exc.strerror or exc}") from None
    return written, removed


def read_bare(path: Path) -> Split:
    """A bare split given by its ``resources.<split>.jsonl`` or, sharded, its
    ``resources.<split>.shards.json`` (the shards beside it), with every line checked."""
    match = INDEX_RE.match(path.name)
    if match is None:
        return read_split_file(path)
    name = match.group(1)
    listing = _read_index(path, name)
    problems: list[Problem] = []
    chunks: list[bytes] = []
    twins: Twins = {}
    for file, listed in listed_files(listing, name):
        try:
            data, facts = read_split(path.parent / file, load=True)
        except OSError as exc:
            raise LockError(f"{path.parent / file}: cannot read: {exc.strerror or exc}") from None
        assert data is not None
        problems += [*facts.problems(file, *listed), *line_problems(name, data, file, twins)]
        chunks.append(data)
    shards = listing.shards[name]
    problems += boundary_problems(name, shards, chunks)
    if problems:
        raise CorruptLock(path, problems)
    count, digest = listing.splits[name]
    paths = tuple(path.parent / file for file, _ in listed_files(listing, name))
    return Split(chunks, count, digest, paths[0], shards=shards, parts=tuple(range(len(shards))), paths=paths)


def _read_index(path: Path, name: str) -> _Listing:
    def corrupt(message: str) -> CorruptLock:
        return CorruptLock(path, [Problem(f"{path.name}: {message}", kind="header")])

    try:
        body = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise LockError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise corrupt(f"not valid JSON: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"count", "digest", "format", "shards", "split"}:
        raise corrupt("not {count, digest, format, shards, split}")
    if body["split"] != name or body["format"] != 2:
        raise corrupt(f"expected split {name!r} of format 2")
    count, digest = body["count"], body["digest"]
    if type(count) is not int or not isinstance(digest, str):
        raise corrupt("'count' is not a number or 'digest' not a string")
    shards, problems = sharding.parse(name, body["shards"], count, digest)
    if problems:
        raise corrupt("; ".join(problems))
    return _Listing(name, count, digest, shards)
