"""Moving one resource's bytes: every size path checks what it places."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from vxds.hashing import digest_bytes
from vxds.locks.verified_read import IntegrityError
from vxds.materialize.transfer import OVERLAP_THRESHOLD, copy_file, copy_stream, link_file
from vxds.resource import Resource


@pytest.mark.parametrize("size", [0, 5000, (1 << 20) + 3, OVERLAP_THRESHOLD + 7])
def test_copy_checks_small_large_and_overlapped_files(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    good = Resource("r", 1, hash=digest_bytes(data), size=size)
    digest, placed, key = copy_file(good, str(src), str(tmp_path / "ok"))
    assert (digest, placed) == (good.hash, size)
    assert (tmp_path / "ok").read_bytes() == data
    assert key == (size, (tmp_path / "ok").stat().st_mtime_ns, (tmp_path / "ok").stat().st_ino)
    bad = Resource("r", 1, hash=digest_bytes(data + b"!"), size=size)
    with pytest.raises(IntegrityError, match="r: content does not match the locked hash"):
        copy_file(bad, str(src), str(tmp_path / "bad"))


def test_another_algorithm_is_checked_while_streaming(tmp_path: Path) -> None:
    data = b"clinical row" * 100
    src = tmp_path / "src"
    src.write_bytes(data)
    md5 = Resource("r", 1, hash="md5:" + hashlib.md5(data).hexdigest())
    digest, _, _ = copy_file(md5, str(src), str(tmp_path / "ok"))
    assert digest == digest_bytes(data)  # the receipt records blake3 whatever the lock used
    with open(src, "rb") as raw, pytest.raises(IntegrityError):
        copy_stream(Resource("r", 1, hash="md5:" + "0" * 32), raw, str(tmp_path / "bad"))


def test_links_use_a_cached_digest_and_refuse_a_wrong_file(tmp_path: Path) -> None:
    data = b"volume"
    src = tmp_path / "src"
    src.write_bytes(data)
    seen = []

    def cached(key: tuple[int, int, int]) -> str | None:
        seen.append(key)
        return digest_bytes(data)

    resource = Resource("r", 1, hash=digest_bytes(data), size=len(data))
    link_file(resource, str(src), str(tmp_path / "hard"), "hardlink", cached)
    assert seen == [(len(data), src.stat().st_mtime_ns, src.stat().st_ino)]
    assert (tmp_path / "hard").stat().st_ino == src.stat().st_ino
    wrong = Resource("r", 1, hash=digest_bytes(b"other"))
    with pytest.raises(IntegrityError):
        link_file(wrong, str(src), str(tmp_path / "soft"), "symlink")
    assert not (tmp_path / "soft").exists()
