"""A split and a loaded lock as sequences: len, iteration, indexing, slicing, lookup by id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vxds
from tests.api.conftest import IDS, sharded_lock
from tests.helpers import REPO
from vxds.errors import ConfigError, NotFoundError
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split
from vxds.locks.store import read_lock


class CountedChunks(Sequence[bytes]):
    """A split's chunks that record which ones were read."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks, self.read = list(chunks), []

    def __len__(self) -> int:
        return len(self.chunks)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return self.chunks[index]
        self.read.append(index)
        return self.chunks[index]


def _counted(split: Split) -> tuple[Split, CountedChunks]:
    chunks = CountedChunks(split.chunks)
    return Split(chunks, split.count, split.digest, shards=split.shards, parts=split.parts), chunks


def test_a_split_is_a_sequence_in_id_order(sharded: Path) -> None:
    lock = vxds.load_lock(sharded)
    train = lock.splits["train"]
    every = list(train)
    assert [r.id for r in every] == IDS == [r.id for r in lock.resources("train")]
    assert len(train) == 120
    assert train[0].id == IDS[0]
    assert train[-1].id == IDS[-1]
    assert train[-120].id == IDS[0]
    assert [r.id for r in train[5:9]] == IDS[5:9]
    assert [r.id for r in train[::-17]] == IDS[::-17]
    assert [r.id for r in train[200:]] == []
    with pytest.raises(IndexError, match="out of range"):
        train[120]
    with pytest.raises(IndexError):
        train[-121]


def test_a_position_reads_only_the_shard_holding_it(sharded: Path) -> None:
    split, chunks = _counted(read_lock(sharded, deep=True).splits["train"])
    ends = [sum(s.count for s in split.shards[: i + 1]) for i in range(len(split.shards))]
    last = len(split.shards) - 1
    assert split[ends[1]].id == IDS[ends[1]]  # the first line of the third shard
    assert chunks.read == [2]
    assert split[-1].id == IDS[-1]
    assert chunks.read == [2, last]
    assert split[-2].id == IDS[-2]  # the last shard indexed is kept: no second read
    assert chunks.read == [2, last]


def test_an_id_is_found_by_bisection_in_one_shard(sharded: Path) -> None:
    split, chunks = _counted(read_lock(sharded, deep=True).splits["train"])
    for rid in (IDS[0], IDS[57], IDS[-1]):
        chunks.read.clear()
        at = split.position(rid)
        assert at == IDS.index(rid)
        assert len(set(chunks.read)) == 1  # one shard read, however many bisection steps
    assert split.position("sub-000") is None  # before the first shard
    assert split.position("sub-0575") is None  # between two ids
    assert split.position("zzz") is None  # after the last


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_indexing_and_lookup_agree_with_the_list_of_resources(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    low = data.draw(st.integers(min_value=1, max_value=400))
    rule = ShardRule(min_bytes=low, target_bytes=low + data.draw(st.integers(1, 800)), max_bytes=low + 1600)
    folder = tmp_path_factory.mktemp("lock") / "d" / "1"
    sharded_lock(folder, rule)
    split = read_lock(folder, deep=True).splits["train"]
    listed = list(split)
    index = data.draw(st.integers(min_value=-len(listed), max_value=len(listed) - 1))
    assert split[index] == listed[index]
    window = slice(
        data.draw(st.integers(-130, 130)), data.draw(st.integers(-130, 130)), data.draw(st.integers(1, 7))
    )
    assert split[window] == listed[window]
    rid = data.draw(st.sampled_from([*IDS, "a", "sub-050", "sub-999"]))
    assert split.position(rid) == (IDS.index(rid) if rid in IDS else None)


def test_a_split_being_built_is_a_sequence_too() -> None:
    built = Split.from_lines([f'{{"id":"{c}","type":"File","version":1}}'.encode() for c in "abc"])
    assert [r.id for r in built] == ["a", "b", "c"]
    assert built[1].id == "b"
    assert built.position("c") == 2
    assert len(built) == 3


def test_the_lock_is_a_map_style_dataset_in_iteration_order(sharded: Path) -> None:
    lock = vxds.load_lock(sharded)
    every = list(lock)
    assert [r.id for r in every][:3] == ["t0", "t1", "t2"]  # splits in name order: test, train
    assert len(lock) == len(every) == 123
    assert [lock[i] for i in range(len(lock))] == every
    assert lock[-1] == every[-1]
    assert lock[2:5] == every[2:5]
    with pytest.raises(IndexError):
        lock[123]


def loader(dataset: Any, batch_size: int) -> Iterator[list[Any]]:
    """What a PyTorch DataLoader with a sampler does with a map-style dataset: len and
    getitem only, indices in any order, in batches."""
    order = list(range(len(dataset)))[::-1]
    for start in range(0, len(order), batch_size):
        yield [dataset[i] for i in order[start : start + batch_size]]


def from_generator(generator: Any) -> list[dict[str, Any]]:
    """What ``datasets.Dataset.from_generator`` does: call the function, keep each dict."""
    return list(generator())


def test_a_dataloader_like_consumer_sees_every_resource_once(sharded: Path) -> None:
    lock = vxds.load_lock(sharded)
    batches = list(loader(lock.splits["train"], batch_size=16))
    assert [len(b) for b in batches] == [16] * 7 + [8]
    assert sorted(r.id for b in batches for r in b) == IDS
    everything = [r for b in loader(lock, batch_size=50) for r in b]
    assert {r.id for r in everything} == {r.id for r in lock}


def test_a_generator_for_hugging_face_datasets_yields_records(sharded: Path) -> None:
    lock = vxds.load_lock(sharded)

    def records() -> Iterator[dict[str, Any]]:
        for resource in lock.splits["test"]:
            yield {"id": resource.id, "type": resource.type}

    assert from_generator(records) == [{"id": f"t{n}", "type": "Mask"} for n in range(3)]


def test_get_finds_every_id_and_names_a_missing_one(sharded: Path) -> None:
    lock = vxds.load_lock(sharded)
    assert all(lock.get(r.id) == r for r in lock)
    with pytest.raises(NotFoundError, match="no resource 'sub-999'"):
        lock.get("sub-999")


def test_resources_of_an_unknown_split_raises_when_called() -> None:
    lock = vxds.load_lock("viseg_training@1", root=REPO)
    with pytest.raises(NotFoundError, match="no split 'val'; it has test, train"):
        lock.resources("val")  # not iterated


def test_load_lock_outside_a_project_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        vxds.load_lock("viseg_training@1")
    assert "\n" not in str(caught.value)
    assert str(caught.value) == (
        f"load_lock('viseg_training@1'): {tmp_path.resolve()} is not inside a vxds project (no"
        " datasets.yaml here or above); pass root=, a lock folder or a 'git+URL#NAME@V' registry spec"
    )
