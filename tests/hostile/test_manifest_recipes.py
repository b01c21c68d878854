"""Hostile recipes, manifests and ``[tool.vxds]`` tables (issue 10, items 5 to 7).

A recipe that ends any way other than returning, and a manifest or pyproject.toml built to
crash, hang or exhaust the loader, must each end in a sentence naming the file (and line),
exit 2 (a finding and exit 1 in ``verify``), with nothing written.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vxds.cli.main import cli
from vxds.errors import ConfigError, ManifestError
from vxds.project.config import load_config
from vxds.project.manifest import Manifest, load_manifest

RECIPE = """\
import os
import sys
import time

import vxds


class Escape(BaseException):
    pass


def escape():
    kind = os.environ.get("HOSTILE_ESCAPE")
    if kind == "exit0":
        sys.exit(0)
    if kind == "exit-text":
        sys.exit("bye")
    if kind == "base":
        raise Escape("gone")
    if kind == "interrupt":
        raise KeyboardInterrupt


if os.environ.get("HOSTILE_WHERE") == "import":
    escape()


def lazily(items):
    escape()
    yield from items


@vxds.recipe()
def demo(client):
    if os.environ.get("HOSTILE_WHERE") == "call":
        escape()
    files = sorted(client.list(), key=lambda r: r.id)
    if os.environ.get("HOSTILE_WHERE") == "split":
        return {"train": lazily(files)}
    return {"train": files}
"""

MANIFEST = """\
- name: demo
  version: 1
  script_location: ./recipes/demo.py
"""

# How each escape shows in the error: the recipe's own words are not enough on their own.
SAYS = {"exit0": "sys.exit(0)", "exit-text": "sys.exit('bye')", "base": "Escape: gone"}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of one recipe over two small files; the current folder."""
    root = tmp_path / "project"
    for rel, text in {
        "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
        "datasets.yaml": MANIFEST,
        "recipes/demo.py": RECIPE,
        "data/a.txt": "a",
        "data/b.txt": "b",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    monkeypatch.chdir(root)
    monkeypatch.delenv("HOSTILE_ESCAPE", raising=False)
    monkeypatch.delenv("HOSTILE_WHERE", raising=False)
    return root


def _escape(monkeypatch: pytest.MonkeyPatch, kind: str, where: str) -> None:
    monkeypatch.setenv("HOSTILE_ESCAPE", kind)
    monkeypatch.setenv("HOSTILE_WHERE", where)


# --- item 5: a recipe that does not return ------------------------------------------------

LOCK_COMMANDS = [
    ["lock", "demo"],
    ["lock", "--all", "--check"],
    ["lock", "--stale", "--exit-code"],  # the vxds-lock pre-commit hook
]


@pytest.mark.parametrize("where", ["import", "call", "split"])
@pytest.mark.parametrize("kind", sorted(SAYS))
@pytest.mark.parametrize("args", LOCK_COMMANDS, ids=" ".join)
def test_a_recipe_that_exits_fails_the_lock_and_writes_nothing(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], kind: str, where: str
) -> None:
    _escape(monkeypatch, kind, where)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: dataset demo@1 (datasets.yaml:1): "), result.output
    assert "demo.py" in result.output
    assert SAYS[kind] in result.output
    if where != "import":
        assert "demo()" in result.output  # the recipe, not only its script
    assert "Traceback" not in result.output
    assert not (tiny / "locks").exists()


@pytest.mark.parametrize("where", ["import", "call", "split"])
@pytest.mark.parametrize("kind", sorted(SAYS))
def test_a_recipe_that_exits_fails_lock_file_and_writes_nothing(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, kind: str, where: str
) -> None:
    _escape(monkeypatch, kind, where)
    result = run("lock", "--file", "recipes/demo.py", "-o", "out")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: recipe script recipes/demo.py: "), result.output
    assert SAYS[kind] in result.output
    assert not (tiny / "out").exists()


@pytest.mark.parametrize("where", ["import", "call", "split"])
@pytest.mark.parametrize("kind", sorted(SAYS))
def test_a_recipe_that_exits_is_a_reproduce_finding(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, kind: str, where: str
) -> None:
    assert run("lock", "demo").exit_code == 0
    before = {p: p.read_bytes() for p in (tiny / "locks").rglob("*") if p.is_file()}
    _escape(monkeypatch, kind, where)
    result = run("verify", "--reproduce")
    assert result.exit_code == 1, result.output
    assert "VX602" in result.output
    assert "demo@1" in result.output
    assert SAYS[kind] in result.output
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in (tiny / "locks").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("where", ["import", "call", "split"])
def test_ctrl_c_in_a_recipe_is_still_an_interrupt(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    _escape(monkeypatch, "interrupt", where)
    result = run("lock", "demo")
    assert result.exit_code == 130
    assert result.output == "Interrupted.\n"
    assert not (tiny / "locks").exists()


def test_a_recipe_that_exits_fails_a_real_process(tiny: Path) -> None:
    """Outside click's test runner too: a real ``vxds`` process, its real exit status."""
    env = {"PATH": "/usr/bin:/bin", "HOSTILE_ESCAPE": "exit0", "HOSTILE_WHERE": "call"}
    done = subprocess.run(
        [sys.executable, "-m", "vxds", "lock", "demo"], cwd=tiny, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: dataset demo@1 (datasets.yaml:1): recipe demo()"), done.stderr
    assert not (tiny / "locks").exists()


# --- items 6 and 7: manifests built to crash or hang the loader ---------------------------


def _laughs(levels: int = 9, width: int = 9, *, merge: bool = False) -> str:
    """A billion laughs in params: each level holds ``width`` aliases of the level below."""
    lines = ["  params:"]
    if merge:
        lines.append("    l0: &l0 {" + ", ".join(f"k{n}: lol" for n in range(width)) + "}")
    else:
        lines.append("    l0: &l0 [" + ", ".join(["lol"] * width) + "]")
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"    l{level}: &l{level} " + (f"{{<<: [{aliases}]}}" if merge else f"[{aliases}]"))
    return "\n".join(lines) + "\n"


DEEP = 20_000

# name -> (what replaces or follows the entry's lines, the line the error must name)
HOSTILE_MANIFESTS: dict[str, tuple[str, int]] = {
    "version beyond 64 bits": (MANIFEST.replace("version: 1", "version: 99999999999999999999999"), 2),
    "version beyond JSON's exact integers": (MANIFEST.replace("version: 1", f"version: {2**60}"), 2),
    "version of 5000 hex digits": (MANIFEST.replace("version: 1", "version: 0x" + "f" * 5000), 2),
    "version of 5000 decimal digits": (MANIFEST.replace("version: 1", "version: " + "1" * 5000), 2),
    "params integer beyond 64 bits": (MANIFEST + "  params: {n: 99999999999999999999999}\n", 4),
    "params not finite": (MANIFEST + "  params: {n: .nan}\n", 4),
    "params nested 20,000 deep (mappings)": (
        MANIFEST + "  params: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
        4,
    ),
    "params nested 20,000 deep (lists)": (MANIFEST + "  params: {a: " + "[" * DEEP + "]" * DEEP + "}\n", 4),
    "python tag": (MANIFEST + '  params: !!python/object/apply:os.system ["touch pwned"]\n', 4),
    "python name tag": (MANIFEST + "  entrypoint: !!python/name:os.system\n", 4),
    "complex key": (MANIFEST + "  params:\n    ? [a, b]\n    : 1\n", 5),
    "alias to itself": (MANIFEST + "  params: &p {self: *p}\n", 4),
    "impossible date": (MANIFEST.replace("version: 1", "version: 2020-13-45"), 2),
    "!!int that is not one": (MANIFEST.replace("version: 1", "version: !!int abc"), 2),
    "empty !!int": (MANIFEST.replace("version: 1", "version: !!int ''"), 2),
    "!!float that is not one": (MANIFEST + "  params: {x: !!float x}\n", 4),
    "!!timestamp that is not one": (MANIFEST + "  description: !!timestamp soon\n", 4),
    "!!bool that is not one": (MANIFEST + "  allow_group_overlap: !!bool maybe\n", 4),
    "escape beyond Unicode": (MANIFEST + '  description: "\\U99999999"\n', 4),
}


@pytest.fixture
def hostile(tiny: Path, request: pytest.FixtureRequest) -> int:
    """The tiny project with one hostile manifest; the line its error must name."""
    text, line = HOSTILE_MANIFESTS[request.param]
    (tiny / "datasets.yaml").write_text(text, encoding="utf-8")
    return line


@pytest.mark.parametrize("hostile", sorted(HOSTILE_MANIFESTS), indirect=True)
@pytest.mark.parametrize("args", [["list"], ["lock", "--all"]], ids=" ".join)
def test_a_hostile_manifest_is_one_line_and_exit_2(tiny: Path, hostile: int, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: datasets.yaml:{hostile}: "), result.output
    assert result.output.count("\n") == 1, result.output
    assert len(result.output) < 300  # a 5000-digit value is not echoed whole
    assert not (tiny / "locks").exists()
    assert not (tiny / "pwned").exists()


@pytest.mark.parametrize("hostile", sorted(HOSTILE_MANIFESTS), indirect=True)
def test_a_hostile_manifest_is_one_verify_finding(tiny: Path, hostile: int) -> None:
    result = run("verify", "--manifest-only")
    assert result.exit_code == 1, result.output
    findings = [line for line in result.output.splitlines() if "VX101" in line]
    assert len(findings) == 1, result.output
    assert f"VX101 datasets.yaml:{hostile}: " in findings[0]
    assert "Traceback" not in result.output


def test_a_huge_version_names_the_field(tiny: Path) -> None:
    (tiny / "datasets.yaml").write_text(HOSTILE_MANIFESTS["version beyond 64 bits"][0], encoding="utf-8")
    result = run("lock", "--all")
    assert result.output == (
        "error: datasets.yaml:2: field 'version': 99999999999999999999999 is out of range"
        " (integers in datasets.yaml take at most 64 bits)\n"
    )


@pytest.mark.parametrize("merge", [False, True], ids=["aliases", "merge keys"])
@pytest.mark.parametrize("args", [["list"], ["verify", "--manifest-only"], ["lock", "--all"]], ids=" ".join)
def test_a_billion_laughs_is_refused_in_seconds(tiny: Path, args: list[str], merge: bool) -> None:
    """A real process with a deadline: a hang must fail the test, not stall the suite."""
    (tiny / "datasets.yaml").write_text(MANIFEST + _laughs(merge=merge), encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "vxds", *args],
        cwd=tiny,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert time.monotonic() - started < 15
    output = done.stdout + done.stderr
    assert done.returncode == (1 if args[0] == "verify" else 2), output
    assert "datasets.yaml:" in output
    assert "aliases" in output
    assert "Traceback" not in output
    assert not (tiny / "locks").exists()


def test_a_merge_key_override_is_not_a_repeat(tiny: Path) -> None:
    """Keys are compared as written: PyYAML's merge (<<) rewrites mappings as it constructs."""
    (tiny / "datasets.yaml").write_text(
        "- <<: {name: demo, version: 1}\n  version: 2\n  script_location: ./recipes/demo.py\n",
        encoding="utf-8",
    )
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "demo     2" in result.output


def test_aliases_within_the_budget_still_load(tiny: Path) -> None:
    """Anchors shared by entries are ordinary YAML, and stay allowed."""
    (tiny / "datasets.yaml").write_text(
        "defaults: &shared\n  params: &p {a: 1, b: [1, 2, 3]}\n"
        "datasets:\n"
        "  - {name: demo, version: 1, script_location: ./recipes/demo.py, params: *p}\n"
        "  - {name: demo, version: 2, script_location: ./recipes/demo.py, params: *p}\n",
        encoding="utf-8",
    )
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "demo@2" in result.output


# --- the loader on any input: a manifest, or one line per problem, in bounded time ---------

# Pieces of YAML that have broken loaders: tags, anchors, merge keys, complex keys, out-of-range
# and unreadable scalars, directives, BOMs, tabs and control characters.
FRAGMENTS = [
    "- ", "name: demo", "version: ", "script_location: ./recipes/demo.py", "params: ", "datasets:",
    "defaults:", "\n", "\n  ", "\n    ", "{", "}", "[", "]", ", ", ": ", "? ", "&a ", "*a", "&b ", "*b",
    "<<: ", "!!int ", "!!float ", "!!bool ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "!!str ",
    "!!python/object/apply:os.system ", "!foo ", "!", "1", "99999999999999999999999", "0x" + "f" * 30,
    "2020-13-45", "2020-01-01", "1e9999", ".nan", ".inf", "190:20:30", "~", "yes", "-", "'", '"', "#",
    "|", ">", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "---\n", "...\n", "\t", "\ufeff", "\x00", "\x85",
    "\u2028", "\r", '"\\U99999999"', '"\\x', "\\",
]  # fmt: skip
yamlish = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=50).map("".join)
any_input = (
    yamlish.map(str.encode) | st.binary(max_size=200) | yamlish.map(lambda text: text.encode("utf-16"))
)

INT64 = (-(2**63), 2**63 - 1)
ENTRY = {"name": "a", "version": 1, "script_location": "./recipes/demo.py"}
MAX_VERSION = 2**53 - 1
# PyYAML itself folds NEL and the Unicode line separators in scalars: not ours to test.
ALPHABET = st.characters(exclude_characters="\x85\u2028\u2029", exclude_categories=("Cs",))
keys = st.text(ALPHABET, max_size=6)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(ALPHABET, max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
entries = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True),
            "version": st.integers(min_value=1, max_value=3)
            | st.integers(min_value=-(2**70), max_value=2**70),
            "script_location": st.just("./recipes/demo.py"),
        },
        optional={
            "description": st.text(ALPHABET, max_size=12),
            "params": st.dictionaries(keys, json_values, max_size=3),
        },
    ),
    max_size=4,
)


def _plain(value: object) -> bool:
    """The reference: what datasets.yaml may hold, written independently of the loader."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return INT64[0] <= value <= INT64[1]
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(map(_plain, value))
    assert isinstance(value, dict)
    return all(map(_plain, value.values()))


def _valid(items: list[dict[str, object]]) -> bool:
    idents = [(item["name"], item["version"]) for item in items]
    versions = [item["version"] for item in items]
    return (
        len(set(idents)) == len(idents)
        and all(isinstance(v, int) and 1 <= v <= MAX_VERSION for v in versions)
        and all(_plain(item.get("params", {})) for item in items)
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "recipes").mkdir()
    (root / "recipes/demo.py").write_text(RECIPE, encoding="utf-8")
    return root


def _load(path: Path, data: bytes) -> Manifest | ManifestError:
    """Load ``data`` as a manifest; assert the time bound and the shape of any error."""
    path.write_bytes(data)
    started = time.monotonic()
    try:
        outcome: Manifest | ManifestError = load_manifest(path)
    except ManifestError as exc:
        outcome = exc
    assert time.monotonic() - started < 5
    if isinstance(outcome, ManifestError):
        assert outcome.problems
        for problem in outcome.problems:
            assert re.fullmatch(rf"{re.escape(str(path))}(:[1-9][0-9]*)?: [^\n]+", problem), problem
    return outcome


LOADER_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@LOADER_SETTINGS
@given(data=any_input)
@example(data=(MANIFEST + _laughs()).encode())
@example(data=(MANIFEST + _laughs(merge=True)).encode())
@example(data=(MANIFEST + "  params: " + "[" * DEEP + "]" * DEEP + "\n").encode())
@example(data=b"&a [*a]")
@example(data=b"- &e {name: demo, version: 1, script_location: ./recipes/demo.py}\n- *e\n")
@example(data="\ufeff- name: demo\n".encode())
def test_any_bytes_are_a_manifest_or_one_line_per_problem(sandbox: Path, data: bytes) -> None:
    _load(sandbox / "datasets.yaml", data)


@LOADER_SETTINGS
@given(items=entries, form=st.sampled_from(["list", "mapping"]))
@example(items=[{**ENTRY, "version": MAX_VERSION + 1}], form="list")
@example(items=[{**ENTRY, "params": {"n": INT64[1] + 1}}], form="mapping")
def test_generated_manifests_load_exactly_when_valid(
    sandbox: Path, items: list[dict[str, object]], form: str
) -> None:
    document: object = items if form == "list" else {"datasets": items}
    outcome = _load(sandbox / "datasets.yaml", yaml.safe_dump(document, allow_unicode=True).encode())
    assert isinstance(outcome, Manifest) == _valid(items), outcome
    if isinstance(outcome, Manifest):
        loaded = [(e.name, e.version, e.description, dict(e.params)) for e in outcome]
        wanted = [(i["name"], i["version"], i.get("description", ""), i.get("params", {})) for i in items]
        assert loaded == wanted


@LOADER_SETTINGS
@given(
    items=entries,
    splice=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(FRAGMENTS)), max_size=3),
)
def test_damaged_manifests_load_or_fail_in_one_line_per_problem(
    sandbox: Path, items: list[dict[str, object]], splice: list[tuple[int, str]]
) -> None:
    text = yaml.safe_dump(items, allow_unicode=True)
    for at, fragment in splice:
        at %= len(text) + 1
        text = text[:at] + fragment + text[at:]
    _load(sandbox / "datasets.yaml", text.encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=any_input)
@example(data=(MANIFEST + _laughs()).encode())
def test_any_manifest_bytes_through_the_cli_exit_0_or_2_never_raise(sandbox: Path, data: bytes) -> None:
    (sandbox / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n', encoding="utf-8")
    (sandbox / "datasets.yaml").write_bytes(data)
    result = run("list", "--root", str(sandbox))  # raises on anything but an exit
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        first, *rest = result.output.splitlines()
        assert first.startswith("error: ")
        assert all(line.startswith(str(sandbox)) for line in [first.removeprefix("error: "), *rest])


# --- [tool.vxds] in pyproject.toml --------------------------------------------------------

HOSTILE_PYPROJECTS: dict[str, bytes] = {
    "tool is an integer": b"tool = 1\n",
    "tool is a string": b'tool = "vxds"\n',
    "vxds is a list": b"[tool]\nvxds = [1]\n",
    "manifest beyond 64 bits": b"[tool.vxds]\nmanifest = 99999999999999999999999\n",
    "manifest of 5000 hex digits": b"[tool.vxds]\nmanifest = 0x" + b"f" * 5000 + b"\n",
    "manifest a long list": b"[tool.vxds]\nmanifest = [" + b", ".join([b"1"] * 3000) + b"]\n",
    "manifest with a NUL": b'[tool.vxds]\nmanifest = "datasets.yaml\\u0000"\n',
    "locks with a NUL": b'[tool.vxds]\nlocks = "locks\\u0000"\n',
    "source with a NUL": b'[tool.vxds]\nsource = "./data\\u0000"\n',
    "a key twice": b'[tool.vxds]\nsource = "./data"\nsource = "./other"\n',
    "nested 20,000 deep": b"[tool.vxds]\n[other]\nx = " + b"[" * DEEP + b"]" * DEEP + b"\n",
    "storage is a string": b'[tool.vxds]\nstorage = "s3"\n',
    "an unknown key": b'[tool.vxds]\nsource = "./data"\nsorce = "./data"\n',
    "not UTF-8": b'[tool.vxds]\nsource = "\xff"\n',
}


@pytest.mark.parametrize("pyproject", sorted(HOSTILE_PYPROJECTS))
@pytest.mark.parametrize("args", [["list"], ["verify", "--manifest-only"], ["lock", "--all"]], ids=" ".join)
def test_a_hostile_pyproject_is_one_line_and_exit_2(tiny: Path, pyproject: str, args: list[str]) -> None:
    (tiny / "pyproject.toml").write_bytes(HOSTILE_PYPROJECTS[pyproject])
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {tiny / 'pyproject.toml'}: "), result.output
    assert result.output.count("\n") == 1, result.output
    assert len(result.output) < 300 + len(str(tiny))
    assert not (tiny / "locks").exists()


def test_an_unreadable_pyproject_below_the_project_is_one_line(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looking for the project's root reads every pyproject.toml on the way up."""
    (tiny / "sub").mkdir()
    (tiny / "sub/pyproject.toml").write_bytes(b"# \xff\n[tool.vxds]\n")
    monkeypatch.chdir(tiny / "sub")
    result = run("list")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {tiny / 'sub/pyproject.toml'}: cannot read: "), result.output
    assert result.output.count("\n") == 1, result.output


TOML_FRAGMENTS = [
    "[tool.vxds]", "[tool]", "[tool.vxds.storage]", "tool", "vxds", "manifest", "locks", "source",
    "storage", " = ", "=", "\n", '"', "'", "[", "]", "{", "}", ",", ".", "1", "0x" + "f" * 40,
    "99999999999999999999999", "2020-13-45", "25:99:99", "inf", "nan", "true", '"\\u0000"',
    '"./data"', '"""', "#", "\\", "\x00", "\ufeff", "\r",
]  # fmt: skip
tomlish = st.lists(st.sampled_from(TOML_FRAGMENTS) | st.text(max_size=3), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=tomlish.map(str.encode) | st.binary(max_size=200))
@example(data=HOSTILE_PYPROJECTS["nested 20,000 deep"])
@example(data=HOSTILE_PYPROJECTS["tool is an integer"])
@example(data=HOSTILE_PYPROJECTS["manifest of 5000 hex digits"])
@example(data=HOSTILE_PYPROJECTS["source with a NUL"])
@example(data=b'[tool.vxds]\n"a\\nb" = 1\n')
def test_any_pyproject_is_a_config_or_one_line(sandbox: Path, data: bytes) -> None:
    pyproject = sandbox / "pyproject.toml"
    pyproject.write_bytes(data)
    started = time.monotonic()
    try:
        config = load_config(sandbox)
    except ConfigError as exc:
        assert str(exc).startswith(f"{pyproject}: ")
        assert "\n" not in str(exc)
    else:  # what a Config holds is what the rest of vxds can use
        assert all("\0" not in str(path) for path in (config.manifest, config.locks))
        assert config.source is None or (isinstance(config.source, str) and "\0" not in config.source)
        assert isinstance(config.storage, dict)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!!int abc", "error: --param x:1: cannot read 'abc' as !!int"),
        ("!!python/object/apply:os.system [ls]", "error: --param x:1: the tag !!python/object/apply"),
        ("[" * 200 + "]" * 200, "error: --param x:1:"),
    ],
)
def test_a_hostile_param_is_one_line_and_exit_2(tiny: Path, value: str, expected: str) -> None:
    result = run("lock", "--file", "recipes/demo.py", "--source", "data", "--param", f"x={value}")
    assert result.exit_code == 2
    assert result.output.startswith(expected)
    assert result.output.count("\n") == 1
    assert not (tiny / "resources.all.jsonl").exists()
