"""vxds/project/manifest.py: both manifest forms, and errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from vxds.errors import ManifestError, NotFoundError, UsageError
from vxds.project import manifest as manifest_module
from vxds.project.manifest import DEFAULT_HELD_OUT, Manifest, load_manifest, parse_spec


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.py").write_text("", encoding="utf-8")
    return tmp_path


def _load(folder: Path, text: str, **kwargs: object) -> Manifest:
    path = folder / "datasets.yaml"
    path.write_text(text, encoding="utf-8")
    return load_manifest(path, **kwargs)  # type: ignore[arg-type]


def _problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        _load(folder, text)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


LIST_FORM = """\
# comment
- name: viseg
  version: 1
  description: first
  script_location: ./recipes/r.py

- name: viseg
  version: 2
  script_location: recipes/r.py
  entrypoint: other
  source: ./elsewhere
  params: {k: 1}
  group_by: attrs.subject
  held_out: [test]
  allow_group_overlap: true
"""


def test_list_form(folder: Path) -> None:
    manifest = _load(folder, LIST_FORM, default_source="./data")
    first, second = manifest.entries
    assert (first.key, first.line, first.description) == ("viseg@1", 2, "first")
    assert first.script == (folder / "recipes" / "r.py").resolve()
    assert (first.source, first.entrypoint, first.group_by) == ("./data", None, None)
    assert (first.params, first.held_out, first.allow_group_overlap) == (
        {},
        DEFAULT_HELD_OUT,
        False,
    )
    assert (second.key, second.line, second.entrypoint, second.source) == (
        "viseg@2",
        7,
        "other",
        "./elsewhere",
    )
    assert (dict(second.params), second.group_by, second.held_out) == (
        {"k": 1},
        "attrs.subject",
        ("test",),
    )
    assert second.allow_group_overlap is True
    assert manifest.names() == ["viseg"]
    assert manifest.versions("viseg") == [1, 2]


MAPPING_FORM = """\
defaults:
  source: ./shared
  params: {a: 1, b: 2}
  group_by: attrs.subject
datasets:
  - name: one
    version: 1
    script_location: ./recipes/r.py
    params: {b: 3, c: 4}
  - name: two
    version: 1
    script_location: ./recipes/r.py
    source: ./own
    group_by: attrs.site
"""


def test_mapping_form_applies_defaults_and_merges_params(folder: Path) -> None:
    one, two = _load(folder, MAPPING_FORM, default_source="./fallback").entries
    assert dict(one.params) == {"a": 1, "b": 3, "c": 4}
    assert (one.source, one.group_by, one.line) == ("./shared", "attrs.subject", 6)
    assert dict(two.params) == {"a": 1, "b": 2}
    assert (two.source, two.group_by, two.line) == ("./own", "attrs.site", 10)


def test_empty_manifest_has_no_entries(folder: Path) -> None:
    assert _load(folder, "# nothing yet\n").entries == ()
    assert _load(folder, "datasets: []\n").entries == ()


def test_entry_digest_ignores_description_only(folder: Path) -> None:
    base = _load(folder, LIST_FORM).entries[1]
    described = _load(folder, LIST_FORM.replace("version: 2\n", "version: 2\n  description: new words\n"))
    assert described.entries[1].digest() == base.digest()
    for old, new in [
        ("{k: 1}", "{k: 2}"),
        ("[test]", "[val]"),
        ("entrypoint: other", "entrypoint: x"),
        ("allow_group_overlap: true", "allow_group_overlap: false"),
        ("./elsewhere", "./other"),
        ("attrs.subject", "attrs.site"),
    ]:
        changed = _load(folder, LIST_FORM.replace(old, new)).entries[1]
        assert changed.digest() != base.digest(), (old, new)


def test_entry_digest_does_not_depend_on_how_the_script_path_is_spelled(folder: Path) -> None:
    plain = _load(folder, LIST_FORM).entries[1]
    dotted = _load(
        folder,
        LIST_FORM.replace("script_location: recipes/r.py", "script_location: ./recipes/r.py"),
    )
    assert dotted.entries[1].digest() == plain.digest()


# --- errors: file, line, field -----------------------------------------------------------

ENTRY = "- name: a\n  version: 1\n  script_location: ./recipes/r.py\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ENTRY + "  colour: blue\n",
            ":4: dataset 'a': unknown key 'colour'; expected one of: name, version, description",
        ),
        (
            ENTRY.replace("version: 1", "version: one"),
            ":2: dataset 'a': field 'version' must be an integer, got 'one'",
        ),
        (
            ENTRY.replace("version: 1", "version: 0"),
            ":2: dataset 'a': field 'version' must be a positive integer, got 0",
        ),
        (
            ENTRY.replace("version: 1", "version: true"),
            ":2: dataset 'a': field 'version' must be an integer, got True",
        ),
        (
            ENTRY.replace("name: a", "name: Viseg"),
            ":1: dataset 'Viseg': field 'name' must match ^[a-z0-9_-]+$ (Lower-case letters",
        ),
        (ENTRY + "  params: 5\n", ":4: dataset 'a': field 'params' must be a mapping, got 5"),
        (ENTRY + "  group_by: attrs..x\n", ":4: dataset 'a': field 'group_by' must match"),
        (
            ENTRY + "  allow_group_overlap: 1\n",
            ":4: dataset 'a': field 'allow_group_overlap' must be true or false",
        ),
        (ENTRY + "  held_out: [a b]\n", ":4: dataset 'a': field 'held_out' must match"),
        (ENTRY + "  source: ''\n", ":4: dataset 'a': field 'source' must not be empty"),
        (
            ENTRY + "- version: 1\n  script_location: ./recipes/r.py\n",
            ":4: entry 2: missing required field 'name'",
        ),
        ("- name: a\n  version: 1\n", ":1: dataset 'a': missing required field 'script_location'"),
        (
            ENTRY + "- name: a\n  version: 1\n  script_location: ./recipes/r.py\n",
            ":4: dataset a@1 is declared twice (first at line 1)",
        ),
        (
            ENTRY.replace("r.py", "missing.py"),
            ":3: dataset a@1: field 'script_location': script './recipes/missing.py' does not exist",
        ),
        (
            ENTRY + "  params: {x: !!set {a}}\n",
            ":4: dataset a@1: field 'params' must hold plain JSON values",
        ),
        (ENTRY + "  params: {a: 1\n", ":5: not valid YAML: expected ',' or '}'"),
        (
            "- name: a\n  version: 1\n   script_location: x\n",
            ":3: not valid YAML: mapping values are not allowed",
        ),
        (ENTRY + "  name: b\n", ":4: key 'name' repeats (first at line 1)"),
        ("42\n", ":1: the manifest must be a list of datasets or a mapping with a 'datasets' list"),
        (
            "just words\n",
            ":1: the manifest must be a list of datasets or a mapping with a 'datasets' list",
        ),
        ("defaults: {}\n", ":1: top level: missing required field 'datasets'"),
        ("datasets: 3\n", ":1: top level: field 'datasets' must be a list, got 3"),
        ("defaults:\n  colour: red\ndatasets: []\n", ":2: defaults: unknown key 'colour'"),
        (
            "datasets:\n  - name: a\n    version: 1\n    script_location: ./recipes/r.py\n    extra: 1\n",
            ":5: dataset 'a': unknown key 'extra'",
        ),
    ],
    ids=[
        "unknown-key",
        "version-word",
        "version-zero",
        "version-bool",
        "bad-name",
        "params-type",
        "group_by",
        "allow_group_overlap",
        "held_out",
        "empty-source",
        "missing-name",
        "missing-script-field",
        "duplicate",
        "missing-script",
        "params-not-json",
        "invalid-yaml",
        "bad-indent",
        "duplicate-yaml-key",
        "scalar-top",
        "string-top",
        "no-datasets",
        "datasets-not-list",
        "unknown-default",
        "mapping-unknown-key",
    ],
)
def test_every_error_names_file_line_and_field(folder: Path, text: str, expected: str) -> None:
    problems = _problems(folder, text)
    assert len(problems) == 1, problems
    path = str(folder / "datasets.yaml")
    assert problems[0].startswith(path + expected), problems[0]


def test_every_problem_is_reported_at_once(folder: Path) -> None:
    text = """\
- name: Viseg
  version: one
  script_location: ./recipes/r.py
  colour: blue
- name: ok
  version: 0
  script_location: ./recipes/r.py
"""
    where = str(folder / "datasets.yaml")
    problems = [p.removeprefix(where) for p in _problems(folder, text)]
    assert [p.split(": ", 2)[:2] for p in problems] == [
        [":1", "dataset 'Viseg'"],
        [":2", "dataset 'Viseg'"],
        [":4", "dataset 'Viseg'"],
        [":6", "dataset 'ok'"],
    ]
    assert "field 'name'" in problems[0]
    assert "field 'version'" in problems[1]
    assert "unknown key 'colour'" in problems[2]
    assert "field 'version'" in problems[3]


def test_duplicates_and_missing_scripts_are_reported_together(folder: Path) -> None:
    text = (
        ENTRY + ENTRY.replace("r.py", "gone.py") + ENTRY.replace("name: a", "name: b").replace("r.py", "x.py")
    )
    problems = _problems(folder, text)
    assert [p.split(":", 2)[1] for p in problems] == ["4", "6", "9"]
    assert "declared twice" in problems[0]
    assert "gone.py" in problems[1]
    assert "x.py" in problems[2]


def test_missing_scripts_allowed_when_not_required(folder: Path) -> None:
    manifest = _load(folder, ENTRY.replace("r.py", "later.py"), require_scripts=False)
    assert manifest.entries[0].script.name == "later.py"


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found") as info:
        load_manifest(tmp_path / "datasets.yaml")
    assert info.value.hint is not None
    assert "vxds init" in info.value.hint


# --- find, select, parse_spec ------------------------------------------------------------


def test_find_and_select(folder: Path) -> None:
    manifest = _load(folder, LIST_FORM)
    assert manifest.find("viseg").version == 2
    assert manifest.find("viseg", 1).version == 1
    assert [e.key for e in manifest.select(["viseg@1", "viseg"])] == ["viseg@1", "viseg@2"]
    with pytest.raises(NotFoundError, match=r"no dataset named 'nope' in datasets.yaml \(datasets: viseg\)"):
        manifest.find("nope")
    with pytest.raises(NotFoundError, match=r"'viseg' has no version 7 in datasets.yaml \(versions: 1, 2\)"):
        manifest.select(["viseg@7"])


@pytest.mark.parametrize(
    ("spec", "parsed"), [("a", ("a", None)), ("a@3", ("a", 3)), ("a-b_c@10", ("a-b_c", 10))]
)
def test_parse_spec(spec: str, parsed: tuple[str, int | None]) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["", "@1", "a@", "a@0", "a@x", "a@1@2", "a@-1"])
def test_parse_spec_refuses(spec: str) -> None:
    with pytest.raises(UsageError, match=repr(spec).replace("(", r"\(")):
        parse_spec(spec)


def test_a_text_that_passed_the_schema_is_not_checked_again(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = _load(folder, LIST_FORM, cache_dir=cache)
    assert (cache / "manifest-cache").is_file()

    def fail(*args: object) -> list[str]:
        raise AssertionError("the schema was checked again")

    monkeypatch.setattr(manifest_module, "schema_problems", fail)
    assert _load(folder, LIST_FORM, cache_dir=cache) == first
    monkeypatch.undo()
    # Any other text is checked in full, and an invalid one is never remembered.
    bad = LIST_FORM.replace("version: 1", "version: one", 1)
    with pytest.raises(ManifestError, match="field 'version' must be an integer"):
        _load(folder, bad, cache_dir=cache)
    with pytest.raises(ManifestError, match="field 'version' must be an integer"):
        _load(folder, bad, cache_dir=cache)
