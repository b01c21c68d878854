"""``--checksums store``: a store's own checksum of an object, recorded instead of reading it.

S3 keeps additional checksums (``ChecksumSHA256``), GCS every object's ``crc32c`` and (for
objects that are not composed) ``md5Hash``, Azure a blob's ``Content-MD5`` when it was given
or computed on upload. With ``checksums = "store"`` a bucket source asks for them (one HEAD
or metadata request, no bytes) and records ``<algorithm>:<hex>`` as the resource's hash,
beside the version the same response named. ``Policy`` is what the project asked for and
``choose`` picks the checksum to record (docs/checksums.md):

* sha256 is collision-resistant and taken whenever the store has it;
* md5 and crc32c only detect accidents: taken only when the project allows them by name
  (``allow_weak_checksums``), else the lock fails with a message saying how to allow them;
* an object with none of these (or only a composite checksum, which is not a checksum of
  its bytes) is read and hashed with blake3 as without the option.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vxds.errors import SourceError
from vxds.hashing import PREFIX
from vxds.sources.folder.tree import split_series
from vxds.sources.objectstore.listing import DigestCache, DigestSink, Listed, Sink, Stored

Mode = Literal["bytes", "store"]
MODES: tuple[Mode, ...] = ("bytes", "store")
STRONG = ("sha256",)  # collision-resistant: a match says the bytes are the locked ones
WEAK = ("md5", "crc32c")  # detect accidents only; in order of preference
OPTION, ALLOW = "checksums", "allow_weak_checksums"  # the keys, as sources are given them


@dataclass(frozen=True)
class Policy:
    """Whether to take the store's checksums, and which weak algorithms the project allows."""

    mode: Mode = "bytes"
    allow_weak: frozenset[str] = frozenset()

    @property
    def from_store(self) -> bool:
        return self.mode == "store"


def policy_of(options: dict[str, Any], url: str) -> Policy:
    """The policy in a source's options (``checksums``, ``allow_weak_checksums``), removed
    from them so they never reach the store's client."""
    mode = options.pop(OPTION, "bytes")
    allow = options.pop(ALLOW, [])
    if mode not in MODES:
        raise SourceError(f"source {url!r}: checksums must be 'bytes' or 'store', got {mode!r}")
    if not isinstance(allow, (list, tuple)) or not all(name in WEAK for name in allow):
        raise SourceError(f"source {url!r}: {ALLOW} must list some of {', '.join(WEAK)}, got {allow!r}")
    return Policy(mode, frozenset(allow))


def hex_of(value: object, size: int) -> str | None:
    """A store's base64 checksum as hex, when it is one of ``size`` bytes (None otherwise:
    a composite ``…-N`` value, or anything else)."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == size else None


def choose(policy: Policy, url: str, rel: str, found: Mapping[str, str]) -> str | None:
    """The ``algorithm:hex`` to record from the checksums the store keeps of one object
    (algorithm -> hex), or None to read and hash its bytes; a ``SourceError`` when the store
    keeps only weak ones the project does not allow."""
    for algorithm in STRONG:
        if algorithm in found:
            return f"{algorithm}:{found[algorithm]}"
    weak = [algorithm for algorithm in WEAK if algorithm in found]
    for algorithm in weak:
        if algorithm in policy.allow_weak:
            return f"{algorithm}:{found[algorithm]}"
    if weak:
        raise SourceError(
            f"source {url!r}: {rel}: the store keeps only a {weak[0]} checksum, which detects"
            " accidents but not deliberate changes",
            hint=f'allow it with {ALLOW} = ["{weak[0]}"] in [tool.vxds], or lock with --checksums bytes',
        )
    return None


async def take_checksum(source: Any, listed: Listed) -> tuple[Stored, str] | None:
    """The object with the store's checksum as its digest, or None to read its bytes."""
    try:
        found = await source._retrying(lambda: source._checksums(listed))
    except Exception as exc:
        raise source._failure(exc, f"cannot look up {listed.rel}") from None
    digest = choose(source.checksums, source.url, listed.rel, found[2]) if found is not None else None
    if found is None or digest is None:
        return None
    fetched, size, _ = found
    return Stored(listed.rel, listed.key, size, fetched.version, digest), fetched.tag


async def members_in_blake3(source: Any, objects: Sequence[Stored], cache: DigestCache) -> list[Stored]:
    """``objects`` with every member of a DICOM series or Zarr read and hashed with blake3 (a
    series' hash is the digest of its members' blake3 digests, and the store keeps members
    under them), each at the version recorded for it. Cached by (key, version, size), which
    names one upload's bytes."""
    _, series = split_series(objects)
    blake3 = {obj.rel for obj in objects if obj.digest.startswith(PREFIX)}
    members = {m.rel for found in series.values() for m in found if m.rel not in blake3}
    gate = asyncio.Semaphore(source.concurrency)

    async def one(obj: Stored) -> Stored:
        if obj.rel not in members:
            return obj
        upload = Listed(obj.rel, obj.key, obj.size, obj.version, PREFIX)
        known = cache.get(upload)
        if known is not None:
            return obj._replace(version=known[0], digest=known[1])
        sinks: list[DigestSink] = []

        def new_sink() -> Sink:
            sinks.append(DigestSink(keep=False))
            return sinks[-1].update

        async with gate:
            try:
                fetched = await source._download(obj.key, obj.version, new_sink)
            except Exception as exc:
                raise source._failure(exc, f"cannot read {obj.rel}") from None
        read = Stored(obj.rel, obj.key, sinks[-1].size, fetched.version, sinks[-1].value())
        if fetched.version == obj.version:
            cache.put(upload, read)
        return read

    return list(await asyncio.gather(*(one(obj) for obj in objects)))
