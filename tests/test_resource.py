"""vxds/resource.py: the rules a resource obeys, and its canonical line."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vxds.resource import (
    InvalidResource,
    Resource,
    canonical_line,
    check_id,
    lookup,
    normalize,
    validate_record,
)

DIGEST = "blake3:" + "ab" * 32


@pytest.mark.parametrize("value", ["a", "a/b.nii.gz", "trial/sub-01/x y.json", "t.tsv#sub-01", "ü/東京"])
def test_check_id_accepts_relative_paths(value: str) -> None:
    assert check_id(value) == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("/abs/path", "relative path"),
        ("a/", "trailing '/'"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("a/./b", "'.'"),
        (".", "'.'"),
        ("a//b", "empty"),
        ("a\\b", "backslash"),
        ("a\nb", "control"),
        ("a\tb", "control"),
        ("a\x00b", "control"),
        ("C:/data/x", "drive letter"),
        ("c:x", "drive letter"),
        ("", "non-empty"),
        (None, "non-empty string"),
        (3, "non-empty string"),
    ],
)
def test_check_id_refuses(value: Any, words: str) -> None:
    with pytest.raises(InvalidResource, match=words) as info:
        check_id(value)
    assert repr(value) in str(info.value)


def _record(**changes: Any) -> dict[str, Any]:
    return {"id": "a/b", "version": 1, **changes}


def test_normalize_fills_every_field() -> None:
    assert normalize({"id": "a/b", "version": "v1"}) == {
        "attrs": {},
        "hash": None,
        "id": "a/b",
        "size": None,
        "type": "File",
        "uri": None,
        "version": "v1",
    }


def test_normalize_accepts_a_resource() -> None:
    resource = Resource("a/b", 3, "Volume", DIGEST, 12, "a/b", {"subject": "01"})
    assert normalize(resource) == resource.to_record()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"version": True}, "'version'"),
        ({"version": ""}, "'version'"),
        ({"version": 1.5}, "'version'"),
        ({"version": None}, "'version'"),
        ({"type": "9Volume"}, "'type'"),
        ({"type": "Vol ume"}, "'type'"),
        ({"type": 3}, "'type'"),
        ({"hash": "abc"}, "'hash'"),
        ({"hash": "blake3:xyz"}, "'hash'"),
        ({"hash": "BLAKE3:ab"}, "'hash'"),
        ({"hash": "blake3:"}, "'hash'"),
        ({"size": -1}, "'size'"),
        ({"size": True}, "'size'"),
        ({"size": 1.0}, "'size'"),
        ({"size": "12"}, "'size'"),
        ({"uri": 5}, "'uri'"),
        ({"uri": "s3://key:secret@bucket/a"}, "credentials"),
        ({"uri": "https://token@example.org/a"}, "credentials"),
        ({"attrs": ["a"]}, "'attrs'"),
        ({"attrs": {1: "x"}}, "'attrs'"),
        ({"id": "../x"}, "'..'"),
    ],
)
def test_normalize_refuses_bad_fields(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidResource, match=field):
        normalize(_record(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 0},
        {"version": "blake3:" + "0" * 64},
        {"hash": "md5:0123abcdEF"},
        {"hash": "sha-256:00"},
        {"size": 0},
        {"uri": "s3://bucket/key@v2"},
        {"uri": "https://example.org/a?who=me@there"},
        {"type": "DICOMSeries"},
        {"type": None},
        {"attrs": None},
    ],
)
def test_normalize_accepts_edge_values(changes: dict[str, Any]) -> None:
    record = normalize(_record(**changes))
    for key, value in changes.items():
        assert record[key] == (value if value is not None else {"type": "File", "attrs": {}}[key])
    assert normalize(record) == record


def test_normalize_refuses_unknown_fields_and_says_where_metadata_goes() -> None:
    with pytest.raises(
        InvalidResource,
        match=r"unknown field\(s\) 'colour', 'subject'; metadata goes under 'attrs'",
    ):
        normalize(_record(subject="01", colour="red"))


def test_normalize_refuses_missing_id_and_version() -> None:
    with pytest.raises(InvalidResource, match="missing 'id'"):
        normalize({"version": 1})
    with pytest.raises(InvalidResource, match="resource 'a/b' has no 'version'"):
        normalize({"id": "a/b"})


@pytest.mark.parametrize("item", [1, "a/b", ["a/b", 1], None])
def test_normalize_refuses_other_values(item: object) -> None:
    with pytest.raises(InvalidResource, match=r"expected a vxds\.Resource or a dict"):
        normalize(item)


def test_canonical_line_refuses_values_json_cannot_hold() -> None:
    record = normalize(_record(attrs={"tags": {"a", "b"}}))
    with pytest.raises(InvalidResource, match="'a/b' is not JSON-serialisable"):
        canonical_line(record)


def test_canonical_line_pinned() -> None:
    resource = Resource(
        "t/sub-01_T2w.nii.gz",
        DIGEST,
        "Volume",
        DIGEST,
        7,
        "t/sub-01_T2w.nii.gz",
        {"subject": "01", "run": 2, "Zürich": True},
    )
    assert (
        resource.canonical_line()
        == (
            '{"attrs":{"Zürich":true,"run":2,"subject":"01"},"hash":"' + DIGEST + '",'
            '"id":"t/sub-01_T2w.nii.gz","size":7,"type":"Volume","uri":"t/sub-01_T2w.nii.gz",'
            '"version":"' + DIGEST + '"}'
        ).encode()
    )
    assert Resource.from_line(resource.canonical_line()) == resource


def test_lookup_follows_dotted_paths() -> None:
    record = normalize(_record(attrs={"subject": "01", "nested": {"k": 2}}))
    assert lookup(record, "attrs.subject") == "01"
    assert lookup(record, "attrs.nested.k") == 2
    assert lookup(record, "attrs.missing") is None
    assert lookup(record, "id.deeper") is None


# --- properties --------------------------------------------------------------------------

_segment = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", ".."))
_ids = (
    st.lists(_segment, min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda s: not (len(s) > 1 and s[1] == ":" and s[0].isalpha()))
)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
resources = st.builds(
    Resource,
    id=_ids,
    version=st.integers(0, 2**53) | st.text(min_size=1, max_size=12),
    type=st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True),
    hash=st.none() | st.from_regex(r"[a-z0-9][a-z0-9-]{0,6}:[0-9a-f]{1,64}", fullmatch=True),
    size=st.none() | st.integers(0, 2**62),
    uri=st.none() | _ids,
    attrs=st.dictionaries(st.text(max_size=8), _json, max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(resources)
def test_canonical_line_round_trips(resource: Resource) -> None:
    validate_record(resource.to_record())
    line = resource.canonical_line()
    parsed = Resource.from_line(line)
    assert parsed == resource
    assert parsed.canonical_line() == line
    assert canonical_line(normalize(resource)) == line


@settings(max_examples=60, deadline=None)
@given(resources, st.randoms(use_true_random=False))
def test_canonical_line_is_stable_under_attr_order(resource: Resource, random: Any) -> None:
    items = list(resource.attrs.items())
    random.shuffle(items)
    shuffled = Resource(
        resource.id,
        resource.version,
        resource.type,
        resource.hash,
        resource.size,
        resource.uri,
        dict(items),
    )
    assert shuffled.canonical_line() == resource.canonical_line()
    assert b"\n" not in resource.canonical_line()


PIECES = ["a", "/", ".", "..", ":", "C:", "\\", "\x85", "\x7f", "\u2028", "é", "s3://", "@"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join))
def test_the_uri_fast_path_accepts_only_what_check_uri_accepts(uri: str) -> None:
    from vxds.resource import _plain_uri, check_uri

    if _plain_uri(uri):
        assert check_uri(uri) == uri


def test_a_full_record_is_checked_as_a_partial_one_is() -> None:
    full = {
        "attrs": {"a": 1},
        "hash": None,
        "id": "x/y",
        "size": 3,
        "type": "File",
        "uri": "s3://b/x/y",
        "version": 1,
    }
    assert normalize(full) == normalize({k: v for k, v in full.items() if v is not None})
    for bad in ({"uri": "../x"}, {"uri": "a\u2028b"}, {"id": "/x"}, {"size": -1}, {"attrs": {1: 2}}):
        with pytest.raises(InvalidResource):
            normalize({**full, **bad})


# The fast path of a full record (``_plain_record``) is held to the exact rules
# (``_validate_exactly``) in both directions: whatever it accepts they accept, and
# ``validate_record`` raises exactly when they do, with their message.
_HASH_PIECES = ["blake3", "md5", "sha-256", "BLAKE3", ":", "ab", "0", "f", "x", " ", "_", "+", "é", "0x"]
_field_values = {
    "id": st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join) | st.none() | st.just(3),
    "version": st.sampled_from([0, 7, "v1", "", True, 1.5, None]),
    "type": st.sampled_from(["File", "Volume", "9Volume", "Vol ume", 3, None, ("File",)]),
    "hash": st.none() | st.lists(st.sampled_from(_HASH_PIECES), max_size=6).map("".join) | st.just(5),
    "size": st.sampled_from([None, 0, 12, -1, True, 1.0, "12"]),
    "uri": st.sampled_from([None, 5, "a/b.nii"]) | st.lists(st.sampled_from(PIECES), max_size=6).map("".join),
    "attrs": st.sampled_from([{}, {"a": 1}, {1: "x"}, ["a"], "ab", None]),
}
_VALID = {
    "id": "a/b.nii",
    "version": 1,
    "type": "File",
    "hash": "blake3:00",
    "size": 3,
    "uri": "s3://b/a/b.nii",
    "attrs": {"k": 1},
}
# A valid record with up to three of its fields drawn at random (valid or not).
_full_records = (
    st.lists(st.sampled_from(sorted(_VALID)), max_size=3, unique=True)
    .flatmap(lambda keys: st.fixed_dictionaries({k: _field_values[k] for k in keys}))
    .map(lambda changes: {**_VALID, **changes})
)


def _exact_outcome(record: dict[str, Any]) -> str | None:
    from vxds.resource import _validate_exactly

    try:
        _validate_exactly(record)
    except InvalidResource as exc:
        return str(exc)
    return None


@settings(max_examples=800, deadline=None)
@given(_full_records)
def test_the_record_fast_path_agrees_with_the_exact_rules(record: dict[str, Any]) -> None:
    from vxds.resource import _check_hash, _check_type, _plain_record

    for seen in ("blake3:00", "md5:ab"):  # algorithms and types become "seen" once checked
        _check_hash(seen)
    _check_type("File")
    expected = _exact_outcome(record)
    if _plain_record(record):
        assert expected is None
    try:
        validate_record(record)
    except InvalidResource as exc:
        assert str(exc) == expected
    else:
        assert expected is None


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_HASH_PIECES), max_size=8).map("".join))
def test_the_hash_fast_path_accepts_only_what_the_hash_rule_accepts(value: str) -> None:
    from vxds.resource import _HASH_RE, _check_hash, _plain_hash

    _check_hash("blake3:00")
    if _plain_hash(value):
        assert _HASH_RE.match(value)
    if _HASH_RE.match(value) and value.startswith("blake3:") and len(value) % 2 == 1:
        assert _plain_hash(value)  # a seen algorithm and an even number of digits: fast


def test_a_lock_line_is_the_canonical_line_and_a_newline() -> None:
    from vxds.resource import lock_line

    record = normalize({"id": "a/é", "version": 1, "attrs": {"b": [1, {"z": 0, "a": None}], "a": "x"}})
    assert lock_line(record) == canonical_line(record) + b"\n"
    with pytest.raises(InvalidResource, match="not JSON-serialisable"):
        lock_line({**record, "attrs": {"s": {1, 2}}})


@settings(max_examples=500, deadline=None)
@given(_full_records, st.sampled_from([None, "extra", "missing", "mapping"]))
def test_a_plain_record_is_one_normalize_returns_as_it_is(record: dict[str, Any], shape: str | None) -> None:
    from types import MappingProxyType

    from vxds.resource import _check_hash, _check_type, plain_record

    _check_hash("blake3:00")
    _check_type("File")
    item: Any = record
    if shape == "extra":
        item = {**record, "subject": "01"}
    elif shape == "missing":
        item = {k: v for k, v in record.items() if k != "uri"}
    elif shape == "mapping":
        item = MappingProxyType(record)
    if plain_record(item):
        assert shape is None
        assert _exact_outcome(item) is None
        assert normalize(item) is item  # the checker keeps such a record without calling normalize
    elif shape is None and [(k, type(v), v) for k, v in record.items()] == [
        (k, type(v), v) for k, v in _VALID.items()
    ]:
        raise AssertionError("the plain valid record was sent the slow way")


def test_the_plain_record_fast_path_takes_the_common_record() -> None:
    from vxds.resource import _check_hash, _check_type, plain_record

    _check_hash("blake3:00")
    _check_type("File")
    assert plain_record(dict(_VALID))
    assert not plain_record(Resource("a/b.nii", 1))  # a Resource has its own path (checker)
    assert not plain_record({**_VALID, "attrs": MappingProxyType({"k": 1})})
