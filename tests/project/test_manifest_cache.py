"""vxds/project/manifest.py's ``.vxds/manifest-cache``: a text read before is not parsed again,
and what a load returns or reports is the same with the cache as without it."""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import EXAMPLE_TOOL, example_project
from vxds.errors import ManifestError
from vxds.project import yaml_loader
from vxds.project.manifest import Manifest, load_manifest

CACHE = "manifest-cache"


def _outcome(path: Path, **kwargs: Any) -> Manifest | tuple[str, ...]:
    """The manifest a load gives, or the problems it reports (and its hint)."""
    try:
        return load_manifest(path, **kwargs)
    except ManifestError as exc:
        return (*exc.problems, f"hint: {exc.hint}")


def _unparsed(path: Path, **kwargs: Any) -> Manifest:
    """A load that must not read YAML: the composer fails if it is called."""

    def fail(*args: object) -> None:
        raise AssertionError("the manifest was parsed again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yaml_loader, "compose", fail)
        return load_manifest(path, **kwargs)


# --- generated manifests, valid and invalid -------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats()  # nan and inf included: refused by the reader
    | st.text(max_size=8)
    | st.dates()  # a YAML date: valid as a param, but never cached
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_PARAMS = st.dictionaries(st.sampled_from(["k", "n", "deep", "test_every"]), _VALUES, max_size=3)
# Values the schema accepts, and (in _WRONG) some it refuses: a few entries hold one.
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "description": st.text(max_size=10),
    "script_location": st.sampled_from(["recipes/r.py", "./recipes/r.py", "recipes/missing.py"]),
    "entrypoint": st.sampled_from(["main", "other"]),
    "source": st.sampled_from(["./data", "s3://bucket/x"]),
    "params": _PARAMS,
    "group_by": st.sampled_from(["attrs.subject", "path"]),
    "held_out": st.lists(st.sampled_from(["test", "val", "train"]), max_size=2),
    "allow_group_overlap": st.booleans(),
    "frozen": st.booleans(),
    "refresh": st.sampled_from(["auto", "always"]),
}
_WRONG: dict[str, st.SearchStrategy[Any]] = {
    "name": st.just("Bad Name"),
    "version": st.sampled_from([0, "one"]),
    "description": st.integers(),
    "params": st.just([1]),
    "held_out": st.just("test"),
    "refresh": st.just("sometimes"),
    "import": st.fixed_dictionaries({"url": st.just("https://example.com/r.git"), "name": st.just("x")}),
    "unknown": st.just(1),
}


@st.composite
def _entry(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if draw(st.integers(0, 19)):  # mostly a name and a version: a few entries lack one
        entry["name"] = draw(st.sampled_from(["a", "b", "viseg"]))
    if draw(st.integers(0, 19)):
        entry["version"] = draw(st.integers(1, 3))
    if draw(st.integers(0, 19)):
        entry["script_location"] = draw(_FIELDS["script_location"])
    for name in draw(st.lists(st.sampled_from(sorted(_FIELDS)), max_size=5, unique=True)):
        entry[name] = draw(_FIELDS[name])
    if not draw(st.integers(0, 7)):
        name = draw(st.sampled_from(sorted(_WRONG)))
        entry[name] = draw(_WRONG[name])
    return entry


@st.composite
def _manifest_text(draw: st.DrawFn) -> str:
    entries = draw(st.lists(_entry(), max_size=4))
    data: Any = entries
    if draw(st.booleans()):
        shared = ["source", "params", "group_by", "held_out", "refresh"]
        names = draw(st.lists(st.sampled_from(shared), max_size=3, unique=True))
        data = {"defaults": {name: draw(_FIELDS[name]) for name in names}, "datasets": entries}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    edit = draw(st.sampled_from(["none"] * 6 + ["duplicate key", "bad yaml", "empty"]))
    if edit == "duplicate key" and "  version:" in text:
        text = text.replace("  version:", "  version: 1\n  version:", 1)
    elif edit == "bad yaml":
        text += "- [unclosed\n"
    elif edit == "empty":
        text = ""
    return text


def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="manifest-cache-", dir="/tmp"))
    (folder / "recipes").mkdir()
    (folder / "recipes" / "r.py").write_text("", encoding="utf-8")
    return folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_manifest_text(), require_scripts=st.booleans(), default_source=st.sampled_from([None, "./src"]))
def test_the_cached_load_is_the_parsed_load(
    text: str, require_scripts: bool, default_source: str | None
) -> None:
    import shutil

    folder = _folder()
    try:
        path = folder / "datasets.yaml"
        path.write_text(text, encoding="utf-8")
        kwargs: dict[str, Any] = {"require_scripts": require_scripts, "default_source": default_source}
        parsed = _outcome(path, **kwargs)
        cached = [_outcome(path, cache_dir=folder / ".vxds", **kwargs) for _ in range(3)]
        assert cached == [parsed] * 3
        if isinstance(parsed, Manifest) and _holds_only_json(yaml.safe_load(text)):
            assert _unparsed(path, cache_dir=folder / ".vxds", **kwargs) == parsed
    finally:
        shutil.rmtree(folder)


def _holds_only_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_holds_only_json(item) for item in value.values())
    if isinstance(value, list):
        return all(_holds_only_json(item) for item in value)
    return not isinstance(value, datetime.date) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


# --- values a JSON round trip would change --------------------------------------------------


@pytest.mark.parametrize("value", ["2024-05-01", "18446744073709551615", '"\\ud800"', "2024-05-01T10:00:00"])
def test_values_json_would_change_are_parsed_every_time(tmp_path: Path, value: str) -> None:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.py").write_text("", encoding="utf-8")
    path = tmp_path / "datasets.yaml"
    path.write_text(f"- name: a\n  version: 1\n  script_location: recipes/r.py\n  params: {{v: {value}}}\n")
    expected = _outcome(path)
    for _ in range(2):
        assert _outcome(path, cache_dir=tmp_path / ".vxds") == expected
    if isinstance(expected, Manifest):  # a date stays a date, a lone surrogate stays one
        kept = expected.entries[0].params["v"]
        assert isinstance(kept, datetime.date) or kept == "\ud800"
        with pytest.raises(AssertionError, match="parsed again"):
            _unparsed(path, cache_dir=tmp_path / ".vxds")
    else:
        assert "datasets.yaml:4:" in expected[0]


def test_a_nan_is_reported_on_both_calls(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text("- name: a\n  version: 1\n  script_location: r.py\n  params: {v: .nan}\n")
    for _ in range(2):
        with pytest.raises(ManifestError, match=r"datasets.yaml:4: field 'v': \.nan is not a finite number"):
            load_manifest(path, cache_dir=tmp_path / ".vxds", require_scripts=False)


def test_floats_ints_and_bools_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(
        "- name: a\n  version: 1\n  script_location: r.py\n  params: {f: 1.0, i: 1, b: true, n: -0.0}\n"
    )
    first = load_manifest(path, cache_dir=tmp_path / ".vxds", require_scripts=False)
    second = _unparsed(path, cache_dir=tmp_path / ".vxds", require_scripts=False)
    assert second == first
    kinds = {key: type(value) for key, value in second.entries[0].params.items()}
    assert kinds == {"f": float, "i": int, "b": bool, "n": float}
    assert math.copysign(1, second.entries[0].params["n"]) == -1


# --- a damaged cache is an empty one --------------------------------------------------------

SIMPLE = (
    "- name: a\n  version: 1\n  script_location: r.py\n\n- name: b\n  version: 2\n  script_location: r.py\n"
)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not json",
        b"[]",
        b'{"version": 99, "texts": {}}',
        b'{"version": 1, "texts": []}',
        b'{"version": 1, "texts": {"KEY": {"data": [{"name": "z"}], "lines": [1]}}}',
        b'{"version": 1, "texts": {"KEY": {"data": [{"name": "z"}], "lines": [1], "check": "x"}}}',
        b'{"version": 1, "texts": {"KEY": 5}}',
        b"\xff\xfe",
    ],
)
def test_a_damaged_cache_is_ignored(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(SIMPLE)
    cache = tmp_path / ".vxds"
    expected = load_manifest(path, require_scripts=False)
    load_manifest(path, cache_dir=cache, require_scripts=False)
    key = next(iter(__import__("orjson").loads((cache / CACHE).read_bytes())["texts"]))
    (cache / CACHE).write_bytes(damage.replace(b"KEY", key.encode()))
    assert load_manifest(path, cache_dir=cache, require_scripts=False) == expected
    assert _unparsed(path, cache_dir=cache, require_scripts=False) == expected  # and rewritten


def test_a_cache_that_cannot_be_written_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(SIMPLE)
    (tmp_path / "file").write_text("")
    blocked = tmp_path / "file" / ".vxds"  # a folder under a file cannot be made
    expected = load_manifest(path, require_scripts=False)
    for _ in range(2):
        assert load_manifest(path, cache_dir=blocked, require_scripts=False) == expected


def test_a_problem_outside_the_text_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text(SIMPLE)
    (tmp_path / "r.py").write_text("")
    cache = tmp_path / ".vxds"
    load_manifest(path, cache_dir=cache)
    (tmp_path / "r.py").unlink()  # the text is the same; its script is gone
    for _ in range(2):
        with pytest.raises(ManifestError, match=r"datasets.yaml:7: dataset b@2: field 'script_location'"):
            load_manifest(path, cache_dir=cache)


def test_several_texts_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    cache = tmp_path / ".vxds"
    texts = {version: SIMPLE.replace("version: 2", f"version: {version}") for version in (2, 3)}
    for text in texts.values():
        path.write_text(text)
        load_manifest(path, cache_dir=cache, require_scripts=False)
    for version, text in texts.items():  # a Git revision's text and the working tree's, alternately
        path.write_text(text)
        assert _unparsed(path, cache_dir=cache, require_scripts=False).entries[1].version == version


# --- through the real CLI -------------------------------------------------------------------


def _vxds(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "vxds"  # the installed console script
    return subprocess.run(
        [sys.executable, "-X", "importtime", str(script), *args], cwd=project, capture_output=True, text=True
    )


def _imports_yaml(run: subprocess.CompletedProcess[str]) -> bool:
    modules = [
        line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")
    ]
    assert "vxds.cli.main" in modules  # -X importtime did report
    return any(name == "yaml" or name.startswith(("yaml.", "vxds.project.yaml_loader")) for name in modules)


def test_a_second_verify_imports_no_yaml_and_an_edit_is_parsed_again(tmp_path: Path) -> None:
    project = example_project(tmp_path / "project", pyproject=EXAMPLE_TOOL, locks=True)
    first = _vxds(project, "verify")
    assert _imports_yaml(first)
    second = _vxds(project, "verify")
    assert (second.returncode, second.stdout) == (first.returncode, first.stdout)
    assert not _imports_yaml(second)
    assert not _imports_yaml(_vxds(project, "list"))
    manifest = project / "datasets.yaml"
    lines = manifest.read_text().splitlines(keepends=True)
    assert lines[11] == "  version: 2\n"
    lines[11] = "  version: x\n"  # one byte
    manifest.write_text("".join(lines))
    for _ in range(2):
        edited = _vxds(project, "verify")
        assert edited.returncode == 1  # verify reports a manifest's problem as a finding
        problem = "datasets.yaml:12: dataset 'viseg_training': field 'version' must be an integer"
        assert f"error   VX101 {problem}, got 'x'" in edited.stdout
        assert "Traceback" not in edited.stderr
