"""``Resource`` and its canonical form: one JSON line per resource in a lock.

A line is ``canonical_json`` of the record ``{attrs, hash, id, size, type, uri, version}``:
keys sorted, compact, UTF-8; every key is present, unknown values are ``null``.
"""

from __future__ import annotations

import re
import unicodedata
from binascii import unhexlify
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import filterfalse
from typing import Any, TypeGuard

import orjson

from vxds.hashing import canonical_json, canonical_json_line

FIELDS = ("id", "version", "type", "hash", "size", "uri", "attrs")
_FIELD_SET = frozenset(FIELDS)
_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_HASH_RE = re.compile(r"[a-z0-9][a-z0-9-]*:[0-9a-fA-F]+\Z")
_CREDENTIALS_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@")
# C0 and C1 controls (DEL and NEL among them) and the Unicode line and paragraph separators:
# a fixed set, so that an id valid under one Python's Unicode tables is valid under all.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class InvalidResource(ValueError):
    """A resource value breaks a rule; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Resource:
    """One locked item: what it is, which version, and the bytes' digest.

    ``version`` is the source's own label (an integer for a catalog, the content digest
    for a plain file). ``attrs`` holds metadata such as BIDS entities or clinical values.
    """

    id: str
    version: int | str
    type: str = "File"
    hash: str | None = None
    size: int | None = None
    uri: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    # Set by a source for a resource whose record passed ``validate_record``; a copy made
    # with ``dataclasses.replace`` starts unchecked again. Only ``attrs`` could change after
    # the check, and serialising the line re-checks what matters there (string keys).
    _checked: bool = field(default=False, init=False, repr=False, compare=False)

    def __hash__(self) -> int:  # attrs is a dict, so hash by identity and content digest
        return hash((self.id, self.version, self.hash))

    def to_record(self) -> dict[str, Any]:
        """The resource as a plain dict with every field."""
        attrs = self.attrs
        return {
            "attrs": attrs.copy() if type(attrs) is dict else dict(attrs),
            "hash": self.hash,
            "id": self.id,
            "size": self.size,
            "type": self.type,
            "uri": self.uri,
            "version": self.version,
        }

    def canonical_line(self) -> bytes:
        """The resource's line in a lock, without the newline."""
        return canonical_json(self.to_record())

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Resource:
        """Build a Resource from a validated record (see ``normalize``)."""
        return cls(
            id=record["id"],
            version=record["version"],
            type=record.get("type") or "File",
            hash=record.get("hash"),
            size=record.get("size"),
            uri=record.get("uri"),
            attrs=record.get("attrs") or {},
        )

    @classmethod
    def from_line(cls, line: bytes | str) -> Resource:
        """Parse one lock line (no validation beyond JSON)."""
        return cls.from_record(orjson.loads(line))


def check_id(value: object) -> str:
    """Return ``value`` if it is a valid resource id, else raise ``InvalidResource``.

    Ids are relative, slash-separated paths: never absolute, never with ``..`` or ``.``
    segments, empty segments, backslashes, control characters or line separators (a name
    holding one could end a line, or look like two, to a reader that splits on it).
    """
    if not isinstance(value, str) or not value:
        raise InvalidResource(f"'id' must be a non-empty string, got {value!r}")
    if value.startswith("/") or value.endswith("/"):
        raise InvalidResource(f"id {value!r} must be a relative path without a leading or trailing '/'")
    if "\\" in value or _CONTROL_RE.search(value):
        raise InvalidResource(
            f"id {value!r} must not contain backslashes, control characters or line separators"
        )
    if len(value) > 1 and value[1] == ":" and value[0].isalpha():
        raise InvalidResource(f"id {value!r} must not start with a drive letter")
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidResource(f"id {value!r} must not contain empty, '.' or '..' segments")
    return value


def check_uri(value: str) -> str:
    """Return ``value`` unless it is a path that leaves its source: absolute, a drive letter,
    a ``..`` segment, a backslash or a control character. URLs (``s3://b/k``) are fine;
    every source reads a uri relative to its own root."""
    parts = value.split("/")
    drive = len(value) > 1 and value[1] == ":" and value[0].isalpha()
    if value.startswith("/") or drive or ".." in parts or "\\" in value or _CONTROL_RE.search(value):
        raise InvalidResource(f"'uri' must be a relative path inside the source, got {value!r}")
    return value


def nfc(rid: str) -> str:
    """The id in Unicode normal form C: two ids with one NFC form name one file on macOS."""
    return rid if rid.isascii() else unicodedata.normalize("NFC", rid)


def nfc_twins(ids: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of different ids with the same NFC form (``café`` composed and decomposed)."""
    first: dict[str, str] = {}
    twins = []
    for rid in filterfalse(str.isascii, ids):  # ASCII ids are in NFC already: skipped at C speed
        other = first.setdefault(unicodedata.normalize("NFC", rid), rid)
        if other != rid:
            twins.append((other, rid))
    return twins


def _check_version(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise InvalidResource(f"'version' must be an integer or a non-empty string, got {value!r}")
    return value


def normalize(item: object) -> dict[str, Any]:
    """Validate a recipe's item (a ``Resource`` or a mapping) and return its record.

    The record has every field; a mapping may omit all but ``id`` and ``version``.
    Raises ``InvalidResource`` naming the field at fault.
    """
    if type(item) is Resource and item._checked:
        return item.to_record()
    if type(item) is dict and item.keys() == _FIELD_SET and item["type"] and type(item["attrs"]) is dict:
        validate_record(item)  # a full record, as a recipe builds it: checked, not copied
        return item
    if type(item) is not dict and isinstance(item, Resource):
        record = item.to_record()
    elif type(item) is dict or isinstance(item, Mapping):
        if not _FIELD_SET.issuperset(item):
            unknown = sorted(str(key) for key in item if key not in _FIELD_SET)
            raise InvalidResource(
                f"unknown field(s) {', '.join(map(repr, unknown))}; metadata goes under 'attrs'"
            )
        if "id" not in item:
            raise InvalidResource("missing 'id'")
        if "version" not in item:
            raise InvalidResource(f"resource {item['id']!r} has no 'version'")
        attrs = item.get("attrs")
        record = {
            "attrs": {} if attrs is None else attrs,
            "hash": item.get("hash"),
            "id": item["id"],
            "size": item.get("size"),
            "type": item.get("type") or "File",
            "uri": item.get("uri"),
            "version": item["version"],
        }
    else:
        raise InvalidResource(f"expected a vxds.Resource or a dict, got {type(item).__name__}: {item!r:.80}")
    validate_record(record)
    if type(record["attrs"]) is not dict:
        record["attrs"] = dict(record["attrs"])
    return record


# Fast paths: locking a million resources validates a million records, so the common case
# is accepted by cheap string tests; anything unusual goes through the exact rules above.
_HEX = "0123456789abcdefABCDEF"
_seen_types: set[str] = set()
_seen_algorithms: set[str] = set()


def _plain_id(value: object) -> bool:
    """True for ordinary ids; False sends the id through ``check_id``."""
    return (
        type(value) is str
        and value.isprintable()
        and value[:1] not in ("", "/", ".")
        and value[-1] != "/"
        and value[1:2] != ":"
        and "\\" not in value
        and "//" not in value
        and "/." not in value
    )


def _plain_uri(value: str) -> bool:
    """True for uris ``check_uri`` accepts at a glance (printable: no control character or
    line separator; no ``..`` anywhere, so no ``..`` segment); False sends it to ``check_uri``."""
    return (
        value.isprintable()
        and value[:1] != "/"
        and value[1:2] != ":"
        and "\\" not in value
        and ".." not in value
    )


def _plain_hash(value: str) -> bool:
    """True for a hash of an algorithm seen before with an even number of hex digits (what
    ``unhexlify`` takes: no sign, space or underscore); False sends it to ``_check_hash``."""
    algorithm, _, hexpart = value.partition(":")
    if algorithm not in _seen_algorithms or not hexpart or len(hexpart) % 2:
        return False
    try:
        unhexlify(hexpart)
    except ValueError:  # binascii.Error is one; so is a string that is not ASCII
        return False
    return True


def _check_hash(value: object) -> None:
    if not (isinstance(value, str) and _HASH_RE.match(value)):
        raise InvalidResource(f"'hash' must be '<algorithm>:<hex>', got {value!r}")
    _seen_algorithms.add(value.partition(":")[0])


def _check_type(value: object) -> None:
    if not (isinstance(value, str) and _TYPE_RE.match(value)):
        raise InvalidResource(f"'type' must be a name such as 'Volume', got {value!r}")
    if len(_seen_types) < 1000:
        _seen_types.add(value)


def _string_keys(attrs: object) -> bool:
    if type(attrs) is not dict and not isinstance(attrs, Mapping):  # an ABC check is slow
        return False
    try:
        "".join(attrs)  # a C-speed test that every key is a string
    except TypeError:
        return False
    return True


def _plain_record(record: Mapping[str, Any]) -> bool:
    """True for a full record whose every field passes the fast paths above at once (the
    common case, with one call); False sends it through ``_validate_exactly``."""
    rid, version, rtype, digest = record["id"], record["version"], record["type"], record["hash"]
    size, uri = record["size"], record["uri"]
    return (
        _plain_id(rid)
        and (type(version) is int or (type(version) is str and version != ""))
        and type(rtype) is str
        and rtype in _seen_types
        and (digest is None or (type(digest) is str and _plain_hash(digest)))
        and (size is None or (type(size) is int and size >= 0))
        and (uri is None or (type(uri) is str and "@" not in uri and (uri == rid or _plain_uri(uri))))
        and _string_keys(record["attrs"])
    )


def plain_record(item: object) -> TypeGuard[dict[str, Any]]:
    """True for a full record dict that ``normalize`` returns as it is, whose every field
    passes the fast paths (``_plain_record``): the common case of a recipe's item, known
    with one call instead of ``normalize``'s three."""
    return (
        type(item) is dict
        and item.keys() == _FIELD_SET
        and type(item["attrs"]) is dict
        and _plain_record(item)
    )


def validate_record(record: Mapping[str, Any]) -> None:
    """Raise ``InvalidResource`` if a full record breaks a rule."""
    if not _plain_record(record):
        _validate_exactly(record)


def _validate_exactly(record: Mapping[str, Any]) -> None:
    rid = record["id"]
    if not _plain_id(rid):
        check_id(rid)
    version = record["version"]
    if not ((type(version) is str and version) or type(version) is int):
        _check_version(version)
    rtype = record["type"]
    if type(rtype) is not str or rtype not in _seen_types:
        _check_type(rtype)
    digest = record["hash"]
    if digest is not None and not (type(digest) is str and _plain_hash(digest)):
        _check_hash(digest)
    size = record["size"]
    if size is not None and not (type(size) is int and size >= 0):
        raise InvalidResource(f"'size' must be a non-negative integer, got {size!r}")
    uri = record["uri"]
    if uri is not None:
        if type(uri) is not str:
            raise InvalidResource(f"'uri' must be a string, got {uri!r}")
        if "@" in uri and _CREDENTIALS_RE.match(uri):
            raise InvalidResource(f"'uri' of {rid!r} must not carry credentials")
        if uri != rid and not _plain_uri(uri):  # an id passed check_id, and is a safe uri too
            check_uri(uri)
    attrs = record["attrs"]
    if not _string_keys(attrs):
        raise InvalidResource(f"'attrs' must be a mapping with string keys, got {attrs!r:.80}")


def canonical_line(record: Mapping[str, Any]) -> bytes:
    """The canonical line of a validated record; ``InvalidResource`` if not JSON-able."""
    try:
        return canonical_json(record)
    except TypeError as exc:
        raise InvalidResource(f"resource {record.get('id')!r} is not JSON-serialisable: {exc}") from None


def lock_line(record: Mapping[str, Any]) -> bytes:
    """``canonical_line(record) + b"\\n"``, made by one ``orjson.dumps``."""
    try:
        return canonical_json_line(record)
    except TypeError as exc:
        raise InvalidResource(f"resource {record.get('id')!r} is not JSON-serialisable: {exc}") from None


def checked(resource: Resource) -> Resource:
    """``resource``, marked as valid when its record passes ``validate_record``."""
    try:
        validate_record(resource.to_record())
    except InvalidResource:
        return resource
    object.__setattr__(resource, "_checked", True)
    return resource


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path such as ``attrs.subject`` (``None`` when absent)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
