"""vxds/recipes/spill.py: a split sorted in spilled runs is the split sorted in memory."""

from __future__ import annotations

import dataclasses
import errno
import os
import random
from pathlib import Path

import pytest

from tests.helpers import make_lock, make_resource
from vxds.errors import RecipeError
from vxds.locks import shards as shards_module
from vxds.locks.shards import ShardRule
from vxds.locks.splits import Split, header_shards
from vxds.locks.store import Lock, read_lock, write_lock
from vxds.project.config import load_config
from vxds.project.manifest import load_manifest
from vxds.recipes import spill
from vxds.recipes.locking import lock_datasets
from vxds.recipes.resolver import build_splits
from vxds.resource import Resource, canonical_line

SMALL = ShardRule(min_bytes=400, target_bytes=1600, max_bytes=3200)


def _resources(n: int, seed: int = 7) -> list[Resource]:
    ids = [f"sub-{i:05d}/anat/T{random.Random(seed + i).randrange(10**6)}.nii.gz" for i in range(n)]
    random.Random(seed).shuffle(ids)
    return [make_resource(rid, subject=rid[:9]) for rid in ids]


def _bytes(split: Split) -> bytes:
    return b"".join(split.chunks)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many runs and many shards from a few hundred resources."""
    monkeypatch.setattr(spill, "SPILL_BYTES", 2000)
    monkeypatch.setattr(shards_module, "RULE", SMALL)


@pytest.mark.usefixtures("tiny")
def test_spilled_runs_give_the_bytes_and_shards_of_an_in_memory_sort(tmp_path: Path) -> None:
    items = _resources(600)
    expected = Split.from_terminated(sorted(canonical_line(r.to_record()) + b"\n" for r in items))
    assert len(expected.shards) > 5
    sorter = spill.Sorter(tmp_path, "train")
    for item in items:
        sorter.add(item.id, canonical_line(item.to_record()) + b"\n")
    assert len(list(tmp_path.glob("run.train.*"))) > 20
    split, repeated = spill.build(sorter.merged(), tmp_path, "train")
    assert repeated == []
    assert (split.count, split.digest, split.shards) == (expected.count, expected.digest, expected.shards)
    assert _bytes(split) == _bytes(expected)
    files = [(name, b"".join(chunks)) for name, chunks in split.files("train")]
    assert files == [(name, b"".join(chunks)) for name, chunks in expected.files("train")]
    assert split.content_digest == expected.content_digest
    assert not list(tmp_path.glob("run.*"))  # runs are removed once merged


@pytest.mark.parametrize("spill_bytes", [2000, spill.SPILL_BYTES])
def test_a_generator_gives_the_splits_of_the_same_list(
    monkeypatch: pytest.MonkeyPatch, spill_bytes: int
) -> None:
    monkeypatch.setattr(spill, "SPILL_BYTES", spill_bytes)
    monkeypatch.setattr(shards_module, "RULE", SMALL)
    items = _resources(300)
    listed = build_splits({"train": items[:200], "test": items[200:]}, label="x", group_by="attrs.subject")
    yielded = build_splits(
        {"train": (r for r in items[:200]), "test": iter(items[200:])}, label="x", group_by="attrs.subject"
    )
    assert listed == yielded
    for name in listed:
        assert _bytes(listed[name]) == _bytes(yielded[name])
        assert listed[name].shards == yielded[name].shards


@pytest.mark.usefixtures("tiny")
def test_duplicates_across_runs_and_an_id_in_two_splits_are_named(tmp_path: Path) -> None:
    items = _resources(200)
    train = [*items[:150], items[3], items[140]]  # the repeats land in other runs
    with pytest.raises(RecipeError) as info:
        build_splits({"train": iter(train), "test": iter([*items[150:], items[7]])}, label="x", work=tmp_path)
    message = str(info.value)
    assert f"split 'train' lists these ids more than once: {min(items[3].id, items[140].id)}" in message
    assert f"ids in more than one split: {items[7].id} (test, train)" in message


@pytest.mark.usefixtures("tiny")
def test_a_group_in_two_splits_is_found_with_spilled_runs() -> None:
    items = _resources(200)
    leaked = make_resource("sub-99999/anat/T1.nii.gz", subject=items[0].attrs["subject"])
    with pytest.raises(RecipeError, match="groups in more than one split"):
        build_splits({"train": iter(items), "test": iter([leaked])}, label="x", group_by="attrs.subject")


GENERATOR_RECIPE = """\
import vxds


@vxds.recipe()
def demo(client, test_subject="02"):
    def split(test):
        for volume in client.query(type="Volume"):
            if (volume.attrs["subject"] == test_subject) == test:
                yield volume
    return {"train": split(False), "test": split(True)}
"""


@pytest.mark.usefixtures("tiny")
def test_a_generator_recipe_locks_the_bytes_of_the_list_recipe_and_leaves_no_temp_files(
    project: Path,
) -> None:
    config = load_config(project)
    entries = list(load_manifest(config.manifest, default_source=config.source, cache_dir=config.cache_dir))
    [listed] = lock_datasets(config, entries)
    before = {p.name: p.read_bytes() for p in listed.path.glob("resources.*")}
    header = read_lock(listed.path).header
    (project / "recipes/demo.py").write_text(GENERATOR_RECIPE)
    [yielded] = lock_datasets(config, entries, refresh=True)
    assert yielded.state == "written"  # the script's digest in the header changed, nothing else
    assert {p.name: p.read_bytes() for p in yielded.path.glob("resources.*")} == before
    again = read_lock(yielded.path).header
    assert (again.splits, again.shards) == (header.splits, header.shards)
    assert not list((project / ".vxds/tmp").iterdir())
    (project / "recipes/demo.py").write_text(
        GENERATOR_RECIPE.replace("yield volume", "yield volume\n                yield volume")
    )
    [failed] = lock_datasets(config, entries, refresh=True)
    assert failed.state == "error"
    assert "lists these ids more than once" in str(failed.error)
    assert not list((project / ".vxds/tmp").iterdir())


def _locked(work_parent: Path, items: list[Resource], target: Path) -> None:
    """Build ``items`` as split ``train`` in a workspace and write them as a lock at ``target``."""
    with spill.workspace(work_parent) as work:
        splits = build_splits({"train": items}, label="x", work=work)
        lock = make_lock(train=splits["train"])
        lock = Lock(dataclasses.replace(lock.header, shards=header_shards(splits)), lock.splits)
        assert write_lock(lock, target)


@pytest.mark.usefixtures("tiny")
def test_the_lock_writer_links_the_shard_files_built_and_copies_where_links_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = _resources(600)
    expected = build_splits({"train": items}, label="x")["train"]  # in memory, never linked
    want = {name: b"".join(chunks) for name, chunks in expected.files("train")}
    linked: list[str] = []
    real_link = os.link

    def recording(source: Path, target: Path, **kwargs: bool) -> None:
        linked.append(Path(target).name)
        real_link(source, target, **kwargs)

    monkeypatch.setattr(os, "link", recording)
    _locked(tmp_path / "cache", items, tmp_path / "linked")
    files = {p.name: p.read_bytes() for p in (tmp_path / "linked").glob("resources.*")}
    assert files == want
    assert len(files) == len(expected.shards) > 5
    assert sorted(linked) == sorted(files)  # every shard linked, none copied
    assert {p.stat().st_nlink for p in (tmp_path / "linked").iterdir()} == {1}  # the workspace is gone
    assert read_lock(tmp_path / "linked", deep=True).splits["train"] == expected

    def refusing(source: Path, target: Path, **kwargs: bool) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", refusing)  # the workspace on another file system: copied
    _locked(tmp_path / "cache", items, tmp_path / "copied")
    assert {p.name: p.read_bytes() for p in (tmp_path / "copied").glob("resources.*")} == want


@pytest.mark.usefixtures("tiny")
def test_the_last_run_is_merged_from_memory_not_written(tmp_path: Path) -> None:
    items = _resources(100)
    sorter = spill.Sorter(tmp_path, "train")
    for item in items:
        sorter.add(item.id, canonical_line(item.to_record()) + b"\n")
    runs = sorted(tmp_path.glob("run.train.*"))
    assert len(runs) > 1
    assert sorter._held  # what came after the last run is still in memory
    merged = sorter.merged()
    first = next(merged)
    assert sorted(tmp_path.glob("run.train.*")) == runs  # merging wrote no run of it
    records = [first, *merged]
    unknown = bytes((0, spill.UNKNOWN))  # no type was given to add()
    assert records == sorted(r.id.encode() + unknown + canonical_line(r.to_record()) + b"\n" for r in items)
    assert not list(tmp_path.glob("run.*"))


@pytest.mark.usefixtures("tiny")
def test_shard_types_counted_from_kind_bytes_are_those_of_the_lines(tmp_path: Path) -> None:
    # 300 types: past the 244 kind bytes a split names, the rest are read from their lines
    items = [dataclasses.replace(r, type=f"T{i % 300}") for i, r in enumerate(_resources(900))]
    expected = Split.from_terminated(sorted(canonical_line(r.to_record()) + b"\n" for r in items))
    with spill.workspace(tmp_path) as work:
        [built] = build_splits({"train": items}, label="x", work=work).values()
        assert len(built.shards) > 5
        assert built.shards == expected.shards  # first id, count, digest and types of each
        assert {t for shard in built.shards for t, _ in shard.types} == {f"T{i}" for i in range(300)}
    sorter = spill.Sorter(tmp_path, "mixed")
    for n, item in enumerate(items):  # a caller that names some types and not others
        sorter.add(item.id, canonical_line(item.to_record()) + b"\n", item.type if n % 2 else None)
    split, _ = spill.build(sorter.merged(), tmp_path, "mixed", sorter.kinds)
    assert split.shards == expected.shards
