"""Attacks on the write paths of ``vxds lock`` and ``vxds catalog ingest``: kill -9 in the
middle of a write, two runs at once, a full disk, a crashed machine (fsync), stale outputs.

Real processes of the ``vxds`` entry point where a real process is the point (a kill, a race);
click's ``CliRunner`` elsewhere.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vxds.cli.main import cli
from vxds.locks.store import read_lock

VXDS = str(Path(sys.executable).with_name("vxds"))

# A recipe whose size and content are set from the environment, so one test can make a write
# long enough to kill, and another can tell two writers apart and see when one has run.
BIG_RECIPE = """\
import os
import pathlib

import vxds


@vxds.recipe()
def big(client):
    n = int(os.environ.get("VXDS_TEST_N", "3"))
    tag = os.environ.get("VXDS_TEST_TAG", "")
    if "VXDS_TEST_MARK" in os.environ:  # the recipe has run: the process goes on to write
        pathlib.Path(os.environ["VXDS_TEST_MARK"]).touch()
    pad = "x" * 200
    items = [{"id": f"r/{i:07d}", "version": 1, "attrs": {"tag": tag, "pad": pad}} for i in range(n)]
    return {"train": items[: n // 2], "test": items[n // 2 :]}
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    (root / "recipes").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("a\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (root / "datasets.yaml").write_text("- name: big\n  version: 1\n  script_location: ./recipes/big.py\n")
    (root / "recipes" / "big.py").write_text(BIG_RECIPE)
    (root / ".gitignore").write_text(".vxds/\n")
    monkeypatch.chdir(root)
    return root


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_vxds(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VXDS, *args], cwd=root, capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


def _temps(folder: Path, prefix: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(folder) if name.startswith(prefix))
    except FileNotFoundError:
        return []


def _kill_when(cmd: list[str], root: Path, ready: Callable[[], bool], env: dict[str, str]) -> bool:
    """Run ``cmd``; kill -9 it as soon as ``ready()``. True when it was killed that way."""
    process = subprocess.Popen(
        cmd, cwd=root, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while process.poll() is None:
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.0005)
        return False
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()  # reaped: its pid is gone, not a zombie


# --- item 11: what a killed lock leaves behind ------------------------------------------


def test_a_lock_killed_mid_write_leaves_a_temp_folder_verify_reports_and_lock_removes(proj: Path) -> None:
    assert run_vxds(proj, "lock", "big").returncode == 0
    parent = proj / "locks" / "big"
    before = read_lock(parent / "1")
    for _ in range(20):  # a kill lands in the write almost every time; retry when it missed
        if _kill_when(
            [VXDS, "lock", "big"], proj, lambda: bool(_temps(parent, ".1.tmp-")), {"VXDS_TEST_N": "300000"}
        ) and _temps(parent, ".1.tmp-"):
            break
    leftovers = _temps(parent, ".1.tmp-")
    assert leftovers, "no kill landed while the lock was being written"
    assert read_lock(parent / "1") == before  # the previous lock is untouched

    result = invoke("verify", "--no-exec")
    assert f"VX206 locks/big/{leftovers[0]}" in result.output
    assert "left over from a 'vxds lock' that was killed" in result.output

    assert run_vxds(proj, "lock", "big").returncode == 0  # unchanged lock: the leftover still goes
    assert sorted(os.listdir(parent)) == ["1"]
    assert "VX206" not in invoke("verify", "--no-exec").output


def test_a_set_aside_lock_of_a_dead_process_is_removed_once_a_newer_lock_exists(proj: Path) -> None:
    """Killed after its second rename: ``.1.old-PID`` beside a complete lock."""
    assert invoke("lock", "big").exit_code == 0
    parent = proj / "locks" / "big"
    old = parent / ".1.old-999999999"  # beyond any pid_max: its process is gone
    old.mkdir()
    (old / "lock.toml").write_text("stale\n")
    result = invoke("verify", "--no-exec")
    assert "VX206 locks/big/.1.old-999999999" in result.output
    assert invoke("lock", "big").exit_code == 0
    assert sorted(os.listdir(parent)) == ["1"]


def test_a_temp_folder_of_a_live_writer_is_left_alone(proj: Path) -> None:
    assert invoke("lock", "big").exit_code == 0
    parent = proj / "locks" / "big"
    live = parent / f".1.tmp-{os.getppid()}-0a1b2c3d"  # pytest's parent: alive, not vxds
    live.mkdir()
    os.utime(live, (time.time() + 60, time.time() + 60))  # newer than the lock
    assert "VX206" not in invoke("verify", "--no-exec").output
    assert invoke("lock", "big").exit_code == 0
    assert live.is_dir()


def test_a_second_lock_waits_while_the_first_writes(proj: Path, tmp_path: Path) -> None:
    """The first ``vxds lock`` is stopped (SIGSTOP) in the middle of its write; a second one
    of the same dataset runs its recipe, then waits instead of writing past it."""
    assert run_vxds(proj, "lock", "big").returncode == 0
    parent = proj / "locks" / "big"
    first = subprocess.Popen(
        [VXDS, "lock", "big"], cwd=proj, env={**os.environ, "VXDS_TEST_N": "300000", "VXDS_TEST_TAG": "first"}
    )
    mark = tmp_path / "second-ran"
    second: subprocess.Popen[bytes] | None = None
    try:
        while not _temps(parent, ".1.tmp-"):
            assert first.poll() is None, "the first lock finished before it could be stopped"
            time.sleep(0.0005)
        first.send_signal(signal.SIGSTOP)
        env = {**os.environ, "VXDS_TEST_TAG": "second", "VXDS_TEST_MARK": str(mark)}
        second = subprocess.Popen([VXDS, "lock", "big"], cwd=proj, env=env)
        deadline = time.monotonic() + 60
        while not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert mark.exists()
        time.sleep(2)  # ample for a lock of 3 resources to be written
        assert second.poll() is None, "the second lock wrote while the first was writing"
    finally:
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=120) == 0
        if second is not None:
            assert second.wait(timeout=120) == 0
    tags = {r.attrs["tag"] for r in read_lock(parent / "1", deep=True).resources()}
    assert tags == {"second"}  # it waited, then wrote last
    assert sorted(os.listdir(parent)) == ["1"]


# --- item 12: a full disk names the file and the dataset ---------------------------------


def test_a_full_disk_names_the_file_and_the_dataset(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("lock", "big").exit_code == 0
    parent = proj / "locks" / "big"
    before = {p.name: p.read_bytes() for p in (parent / "1").iterdir()}
    import vxds.fs

    real_write = vxds.fs.StagedFile.write

    def full(self: vxds.fs.StagedFile, data: bytes) -> None:
        if self.path.parent.name.startswith(".1.tmp-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, data)

    real_link = os.link

    def no_room(source: Path, target: Path, **kwargs: bool) -> None:  # a full disk refuses links too
        if Path(target).parent.name.startswith(".1.tmp-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_link(source, target, **kwargs)

    monkeypatch.setattr(vxds.fs.StagedFile, "write", full)
    monkeypatch.setattr(os, "link", no_room)
    result = CliRunner().invoke(cli, ["lock", "big"], env={"VXDS_TEST_N": "10"}, catch_exceptions=False)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(lines) == 1, result.output
    assert "big@1" in lines[0]
    assert f"{parent / '1'}/resources." in lines[0]
    assert "No space left on device" in lines[0]
    assert {p.name: p.read_bytes() for p in (parent / "1").iterdir()} == before
    assert sorted(os.listdir(parent)) == ["1"]


def test_a_full_disk_in_lock_file_names_the_split_file(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vxds.fs

    def full(self: vxds.fs.StagedFile, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(vxds.fs.StagedFile, "write", full)
    result = invoke("lock", "--file", "recipes/big.py", "-o", "out")
    assert result.exit_code == 2
    assert f"{Path('out') / 'resources.'}" in result.output
    assert "No space left on device" in result.output
    assert not [p for p in (proj / "out").iterdir()]


# --- item 13: lock --file -o DIR holds exactly this run's splits -------------------------


def test_lock_file_removes_a_split_an_earlier_run_wrote(proj: Path) -> None:
    out = proj / "out"
    out.mkdir()
    (out / "resources.val.jsonl").write_text('{"id":"old"}\n')
    (out / "notes.txt").write_text("mine\n")
    result = invoke("lock", "--file", "recipes/big.py", "-o", "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt",
        "resources.test.jsonl",
        "resources.train.jsonl",
    ]
    assert "removed" in result.output
    assert "resources.val.jsonl" in result.output

    (out / "resources.val.jsonl").write_text('{"id":"old"}\n')
    check = invoke("lock", "--file", "recipes/big.py", "-o", "out", "--check")
    assert check.exit_code == 1
    assert "would remove" in check.output
    assert (out / "resources.val.jsonl").exists()


# --- item 16: every write reaches the disk before it is renamed into place ---------------


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of every file and folder ``os.fsync`` is called on."""
    seen: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


def test_the_lock_swap_fsyncs_files_and_folders(proj: Path, fsynced: list[str]) -> None:
    assert invoke("lock", "big").exit_code == 0
    assert {"resources.train.jsonl", "resources.test.jsonl", "lock.toml"} <= {
        _target_name(p) for p in fsynced
    }
    assert any(Path(p).name.startswith(".1.tmp-") for p in fsynced)  # the new lock, before its rename
    assert str(proj / "locks" / "big") in fsynced  # the renames of the swap
    assert str(proj / "locks") in fsynced  # the new dataset folder


def _target_name(path: str) -> str:
    """``.../.lock.toml.123-abcd.tmp`` (a temp file) -> ``lock.toml``; other paths unchanged."""
    name = Path(path).name
    if name.startswith(".") and name.endswith(".tmp"):
        return name[1:].rsplit(".", 2)[0]
    return name


def test_lock_file_fsyncs_each_split(proj: Path, fsynced: list[str]) -> None:
    assert invoke("lock", "--file", "recipes/big.py", "-o", "out").exit_code == 0
    names = {_target_name(p) for p in fsynced}
    assert {"resources.train.jsonl", "resources.test.jsonl"} <= names
    assert str(proj / "out") in fsynced


def test_catalog_ingest_fsyncs_what_it_stores(proj: Path, fsynced: list[str]) -> None:
    assert invoke("catalog", "init", "--catalog", "c.db").exit_code == 0
    assert invoke("catalog", "ingest", "data", "--catalog", "c.db").exit_code == 0
    objects = proj / "c.objects"
    blob_folders = [p for p in objects.iterdir() if p.is_dir()]
    assert blob_folders
    assert str(proj) in fsynced  # the database renamed into place
    assert {str(p) for p in blob_folders} <= set(fsynced)
    assert any(p.startswith(str(objects)) and p.endswith(".tmp") for p in fsynced)  # each blob's bytes


# --- item 6: two catalog ingests at once ------------------------------------------------

INGEST_LOOP = """\
import json, pathlib, sys
from click.testing import CliRunner
from vxds.cli.main import cli

side, rounds = sys.argv[1], int(sys.argv[2])
folder = pathlib.Path(f"in-{side}")
for i in range(rounds):
    (folder / "common.txt").write_text(f"{side} {i}\\n")
    result = CliRunner().invoke(cli, ["catalog", "ingest", str(folder), "--catalog", "c.db", "-q"])
    crash = result.exception if not isinstance(result.exception, SystemExit) else None
    print(json.dumps({"code": result.exit_code, "output": result.output, "crash": repr(crash)}), flush=True)
"""


def test_two_catalog_ingests_at_once_both_succeed(proj: Path) -> None:
    assert invoke("catalog", "init", "--catalog", "c.db").exit_code == 0
    for side in "ab":
        (proj / f"in-{side}").mkdir()
        (proj / f"in-{side}" / f"only-{side}.txt").write_text(side)
    (proj / "loop.py").write_text(INGEST_LOOP)
    rounds = 25
    loops = [
        subprocess.Popen(
            [sys.executable, "loop.py", side, str(rounds)], cwd=proj, stdout=subprocess.PIPE, text=True
        )
        for side in "ab"
    ]
    results = []
    for loop in loops:
        out, _ = loop.communicate(timeout=300)
        results += [json.loads(line) for line in out.splitlines()]
    failures = [r for r in results if r["code"] != 0]
    assert failures == []
    assert len(results) == 2 * rounds
    listed = invoke("catalog", "log", "--catalog", "c.db", "--format", "json")
    assert len(json.loads(listed.output)["snapshots"]) == 2 * rounds


# --- item 11: what a killed catalog ingest leaves behind --------------------------------


def test_a_killed_ingest_leaves_temp_files_the_next_ingest_removes(proj: Path) -> None:
    assert invoke("catalog", "init", "--catalog", "c.db").exit_code == 0
    incoming = proj / "incoming"
    incoming.mkdir()
    objects = proj / "c.objects"
    killed = False
    for attempt in range(20):
        (incoming / "big.bin").write_bytes(os.urandom(1 << 20) * 40 + bytes([attempt]))
        killed = _kill_when(
            [VXDS, "catalog", "ingest", "incoming", "--catalog", "c.db", "-q"],
            proj,
            lambda: any(p.is_file() and not p.name.endswith("lock") for p in objects.iterdir()),
            {},
        )
        if killed and _stray(objects):
            break
    assert _stray(objects), "no kill landed while a blob was being stored"
    (objects / "tmpab12_xyz").write_bytes(b"left by an older vxds")  # NamedTemporaryFile's naming
    assert run_vxds(proj, "catalog", "ingest", "incoming", "--catalog", "c.db", "-q").returncode == 0
    assert _stray(objects) == []


def _stray(objects: Path) -> list[str]:
    """Top-level files of the store other than its ingest lock: temp files."""
    return sorted(p.name for p in objects.iterdir() if p.is_file() and p.name != ".ingest.lock")


# --- item 9 (catalog part): a file rewritten while it is ingested ------------------------


def test_an_ingest_never_records_a_file_torn_by_a_concurrent_rewrite(proj: Path) -> None:
    assert invoke("catalog", "init", "--catalog", "c.db").exit_code == 0
    incoming = proj / "incoming"
    incoming.mkdir()
    size = 8 << 20
    target = incoming / "flip.bin"
    target.write_bytes(b"a" * size)
    flipper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, time
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    for byte in (b"a", b"b"):
                        with open({str(target)!r}, "r+b") as fh:
                            for _ in range(8):
                                fh.write(byte * ({size} // 8))
                                fh.flush()
                """
            ),
        ]
    )
    from vxds.hashing import digest_bytes

    try:
        for _ in range(6):
            result = run_vxds(proj, "catalog", "ingest", "incoming", "--catalog", "c.db", "--format", "json")
            if result.returncode != 0:
                errors = [line for line in result.stderr.splitlines() if line.strip()]
                assert len(errors) == 1, result.stderr
                assert "flip.bin" in errors[0], result.stderr
                assert "Traceback" not in result.stderr
    finally:
        flipper.kill()
        flipper.wait()
    listed = invoke("catalog", "log", "flip.bin", "--catalog", "c.db", "--format", "json")
    if listed.exit_code == 0:
        for version in json.loads(listed.output)["versions"]:
            hexdigest = version["hash"].split(":", 1)[1]
            data = (proj / "c.objects" / "blake3" / hexdigest[:2] / hexdigest[2:]).read_bytes()  # its layout
            assert digest_bytes(data) == version["hash"]
            assert _a_state_the_file_held(data, size)


def _a_state_the_file_held(data: bytes, size: int) -> bool:
    """The writer rewrites the file front to back, so every state it passes through is one
    byte up to some offset and the other after it (a writer descheduled half way leaves such
    a state for as long as it sleeps, and reading it twice agrees). A torn read, bytes of two
    states, would show the new byte after the old one, or old bytes between new ones."""
    if len(data) != size:
        return False
    first = data[:1]
    cut = len(data) - len(data.lstrip(first))
    rest = data[cut:]
    return not rest or (rest.strip(rest[:1]) == b"" and rest[:1] in (b"a", b"b") and rest[:1] != first)
