"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vxds.cli.output import FORMAT, QUIET, VERBOSE
from vxds.errors import UsageError

if TYPE_CHECKING:
    from vxds.project.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def _remember_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    ctx.meta[FORMAT] = value  # so an error is JSON too (vxds.cli.main)
    return value


def _or_global(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback making a subcommand's flag also true when given before it (``vxds -q lock``)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return bool(value or ctx.meta.get(key))

    return callback


root_option = click.option(
    "--root",
    "-C",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project folder (default: found from the current folder upwards).",
)

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    callback=_remember_format,
    help="Output format.",
)

quiet_option = click.option(
    "--quiet",
    "-q",
    is_flag=True,
    callback=_or_global(QUIET),
    help="Print errors only; no progress bar (also: vxds -q COMMAND).",
)

verbose_option = click.option(
    "--verbose",
    "-v",
    is_flag=True,
    callback=_or_global(VERBOSE),
    help="Say whether each recipe ran (and why) or was skipped (also: vxds -v COMMAND).",
)

jobs_option = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel threads that read, hash and copy bytes (default: automatic).",
)


executor_option = click.option(
    "--executor",
    metavar="URL",
    default=None,
    help="Where per-object work runs: local (default) or a Dask scheduler, tcp://HOST:PORT"
    " (default: [tool.vxds.executor] url; docs/scale.md).",
)


def with_executor(config: Config, url: str | None) -> Config:
    """``config`` with ``--executor`` in place of ``[tool.vxds.executor] url`` when given; a
    cluster is reached now, so one that cannot be is one error, before any work starts."""
    import dataclasses

    from vxds.executor import check_url, for_url

    if url is not None:
        config = dataclasses.replace(config, executor=check_url(url))
    for_url(config.executor).connect()
    return config


def by_option(func: F) -> F:
    decorated: F = click.option(
        "--by",
        "by",
        multiple=True,
        metavar="FIELD",
        help="Also count by this field, e.g. attrs.site (repeatable).",
    )(func)
    return decorated


# --- which options go together -------------------------------------------------------------
#
# A command states its rules with these instead of chains of ``if a and (b or c)``. An option
# counts as given when its value is set and differs from its default, so ``-o .`` where the
# default is ``.`` is not "given".


def given(ctx: click.Context, name: str) -> bool:
    """True when the parameter ``name`` (its Python name) has a value other than its default."""
    value = ctx.params.get(name)
    if value is None or value is False or value == ():
        return False
    param = next(p for p in ctx.command.params if p.name == name)
    return bool(value != param.get_default(ctx))


def refuse_together(ctx: click.Context, name: str, others: Sequence[str], message: str) -> None:
    """``UsageError(message)`` when ``name`` and any of ``others`` are both given."""
    if given(ctx, name) and any(given(ctx, other) for other in others):
        raise UsageError(message)


def require_one(ctx: click.Context, names: Sequence[str], message: str) -> None:
    """``UsageError(message)`` when none of ``names`` is given."""
    if not any(given(ctx, name) for name in names):
        raise UsageError(message)


def only_with(
    ctx: click.Context, owner: str, names: Sequence[str], message: str, *, hint: str | None = None
) -> None:
    """``UsageError(message)`` when any of ``names`` is given without ``owner``."""
    if not given(ctx, owner) and any(given(ctx, name) for name in names):
        raise UsageError(message, hint=hint)
