"""cli/early.py: the list of large files kept in .vxds/prefetch, and the hasher forked from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vxds.cli import early
from vxds.hashing import hash_file_key

names = st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), min_size=1)


@given(
    specs=st.lists(names.filter(lambda s: "\x1f" not in s), max_size=3),
    listed=st.lists(st.tuples(names, names)),
)
def test_a_hint_reads_back_as_it_was_written_for_its_own_specs_only(
    specs: list[str], listed: list[tuple[str, str]]
) -> None:
    data = early.hint_bytes(tuple(specs), listed)
    assert early.read_hint(data, tuple(specs)) == listed
    assert early.read_hint(data, (*specs, "other")) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"vxds-prefetch 2\0\0/a\0/a/b", b"vxds-prefetch 1\0\0/a", b"garbage", b"vxds-prefetch 1"],
)
def test_a_hint_of_another_shape_is_none(data: bytes) -> None:
    assert early.read_hint(data, ()) is None


def test_a_name_that_is_not_utf8_survives_the_hint(tmp_path: Path) -> None:
    odd = os.fsdecode(b"/data/\xff\nline.bin")
    data = early.hint_bytes((), [("/data", odd)])
    assert early.read_hint(data, ()) == [("/data", odd)]


def _digests(hasher: early.Hasher) -> list[bytes]:
    with open(hasher.fd, "rb") as pipe:
        lines = pipe.read().splitlines(keepends=True)
    os.waitpid(hasher.pid, 0)
    assert lines[-1] == early.DONE
    return lines[:-1]


def test_the_child_hashes_a_listed_file_with_the_stat_it_had(tmp_path: Path) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    big = folder / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    os.utime(big, ns=(10**18, 10**18))  # long past: one read
    lines = _digests(early.fork_hasher([str(big)], [str(folder)]))
    digest, (size, mtime, inode) = hash_file_key(big)
    assert lines == [f"0 {digest} {size} {mtime} {inode}\n".encode()]


def test_the_child_skips_a_listed_path_that_now_leads_out_of_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"secret")
    (folder / "moved.bin").symlink_to(tmp_path / "outside.bin")
    os.mkfifo(folder / "fifo")  # inside, but no regular file: never opened for reading
    (folder / "gone.bin").write_bytes(b"x")
    (folder / "gone.bin").unlink()
    paths = [str(folder / name) for name in ("moved.bin", "fifo", "gone.bin")]
    assert _digests(early.fork_hasher(paths, [str(folder)] * 3)) == []


def _alive(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def test_start_forks_for_a_hint_and_stop_ends_a_child_nobody_took(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    big = folder / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    (tmp_path / ".vxds").mkdir()
    (tmp_path / ".vxds" / early.HINT).write_bytes(early.hint_bytes(("ds",), [(str(folder), str(big))] * 200))
    early.start(str(tmp_path), ["ds"])
    started = early._early
    assert started is not None
    assert started.root == os.path.realpath(tmp_path)
    assert started.hasher is not None
    early.stop()
    assert early._early is None
    assert not _alive(started.hasher.pid)


def test_start_forks_nothing_without_a_hint_for_these_specs(tmp_path: Path) -> None:
    early.start(str(tmp_path), [])
    started = early.take()
    assert started is not None
    assert (started.hint, started.hasher) == (None, None)
    (tmp_path / ".vxds").mkdir()
    (tmp_path / ".vxds" / early.HINT).write_bytes(early.hint_bytes(("other",), [("/a", "/a/b")]))
    early.start(str(tmp_path), [])
    started = early.take()
    assert started is not None
    assert started.hint is not None
    assert started.hasher is None


def test_a_child_forked_for_another_root_is_stopped_when_the_command_starts_its_own(tmp_path: Path) -> None:
    from vxds.cli import prefetch

    first, other = tmp_path / "first", tmp_path / "other"
    for root in (first, other):
        (root / "locks").mkdir(parents=True)
    big = first / "big.bin"
    big.write_bytes(os.urandom(1 << 20))
    (first / ".vxds").mkdir()
    (first / ".vxds" / early.HINT).write_bytes(early.hint_bytes((), [(str(first), str(big))] * 200))
    early.start(str(first), [])
    started = early._early
    assert started is not None
    assert started.hasher is not None
    ahead = prefetch.start(other, other / "locks", None, [])  # the configuration named another root
    assert ahead._child is None  # no large files there: nothing to hash
    assert not _alive(started.hasher.pid)
