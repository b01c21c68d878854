"""Recipes: the decorator, finding them in a script, and running one.

A recipe is a function marked with ``@vxds.recipe()`` that takes a client (and keyword
parameters from the manifest) and returns ``{split: [Resource | dict, ...]}``.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, TypeVar, overload

from vxds.errors import RecipeError
from vxds.hashing import digest_bytes

F = TypeVar("F", bound=Callable[..., Any])
MARK = "__vxds_recipe__"
MAX_FRAMES = 5


@overload
def recipe(func: F) -> F: ...


@overload
def recipe(func: None = None, *, name: str | None = None) -> Callable[[F], F]: ...


def recipe(func: Any = None, *, name: str | None = None) -> Any:
    """Mark a function as a dataset recipe; usable as ``@recipe`` or ``@recipe()``."""

    def mark(f: F) -> F:
        setattr(f, MARK, name or f.__name__)
        return f

    return mark(func) if callable(func) else mark


dataset_compilation_entrypoint = recipe  # the seed's name, so existing recipes run unchanged


def _recipe_frames(tb: TracebackType | None, script: Path) -> str:
    """The last frames of a traceback that belong to the recipe script itself."""
    frames = [f for f in traceback.extract_tb(tb) if Path(f.filename).resolve() == script]
    lines = []
    for frame in frames[-MAX_FRAMES:]:
        lines.append(f"  {frame.filename}:{frame.lineno} in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line}")
    return "\n".join(lines)


def _failure(what: str, exc: BaseException, script: Path) -> RecipeError:
    frames = _recipe_frames(exc.__traceback__, script)
    detail = f"{type(exc).__name__}: {exc}"
    return RecipeError(f"{what} raised {detail}" + (f"\n{frames}" if frames else ""))


def load_script(script: Path, *, label: str | None = None) -> ModuleType:
    """Import a recipe script under a private module name; errors name the script and line."""
    script = script.resolve()
    label = label or str(script)
    if not script.is_file():
        raise RecipeError(f"{label}: recipe script {script} does not exist")
    module_name = "vxds_recipe_" + digest_bytes(str(script).encode())[7:23]
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise RecipeError(f"{label}: cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(script.parent))  # let a recipe import its neighbours
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise RecipeError(f"{label}: {script}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise _failure(f"{label}: importing {script}", exc, script) from None
    finally:
        sys.path.remove(str(script.parent))
        sys.modules.pop(module_name, None)
    return module


def find_recipes(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The recipes defined in a module, by name."""
    found = {}
    for value in vars(module).values():
        name = getattr(value, MARK, None)
        if callable(value) and isinstance(name, str):
            found[name] = value
    return found


def choose(module: ModuleType, entrypoint: str | None, *, label: str, script: Path) -> Callable[..., Any]:
    recipes = find_recipes(module)
    if entrypoint is not None:
        if entrypoint in recipes:
            return recipes[entrypoint]
        known = ", ".join(sorted(recipes)) or "none"
        raise RecipeError(
            f"{label}: {script} has no recipe {entrypoint!r} (recipes: {known})",
            hint="mark the function with @vxds.recipe()",
        )
    if len(recipes) == 1:
        return next(iter(recipes.values()))
    if not recipes:
        raise RecipeError(f"{label}: {script} defines no recipe", hint="mark a function with @vxds.recipe()")
    raise RecipeError(
        f"{label}: {script} has several recipes ({', '.join(sorted(recipes))});"
        " set 'entrypoint' to choose one"
    )


def run(func: Callable[..., Any], client: Any, params: Mapping[str, Any], *, label: str, script: Path) -> Any:
    """Call a recipe with its client and params, turning failures into ``RecipeError``."""
    try:
        inspect.signature(func).bind(client, **params)
    except TypeError as exc:
        raise RecipeError(
            f"{label}: the recipe {func.__name__}() does not accept these params: {exc}"
        ) from None
    try:
        return func(client, **params)
    except Exception as exc:
        raise _failure(f"{label}: recipe {func.__name__}() in {script}", exc, script.resolve()) from None
