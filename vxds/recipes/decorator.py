"""Recipes: the decorator, finding them in a script, and running one.

A recipe is a function marked with ``@vxds.recipe()`` that takes a client (and keyword
parameters from the manifest) and returns ``{split: [Resource | dict, ...]}``.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from itertools import chain, islice
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
    if isinstance(exc, SystemExit):
        detail = f"called sys.exit({exc.code!r:.80}) instead of returning"
    else:
        detail = f"raised {type(exc).__name__}: {exc}"
    return RecipeError(f"{what} {detail}" + (f"\n{frames}" if frames else ""))


@contextmanager
def recipe_code(what: str, script: Path) -> Iterator[None]:
    """Run recipe code: any way it ends but returning is a ``RecipeError`` naming ``what``.

    Recipes run in vxds' own process, so ``sys.exit()`` (``SystemExit``) or any other
    ``BaseException`` from them would otherwise end vxds itself, with a success status for
    ``sys.exit(0)``. Ctrl-C (``KeyboardInterrupt``) stays an interrupt. What it prints goes
    to standard error: standard output is for vxds' results (``vxds lock --format json``).
    """
    try:
        with redirect_stdout(sys.stderr):
            yield
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise _failure(what, exc, script) from None


@contextmanager
def escapes(what: str, script: Path) -> Iterator[None]:
    """``recipe_code`` for vxds' own code that calls into what a recipe returned.

    Only what vxds never raises itself (``SystemExit`` and other non-``Exception``s) is blamed
    on the recipe; vxds' own errors pass through.
    """
    try:
        with redirect_stdout(sys.stderr):
            yield
    except (KeyboardInterrupt, Exception):
        raise
    except BaseException as exc:
        raise _failure(what, exc, script) from None


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
        with redirect_stdout(sys.stderr):  # what a script prints at import: see recipe_code
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        where = exc.filename or script
        raise RecipeError(f"{label}: {where}:{exc.lineno}: syntax error: {exc.msg}") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # sys.exit() at import too: see recipe_code
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
    what, script = f"{label}: recipe {func.__name__}() in {script}", script.resolve()
    with recipe_code(what, script):
        output = func(client, **params)
    if type(output) is not dict:
        return output
    return {
        split: _read_lazily(items, f"{what}, reading split {split!r},", script)
        if isinstance(items, Iterator)
        else items
        for split, items in output.items()
    }


READ_BATCH = 4096  # items read from a recipe's iterator under one ``recipe_code`` block


def _read_lazily(items: Iterator[object], what: str, script: Path) -> Iterator[object]:
    """A split given as an iterator (a generator, ``client.query(...)``) runs recipe code while
    it is read, so it is read under ``recipe_code`` too: ``READ_BATCH`` items at a time, as
    entering the block per item cost more than the rest of locking an item."""
    return chain.from_iterable(_batches(items, what, script))


def _batches(items: Iterator[object], what: str, script: Path) -> Iterator[list[object]]:
    while True:
        # Only the reading is guarded: the ``yield`` stays outside, so closing this generator
        # (its GeneratorExit) is not mistaken for the recipe's.
        with recipe_code(what, script):
            batch = list(islice(items, READ_BATCH))
        if not batch:
            return
        yield batch
