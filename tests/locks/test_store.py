"""vxds/locks/store.py: a lock folder written atomically and read back with every check."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vxds.errors import LockError
from vxds.locks.format import CorruptLock, Header
from vxds.locks.splits import Split
from vxds.locks.store import Lock, check_lock, lock_dir, read_lock, same_on_disk, write_lock, write_splits
from vxds.resource import Resource

D = "blake3:"


def _lines(*ids: str, version: int = 1) -> list[bytes]:
    return [Resource(i, version, "Volume", attrs={"subject": i[:1]}).canonical_line() for i in sorted(ids)]


def make_lock(splits: dict[str, Split] | None = None, *, snapshot: str = D + "5" * 64) -> Lock:
    splits = (
        splits
        if splits is not None
        else {
            "train": Split.from_lines(_lines("a/1", "a/2", "b/1")),
            "test": Split.from_lines(_lines("c/1")),
        }
    )
    header = Header(
        name="demo",
        version=1,
        script="recipes/demo.py",
        entrypoint="demo",
        params={"k": [1, "é"]},
        script_digest=D + "0" * 64,
        entry_digest=D + "1" * 64,
        source="./data",
        snapshot=snapshot,
        splits={name: (split.count, split.digest) for name, split in splits.items()},
    )
    return Lock(header, splits)


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    directory = lock_dir(tmp_path / "locks", "demo", 1)
    assert write_lock(make_lock(), directory)
    return directory


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_round_trip(locked: Path) -> None:
    assert locked.as_posix().endswith("locks/demo/1")
    assert sorted(p.name for p in locked.iterdir()) == [
        "lock.toml",
        "resources.test.jsonl",
        "resources.train.jsonl",
    ]
    lock = read_lock(locked, deep=True)
    assert lock == make_lock()
    assert [r.id for r in lock.resources()] == ["c/1", "a/1", "a/2", "b/1"]  # splits in name order
    assert (locked / "resources.train.jsonl").read_bytes() == b"".join(
        line + b"\n" for line in _lines("a/1", "a/2", "b/1")
    )


def test_same_bytes_are_not_rewritten(locked: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in locked.iterdir()}
    inode = locked.stat().st_ino
    assert same_on_disk(make_lock(), locked)
    assert write_lock(make_lock(), locked) is False
    assert {p.name: p.stat().st_mtime_ns for p in locked.iterdir()} == before
    assert locked.stat().st_ino == inode


def test_a_changed_lock_replaces_the_old_one_whole(locked: Path) -> None:
    new = make_lock({"all": Split.from_lines(_lines("z"))})
    assert not same_on_disk(new, locked)
    assert write_lock(new, locked) is True
    assert sorted(p.name for p in locked.iterdir()) == ["lock.toml", "resources.all.jsonl"]
    assert read_lock(locked) == new
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]


class _Exploding(list[bytes]):
    def __iter__(self) -> Iterator[bytes]:
        yield b"partial line"
        raise OSError("disk full")


def test_a_failed_split_write_leaves_the_previous_lock(locked: Path) -> None:
    before = _snapshot(locked.parent)
    broken = Split(_Exploding(), 1, D + "9" * 64)
    with pytest.raises(
        LockError, match=r"resources\.train\.jsonl: cannot write the lock of demo@1: disk full"
    ):
        write_lock(make_lock({"train": broken}), locked)
    assert _snapshot(locked.parent) == before
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]


def test_a_failed_exchange_leaves_the_previous_lock(locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vxds.locks import store

    def failing(a: str, b: str) -> bool:
        raise OSError("exchange failed")

    before = _snapshot(locked.parent)
    monkeypatch.setattr(store, "exchange", failing)
    with pytest.raises(LockError, match="exchange failed"):
        write_lock(make_lock({"all": Split.from_lines(_lines("z"))}), locked)
    assert _snapshot(locked.parent) == before
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]


def test_a_failed_rename_leaves_the_previous_lock(locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vxds.locks import store

    monkeypatch.setattr(store, "exchange", lambda a, b: False)  # the two-rename swap
    before = _snapshot(locked.parent)
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src).name.startswith(".1.tmp-"):
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(LockError, match="rename failed"):
        write_lock(make_lock({"all": Split.from_lines(_lines("z"))}), locked)
    assert _snapshot(locked.parent) == before
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]


def test_a_failed_first_write_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "locks" / "demo" / "1"
    with pytest.raises(LockError):
        write_lock(make_lock({"train": Split(_Exploding(), 1, D + "9" * 64)}), directory)
    assert list(directory.parent.iterdir()) == []


def test_write_lock_recovers_before_comparing(locked: Path) -> None:
    os.replace(locked, locked.parent / ".1.old-4242")
    assert write_lock(make_lock(), locked) is False
    assert read_lock(locked) == make_lock()
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]


def test_write_splits(tmp_path: Path) -> None:
    lock = make_lock()
    written, removed = write_splits(lock.splits, tmp_path / "out")
    assert [p.name for p in written] == ["resources.test.jsonl", "resources.train.jsonl"]
    assert removed == []
    assert (tmp_path / "out" / "resources.test.jsonl").read_bytes() == _lines("c/1")[0] + b"\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "resources.test.jsonl",
        "resources.train.jsonl",
    ]


# --- reading corrupt locks ---------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _problems(directory: Path, *, deep: bool = False) -> list[str]:
    with pytest.raises(CorruptLock) as info:
        read_lock(directory, deep=deep)
    assert str(directory) in str(info.value)
    if not deep:  # the streaming check finds exactly the same problems
        with pytest.raises(CorruptLock) as streamed:
            check_lock(directory)
        assert streamed.value.problems == info.value.problems
    return info.value.problems


def test_missing_lock(tmp_path: Path) -> None:
    with pytest.raises(LockError, match=r"no lock\.toml; the lock is missing"):
        read_lock(tmp_path)


def test_bad_toml(locked: Path) -> None:
    (locked / "lock.toml").write_text("format = = 1\n")
    assert _problems(locked)[0].startswith("lock.toml is not valid TOML")


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("format = 2\n", "", "lock.toml has no 'format'; this vxds reads formats 1 and 2"),
        ("format = 2\n", "format = 3\n", "lock.toml has format 3; this vxds reads formats 1 and 2"),
        ("format = 2\n", 'format = "2"\n', "lock.toml has format '2'; this vxds reads formats 1 and 2"),
    ],
)
def test_unknown_or_missing_format(locked: Path, old: str, new: str, words: str) -> None:
    _edit(locked / "lock.toml", old, new)
    assert _problems(locked) == [words]


@pytest.mark.parametrize("value", ["true", "1.0"])
def test_format_must_be_an_integer(locked: Path, value: str) -> None:
    _edit(locked / "lock.toml", "format = 2\n", f"format = {value}\n")
    assert "format" in " ".join(_problems(locked))


def test_missing_header_fields_are_all_listed(locked: Path) -> None:
    text = (locked / "lock.toml").read_text()
    (locked / "lock.toml").write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith(("name =", "snapshot ="))) + "\n"
    )
    assert _problems(locked) == [
        "lock.toml: 'dataset.name' is missing or not a str",
        "lock.toml: 'source.snapshot' is missing or not a str",
    ]


def _drop_tables(text: str, name: str) -> str:
    """``text`` without the ``[name]`` and ``[name.*]`` tables."""
    return re.sub(rf"\n\[{name}(\.[a-z]+)?\]\n(.+\n)*", "\n", text)


@pytest.mark.parametrize(
    ("table", "line"),
    [("splits", "splits = 5"), ("splits", "splits = [1]"), ("recipe", "recipe = 5")],
)
def test_non_table_sections_are_reported(locked: Path, table: str, line: str) -> None:
    text = _drop_tables((locked / "lock.toml").read_text(), table)
    assert f"[{table}" not in text
    (locked / "lock.toml").write_text(text.replace("format = 2\n", f"format = 2\n{line}\n", 1))
    assert _problems(locked)


def test_split_digest_mismatch(locked: Path) -> None:
    path = locked / "resources.train.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"a/1"', b'"a/0"'))
    assert _problems(locked) == ["resources.train.jsonl does not match its digest"]


def test_count_mismatch(locked: Path) -> None:
    _edit(locked / "lock.toml", "count = 3", "count = 4")
    assert _problems(locked) == [
        "the lock digest does not match the header",
        "resources.train.jsonl has 3 lines, lock.toml says 4",
    ]


def test_lock_digest_mismatch(locked: Path) -> None:
    _edit(locked / "lock.toml", 'url = "./data"', 'url = "./other"')
    assert _problems(locked) == ["the lock digest does not match the header"]


def test_recipe_digest_mismatch(locked: Path) -> None:
    text = (locked / "lock.toml").read_text()
    claimed = make_lock().header.recipe_digest
    (locked / "lock.toml").write_text(text.replace(claimed, D + "7" * 64))
    assert _problems(locked)


def test_extra_and_missing_split_files(locked: Path) -> None:
    (locked / "resources.extra.jsonl").write_bytes(b"")
    (locked / "resources.test.jsonl").unlink()
    (locked / "notes.txt").write_text("ignored")
    assert _problems(locked) == [
        "resources.extra.jsonl is not listed in lock.toml",
        "resources.test.jsonl is missing",
    ]


def test_missing_final_newline(locked: Path) -> None:
    path = locked / "resources.test.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    problems = _problems(locked)
    assert "resources.test.jsonl does not end with a newline" in problems


def _raw_lock(directory: Path, data: bytes) -> None:
    split = Split.from_bytes(data)
    assert write_lock(make_lock({"train": split}), directory)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{not json\n", "resources.train.jsonl:1: "),
        (b'{"id": "a", "version": 1}\n', "resources.train.jsonl:1: line is not in canonical form"),
        (
            b'{"id":"/abs","version":1}\n',
            "resources.train.jsonl:1: id '/abs' must be a relative path",
        ),
    ],
)
def test_deep_line_problems(tmp_path: Path, data: bytes, problem: str) -> None:
    _raw_lock(tmp_path / "lock", data)
    assert read_lock(tmp_path / "lock").splits["train"].count == 1  # digests alone do not see it
    problems = _problems(tmp_path / "lock", deep=True)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_deep_order_and_duplicates(tmp_path: Path) -> None:
    b, a = _lines("b")[0], _lines("a")[0]
    _raw_lock(tmp_path / "lock", b"\n".join([b, a, a]) + b"\n")
    assert _problems(tmp_path / "lock", deep=True) == [
        "resources.train.jsonl:2: id 'a' is out of order",
        "resources.train.jsonl:3: id 'a' repeats",
    ]


def test_a_relock_swaps_the_folders_in_one_step_where_linux_can(
    locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """renameat2(RENAME_EXCHANGE): the old lock is never renamed away first, so a reader
    never finds ``locks/demo/1`` missing (the two-rename swap had an instant without it)."""
    import sys

    from vxds.locks import store

    if not sys.platform.startswith("linux"):
        pytest.fail("this test needs Linux, as vxds' CI runs")
    swaps: list[tuple[str, str]] = []
    exchange = store.exchange

    def spy(a: str, b: str) -> bool:
        swaps.append((a, b))
        done = exchange(a, b)
        assert done
        assert (Path(b) / "lock.toml").is_file()  # the new lock, at once in place
        return done

    real_replace = os.replace

    def no_rename(src: str, dst: str) -> None:
        if locked in (Path(src), Path(dst)):  # files inside the new folder are renamed as ever
            raise AssertionError(f"renamed {src} -> {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(store, "exchange", spy)
    monkeypatch.setattr(store.os, "replace", no_rename)
    new = make_lock({"all": Split.from_lines(_lines("z"))})
    assert write_lock(new, locked)
    assert [Path(b) for _, b in swaps] == [locked]
    monkeypatch.undo()
    assert read_lock(locked, deep=True) == new
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]  # the old lock removed


def test_without_an_exchange_the_lock_is_swapped_by_two_renames(
    locked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.locks import store

    monkeypatch.setattr(store, "exchange", lambda a, b: False)
    new = make_lock({"all": Split.from_lines(_lines("z"))})
    assert write_lock(new, locked)
    assert read_lock(locked, deep=True) == new
    assert sorted(p.name for p in locked.parent.iterdir()) == ["1"]
