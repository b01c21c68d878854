"""vxds/recipes/client.py: what a recipe may ask of its source, over small fake sources."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import pytest

from vxds.errors import NotFoundError
from vxds.recipes.client import Client
from vxds.resource import Resource
from vxds.sources.base import IndexedSource, SourceContext

RESOURCES = [
    Resource("b/sub-02_T2w.nii.gz", "v2", "Volume", attrs={"subject": "02", "suffix": "T2w", "age": 61}),
    Resource("a/sub-01_T2w.nii.gz", "v1", "Volume", attrs={"subject": "01", "suffix": "T2w", "age": 34}),
    Resource("a/sub-01_mask.nii.gz", "v1", "Mask", attrs={"subject": "01", "suffix": "mask"}),
    Resource("a/p.tsv#sub-01", 3, "ClinicalRecord", attrs={"subject": "01", "age": None}),
    Resource("ab/notes.txt", "v9", "File", attrs={}),
]


class FakeIndexed(IndexedSource):
    """An indexed source fed from a list; bytes are the id, encoded."""

    snapshot = "fake-snapshot"  # type: ignore[assignment]

    def __init__(self, items: Sequence[Resource]) -> None:
        super().__init__("fake://", SourceContext(base=Path(".")))
        self.items = list(items)

    def _scan(self) -> list[Resource]:
        return list(self.items)

    def open(self, resource: Resource) -> BinaryIO:
        return io.BytesIO(resource.id.encode())


class FakePlain:
    """The bare protocol, without IndexedSource's prefix index."""

    url = "plain://"
    snapshot = "plain-snapshot"

    def __init__(self, items: Sequence[Resource]) -> None:
        self.items = sorted(items, key=lambda r: r.id)

    def resources(self) -> Sequence[Resource]:
        return self.items

    def get(self, id: str, version: int | str | None = None) -> Resource:
        for item in self.items:
            if item.id == id and version in (None, item.version):
                return item
        raise NotFoundError(f"no {id}")

    def open(self, resource: Resource) -> BinaryIO:
        return io.BytesIO(b"plain:" + resource.id.encode())


@pytest.fixture(params=["indexed", "plain"])
def client(request: pytest.FixtureRequest) -> Client:
    source = FakeIndexed(RESOURCES) if request.param == "indexed" else FakePlain(RESOURCES)
    return Client(source)  # type: ignore[arg-type]


def _ids(found: object) -> list[str]:
    return [r.id for r in found]  # type: ignore[attr-defined]


def test_get_and_its_seed_alias(client: Client) -> None:
    assert client.get("a/p.tsv#sub-01").version == 3
    assert client.get_resource("a/p.tsv#sub-01", 3) == client.get("a/p.tsv#sub-01")
    with pytest.raises(NotFoundError):
        client.get("missing")
    with pytest.raises(NotFoundError):
        client.get("a/p.tsv#sub-01", 4)


def test_list_by_prefix_in_id_order(client: Client) -> None:
    assert _ids(client.list()) == sorted(r.id for r in RESOURCES)
    assert _ids(client.list("a/")) == [
        "a/p.tsv#sub-01",
        "a/sub-01_T2w.nii.gz",
        "a/sub-01_mask.nii.gz",
    ]
    assert _ids(client.list("a")) == [*_ids(client.list("a/")), "ab/notes.txt"]
    assert _ids(client.list("zz")) == []


def test_list_by_type(client: Client) -> None:
    assert _ids(client.list(type="Volume")) == ["a/sub-01_T2w.nii.gz", "b/sub-02_T2w.nii.gz"]
    assert _ids(client.list("b/", type="Mask")) == []


def test_query_exact(client: Client) -> None:
    assert _ids(client.query(subject="01")) == [
        "a/p.tsv#sub-01",
        "a/sub-01_T2w.nii.gz",
        "a/sub-01_mask.nii.gz",
    ]
    assert _ids(client.query(type="Volume", suffix="T2w", subject="02")) == ["b/sub-02_T2w.nii.gz"]
    assert _ids(client.query(prefix="b/", subject="01")) == []


def test_query_by_callable(client: Client) -> None:
    assert _ids(client.query(age=lambda a: a > 40)) == ["b/sub-02_T2w.nii.gz"]  # None > 40 is not a match
    assert _ids(client.query(age=lambda a: a is None)) == ["a/p.tsv#sub-01"]
    assert _ids(client.query(subject=lambda s: int(s) == 1, type="Volume")) == ["a/sub-01_T2w.nii.gz"]


def test_query_missing_attr_never_matches(client: Client) -> None:
    assert _ids(client.query(age=None)) == ["a/p.tsv#sub-01"]
    assert _ids(client.query(site=lambda _: True)) == []
    assert _ids(client.query(suffix="mask", age=lambda _: True)) == []


def test_open_by_resource_or_id(client: Client) -> None:
    volume = client.get("b/sub-02_T2w.nii.gz")
    assert client.open(volume).read().endswith(b"b/sub-02_T2w.nii.gz")
    assert client.open("b/sub-02_T2w.nii.gz").read() == client.open(volume).read()


def test_snapshot_comes_from_the_source(client: Client) -> None:
    assert client.snapshot in ("fake-snapshot", "plain-snapshot")
