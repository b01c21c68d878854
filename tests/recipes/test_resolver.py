"""vxds/recipes/resolver.py: a recipe's output becomes canonical splits, or is refused by id."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sources.fakes import Bare, Counted
from vxds.errors import ConfigError, NotFoundError, RecipeError, SourceError
from vxds.hashing import digest_bytes, digest_text
from vxds.locks.splits import Split
from vxds.locks.store import read_lock, write_lock
from vxds.project.config import load_config
from vxds.project.manifest import load_manifest
from vxds.recipes import resolver as resolver_module
from vxds.recipes.resolver import Resolver, build_splits, from_source
from vxds.resource import Resource
from vxds.sources.base import Source, SourceContext
from vxds.sources.folder.source import FolderSource


def _r(rid: str, **attrs: Any) -> dict[str, Any]:
    return {"id": rid, "version": 1, "attrs": attrs}


def _refusal(output: object, **kwargs: Any) -> str:
    with pytest.raises(RecipeError) as info:
        build_splits(output, label="dataset d@1 (datasets.yaml:3)", **kwargs)
    message = str(info.value)
    assert message.startswith("dataset d@1 (datasets.yaml:3): ")
    return message


def test_splits_are_sorted_canonical_lines() -> None:
    splits = build_splits({"train": [_r("b"), Resource("a", 2, "Volume")], "test": []}, label="L")
    assert list(splits) == ["test", "train"]
    train = splits["train"]
    assert b"".join(train.chunks) == (
        b'{"attrs":{},"hash":null,"id":"a","size":null,"type":"Volume","uri":null,"version":2}\n'
        b'{"attrs":{},"hash":null,"id":"b","size":null,"type":"File","uri":null,"version":1}\n'
    )
    assert (train.count, train.digest) == (2, digest_bytes(b"".join(train.chunks)))
    assert (splits["test"].count, splits["test"].chunks) == (0, [])


def test_generators_are_accepted_as_splits() -> None:
    assert build_splits({"all": (_r(x) for x in "cab")}, label="L")["all"].count == 3


def test_duplicate_id_in_a_split() -> None:
    message = _refusal({"train": [_r("a"), _r("b"), _r("a"), _r("b"), _r("c")]})
    assert "split 'train' lists these ids more than once: a, b" in message


def test_id_in_two_splits() -> None:
    message = _refusal({"train": [_r("x/a"), _r("x/b")], "test": [_r("x/a")], "val": [_r("x/a")]})
    assert "ids in more than one split: x/a (test, train, val)" in message
    assert "x/b" not in message


def test_group_in_two_splits() -> None:
    output = {
        "train": [_r("a", subject="S1"), _r("b", subject="S2")],
        "test": [_r("c", subject="S1")],
    }
    message = _refusal(output, group_by="attrs.subject")
    assert 'group_by attrs.subject: groups in more than one split: "S1" (test: c, train: a)' in message
    assert "S2" not in message
    assert (
        build_splits(output, label="L", group_by="attrs.subject", allow_group_overlap=True)["test"].count == 1
    )
    assert (
        build_splits(output, label="L", group_by="attrs.site")["train"].count == 2
    )  # no such key: no groups


def test_groups_are_compared_by_their_json_value() -> None:
    output = {"train": [_r("a", subject=1)], "test": [_r("b", subject=True)]}
    assert build_splits(output, label="L", group_by="attrs.subject")["test"].count == 1


def test_every_problem_is_reported_at_once() -> None:
    message = _refusal(
        {"train": [_r("a"), _r("a"), {"version": 1}], "test": [_r("a"), _r("/abs"), _r("x/../y")]}
    )
    assert "split 'test', item 1: id '/abs' must be a relative path" in message
    assert "split 'test', item 2: id 'x/../y' must not contain" in message
    assert "split 'train', item 2: missing 'id'" in message
    assert "split 'train' lists these ids more than once: a" in message
    assert "ids in more than one split: a (test, train)" in message


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ([_r("a")], "the recipe returned list; expected a dict of split name -> list of resources"),
        (None, "the recipe returned NoneType"),
        ({}, "the recipe returned no splits"),
        ({"bad name": []}, "split names must be letters, digits, '_' or '-': 'bad name'"),
        ({1: []}, "split names must be letters, digits, '_' or '-': 1"),
        ({"train": "abc"}, "split 'train' must be a list of resources, got str"),
        ({"train": _r("a")}, "split 'train' must be a list of resources, got dict"),
        ({"train": Resource("a", 1)}, "split 'train' must be a list of resources, got Resource"),
        ({"train": None}, "split 'train' must be a list of resources, got NoneType"),
        ({"train": [3]}, "split 'train', item 0: expected a vxds.Resource or a dict, got int: 3"),
        ({"train": [{"id": "a"}]}, "split 'train', item 0: resource 'a' has no 'version'"),
        ({"train": [{"version": 1}]}, "split 'train', item 0: missing 'id'"),
        ({"train": [_r("/etc/passwd")]}, "item 0: id '/etc/passwd' must be a relative path"),
        (
            {"train": [_r("../up")]},
            "item 0: id '../up' must not contain empty, '.' or '..' segments",
        ),
        ({"train": [{"id": "a", "version": 1, "subject": "S"}]}, "unknown field(s) 'subject'"),
        ({"train": [_r("a", tags={1, 2})]}, "resource 'a' is not JSON-serialisable"),
    ],
)
def test_wrong_shapes_are_refused(output: object, words: str) -> None:
    assert words in _refusal(output)


def test_invalid_items_are_listed_up_to_a_limit() -> None:
    message = _refusal({"train": [{"version": 1}] * 25})
    assert message.count("missing 'id'") == 10
    assert "... and 15 more invalid items" in message


# --- shuffled output, same bytes ---------------------------------------------------------

_items = st.lists(
    st.tuples(
        st.from_regex(r"[a-z]{1,3}(/[a-z0-9]{1,3}){0,2}", fullmatch=True),
        st.sampled_from(["train", "test", "val"]),
        st.integers(0, 5),
        st.booleans(),
    ),
    max_size=30,
    unique_by=lambda item: item[0],
)


def _output(items: list[tuple[str, str, int, bool]], seed: int) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    order = list(items)
    rng.shuffle(order)
    splits: dict[str, list[Any]] = {}
    for rid, split, n, as_resource in order:
        attrs = {"n": n, "subject": rid.split("/")[0], "z": [n], "a": {"k": rid}}
        item: Any = (
            Resource(rid, n, "Volume", attrs=attrs)
            if as_resource
            else {"attrs": dict(reversed(attrs.items())), "version": n, "type": "Volume", "id": rid}
        )
        splits.setdefault(split, []).append(item)
    names = list(splits)
    rng.shuffle(names)
    return {name: splits[name] for name in names}


@settings(max_examples=50, deadline=None)
@given(_items, st.integers(0, 2**32), st.integers(0, 2**32))
def test_shuffled_output_gives_identical_bytes(
    items: list[tuple[str, str, int, bool]], a: int, b: int
) -> None:
    if not items:
        items = [("only", "train", 0, True)]
    first = build_splits(_output(items, a), label="L")
    second = build_splits(_output(items, b), label="L")
    assert list(first) == list(second) == sorted(first)
    for name in first:
        assert b"".join(first[name].chunks) == b"".join(second[name].chunks)
        assert first[name].digest == second[name].digest
        ids = [r.id for r in first[name].resources()]
        assert ids == sorted(ids)


# --- resolving a real project ------------------------------------------------------------


def test_resolve_a_project(project: Path) -> None:
    config = load_config(project)
    entry = load_manifest(config.manifest, default_source=config.source).find("demo")
    lock = Resolver(config).resolve(entry)
    header = lock.header
    assert (header.key, header.script, header.entrypoint, header.source) == (
        "demo@1",
        "recipes/demo.py",
        None,
        "./data",
    )
    assert header.script_digest == digest_text((project / "recipes" / "demo.py").read_text())
    assert header.entry_digest == entry.digest()
    assert header.snapshot == FolderSource("./data", SourceContext(base=project)).snapshot
    for name, split in lock.splits.items():
        assert header.splits[name] == (split.count, split.digest)
        assert split.digest == digest_bytes(b"".join(split.chunks))
    assert [r.attrs["subject"] for r in lock.resources("train")] == ["01", "03"]
    assert [r.id for r in lock.resources("test")] == ["sub-02/anat/sub-02_T2w.nii.gz"]
    assert next(lock.resources("train")).attrs["EchoTime"] == 0.1
    write_lock(lock, config.locks / "demo" / "1")
    assert read_lock(config.locks / "demo" / "1", deep=True) == lock
    again = Resolver(config).resolve(entry)
    assert again == lock


def test_resolve_passes_params_and_refuses_leaks(project: Path) -> None:
    manifest = project / "datasets.yaml"
    manifest.write_text(manifest.read_text() + "  params: {test_subject: '03'}\n")
    config = load_config(project)
    entry = load_manifest(config.manifest, default_source=config.source).find("demo")
    lock = Resolver(config).resolve(entry)
    assert [r.attrs["subject"] for r in lock.resources("test")] == ["03"]
    assert dict(lock.header.params) == {"test_subject": "03"}

    recipe = project / "recipes" / "demo.py"
    recipe.write_text(
        recipe.read_text().replace(
            "splits[split].append(volume)",
            'splits[split].append(volume)\n        splits["test"].append(volume)',
        )
    )
    with pytest.raises(
        RecipeError, match=r"dataset demo@1 \(datasets.yaml:1\): the recipe's output was refused"
    ):
        Resolver(config).resolve(entry)


def test_resolve_without_any_source(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.vxds]\n")
    config = load_config(project)
    entry = load_manifest(config.manifest, default_source=config.source).find("demo")
    with pytest.raises(ConfigError, match=r"dataset demo@1 \(datasets.yaml:1\): no source"):
        Resolver(config).resolve(entry)


def test_resolve_script_outside_the_manifest(project: Path) -> None:
    config = load_config(project)
    splits = Resolver(config).resolve_script(
        project / "recipes" / "demo.py",
        entrypoint="demo",
        source=None,
        params={"test_subject": "01"},
    )
    assert {name: split.count for name, split in splits.items()} == {"test": 1, "train": 2}
    assert all(isinstance(split, Split) for split in splits.values())


# --- opening sources ---------------------------------------------------------------------


def _opening(monkeypatch: pytest.MonkeyPatch, source: object) -> list[str]:
    """Make the resolver open ``source`` for any URL; the URLs it opened."""
    opened: list[str] = []

    def open_source(url: str, context: SourceContext) -> Source:
        opened.append(url)
        return source  # type: ignore[return-value]

    monkeypatch.setattr(resolver_module, "open_source", open_source)
    return opened


def test_a_source_is_scanned_once_when_opened(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Counted()
    opened = _opening(monkeypatch, source)
    resolver = Resolver(load_config(project))
    assert resolver.source("counted://", "L") is source
    assert source.scans == 1  # listed before any recipe runs
    assert resolver.source("counted://", "L") is source
    assert source.snapshot == "listed 1 times"
    assert (opened, source.scans) == (["counted://"], 1)


def test_a_bare_source_is_listed_through_its_snapshot(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Bare()
    _opening(monkeypatch, source)
    Resolver(load_config(project)).source("bare://", "L")
    assert source.reads == 1


def test_an_unreadable_source_fails_when_opened(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Unreadable(Counted):
        def _scan(self) -> list[Resource]:
            raise SourceError("source 'counted://': cannot list it")

    _opening(monkeypatch, Unreadable())
    with pytest.raises(SourceError, match="cannot list it"):
        Resolver(load_config(project)).source("counted://", "L")


class _OneFile:
    """A source holding one resource at version 2 (only ``get`` is used here)."""

    url = "file:one"
    held = Resource("a.nii.gz", 2, "Volume", "sha256:" + "0" * 64, 10, "a.nii.gz", {"subject": "S1"})

    def get(self, id: str, version: int | str | None = None) -> Resource:
        if id != self.held.id:
            raise NotFoundError(f"{self.url}: no resource {id!r}")
        if version is not None and version != self.held.version:
            raise NotFoundError(f"{self.url}: resource {id!r} is at version 2, not {version!r}")
        return self.held


def test_seed_records_resolve_against_the_source() -> None:
    one = _OneFile()
    plain = from_source({"id": "a.nii.gz", "version": 2}, one, "L")  # type: ignore[arg-type]
    assert plain == one.held.to_record()
    given = {"id": "a.nii.gz", "version": 2, "attrs": {"site": "x"}, "type": "Mask"}
    merged = from_source(given, one, "L")  # type: ignore[arg-type]
    assert isinstance(merged, dict)
    assert (merged["hash"], merged["size"], merged["type"]) == (one.held.hash, 10, "Mask")
    assert merged["attrs"] == {"subject": "S1", "site": "x"}
    own = {"id": "b", "version": 1, "type": "File"}  # the recipe's own resource, not the source's
    assert from_source(own, one, "L") is own  # type: ignore[arg-type]
    hashed = {"id": "a.nii.gz", "version": 9, "hash": "sha256:" + "1" * 64}
    assert from_source(hashed, one, "L") is hashed  # type: ignore[arg-type]
    split = build_splits({"train": [{"id": "a.nii.gz", "version": 2}]}, label="L", source=one)  # type: ignore[arg-type]
    assert b'"hash":"sha256:' in b"".join(split["train"].lines())


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"id": "a.nii.gz", "version": 3},
            "item 0: record {'id': 'a.nii.gz', 'version': 3}",
        ),
        ({"id": "a.nii.gz", "version": 3, "type": "Volume"}, "is at version 2, not 3"),
        ({"id": "none", "version": 1}, "no resource 'none'"),
    ],
)
def test_seed_records_the_source_lacks_are_one_line(record: dict[str, object], message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        build_splits({"train": [record]}, label="L", source=_OneFile())  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
