"""Hostile source trees (issue 10, items 4, 6, 9, 13 and 15), through the real CLI.

A source folder is untrusted input: it may hold links leading out of it, names no id can
carry, files a writer changes while they are hashed, and files no one can read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from click.testing import CliRunner, Result

import vxds.filehash
from vxds.cli.main import cli
from vxds.hashing import digest_bytes

RECIPE = """\
import vxds


@vxds.recipe()
def every(client):
    return {"train": list(client.query())}
"""

SECRET = b"root:x:0:0:the secret outside the source\n"

Run = Callable[..., Result]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project whose one dataset, ``every``, locks every resource of ``./data``."""
    project = tmp_path / "project"
    (project / "recipes").mkdir(parents=True)
    (project / "data" / "sub-01").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (project / "datasets.yaml").write_text(
        "- name: every\n  version: 1\n  script_location: ./recipes/every.py\n"
    )
    (project / "recipes" / "every.py").write_text(RECIPE)
    (project / "data" / "a.txt").write_bytes(b"plain a\n")
    (project / "data" / "sub-01" / "b.txt").write_bytes(b"plain b\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return project


@pytest.fixture
def run(root: Path) -> Run:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)

    return invoke


def _locked(root: Path) -> dict[str, dict[str, Any]]:
    path = root / "locks" / "every" / "1" / "resources.train.jsonl"
    return {record["id"]: record for record in map(json.loads, path.read_text().splitlines())}


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


# --- item 4: links that lead out of the source --------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "../../secret.txt",  # relative, as `ln -s ../../../../etc/passwd data/rel_link.txt`
        "SECRET_ABSOLUTE",  # the same file by absolute path
        "/proc/self/environ",  # the environment of whoever runs vxds
    ],
)
def test_lock_refuses_a_link_leading_outside_the_source(root: Path, run: Run, target: str) -> None:
    if target == "SECRET_ABSOLUTE":
        target = str(root.parent / "secret.txt")
    (root / "data" / "rel_link.txt").symlink_to(target)
    line = _one_error_line(run("lock", "--all"))
    assert "source './data'" in line
    assert "'rel_link.txt'" in line
    assert "outside the source folder" in line
    assert not (root / "locks").exists()
    assert "root:x" not in line


def test_lock_refuses_such_a_link_in_a_subfolder_and_in_a_dicom_series(root: Path, run: Run) -> None:
    series = root / "data" / "sub-01" / "dicom"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"DICM one")
    (series / "2.dcm").symlink_to(root.parent / "secret.txt")
    (root / "data" / "sub-01" / "leak.txt").symlink_to("../../../secret.txt")
    line = _one_error_line(run("lock", "--all"))
    assert "cannot lock 2 files" in line
    assert "'sub-01/dicom/2.dcm'" in line
    assert "'sub-01/leak.txt'" in line
    assert not (root / "locks").exists()


def test_links_that_stay_inside_the_source_are_locked_as_their_target(root: Path, run: Run) -> None:
    (root / "data" / "alias.txt").symlink_to("sub-01/b.txt")
    (root / "data" / "sub-01" / "up.txt").symlink_to("../a.txt")
    result = run("lock", "--all")
    assert result.exit_code == 0, result.output
    locked = _locked(root)
    assert locked["alias.txt"]["hash"] == digest_bytes(b"plain b\n")
    assert locked["sub-01/up.txt"]["hash"] == digest_bytes(b"plain a\n")


def test_catalog_ingest_refuses_a_link_leading_outside(root: Path, run: Run) -> None:
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "catalog:catalog.db"\n')
    assert run("catalog", "init").exit_code == 0
    (root / "data" / "rel_link.txt").symlink_to("../../secret.txt")
    line = _one_error_line(run("catalog", "ingest", str(root / "data")))
    assert "'rel_link.txt'" in line
    assert "outside the source folder" in line
    with sqlite3.connect(root / "catalog.db") as db:
        assert db.execute("SELECT COUNT(*) FROM versions").fetchone() == (0,)
    stored = [p for p in (root / "catalog.objects").rglob("*") if p.is_file() and p.name != ".ingest.lock"]
    assert not stored  # nothing was copied into the store (the ingest lock file aside)


@pytest.fixture
def repointed(root: Path, run: Run) -> Path:
    """A lock made while ``data/alias.txt`` led inside; then it is made to lead outside, to a
    file with the very bytes the lock records (so no hash check can catch it)."""
    (root / "data" / "inner.txt").write_bytes(SECRET)
    (root / "data" / "alias.txt").symlink_to("inner.txt")
    assert run("lock", "--all").exit_code == 0
    (root / "data" / "alias.txt").unlink()
    (root / "data" / "alias.txt").symlink_to("../../secret.txt")
    return root


def test_materialize_does_not_read_through_a_link_now_leading_outside(repointed: Path, run: Run) -> None:
    out = repointed.parent / "out"
    result = run("materialize", "every", "-o", str(out), "-m", "files")
    assert result.exit_code == 1, result.output
    assert "alias.txt" in result.output
    assert "outside the source folder" in result.output
    assert not (out / "train" / "alias.txt").exists()
    assert (out / "train" / "inner.txt").read_bytes() == SECRET  # the same bytes from inside are fine


def test_verify_data_does_not_read_through_a_link_now_leading_outside(repointed: Path, run: Run) -> None:
    result = run("verify", "--data", "--no-cache")
    assert result.exit_code == 1, result.output
    assert "VX505" in result.output
    assert "alias.txt" in result.output


# --- items 6 and 15: names no resource id can carry ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (os.fsdecode(b"bad\xff\xfe.txt"), r"b'bad\xff\xfe.txt'"),
        ("new\nline.txt", r"'new\nline.txt'"),
        ("back\\slash.txt", r"'back\\slash.txt'"),
        ("C:evil.txt", "'C:evil.txt'"),
    ],
)
def test_lock_names_the_file_whose_name_cannot_be_an_id(root: Path, run: Run, name: str, shown: str) -> None:
    (root / "data" / name).write_bytes(b"x")
    line = _one_error_line(run("lock", "--all"))
    assert "source './data'" in line
    assert shown in line
    assert "recipe's output" not in line
    assert not (root / "locks").exists()


def test_a_folder_with_such_a_name_is_named_once(root: Path, run: Run) -> None:
    folder = root / "data" / os.fsdecode(b"sub-\xff")
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.txt").write_bytes(b"x")
    line = _one_error_line(run("lock", "--all"))
    assert r"folder b'sub-\xff'" in line
    assert "0.txt" not in line


def test_catalog_ingest_names_a_file_with_an_invalid_utf8_name(root: Path, run: Run) -> None:
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "catalog:catalog.db"\n')
    assert run("catalog", "init").exit_code == 0
    (root / "data" / os.fsdecode(b"bad\xff\xfe.txt")).write_bytes(b"x")
    line = _one_error_line(run("catalog", "ingest", str(root / "data")))
    assert r"b'bad\xff\xfe.txt'" in line


# --- item 9: a file that changes while it is hashed ---------------------------------------------

OLD = b"a" * 4096
NEW = b"b" * 4097  # a writer's new content (a size of its own, so every stat sees the change)


@pytest.fixture
def writer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path, int], list[int]]]:
    """``writer(path, times)``: a writer that rewrites ``path`` while its bytes are being hashed.

    vxds hashes files with ``vxds.filehash.blake3``; this one lets the writer in just after the
    file's bytes reach the hasher, the first ``times`` times (each time flipping the file
    between ``OLD`` and ``NEW``). It returns the list of writes made so far.
    """
    real = blake3
    armed: dict[str, Any] = {}

    def after(data: bytes | None, path: str | None) -> None:
        victim: Path | None = armed.get("path")
        if victim is None or len(armed["writes"]) >= armed["times"]:
            return
        if path == str(victim) or (data is not None and bytes(data) in (OLD, NEW)):
            content = NEW if victim.read_bytes() == OLD else OLD
            with open(victim, "r+b") as fh:  # in place, as the writer did
                fh.write(content)
                fh.truncate(len(content))
            armed["writes"].append(len(content))

    class Hasher:
        AUTO = real.AUTO

        def __init__(self, data: bytes = b"", **kwargs: Any) -> None:
            self._hasher = real(**kwargs)
            if data:
                self.update(data)

        def update(self, data: Any) -> Hasher:
            self._hasher.update(data)
            after(data, None)
            return self

        def update_mmap(self, path: str) -> Hasher:
            self._hasher.update_mmap(path)
            after(None, os.fspath(path))
            return self

        def hexdigest(self) -> str:
            return str(self._hasher.hexdigest())

    monkeypatch.setattr(vxds.filehash, "blake3", Hasher)

    def arm(path: Path, times: int) -> list[int]:
        path.write_bytes(OLD)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))  # written long ago
        armed.update(path=path, times=times, writes=[])
        return armed["writes"]

    return arm


def test_lock_rehashes_a_file_written_while_it_was_hashed(root: Path, run: Run, writer: Any) -> None:
    writes = writer(root / "data" / "victim.txt", 1)
    result = run("lock", "--all")
    assert result.exit_code == 0, result.output
    assert writes == [len(NEW)]
    record = _locked(root)["victim.txt"]
    assert (root / "data" / "victim.txt").read_bytes() == NEW
    assert (record["hash"], record["size"]) == (digest_bytes(NEW), len(NEW))


def test_lock_refuses_a_file_that_keeps_changing(root: Path, run: Run, writer: Any) -> None:
    writes = writer(root / "data" / "victim.txt", 1000)
    line = _one_error_line(run("lock", "--all"))
    assert "victim.txt" in line
    assert "changed while it was read" in line
    assert 2 <= len(writes) <= 5  # a few attempts, not forever
    assert not (root / "locks").exists()


def test_catalog_ingest_records_what_the_file_holds(root: Path, run: Run, writer: Any) -> None:
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "catalog:catalog.db"\n')
    assert run("catalog", "init").exit_code == 0
    writer(root / "data" / "victim.txt", 1)
    result = run("catalog", "ingest", str(root / "data"))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(root / "catalog.db") as db:
        row = db.execute("SELECT hash, size FROM versions WHERE id = 'victim.txt'").fetchone()
    assert tuple(row) == (digest_bytes(NEW), len(NEW))


def test_verify_data_reports_a_file_that_keeps_changing(root: Path, run: Run, writer: Any) -> None:
    (root / "data" / "victim.txt").write_bytes(OLD)
    assert run("lock", "--all").exit_code == 0
    writer(root / "data" / "victim.txt", 1000)
    result = run("verify", "--data", "--no-cache")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "victim.txt" in result.output
    assert "changed while it was read" in result.output


# --- item 13: a source file no one can read -----------------------------------------------------


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (reading a FIFO waits for a writer that never comes)."""

    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _unreadable(path: Path, kind: str) -> Iterator[None]:
    """Put something at ``path`` that stats as an empty file's size (0) but cannot be read as
    one, whoever runs the test (root reads a chmod 000 file)."""
    path.unlink()
    if kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
            yield
    else:
        os.mkfifo(path)  # reading it would wait forever for a writer
        yield


@pytest.mark.parametrize("kind", ["socket", "fifo"])
def test_verify_data_reports_an_unreadable_file_and_goes_on(root: Path, run: Run, kind: str) -> None:
    (root / "data" / "empty.txt").write_bytes(b"")
    assert run("lock", "--all").exit_code == 0
    (root / "data" / "a.txt").write_bytes(b"changed a\n")  # a finding after the unreadable one
    with _unreadable(root / "data" / "empty.txt", kind), _deadline(20):
        result = run("verify", "--data", "--no-cache")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "empty.txt" in result.output
    assert "not a regular file" in result.output
    assert "a.txt: changed in the source" in result.output


def test_lock_survives_a_real_writer_truncating_and_rewriting_a_large_file(root: Path) -> None:
    """A writer's loop (truncate, then write all-a or all-b) while `vxds lock` hashes the
    file in a process of its own: vxds never dies (a mapped file truncated under it was
    SIGBUS) and never records a digest of bytes the file did not hold at one moment: it
    records one state of the file, or refuses it in one line."""
    size = 24 << 20
    big = root / "data" / "big.bin"
    big.write_bytes(b"a" * size)
    stop = threading.Event()

    def rewrite() -> None:
        flip = 0
        with open(big, "r+b") as fh:
            while not stop.is_set():
                fh.seek(0)
                fh.truncate(0)
                fh.write((b"b" if flip else b"a") * size)
                fh.flush()
                flip ^= 1

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        outcomes = [_vxds(root, "lock", "--all") for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    for process in outcomes:
        assert process.returncode in (0, 2), (process.returncode, process.stderr)
        assert "Traceback" not in process.stderr
        if process.returncode == 2:
            assert process.stderr.count("\n") == 1
            assert "big.bin changed while it was read" in process.stderr
        else:
            # One state the file was in: all-a or all-b, of the size recorded beside it (a
            # read may land between the truncation and the write, on fewer bytes or none).
            record = _locked(root)["big.bin"]
            assert record["hash"] in {digest_bytes(c * record["size"]) for c in (b"a", b"b")}


def _vxds(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``vxds`` entry point in a process of its own."""
    command = [sys.executable, "-c", "from vxds.cli.main import main; main()", *args, "-C", str(root)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_table_keys_no_id_can_hold_fall_back_to_row_numbers(root: Path, run: Run) -> None:
    (root / "data" / "participants.tsv").write_text("id\tx\na\\b\t1\nc\t2\n")  # a record table
    result = run("lock", "--all")
    assert result.exit_code == 0, result.output
    assert {"participants.tsv#row-1", "participants.tsv#row-2"} <= set(_locked(root))


def test_a_flywheel_mirror_never_reads_through_a_link_leading_outside(tmp_path: Path) -> None:
    from tests.flywheel_snapshot import build
    from vxds.errors import SourceError
    from vxds.sources import open_source
    from vxds.sources.base import SourceContext

    t2 = "MS-Lesions/BS01/ses-01/T2w/sub-BS01_ses-01_T2w.nii.gz"
    path = build(tmp_path / "snapshot.db", subjects=1, sessions=1)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the mirror")
    mirror = tmp_path / "mirror"
    (mirror / t2).parent.mkdir(parents=True)
    (mirror / t2).symlink_to(secret)
    opened = open_source(
        f"flywheel:{path.name}", SourceContext(base=tmp_path, options={"flywheel": {"mirror": "mirror"}})
    )
    with pytest.raises(SourceError, match="points outside the mirror"):
        opened.open(opened.get(t2))
