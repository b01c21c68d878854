"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

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
    help="Output format.",
)

quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print errors only; no progress bar.")

jobs_option = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel hashing threads (default: automatic).",
)


def by_option(func: F) -> F:
    decorated: F = click.option(
        "--by",
        "by",
        multiple=True,
        metavar="FIELD",
        help="Also count by this field, e.g. attrs.site (repeatable).",
    )(func)
    return decorated
