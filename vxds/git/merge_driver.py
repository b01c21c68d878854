"""The Git merge driver: ``vxds merge-driver %O %A %B %P``, and its registration.

Git calls the driver once per file that both sides changed, with the base, ours and theirs
in temporary files; the result goes into ``%A``. Split files are merged by id. A lock's
``lock.toml`` needs the merged splits' counts and digests, which Git does not give it: each
split merge records them in ``<git dir>/vxds/merges/``, keyed by the digests of its three
inputs, and the header merge looks them up there (Git merges a folder's files in reverse
path order, so ``resources.*.jsonl`` come before ``lock.toml``). Without a record the header
merge is reported as a conflict that a relock resolves. A split of several shards that both
sides changed apart needs no record: Git took each changed shard file from the side that
changed it, and the header merges the shard lists (``locks.merge.merge_shard_lists``). Where
both sides changed the same shards, the split's resources merge by id and are cut again
(``locks.shard_merge``), every shard of the three sides read from Git
(``git.merge_sides``): the driver writes each shard file Git asks about as that cut has it,
and the header lists the cut.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial
from pathlib import Path, PurePosixPath

import orjson
from blake3 import blake3

from vxds.errors import LockError
from vxds.fs import atomic_write_bytes, atomic_write_text
from vxds.git.merge_sides import MergeSides
from vxds.git.repo import git_dir, merge_file
from vxds.hashing import digest_bytes
from vxds.locks.format import HEADER, CorruptLock, Header, parse_header, render_header
from vxds.locks.merge import SplitInfo, merge_headers, merge_lines, sharded_merge, split_info
from vxds.locks.shard_merge import MergedSplit, merge_in_git
from vxds.locks.shards import SHARD_FILE_RE, SPLIT_FILE_RE, Shard, is_lock_file
from vxds.locks.splits import split_lines

Headers = tuple[Header | None, Header | None, Header | None]  # base, ours, theirs

DRIVER = "vxds"
DRIVER_COMMAND = "vxds merge-driver %O %A %B %P"
DRIVER_NAME = "vxds: three-way merge of lock files by resource id"


def _record_path(base: str, ours: str, theirs: str) -> Path | None:
    found = git_dir()
    if found is None:
        return None
    key = blake3(f"{base}|{ours}|{theirs}".encode()).hexdigest()[:32]
    return found / "vxds" / "merges" / f"{key}.json"


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LockError(f"{path}: cannot read: {exc.strerror}") from None


def merge_split_files(base: str, ours: str, theirs: str, shown: str) -> list[str]:
    """Merge a split file into ``ours``; return the ids in conflict."""
    data = {name: _read(path) for name, path in (("base", base), ("ours", ours), ("theirs", theirs))}
    try:
        merged = merge_lines(*(split_lines(data[n]) for n in ("base", "ours", "theirs")))
    except LockError as exc:
        raise LockError(f"{shown}: {exc.message}") from None
    atomic_write_bytes(Path(ours), merged.data)
    record = _record_path(*(digest_bytes(data[n]) for n in ("base", "ours", "theirs")))
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        info = {
            "count": len(merged.lines),
            "digest": digest_bytes(merged.data),
            "conflicts": merged.conflicts,
        }
        atomic_write_bytes(record, orjson.dumps(info))
    return merged.conflicts


def recut(sides: MergeSides, folder: str, headers: Headers, split: str) -> MergedSplit | str:
    """The relock of a split's resources merged by id, its files read from Git."""
    base, ours, theirs = (
        sides.files(folder, side, h, split)
        for side, h in zip(("base", "ours", "theirs"), headers, strict=True)
    )
    if base is None or ours is None or theirs is None:
        return f"split {split}: a shard of one side is not found in Git; relock to finish the merge"
    return merge_in_git(split, base, ours, theirs)


def _lookup(
    split: str,
    base: SplitInfo | None,
    ours: SplitInfo | None,
    theirs: SplitInfo | None,
    *,
    headers: tuple[Header | None, Header, Header],
    folder: str,
    recuts: dict[str, tuple[Shard, ...]],
) -> SplitInfo | str:
    if ours is None or theirs is None:
        return f"split {split} was removed on one side and changed on the other"
    if any(h is not None and split in h.shards for h in headers):
        apart = sharded_merge(*headers, split)
        if apart is not None:
            return split_info(apart)
        merged = recut(MergeSides(), folder, headers, split)
        if isinstance(merged, str):
            return merged
        recuts[split] = merged.shards
        return merged.count, merged.digest
    # A split that is new on both sides has an empty base file: the digest of no bytes.
    record = _record_path(base[1] if base else digest_bytes(b""), ours[1], theirs[1])
    try:
        info = orjson.loads(record.read_bytes()) if record is not None else None
    except (OSError, orjson.JSONDecodeError):
        info = None
    if info is None:
        return f"split {split}: its merged file is not known here; relock to finish the merge"
    if info["conflicts"]:
        return f"split {split} has conflicts: " + ", ".join(info["conflicts"][:10])
    return int(info["count"]), str(info["digest"])


def _header(path: str, shown: str) -> Header | None:
    data = _read(path)
    if not data.strip():
        return None
    try:
        return parse_header(data.decode("utf-8"), Path(shown))[0]
    except (UnicodeDecodeError, CorruptLock) as exc:
        raise LockError(f"{shown}: cannot merge a lock header that does not parse: {exc}") from None


def merge_header_files(base: str, ours: str, theirs: str, shown: str) -> list[str]:
    """Merge ``lock.toml`` into ``ours``; return what could not be merged."""
    old, mine, other = _header(base, shown), _header(ours, shown), _header(theirs, shown)
    if mine is None or other is None:
        raise LockError(f"{shown}: a side of the merge has an empty lock header")
    recuts: dict[str, tuple[Shard, ...]] = {}
    folder = str(PurePosixPath(shown).parent)
    lookup = partial(_lookup, headers=(old, mine, other), folder=folder, recuts=recuts)
    merged = merge_headers(old, mine, other, lookup)
    shards = {n: s for n, s in merged.header.shards.items() if n not in recuts}
    header = replace(merged.header, shards={**shards, **{n: s for n, s in recuts.items() if s}})
    atomic_write_text(Path(ours), render_header(header))
    return merged.conflicts


def merge_shard_file(ours: str, path: str) -> bool:
    """Write the file ``path`` of a sharded split into ``ours`` as the relock of the split's
    merged resources has it; False when that cut does not hold it or is not known."""
    name = PurePosixPath(path).name
    match = SHARD_FILE_RE.match(name) or SPLIT_FILE_RE.match(name)
    if match is None:
        return False
    sides, folder, split = MergeSides(), str(PurePosixPath(path).parent), match.group(1)
    headers = sides.headers(folder)
    if headers[1] is None or headers[2] is None or not any(h and split in h.shards for h in headers):
        return False
    merged = recut(sides, folder, headers, split)
    if isinstance(merged, str) or name not in merged.files:
        return False
    atomic_write_bytes(Path(ours), merged.files[name])
    return True


def run(base: str, ours: str, theirs: str, path: str) -> tuple[int, list[str]]:
    """Merge one file; return (exit status for Git, messages)."""
    name = PurePosixPath(path).name
    if is_lock_file(name):  # a split file, or one shard of a split
        if merge_shard_file(ours, path):
            return 0, []
        conflicts = merge_split_files(base, ours, theirs, path)
        return (1 if conflicts else 0), [f"{path}: conflict on id {rid}" for rid in conflicts]
    if name == HEADER:
        problems = merge_header_files(base, ours, theirs, path)
        return (1 if problems else 0), [f"{path}: {p}" for p in problems]
    return merge_file(ours, base, theirs), []  # any other file: Git's own line merge


# --- registration ------------------------------------------------------------------------


def attribute_lines(locks: str) -> list[str]:
    """The ``.gitattributes`` lines that send a project's lock files to the driver."""
    prefix = f"{locks.strip('/')}/" if locks.strip("/") else ""
    return [f"{prefix}**/{HEADER} merge={DRIVER}", f"{prefix}**/resources.*.jsonl merge={DRIVER}"]


def add_attributes(path: Path, locks: str) -> bool:
    """Add the driver's lines to ``.gitattributes`` (kept as it is otherwise); True if changed."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {re.sub(r"\s+", " ", line.strip()) for line in text.splitlines()}
    missing = [line for line in attribute_lines(locks) if line not in present]
    if not missing:
        return False
    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write_text(
        path, prefix + "# Lock files merge by resource id (vxds install)\n" + "\n".join(missing) + "\n"
    )
    return True
