"""``vxds verify`` as a process: what it imports, and ``--data`` hashing ahead from the start.

Each test runs the real command line in a subprocess (through ``main``, as the ``vxds``
script does), on a small project whose large-file thresholds are lowered by a wrapper, so
the forked child hashes, maps and reports a real file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# What the data check of a folder source does not need: a run that imports one of these
# pays for it before (or while) the hashing runs.
HEAVY = (
    "git",
    "click.shell_completion",  # only when completing
    "jsonschema",
    "rich",
    "tomlkit",
    "fsspec",
    "importlib.resources",
    "concurrent.futures",
    "secrets",
    "vxds.git.repo",
    "vxds.registry",
    "vxds.store",
    "vxds.sources.folder.source",
    "vxds.sources.folder.dicom",
    "vxds.locks.split_diff",
    "vxds.locks.refs",
)
WRAPPER = """
import atexit, json, os, signal, sys
from vxds import filehash
from vxds.cli import early as early_start, prefetch
prefetch.LARGE = filehash.MAP_IN_CHILD = 1 << 20  # the 2 MiB file is large, and mapped
early, heavy = [], {heavy!r}
real_start = prefetch.start

def start(*args):
    forked = early_start._early.hasher if early_start._early is not None else None
    ahead = real_start(*args)
    early.append(forked is not None and ahead._child is forked)  # the child main forked, taken
    return ahead

prefetch.start = start
if {sigbus!r}:  # the child dies as a truncated mapped file would kill it
    filehash._map_here = lambda fd: os.kill(os.getpid(), signal.SIGBUS)

def report():
    loaded = sorted(m for m in sys.modules if m.startswith(heavy))
    sys.stderr.write("\\n" + json.dumps({{"early": early, "heavy": loaded}}))

atexit.register(report)
sys.argv = ["vxds", *{argv!r}]
from vxds.cli.main import main
main()
"""


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder source with a 2 MiB file and a small one, locked by ``vxds lock``."""
    root = tmp_path_factory.mktemp("startup") / "project"
    (root / "data").mkdir(parents=True)
    (root / "recipes").mkdir()
    (root / "data" / "big.bin").write_bytes(os.urandom(2 << 20))
    (root / "data" / "small.txt").write_bytes(b"small\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
    (root / "datasets.yaml").write_text("- name: big\n  version: 1\n  script_location: ./recipes/big.py\n")
    (root / "recipes" / "big.py").write_text(
        "import vxds\n\n\n@vxds.recipe()\ndef big(client):\n    return {'all': list(client.list())}\n"
    )
    subprocess.run([sys.executable, "-m", "vxds", "lock", "--all", "--quiet"], cwd=root, check=True)
    old = os.stat(root / "data" / "big.bin").st_mtime_ns - 60 * 10**9  # not racy: one read
    os.utime(root / "data" / "big.bin", ns=(old, old))
    assert _run(root, "verify", "--data")[2]["early"] == [False]  # no list of large files yet
    return root


def _run(root: Path, *argv: str, sigbus: bool = False) -> tuple[int, str, dict[str, list[object]]]:
    code = WRAPPER.format(heavy=HEAVY, argv=list(argv), sigbus=sigbus)
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    return done.returncode, done.stdout, seen


@pytest.mark.parametrize(
    "argv",
    [("verify", "--data"), ("verify",), ("verify", "--no-exec"), ("verify", "--data", "--format", "json")],
)
def test_verify_imports_nothing_its_checks_do_not_use(big_project: Path, argv: tuple[str, ...]) -> None:
    code, out, seen = _run(big_project, *argv)
    assert code == 0, out
    assert seen["heavy"] == []
    assert seen["early"] == ([True] if "--data" in argv else [])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_early_start_gives_the_output_the_command_gives_without_it(big_project: Path, fmt: str) -> None:
    started = _run(big_project, "verify", "--data", "--format", fmt)
    # --seed is no option the early start knows: the command starts the hashing itself
    late = _run(big_project, "verify", "--data", "--format", fmt, "--seed", "0")
    assert started[2]["early"] == [True]
    assert late[2]["early"] == [False]
    assert started[:2] == late[:2]
    assert started[0] == 0


def test_a_file_changed_since_it_was_locked_is_found_either_way(tmp_path: Path, big_project: Path) -> None:
    import shutil

    root = tmp_path / "changed"
    shutil.copytree(big_project, root, symlinks=True)
    with open(root / "data" / "big.bin", "r+b") as fh:
        fh.write(b"other")
    started = _run(root, "verify", "--data")
    late = _run(root, "verify", "--data", "--seed", "0")
    assert started[0] == late[0] == 1
    assert started[1] == late[1]
    assert "big.bin: changed in the source (hash differs)" in started[1]


def test_a_list_left_stale_by_a_relock_is_not_taken_and_is_written_again(
    tmp_path: Path, big_project: Path
) -> None:
    import shutil

    from vxds.cli import early

    root = tmp_path / "relocked"
    shutil.copytree(big_project, root, symlinks=True)  # its list names big_project's file
    (root / "data" / "big2.bin").write_bytes(os.urandom(2 << 20))
    os.utime(root / "data" / "big2.bin", ns=(10**18, 10**18))
    subprocess.run([sys.executable, "-m", "vxds", "lock", "--all", "--quiet"], cwd=root, check=True)
    first = _run(root, "verify", "--data")
    assert first[0] == 0, first[1]
    assert first[2]["early"] == [False]  # the child forked for the old list was stopped
    listed = early.read_hint((root / ".vxds" / early.HINT).read_bytes(), ())
    data = os.path.realpath(root / "data")
    assert listed == [(data, f"{data}/big.bin"), (data, f"{data}/big2.bin")]
    second = _run(root, "verify", "--data")
    assert second[2]["early"] == [True]
    assert second[:2] == first[:2]
    assert "3 resources, 3 re-hashed: 0 errors" in first[1]


def test_a_plain_data_check_ends_with_its_exit_code_and_its_output_flushed(big_project: Path) -> None:
    argv = [sys.executable, "-m", "vxds", "verify", "--data", "--format", "json"]
    done = subprocess.run(argv, cwd=big_project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["data_checked"] == 2
    reader_gone = subprocess.Popen(argv, cwd=big_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader_gone.stdout is not None
    assert reader_gone.stderr is not None
    reader_gone.stdout.close()  # as `vxds verify --data | head -0` does
    assert reader_gone.wait() == 141  # quietly, as git does (cli/group.py)
    assert b"Traceback" not in reader_gone.stderr.read()
    reader_gone.stderr.close()


def test_a_child_killed_while_mapping_leaves_the_file_to_the_check(big_project: Path) -> None:
    good = _run(big_project, "verify", "--data")
    killed = _run(big_project, "verify", "--data", sigbus=True)
    assert killed[2]["early"] == [True]
    assert killed[:2] == good[:2]
    assert "0 errors" in killed[1]


STOP = """
import os, sys
from vxds.cli import prefetch
ahead = prefetch.Prefetch([sys.argv[1]])
pid = ahead._child.pid
ahead.stop()
try:
    os.kill(pid, 0)
except ProcessLookupError:
    print("gone")
"""


def test_a_prefetch_nobody_waits_for_is_stopped(big_project: Path) -> None:
    big = str(big_project / "data" / "big.bin")
    done = subprocess.run([sys.executable, "-c", STOP, big], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "gone"
