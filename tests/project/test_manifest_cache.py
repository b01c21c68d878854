"""``.vxds/manifest``: a manifest parsed before is read without YAML, to the same result."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vxds.errors import ManifestError
from vxds.project import manifest_schema, yaml_loader
from vxds.project.manifest import load_manifest

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.dates(),  # a YAML date: no JSON value, so never remembered
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
entries = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "Bad Name"]), "version": st.sampled_from([1, 2, "one"])},
    optional={
        "script_location": st.sampled_from(["./r.py", "./missing.py"]),
        "params": st.dictionaries(st.sampled_from(["k", "n", "when"]), values, max_size=3),
        "group_by": st.sampled_from(["attrs.subject", 3]),
        "held_out": st.lists(st.sampled_from(["test", "val"]), max_size=2),
        "description": st.text(max_size=10),
        "frozen": st.booleans(),
        "unknown": st.just(1),
    },
)
manifests = st.one_of(
    st.lists(entries, max_size=3),
    st.fixed_dictionaries(
        {"datasets": st.lists(entries, max_size=3)},
        optional={
            "defaults": st.fixed_dictionaries(
                {},
                optional={
                    "params": st.dictionaries(st.sampled_from(["k", "d"]), values, max_size=2),
                    "held_out": st.just(["test"]),
                },
            )
        },
    ),
)


def _outcome(path: Path, **kwargs: Any) -> tuple[str, object]:
    try:
        return "ok", repr(load_manifest(path, **kwargs))  # repr: NaN is not equal to itself
    except ManifestError as exc:
        return "problems", exc.problems


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=manifests, require_scripts=st.booleans())
def test_a_remembered_parse_gives_what_the_yaml_gives(
    tmp_path: Path, data: Any, require_scripts: bool
) -> None:
    folder = tmp_path / "p"
    folder.mkdir(exist_ok=True)
    (folder / "r.py").write_text("")
    path = folder / "datasets.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    cache = folder / ".vxds"
    for stale in cache.glob("*"):
        stale.unlink()
    expected = _outcome(path, require_scripts=require_scripts)
    first = _outcome(path, require_scripts=require_scripts, cache_dir=cache)
    second = _outcome(path, require_scripts=require_scripts, cache_dir=cache)
    assert first == second == expected


LIST = "- name: a\n  version: 1\n  script_location: ./r.py\n  params: {k: 1}\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "r.py").write_text("")
    (tmp_path / "datasets.yaml").write_text(LIST)
    return tmp_path


def _no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("the YAML was parsed")

    monkeypatch.setattr(yaml_loader, "compose", fail)
    monkeypatch.setattr(manifest_schema, "schema_problems", fail)


def test_a_second_load_reads_no_yaml_and_an_edit_is_parsed_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cache = project / "datasets.yaml", project / ".vxds"
    first = load_manifest(path, cache_dir=cache)
    with monkeypatch.context() as patched:
        _no_yaml(patched)
        assert load_manifest(path, cache_dir=cache) == first
    path.write_text(LIST.replace("version: 1", "version: 2"))  # one byte
    assert load_manifest(path, cache_dir=cache).entries[0].version == 2


def test_a_script_gone_since_is_reported_with_its_line(project: Path) -> None:
    path, cache = project / "datasets.yaml", project / ".vxds"
    load_manifest(path, cache_dir=cache)
    (project / "r.py").unlink()
    with pytest.raises(ManifestError) as info:
        load_manifest(path, cache_dir=cache)
    [problem] = info.value.problems
    assert problem.endswith(
        "datasets.yaml:3: dataset a@1: field 'script_location': script './r.py' does not exist"
    )


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b'{"version": 1, "key": 5}',
        b'{"version": 99}',
        b'{"version": 1, "key": null}',
        b"[1, 2]",
    ],
)
def test_a_damaged_cache_is_no_cache(project: Path, content: bytes) -> None:
    path, cache = project / "datasets.yaml", project / ".vxds"
    expected = load_manifest(path)
    cache.mkdir()
    (cache / "manifest").write_bytes(content)
    assert load_manifest(path, cache_dir=cache) == expected
    assert load_manifest(path, cache_dir=cache) == expected


def test_a_cache_lying_about_its_data_is_caught_by_the_key(project: Path) -> None:
    """The key is the text's digest: a cache written for another text is never used."""
    path, cache = project / "datasets.yaml", project / ".vxds"
    load_manifest(path, cache_dir=cache)
    held = json.loads((cache / "manifest").read_bytes())
    held["data"][0]["name"] = "other"  # a cache edited by hand: the key still matches
    (cache / "manifest").write_text(json.dumps(held))
    path.write_text(LIST + "- name: b\n  version: 1\n  script_location: ./r.py\n")
    assert [e.name for e in load_manifest(path, cache_dir=cache)] == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2020-01-02", datetime.date(2020, 1, 2)),
        ("2020-01-02 03:04:05", datetime.datetime(2020, 1, 2, 3, 4, 5)),
        ("[2020-01-02]", [datetime.date(2020, 1, 2)]),
    ],
)
def test_what_json_cannot_hold_is_parsed_every_time(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str, shown: object
) -> None:
    path, cache = project / "datasets.yaml", project / ".vxds"
    path.write_text(LIST.replace("k: 1", f"k: {value}"))
    calls: list[str] = []
    real = yaml_loader.compose

    def counted(*args: Any) -> Any:
        calls.append("compose")
        return real(*args)

    monkeypatch.setattr(yaml_loader, "compose", counted)
    for _ in range(2):
        param = load_manifest(path, cache_dir=cache).entries[0].params["k"]
        assert param == shown
    assert calls == ["compose", "compose"]


RUN = """
import atexit, json, sys
loaded = lambda: sorted(m for m in sys.modules if m.startswith("yaml"))
atexit.register(lambda: sys.stderr.write("\\n" + json.dumps(loaded())))
sys.argv = ["vxds", *sys.argv[1:]]
from vxds.cli.main import main
main()
"""


@pytest.mark.parametrize("argv", [("verify", "--no-exec"), ("list",)])
def test_a_second_command_imports_no_yaml(project: Path, argv: tuple[str, ...]) -> None:
    def run() -> list[str]:
        done = subprocess.run([sys.executable, "-c", RUN, *argv], cwd=project, capture_output=True, text=True)
        assert done.returncode in (0, 1), done.stderr
        loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
        return loaded

    assert "yaml" in run()
    assert run() == []
    (project / "datasets.yaml").write_text(LIST.replace("version: 1", "version: x"))
    done = subprocess.run([sys.executable, "-m", "vxds", *argv], cwd=project, capture_output=True, text=True)
    assert done.returncode == (1 if argv[0] == "verify" else 2)  # verify reports it as a finding
    assert "datasets.yaml:2: dataset 'a': field 'version' must be an integer" in done.stderr + done.stdout
