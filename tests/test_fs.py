"""vxds/fs/: the one atomic, durable write, the flushes, named writes, and the advisory lock."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from vxds.fs import StagedFile, atomic_write, atomic_write_bytes, exclusive, pid_alive, temp_owner


def test_threads_writing_one_file_never_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        for i in range(150):
            try:
                atomic_write_bytes(target, f"{n} {i}\n".encode() * 50)
            except OSError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(target.read_bytes().splitlines())) == 1  # one writer's whole content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_atomic_write_takes_chunks_and_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, iter([b"a", b"b\n"]))
    assert target.read_bytes() == b"ab\n"
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_names_the_target_and_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def full(self: StagedFile, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(StagedFile, "write", full)
    with pytest.raises(OSError, match="No space left") as info:
        atomic_write(target, b"new")
    assert info.value.filename == str(target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_temporary_names_carry_their_owner(tmp_path: Path) -> None:
    with StagedFile(tmp_path, "blob") as staged:
        assert temp_owner(staged.path.name) == os.getpid()
    assert not staged.path.exists()  # not committed: removed
    assert temp_owner("blob") is None
    assert temp_owner(".x.tmp") is None
    assert pid_alive(os.getpid())
    assert not pid_alive(999_999_999)


def test_exclusive_makes_a_second_holder_wait(tmp_path: Path) -> None:
    guard = tmp_path / "sub" / "g.lock"
    order: list[str] = []
    with exclusive(guard):
        other = threading.Thread(target=lambda: _hold(guard, order))
        other.start()
        other.join(0.3)
        assert other.is_alive()  # waiting for us
        order.append("first")
    other.join(5)
    assert order == ["first", "second"]


def _hold(guard: Path, order: list[str]) -> None:
    with exclusive(guard):
        order.append("second")


def test_a_json_cache_round_trips_and_ignores_what_it_cannot_trust(tmp_path: Path) -> None:
    from vxds.fs import JsonCache

    path = tmp_path / "cache" / "c.json"
    cache = JsonCache(path, 2)
    assert cache.data == {}
    assert not cache.save()
    cache.table("entries")["k"] = [1, "x"]
    cache.mark()
    assert cache.save()
    assert not cache.dirty
    assert JsonCache(path, 2).data == {"entries": {"k": [1, "x"]}}
    assert JsonCache(path, 3).data == {}  # written by another version of the cache
    for damaged in (b"{not json", b"[1, 2]", b'{"version": 2, "entries": 5}'):
        path.write_bytes(damaged)
        assert JsonCache(path, 2).table("entries") == {}
    assert JsonCache(None, 2).data == {}
    assert not JsonCache(None, 2).save()


def test_a_json_cache_that_cannot_be_written_is_only_slower(tmp_path: Path) -> None:
    from vxds.fs import JsonCache

    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    cache = JsonCache(blocked / "c.json", 1)
    cache.mark()
    assert cache.save() is False
    assert cache.dirty


def test_make_dirs_without_a_sync_says_which_folders_it_made(tmp_path: Path) -> None:
    from vxds.fs import make_dirs

    (tmp_path / "a").mkdir()
    assert make_dirs(tmp_path / "a/b/c", sync=False) == [tmp_path / "a/b", tmp_path / "a/b/c"]
    assert (tmp_path / "a/b/c").is_dir()
    assert make_dirs(tmp_path / "a/b/c", sync=False) == []
    assert make_dirs(tmp_path / "a/d") == [tmp_path / "a/d"]


def _files(folder: Path, count: int) -> list[str]:
    folder.mkdir()
    paths = [str(folder / f"f{n}") for n in range(count)]
    for path in paths:
        Path(path).write_bytes(path.encode())
    return paths


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import vxds.fs.flush

    calls: list[int] = []
    real = os.fsync

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(vxds.fs.flush.os, "fsync", counted)
    return calls


def test_a_few_files_are_fsynced_each_and_many_by_one_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from vxds.fs import SYNC_EACH_MAX, sync_files, sync_folders

    calls = _count_fsyncs(monkeypatch)
    few = _files(tmp_path / "few", 3)
    sync_files(few)
    assert len(calls) == 3
    sync_folders([str(tmp_path / "few"), str(tmp_path), str(tmp_path / "few")])
    assert len(calls) == 5  # each folder once
    many = _files(tmp_path / "many", SYNC_EACH_MAX + 1)
    del calls[:]
    sync_files(many)
    assert len(calls) == (0 if sys.platform.startswith("linux") else SYNC_EACH_MAX + 1)


def test_without_syncfs_many_files_are_fsynced_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vxds.fs.flush
    from vxds.fs import SYNC_EACH_MAX, sync_files, sync_folders

    monkeypatch.setattr(vxds.fs.flush, "_linux_call", lambda name: None)
    calls = _count_fsyncs(monkeypatch)
    sync_files(_files(tmp_path / "many", SYNC_EACH_MAX + 5))
    assert len(calls) == SYNC_EACH_MAX + 5
    folders = [tmp_path / f"d{n}" for n in range(SYNC_EACH_MAX + 1)]
    for folder in folders:
        folder.mkdir()
    sync_folders(map(str, folders))
    assert len(calls) == 2 * SYNC_EACH_MAX + 6


@pytest.mark.parametrize("renameat2", [True, False])
def test_rename_new_never_replaces_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renameat2: bool
) -> None:
    import vxds.fs.flush
    from vxds.fs import rename_new

    if not renameat2:  # another system, or an old C library: a link and an unlink
        monkeypatch.setattr(vxds.fs.flush, "_linux_call", lambda name: None)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    rename_new(str(src), str(dst))
    assert not src.exists()
    assert dst.read_bytes() == b"new"
    src.write_bytes(b"other")
    with pytest.raises(FileExistsError):
        rename_new(str(src), str(dst))
    assert src.read_bytes() == b"other"
    assert dst.read_bytes() == b"new"
    with pytest.raises(FileNotFoundError):
        rename_new(str(tmp_path / "gone"), str(tmp_path / "to"))


def _no_space(*args: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_during_a_buffered_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.fs import JsonCache

    target = tmp_path / "f"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "write", _no_space)
    with pytest.raises(OSError, match="No space left") as info:
        atomic_write(target, [b"x"] * 10)  # held in the buffer until the commit's flush
    assert (info.value.filename, info.value.filename2) == (str(target), None)
    assert target.read_bytes() == b"old"
    cache = JsonCache(tmp_path / "c.json", 1)
    cache.mark()
    assert cache.save() is False
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_a_staged_file_names_its_target_never_its_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _no_space)
    with StagedFile(tmp_path, "blob") as staged:
        staged.write(b"bytes")
        with pytest.raises(OSError, match="No space left") as info:
            staged.commit(tmp_path / "ab" / "cdef")
    assert (info.value.filename, info.value.filename2) == (str(tmp_path / "ab" / "cdef"), None)
    monkeypatch.setattr(os, "write", _no_space)
    with pytest.raises(OSError, match="No space left") as info, StagedFile(tmp_path, "blob") as out:
        out.write(b"x" * (1 << 20))  # larger than the buffer: written at once
    assert info.value.filename == str(tmp_path / "blob")
    assert os.listdir(tmp_path) == []


def test_a_scratch_file_names_itself_in_every_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.fs.writer import create

    path = tmp_path / "run.train.0"
    with create(path) as out:
        out.writelines([b"a\n", b"b\n"])
    assert path.read_bytes() == b"a\nb\n"
    monkeypatch.setattr(os, "write", _no_space)
    out = create(path)
    out.write(b"held")
    with pytest.raises(OSError, match="No space left") as info:
        out.close()  # the flush of what was held
    assert info.value.filename == str(path)
    assert out.closed
    with pytest.raises(OSError, match="No space left") as info, create(path) as out:
        out.write(b"x" * (4 << 20))
    assert info.value.filename == str(path)


def test_a_failed_flush_names_the_file_or_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vxds.fs import fsync_dir, fsync_file

    (tmp_path / "f").write_bytes(b"x")
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(OSError, match="No space left") as info:
        fsync_file(tmp_path / "f")
    assert info.value.filename == str(tmp_path / "f")
    with pytest.raises(OSError, match="No space left") as info:
        fsync_dir(tmp_path)
    assert info.value.filename == str(tmp_path)


_KERNEL_LIMIT = """\
import os, resource, sys
from pathlib import Path
from vxds.fs import atomic_write
resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))
target = Path(sys.argv[1]) / "big"
try:
    atomic_write(target, [b"x" * 1000] * 200)
except OSError as exc:
    print(exc.filename, exc.strerror, sorted(os.listdir(target.parent)))
"""


def test_a_write_the_kernel_refuses_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A real process over its file size limit (Python ignores SIGXFSZ: the write is EFBIG),
    however the bytes are written."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _KERNEL_LIMIT, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"{tmp_path / 'big'} File too large []\n", done.stderr


def test_exchange_swaps_two_folders_in_one_step(tmp_path: Path) -> None:
    import sys

    from vxds.fs import exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_text("from a")
    (b / "f").write_text("from b")
    assert exchange(str(a), str(b)) is sys.platform.startswith("linux")
    if sys.platform.startswith("linux"):
        assert ((a / "f").read_text(), (b / "f").read_text()) == ("from b", "from a")


def test_exchange_says_false_where_there_is_no_renameat2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.fs import exchange, flush

    monkeypatch.setattr(flush, "_linux_call", lambda name: None)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert exchange(str(tmp_path / "a"), str(tmp_path / "b")) is False


def test_exchange_of_a_missing_name_is_an_error_naming_it(tmp_path: Path) -> None:
    import sys

    from vxds.fs import exchange

    if not sys.platform.startswith("linux"):
        pytest.fail("this test needs Linux, as vxds' CI runs")
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError) as caught:
        exchange(str(tmp_path / "a"), str(tmp_path / "missing"))
    assert str(tmp_path / "a") in str(caught.value)
