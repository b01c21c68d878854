"""vxds/recipes/decorator.py: the decorator, finding recipes in a script, running one."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import vxds
from vxds.errors import RecipeError
from vxds.recipes.decorator import choose, find_recipes, load_script, recipe, run

FORMS = """\
import vxds


@vxds.recipe
def bare(client):
    return {"all": []}


@vxds.recipe()
def called(client, n=1):
    return {"all": [n]}


@vxds.dataset_compilation_entrypoint()
def seed_style(client):
    return {"all": ["seed"]}


@vxds.recipe(name="renamed")
def original(client):
    return {"all": ["renamed"]}


def helper(client):
    return None
"""

FAILING = """\
import vxds


def deep(x):
    return 1 / x


@vxds.recipe()
def boom(client):
    value = 0
    return deep(value)
"""


def _script(tmp_path: Path, text: str, name: str = "recipe.py") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _module(tmp_path: Path, text: str) -> tuple[ModuleType, Path]:
    script = _script(tmp_path, text)
    return load_script(script, label="dataset x@1"), script


def test_decorator_forms_mark_functions() -> None:
    def plain(client: Any) -> dict[str, list[Any]]:
        return {}

    assert recipe(plain) is plain
    assert plain.__vxds_recipe__ == "plain"  # type: ignore[attr-defined]
    assert vxds.recipe is recipe
    assert vxds.dataset_compilation_entrypoint is recipe


def test_find_every_form(tmp_path: Path) -> None:
    module, _ = _module(tmp_path, FORMS)
    assert sorted(find_recipes(module)) == ["bare", "called", "renamed", "seed_style"]


def test_entrypoint_chooses_and_params_are_passed(tmp_path: Path) -> None:
    module, script = _module(tmp_path, FORMS)
    func = choose(module, "called", label="L", script=script)
    assert run(func, object(), {"n": 5}, label="L", script=script) == {"all": [5]}
    renamed = choose(module, "renamed", label="L", script=script)
    assert run(renamed, object(), {}, label="L", script=script) == {"all": ["renamed"]}


def test_a_single_recipe_needs_no_entrypoint(tmp_path: Path) -> None:
    module, script = _module(tmp_path, FAILING.replace("boom", "only"))
    assert choose(module, None, label="L", script=script).__name__ == "only"


def test_several_recipes_without_entrypoint(tmp_path: Path) -> None:
    module, script = _module(tmp_path, FORMS)
    with pytest.raises(
        RecipeError,
        match=r"several recipes \(bare, called, renamed, seed_style\);"
        " set 'entrypoint'",
    ):
        choose(module, None, label="L", script=script)


def test_unknown_entrypoint_lists_the_recipes(tmp_path: Path) -> None:
    module, script = _module(tmp_path, FORMS)
    with pytest.raises(
        RecipeError, match=r"has no recipe 'helper' \(recipes: bare, called, renamed, seed_style\)"
    ):
        choose(module, "helper", label="L", script=script)


def test_no_recipe(tmp_path: Path) -> None:
    module, script = _module(tmp_path, "def helper(client):\n    return {}\n")
    with pytest.raises(RecipeError, match="defines no recipe") as info:
        choose(module, None, label="L", script=script)
    assert info.value.hint is not None
    assert "@vxds.recipe()" in info.value.hint


def test_missing_script(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"dataset x@1: recipe script .*nope\.py does not exist"):
        load_script(tmp_path / "nope.py", label="dataset x@1")


def test_import_error_names_script_and_line(tmp_path: Path) -> None:
    script = _script(tmp_path, "import vxds\n\nraise ValueError('no good')\n")
    with pytest.raises(RecipeError) as info:
        load_script(script, label="dataset x@1")
    message = str(info.value)
    assert message.startswith(f"dataset x@1: importing {script} raised ValueError: no good")
    assert f"{script}:3 in <module>" in message
    assert "raise ValueError('no good')" in message


def test_syntax_error_names_script_and_line(tmp_path: Path) -> None:
    script = _script(tmp_path, "import vxds\n\ndef broken(:\n    pass\n")
    with pytest.raises(RecipeError, match=rf"{script}:3: syntax error"):
        load_script(script, label="L")


def test_recipe_exception_names_the_recipe_frames(tmp_path: Path) -> None:
    module, script = _module(tmp_path, FAILING)
    func = choose(module, None, label="dataset x@1", script=script)
    with pytest.raises(RecipeError) as info:
        run(func, object(), {}, label="dataset x@1", script=script)
    message = str(info.value)
    assert message.startswith(
        f"dataset x@1: recipe boom() in {script} raised ZeroDivisionError: division by zero"
    )
    lines = message.splitlines()[1:]
    assert lines == [
        f"  {script}:11 in boom",
        "    return deep(value)",
        f"  {script}:5 in deep",
        "    return 1 / x",
    ]
    assert "vxds/recipes/decorator.py" not in message


def test_bad_params(tmp_path: Path) -> None:
    module, script = _module(tmp_path, FORMS)
    func = choose(module, "called", label="L", script=script)
    with pytest.raises(RecipeError, match=r"the recipe called\(\) does not accept these params: .*'colour'"):
        run(func, object(), {"colour": "red"}, label="L", script=script)


def test_loading_leaves_no_trace_in_sys(tmp_path: Path) -> None:
    modules, path = set(sys.modules), list(sys.path)
    _module(tmp_path, FORMS)
    assert set(sys.modules) - modules <= {"vxds"}
    assert sys.path == path


def test_a_recipe_may_import_its_neighbours(tmp_path: Path) -> None:
    _script(tmp_path, "VALUE = 42\n", "neighbour_for_vxds_test.py")
    module, script = _module(
        tmp_path,
        "import vxds\nimport neighbour_for_vxds_test\n\n"
        "@vxds.recipe\ndef r(client):\n"
        "    return {'all': [neighbour_for_vxds_test.VALUE]}\n",
    )
    sys.modules.pop("neighbour_for_vxds_test", None)
    assert run(choose(module, None, label="L", script=script), None, {}, label="L", script=script) == {
        "all": [42]
    }


LAZY = """\
import vxds


@vxds.recipe()
def lazy(client, n, fail_at=None):
    def items():
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"item {i} is bad")
            print("yielding", i)  # recipe code reading a split prints to stderr, not stdout
            yield {"id": f"x/{i:03d}", "version": 1}

    return {"all": items()}
"""


@pytest.mark.parametrize("n", [0, 6, 7, 8, 23])
def test_a_split_iterator_is_read_in_batches_giving_every_item_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], n: int
) -> None:
    from vxds.recipes import decorator

    monkeypatch.setattr(decorator, "READ_BATCH", 7)
    script = _script(tmp_path, LAZY)
    func = choose(load_script(script), None, label="x", script=script)
    output = run(func, None, {"n": n}, label="x", script=script)
    assert [item["id"] for item in output["all"]] == [f"x/{i:03d}" for i in range(n)]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("yielding") == n


@pytest.mark.parametrize("fail_at", [0, 6, 7, 15])
def test_a_split_iterator_that_raises_in_any_batch_is_a_recipe_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    from vxds.recipes import decorator

    monkeypatch.setattr(decorator, "READ_BATCH", 7)
    script = _script(tmp_path, LAZY)
    func = choose(load_script(script), None, label="x", script=script)
    output = run(func, None, {"n": 20, "fail_at": fail_at}, label="x", script=script)
    with pytest.raises(RecipeError, match=f"reading split 'all', raised ValueError: item {fail_at} is bad"):
        list(output["all"])
