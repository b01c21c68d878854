"""vxds/recipes/locking.py: locking as values, with no printing, errors collected per dataset."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tests.helpers import NEW, OLD
from vxds.errors import LockError, RecipeError
from vxds.locks.diff import diff_locks
from vxds.locks.store import read_lock
from vxds.project.config import Config, load_config
from vxds.project.manifest import Entry, load_manifest
from vxds.recipes.locking import (
    Changes,
    LockOutcome,
    SplitFileOutcome,
    lock_datasets,
    lock_script,
    select_entries,
)

BROKEN = "import vxds\n\n\n@vxds.recipe()\ndef broken(client):\n    raise ValueError('no volumes today')\n"


def _open(root: Path) -> tuple[Config, list[Entry]]:
    config = load_config(root)
    manifest = load_manifest(config.manifest, default_source=config.source, cache_dir=config.cache_dir)
    return config, list(manifest)


def test_a_first_lock_is_written_then_left_unchanged(project: Path) -> None:
    config, entries = _open(project)
    seen: list[LockOutcome] = []
    [first] = lock_datasets(config, entries, on_outcome=seen.append)
    assert seen == [first]
    assert (first.key, first.state, first.path) == ("demo@1", "written", project / "locks/demo/1")
    assert first.splits == {"test": 1, "train": 2}
    assert first.changes == Changes(added=3)
    assert first.digest == read_lock(first.path).digest
    assert first.error is None
    assert not first.pending
    [again] = lock_datasets(config, entries)
    assert (again.state, again.changes, again.digest) == ("unchanged", None, first.digest)
    # Writers take turns on a guard file under the git-ignored .vxds/, not in locks/.
    assert (project / ".vxds/writing/demo@1.lock").is_file()


def test_dry_run_writes_nothing_and_counts_the_changes(project: Path) -> None:
    config, entries = _open(project)
    [missing] = lock_datasets(config, entries, dry_run=True)
    assert (missing.state, missing.pending, missing.changes) == ("missing", True, Changes(added=3))
    assert not (project / "locks").exists()
    lock_datasets(config, entries)
    before = (project / "locks/demo/1/lock.toml").read_bytes()
    recipe = project / "recipes/demo.py"
    recipe.write_text(recipe.read_text().replace('test_subject="02"', 'test_subject="03"'))
    [changed] = lock_datasets(config, entries, dry_run=True)
    assert changed.state == "would change"
    assert changed.changes == Changes(moved=2)  # sub-02 to train, sub-03 to test
    assert (project / "locks/demo/1/lock.toml").read_bytes() == before


def test_changes_count_as_diff_does_and_say_why_a_header_changed() -> None:
    counts = diff_locks(OLD, NEW).counts()
    changes = Changes.between(OLD, NEW)
    assert changes.counts() == {
        kind: counts[kind] for kind in ("added", "removed", "changed", "metadata", "moved")
    }
    assert (changes.merged, changes.new_snapshot) == (False, False)
    assert Changes.between(None, NEW) == Changes(added=sum(split.count for split in NEW.splits.values()))
    merged = dataclasses.replace(OLD, header=dataclasses.replace(OLD.header, merged=True))
    assert Changes.between(merged, OLD) == Changes(merged=True)
    later = dataclasses.replace(OLD, header=dataclasses.replace(OLD.header, snapshot="x:1"))
    assert Changes.between(OLD, later) == Changes(new_snapshot=True)


def test_a_failing_dataset_is_an_outcome_and_the_others_are_locked(project: Path) -> None:
    (project / "recipes/broken.py").write_text(BROKEN)
    manifest = project / "datasets.yaml"
    manifest.write_text(
        "- name: broken\n  version: 1\n  script_location: ./recipes/broken.py\n\n" + manifest.read_text()
    )
    config, entries = _open(project)
    failed, written = lock_datasets(config, entries)
    assert (failed.key, failed.state, failed.path) == ("broken@1", "error", project / "locks/broken/1")
    assert isinstance(failed.error, RecipeError)
    assert "raised ValueError: no volumes today" in str(failed.error)
    assert (failed.splits, failed.digest, failed.changes) == ({}, None, None)
    assert written.state == "written"


def test_a_failed_write_is_an_outcome_naming_the_path(project: Path) -> None:
    (project / "locks").mkdir()
    (project / "locks/demo").write_text("not a folder")
    config, entries = _open(project)
    [outcome] = lock_datasets(config, entries)
    assert outcome.state == "error"
    assert isinstance(outcome.error, LockError)
    assert "locks/demo: cannot write the lock of demo@1: File exists" in str(outcome.error)


def test_a_lock_left_aside_by_a_killed_write_is_not_missing(project: Path) -> None:
    config, entries = _open(project)
    lock_datasets(config, entries)
    folder = project / "locks/demo"
    os.replace(folder / "1", folder / ".1.old-999999999-abcd")  # killed between the renames
    [outcome] = lock_datasets(config, entries, dry_run=True)
    assert outcome.state == "unchanged"
    assert (folder / "1/lock.toml").is_file()


def test_select_entries_with_stale_runs_no_recipe(project: Path) -> None:
    config, entries = _open(project)
    manifest = load_manifest(config.manifest, default_source=config.source)
    assert select_entries(config, manifest, [], stale=True) == entries  # missing
    assert select_entries(config, manifest, ["demo@1"]) == entries
    lock_datasets(config, entries)
    assert select_entries(config, manifest, [], stale=True) == []
    (project / "recipes/demo.py").write_text(BROKEN)  # stale, and would fail if it ran
    assert select_entries(config, manifest, ["demo"], stale=True) == entries


def test_lock_script_makes_out_hold_exactly_its_splits(project: Path) -> None:
    config = load_config(project)
    out = project / "out"
    script = project / "recipes/demo.py"
    first = lock_script(config, script, out=out)
    assert [(o.split, o.state, o.count) for o in first] == [("test", "written", 1), ("train", "written", 2)]
    assert first[0] == SplitFileOutcome("test", out / "resources.test.jsonl", "written", 1, first[0].digest)
    [locked] = lock_datasets(config, _open(project)[1])  # the same recipe, through the manifest
    for split in ("test", "train"):
        name = f"resources.{split}.jsonl"
        assert (out / name).read_bytes() == (locked.path / name).read_bytes()
    (out / "resources.val.jsonl").write_text("")
    check = lock_script(config, script, out=out, params={"test_subject": "03"}, dry_run=True)
    assert [(o.split, o.state) for o in check] == [
        ("test", "would change"),
        ("train", "would change"),
        ("val", "would remove"),
    ]
    assert check[2] == SplitFileOutcome("val", out / "resources.val.jsonl", "would remove")
    assert (out / "resources.val.jsonl").exists()
    assert [o.state for o in lock_script(config, script, out=out)] == ["unchanged", "unchanged", "removed"]
    assert not (out / "resources.val.jsonl").exists()


def test_lock_script_raises_its_errors(project: Path) -> None:
    config = load_config(project)
    (project / "recipes/broken.py").write_text(BROKEN)
    with pytest.raises(RecipeError, match="raised ValueError: no volumes today"):
        lock_script(config, project / "recipes/broken.py", out=project / "out")
    assert not (project / "out").exists()


def test_lock_file_digests_a_spilled_split_shard_by_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blake3 import blake3

    from tests.helpers import make_resource
    from vxds.locks import shards as shards_module
    from vxds.locks.shards import ShardRule
    from vxds.recipes import spill
    from vxds.recipes.locking import _content_digest
    from vxds.recipes.resolver import build_splits

    monkeypatch.setattr(shards_module, "RULE", ShardRule(min_bytes=400, target_bytes=1600, max_bytes=3200))
    items = [make_resource(f"sub-{i:04d}/anat/T1w.nii.gz", subject=f"{i:04d}") for i in range(300)]
    with spill.workspace(tmp_path) as work:
        [split] = build_splits({"train": items}, label="x", work=work).values()
        assert len(split.shards) > 5
        whole = b"".join(split.chunks)
        assert _content_digest(split) == "blake3:" + blake3(whole).hexdigest()
    [single] = build_splits({"train": items[:1]}, label="x").values()
    assert _content_digest(single) == single.digest == "blake3:" + blake3(b"".join(single.chunks)).hexdigest()


class _Unread(bytes):
    """A shard's bytes that a diff skipping equal shards never splits into lines."""

    def split(self, *args: object, **kwargs: object) -> list[bytes]:
        raise AssertionError("an equal shard was read")


def test_changes_skip_the_shards_both_locks_hold_and_count_as_a_whole_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers import make_lock, make_resource
    from vxds.locks import shards as shards_module
    from vxds.locks.shards import ShardRule
    from vxds.locks.splits import header_shards
    from vxds.locks.store import Lock
    from vxds.recipes.resolver import build_splits

    monkeypatch.setattr(shards_module, "RULE", ShardRule(min_bytes=400, target_bytes=1600, max_bytes=3200))

    def lock(train: list[object], test: list[object]) -> Lock:
        splits = build_splits({"test": test, "train": train}, label="x")
        made = make_lock(**splits)
        header = dataclasses.replace(made.header, shards=header_shards(splits))
        return dataclasses.replace(made, header=header)

    items = [make_resource(f"sub-{i:04d}/anat/T1w.nii.gz", subject=f"{i:04d}") for i in range(400)]
    old = lock(items[:300], items[300:])
    train = [*items[:10], dataclasses.replace(items[10], version=2), *items[12:300]]  # 11 removed
    train += [make_resource("sub-0100/anat/T2w.nii.gz"), items[301]]  # one added, one moved
    train[150] = dataclasses.replace(train[150], attrs={"subject": "x"})  # attrs only
    new = lock(train, [items[300], *items[302:]])
    held = {(s.first, s.digest) for shards in old.header.shards.values() for s in shards}
    for split in new.splits.values():  # a shard both hold cannot be read
        starts = dict(zip(split.parts, split.shards, strict=True))
        chunks = [
            _Unread(c) if n in starts and (starts[n].first, starts[n].digest) in held else c
            for n, c in enumerate(split.chunks)
        ]
        object.__setattr__(split, "chunks", chunks)
    assert len(new.splits["train"].shards) > 10
    assert any(isinstance(c, _Unread) for c in new.splits["train"].chunks)
    expected = Changes(added=1, removed=1, changed=1, metadata=1, moved=1)
    assert Changes.between(old, new) == expected
