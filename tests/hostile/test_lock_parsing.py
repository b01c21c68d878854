"""Hostile lock files through the real CLI: every damaged, resealed or half-swapped lock is a
finding (``verify``, exit 1) or one line of error (exit 2), never a traceback, a hang, or a
resource that one reader sees and another does not.

"Resealed" means the attacker rewrote a split and then fixed the counts and digests in
``lock.toml``, so that only the line checks can catch it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import EXAMPLE_TOOL, REPO, example_project, git
from vxds.cli.main import cli
from vxds.locks.format import HEADER, parse_header, render_header
from vxds.locks.splits import digest_chunks, split_file

VISEG = "locks/viseg_training/1"
COMMANDS = {
    "verify": ["verify", "--no-exec", "--no-cache", "viseg_training@1"],
    "list": ["list"],
    "show": ["show", "viseg_training@1"],
    "diff": ["diff", "HEAD"],
    "materialize": ["materialize", "viseg_training@1", "-o", "out", "-m", "files", "--split", "test"],
}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_line_error(result: Result, *needles: str) -> None:
    """Exit 2 with one ``error:`` line (and perhaps a hint), naming what it should."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("hint: ")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], result.output


def assert_line_or_finding(name: str, result: Result) -> None:
    """What any hostile lock may give: a clean exit, a finding or one line of error.

    A resealed lock can be sound and name resources the source lacks: ``materialize`` then
    reports each (exit 1), as for any lock.
    """
    assert "Traceback" not in result.output
    if name == "verify":
        assert result.exit_code in (0, 1), result.output
    elif name == "materialize" and result.exit_code == 1:
        assert result.output.splitlines()[-1].endswith("failed (files; splits test)"), result.output
    elif result.exit_code != 0:
        assert_one_line_error(result)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project with its committed locks, in a real Git repository."""
    pyproject = '[project]\nname = "example"\n\n' + EXAMPLE_TOOL
    root = example_project(tmp_path / "project", pyproject=pyproject, locks=True, ignore=".vxds/\nout/\n")
    monkeypatch.chdir(root)
    return root


def reseal(lock: Path, split: str, data: bytes) -> None:
    """Write ``data`` as a split and fix lock.toml's count and digests to match it."""
    (lock / split_file(split)).write_bytes(data)
    header, _ = parse_header((lock / HEADER).read_text(encoding="utf-8"), lock)
    splits = {**header.splits, split: (data.count(b"\n"), digest_chunks([data]))}
    (lock / HEADER).write_text(render_header(dataclasses.replace(header, splits=splits)), encoding="utf-8")


def split_lines(project: Path, split: str = "train") -> list[bytes]:
    return (project / VISEG / split_file(split)).read_bytes().split(b"\n")[:-1]


def joined(lines: list[bytes]) -> bytes:
    """Canonical lines as a split file: sorted by id, each ending with a newline."""
    return b"".join(line + b"\n" for line in sorted(lines, key=lambda line: orjson.loads(line)["id"]))


def with_line(project: Path, split: str, **fields: object) -> bytes:
    """The split's bytes with its first record's fields replaced."""
    lines = split_lines(project, split)
    record = {**orjson.loads(lines[0]), **fields}
    lines[0] = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return joined(lines)


# --- item 6: tracebacks where a line is due -------------------------------------------------


@pytest.mark.parametrize("field", ["count = 4", "version = 1"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_integer_past_64_bits_in_lock_toml_is_a_line(project: Path, command: str, field: str) -> None:
    header = project / VISEG / HEADER
    name = field.partition(" ")[0]
    header.write_text(header.read_text().replace(field, f"{name} = 99999999999999999999999", 1))
    result = run(*COMMANDS[command])
    if command == "verify":
        assert result.exit_code == 1
        assert f"{name}' is out of range" in result.output
    elif command == "list":
        assert result.exit_code == 0
        assert "corrupt" in result.output
        assert "out of range" in result.output
    else:
        assert_one_line_error(result, "out of range")


@pytest.mark.parametrize("command", ["verify", "show", "materialize", "diff"])
def test_a_bom_before_a_resealed_split_is_a_line(project: Path, command: str) -> None:
    lock = project / VISEG
    reseal(lock, "test", b"\xef\xbb\xbf" + (lock / "resources.test.jsonl").read_bytes())
    result = run(*COMMANDS[command])
    if command == "verify":
        assert result.exit_code == 1
        assert "resources.test.jsonl:1" in result.output
    else:
        assert_one_line_error(result, "resources.test.jsonl:1")
    assert not (project / "out").exists()


@pytest.mark.parametrize("content", [b"not json\n", b"[1,2]\n", b'{"id":"f1.txt"}\n', b"\xff\xfe\n"])
def test_materialize_of_a_bare_file_that_holds_no_resources_is_a_line(project: Path, content: bytes) -> None:
    bare = project / "bare" / "resources.a.jsonl"
    bare.parent.mkdir()
    bare.write_bytes(content)
    result = run("materialize", "-f", "bare/resources.a.jsonl", "-o", "out", "-m", "files")
    assert_one_line_error(result, "resources.a.jsonl:1")
    assert not (project / "out").exists()


# --- item 8: one line splitter, and no '\r' in a split ---------------------------------------


def _agree_the_lock_is_corrupt(project: Path, needle: str) -> None:
    verify = run("verify", "--no-exec", "--no-cache", "--strict")
    assert verify.exit_code == 1, verify.output
    assert needle in verify.output
    assert_one_line_error(run("show", "viseg_training@1"), needle)
    assert_one_line_error(
        run("materialize", "viseg_training@1", "--split", "train", "-o", "out", "-m", "files"), needle
    )
    assert not (project / "out").exists()
    assert_one_line_error(run("diff", "HEAD"), needle)
    assert_one_line_error(run("diff", VISEG, f"HEAD:{'viseg_training@1'}"), needle)


def test_a_bare_cr_that_joins_two_lines_is_a_corrupt_lock(project: Path) -> None:
    lines = split_lines(project)
    joined = [*lines[:4], lines[4] + b"\r" + lines[5], *lines[6:]]
    reseal(project / VISEG, "train", b"".join(line + b"\n" for line in joined))
    _agree_the_lock_is_corrupt(project, "resources.train.jsonl:5")
    assert "carriage return" in run("show", "viseg_training@1").output


def test_a_crlf_split_is_a_corrupt_lock(project: Path) -> None:
    lines = split_lines(project)
    reseal(project / VISEG, "train", b"".join(line + b"\r\n" for line in lines))
    _agree_the_lock_is_corrupt(project, "resources.train.jsonl:1")


def test_a_bare_cr_committed_to_git_is_corrupt_at_that_revision(project: Path) -> None:
    # (a CRLF is turned into LF by Git itself here: .gitattributes says locks/** eol=lf)
    lines = split_lines(project)
    joined = [*lines[:4], lines[4] + b"\r" + lines[5], *lines[6:]]
    reseal(project / VISEG, "train", b"".join(line + b"\n" for line in joined))
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "a bare carriage return")
    assert_one_line_error(run("diff", "HEAD~1", "HEAD"), "resources.train.jsonl:5", "carriage return")


# --- item 10: torn reads under a concurrent relock -------------------------------------------

RELOCKER = """\
import dataclasses, sys, time
from pathlib import Path
from vxds.locks.splits import Split
from vxds.locks.store import read_lock, write_lock

lock_dir, stop = Path(sys.argv[1]), Path(sys.argv[2])
a = read_lock(lock_dir)
lines = list(a.splits["test"].lines())
split = Split.from_lines(lines[1:])
splits = {**a.header.splits, "test": (split.count, split.digest)}
header = dataclasses.replace(a.header, splits=splits)
b = dataclasses.replace(a, header=header, splits={**a.splits, "test": split})
deadline = time.monotonic() + 60  # bounded, whatever the test does
n = 0
while not stop.exists() and time.monotonic() < deadline:
    write_lock((a, b)[n % 2], lock_dir)
    n += 1
    time.sleep(0.05)
print(n)
"""


def test_readers_never_see_a_torn_lock_while_another_process_relocks(project: Path) -> None:
    stop = project / "stop"
    script = project / "relocker.py"
    script.write_text(RELOCKER)
    relocker = subprocess.Popen(
        [sys.executable, str(script), VISEG, str(stop)], cwd=project, stdout=subprocess.PIPE, text=True
    )
    outcomes: dict[str, list[int]] = {}
    try:
        time.sleep(0.3)
        for round_ in range(40):
            for name in ("show", "list", "diff", "materialize", "verify"):
                args = [*COMMANDS[name]]
                if name == "materialize":
                    args[3] = f"out/{round_}"
                result = run(*args)
                assert "corrupt" not in result.output, (name, result.output)
                assert "missing" not in result.output, (name, result.output)
                if result.exit_code != 0:
                    assert "the lock changed while it was read" in result.output, (name, result.output)
                outcomes.setdefault(name, []).append(result.exit_code)
    finally:
        stop.touch()
        relocks = int(relocker.communicate(timeout=30)[0])
    assert relocks > 20  # the lock really was swapped, over and over, under the readers
    for name, codes in outcomes.items():
        assert codes.count(0) > len(codes) // 2, name  # one retry is enough nearly always


def test_load_lock_retries_a_torn_read(project: Path) -> None:
    import vxds

    stop = project / "stop"
    (project / "relocker.py").write_text(RELOCKER)
    relocker = subprocess.Popen([sys.executable, "relocker.py", VISEG, str(stop)], cwd=project)
    try:
        time.sleep(0.3)
        for _ in range(150):
            try:
                lock = vxds.load_lock("viseg_training@1", root=project)
            except vxds.VxdsError as exc:
                assert "the lock changed while it was read" in str(exc)
            else:
                assert len(lock) in (25, 26)
    finally:
        stop.touch()
        relocker.wait(timeout=30)


# --- item 11 (readers): a lock left aside by a kill between the two renames ------------------


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["verify", "--no-exec"],
        ["show", "viseg_training@1"],
        ["materialize", "viseg_training@1", "-o", "out", "-m", "files"],
        ["lock", "--all", "--check"],
        ["diff", "HEAD", "--exit-code"],
    ],
)
def test_readers_restore_a_lock_set_aside_by_a_killed_relock(project: Path, command: list[str]) -> None:
    aside = project / "locks/viseg_training/.1.old-999999999"
    os.replace(project / VISEG, aside)
    result = run(*command)
    assert result.exit_code == 0, result.output
    assert "missing" not in result.output
    assert (project / VISEG / HEADER).is_file()
    assert not aside.exists()
    assert git(project, "status", "--porcelain", "locks") == ""  # restored byte for byte


# --- item 13 (one part): an unreadable split is not a missing one ----------------------------


def _make_unreadable(path: Path, how: str) -> None:
    path.unlink()
    if how == "folder":
        path.mkdir()
    elif how == "link loop":
        path.symlink_to(path.name)
    else:
        path.symlink_to("/etc/hostname")


@pytest.mark.parametrize("how", ["folder", "link loop", "link outside"])
def test_an_unreadable_split_is_reported_as_unreadable_naming_it(project: Path, how: str) -> None:
    _make_unreadable(project / VISEG / "resources.test.jsonl", how)
    verify = run("verify", "--no-exec", "viseg_training@1")
    assert verify.exit_code == 1
    assert "cannot read resources.test.jsonl" in verify.output
    assert "missing" not in verify.output
    assert_one_line_error(run("show", "viseg_training@1"), "cannot read resources.test.jsonl")
    listed = run("list")
    assert "cannot read resources.test.jsonl" in listed.output
    assert "is missing" not in listed.output


def test_a_fifo_as_a_split_does_not_hang_a_reader(project: Path) -> None:
    split = project / VISEG / "resources.test.jsonl"
    split.unlink()
    os.mkfifo(split)
    for args in (["verify", "--no-exec"], ["show", "viseg_training@1"], ["list"]):
        done = subprocess.run(
            [sys.executable, "-m", "vxds", *args], cwd=project, capture_output=True, text=True, timeout=30
        )
        assert "cannot read resources.test.jsonl" in done.stdout + done.stderr, done
        assert "Traceback" not in done.stderr


# --- item 14: ids with line separators or controls, NFC twins, a uri that climbs out ---------

BAD_IDS = ["a\u2028b.txt", "a\x85b.txt", "a\x7fb.txt", "a\u2029b.txt", "a\x9bb.txt", "a\x1fb.txt"]


@pytest.mark.parametrize("rid", BAD_IDS)
def test_a_lock_line_with_a_line_separator_or_control_in_its_id_is_refused(project: Path, rid: str) -> None:
    reseal(project / VISEG, "test", with_line(project, "test", id=rid))
    verify = run("verify", "--no-exec", "viseg_training@1")
    assert verify.exit_code == 1, verify.output
    assert "VX310" in verify.output, verify.output
    assert_one_line_error(
        run("materialize", "viseg_training@1", "-o", "out", "-m", "files"), "resources.test.jsonl"
    )


ID_RECIPE = """\
import vxds


@vxds.recipe()
def ids(client):
    return {{"all": [{{"id": rid, "version": 1}} for rid in {ids!r}]}}
"""


def _lock_ids(project: Path, ids: list[str]) -> Result:
    (project / "recipes/ids.py").write_text(ID_RECIPE.format(ids=ids))
    with open(project / "datasets.yaml", "a") as fh:
        fh.write("\n- name: ids\n  version: 1\n  script_location: ./recipes/ids.py\n")
    return run("lock", "ids")


@pytest.mark.parametrize("rid", BAD_IDS)
def test_a_recipe_id_with_a_line_separator_or_control_is_refused(project: Path, rid: str) -> None:
    result = _lock_ids(project, ["ok.txt", rid])
    assert result.exit_code == 2
    assert repr(rid) in result.output
    assert not (project / "locks/ids").exists()


CAFE_NFC = unicodedata.normalize("NFC", "café.txt")
CAFE_NFD = unicodedata.normalize("NFD", "café.txt")


def test_a_recipe_that_returns_nfc_and_nfd_twins_is_refused_naming_both(project: Path) -> None:
    result = _lock_ids(project, [CAFE_NFC, CAFE_NFD, "tea.txt"])
    assert result.exit_code == 2
    assert repr(CAFE_NFC) in result.output
    assert repr(CAFE_NFD) in result.output
    assert not (project / "locks/ids").exists()


def test_a_lock_holding_nfc_and_nfd_twins_fails_verify(project: Path) -> None:
    lines = split_lines(project, "test")
    twins = []
    for rid in (CAFE_NFC, CAFE_NFD):
        record = {**orjson.loads(lines[0]), "id": rid, "uri": rid}
        twins.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    reseal(project / VISEG, "test", joined([*lines, *twins]))
    verify = run("verify", "--no-exec", "viseg_training@1")
    assert verify.exit_code == 1, verify.output
    assert "VX309" in verify.output, verify.output
    assert repr(CAFE_NFC) in verify.output
    assert repr(CAFE_NFD) in verify.output
    assert_one_line_error(run("materialize", "viseg_training@1", "-o", "out", "-m", "files"), "NFC")


@pytest.mark.parametrize(
    "uri", ["../../../../etc/hostname", "/etc/hostname", "a/../../b", "C:/x", "a\\..\\b"]
)
def test_verify_without_data_flags_a_uri_that_leaves_the_source(project: Path, uri: str) -> None:
    reseal(project / VISEG, "test", with_line(project, "test", uri=uri))
    verify = run("verify", "--no-exec", "viseg_training@1")
    assert verify.exit_code == 1, verify.output
    assert "VX310" in verify.output
    assert repr(uri) in verify.output
    assert_one_line_error(run("materialize", "viseg_training@1", "-o", "out", "-m", "files"), "uri")


@pytest.mark.parametrize("uri", ["s3://bucket/key@v2", "https://example.org/a?b=c", "sub/x.nii.gz"])
def test_verify_accepts_a_uri_that_names_no_outside_path(project: Path, uri: str) -> None:
    reseal(project / VISEG, "test", with_line(project, "test", uri=uri))
    verify = run("verify", "--no-exec", "viseg_training@1")
    assert verify.exit_code == 0, verify.output


# --- fuzzing: any bytes as lock.toml or as a split file --------------------------------------

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LOCK_TOML = (REPO / VISEG / HEADER).read_bytes()
TEST_SPLIT = (REPO / VISEG / "resources.test.jsonl").read_bytes()


def _mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """Bytes near ``original`` (an insert, a cut, a replaced span) or any bytes at all."""
    point = st.integers(0, len(original))
    noise = st.binary(max_size=24) | st.sampled_from(
        [b"\r", b"\r\n", b"\xef\xbb\xbf", b"\x00", b'"', b"99999999999999999999999", b"-1", b"[", b"\n\n"]
    )
    insert = st.tuples(point, noise).map(lambda t: original[: t[0]] + t[1] + original[t[0] :])
    cut = st.tuples(point, point).map(lambda t: original[: min(t)] + original[max(t) :])
    replace = st.tuples(point, point, noise).map(
        lambda t: original[: min(t[0], t[1])] + t[2] + original[max(t[0], t[1]) :]
    )
    return insert | cut | replace | st.binary(max_size=200)


def _json_lines() -> st.SearchStrategy[bytes]:
    """Split files of JSON values that are almost resources."""
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)  # JSON-encodable
    scalar = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | text
    value = st.recursive(scalar, lambda v: st.lists(v, max_size=3) | st.dictionaries(text, v, max_size=3))
    record = st.fixed_dictionaries(
        {"id": text | st.integers(0, 9), "version": scalar},
        optional={"attrs": value, "hash": scalar, "size": scalar, "type": scalar, "uri": scalar},
    )
    line = (record | value).map(lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return st.lists(line, max_size=4).map(lambda lines: b"".join(line + b"\n" for line in lines))


def _run_all(project: Path, names: list[str]) -> None:
    for name in names:
        result = run(*COMMANDS[name])
        assert_line_or_finding(name, result)
        shutil.rmtree(project / "out", ignore_errors=True)


def _header_values() -> st.SearchStrategy[bytes]:
    """lock.toml with one of its values replaced by any TOML value (numbers of any size)."""
    fields = st.sampled_from([b"count = 4", b"version = 1", b"format = 1", b'params = "{}"', b'name = "'])
    value = (
        (st.integers() | st.sampled_from([-(2**63) - 1, 2**63, 2**64, 10**23])).map(lambda n: str(n).encode())
        | st.floats().map(lambda f: repr(f).encode())
        | st.sampled_from([b"true", b"[]", b"{}", b'"x"', b"1979-05-27", b"inf", b"nan", b'"\\u0000"'])
    )
    return st.tuples(fields, value).map(
        lambda t: LOCK_TOML.replace(t[0], t[0].partition(b"=")[0] + b"= " + t[1], 1)
    )


@FUZZ
@given(data=_mutations(LOCK_TOML) | _header_values())
def test_fuzz_any_bytes_as_lock_toml(project: Path, data: bytes) -> None:
    (project / VISEG / HEADER).write_bytes(data)
    _run_all(project, sorted(COMMANDS))


@FUZZ
@given(data=_mutations(TEST_SPLIT) | _json_lines(), resealed=st.booleans())
def test_fuzz_any_bytes_as_a_split_file(project: Path, data: bytes, resealed: bool) -> None:
    lock = project / VISEG
    if resealed:
        reseal(lock, "test", data)
    else:
        (lock / "resources.test.jsonl").write_bytes(data)
    _run_all(project, sorted(COMMANDS))
    (lock / HEADER).write_bytes(LOCK_TOML)
    (lock / "resources.test.jsonl").write_bytes(TEST_SPLIT)


@FUZZ
@given(data=_mutations(TEST_SPLIT) | _json_lines())
def test_fuzz_any_bytes_as_a_bare_split_file(project: Path, data: bytes) -> None:
    bare = project / "bare" / "resources.test.jsonl"
    bare.parent.mkdir(exist_ok=True)
    bare.write_bytes(data)
    for args in (
        ["materialize", "-f", str(bare), "-o", "out", "-m", "files"],
        ["diff", str(bare), f"{VISEG}/resources.test.jsonl"],
    ):
        assert_line_or_finding(args[0], run(*args))
        out = project / "out"
        if out.exists():  # what was placed is below OUT, never beside or above it
            assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
        shutil.rmtree(out, ignore_errors=True)


@settings(max_examples=300, deadline=None)
@given(text=(_mutations(LOCK_TOML) | _header_values()).map(lambda b: b.decode("utf-8", "replace")))
def test_fuzz_parse_header_raises_only_corrupt_lock(text: str) -> None:
    from vxds.locks.format import CorruptLock

    try:
        header, _ = parse_header(text, Path("lock"))
    except CorruptLock as exc:
        assert "\n" not in exc.message  # one line, whatever the problems
    else:
        assert header.digest.startswith("blake3:")  # what every reader computes next


@settings(max_examples=300, deadline=None)
@given(data=_mutations(TEST_SPLIT) | _json_lines())
def test_fuzz_line_problems_never_raises(data: bytes) -> None:
    from vxds.locks.splits import line_problems

    for problem in line_problems("test", data):
        assert "\n" not in problem
        assert problem.line is not None


def test_the_merge_driver_refuses_a_split_joined_by_a_bare_cr(tmp_path: Path) -> None:
    """Git's merge driver splits lines as every reader does: a bare \\r is no line end."""
    a = b'{"hash":null,"id":"a","size":null,"type":"File","uri":null,"version":1}'
    b = b'{"hash":null,"id":"b","size":null,"type":"File","uri":null,"version":1}'
    files = {"base": a + b"\n" + b + b"\n", "ours": a + b"\r" + b + b"\n", "theirs": a + b"\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = run("merge-driver", *(str(tmp_path / n) for n in files), "locks/d/1/resources.train.jsonl")
    assert result.exit_code == 2, result.output
    assert "not a resource record" in result.output
    assert result.output.count("\n") == 1
    assert (tmp_path / "ours").read_bytes() == files["ours"]  # nothing merged into it
