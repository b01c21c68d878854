"""Rendering helpers for commands: global options, errors, JSON, aligned tables, progress bars.

Colour is used on a terminal and dropped in a pipe (click strips it), unless ``--color``
says otherwise or ``NO_COLOR`` is set; progress bars are drawn on a terminal only. The
global options (``vxds -q -v --color``) are kept in ``ctx.meta``, which every subcommand's
context shares, under the keys below.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from vxds.errors import VxdsError
from vxds.progress import NO_PROGRESS, Task

STATE_COLOURS = {
    "fresh": "green",
    "unchanged": "green",
    "written": "green",
    "stale": "yellow",
    "would change": "yellow",
    "missing": "yellow",
    "corrupt": "red",
    "error": "red",
}


QUIET = "vxds.quiet"
VERBOSE = "vxds.verbose"
FORMAT = "vxds.format"  # the subcommand's --format: errors are JSON on stdout with "json"


def color_choice(choice: str, environ: Mapping[str, str]) -> bool | None:
    """``ctx.color`` for ``--color``: True, False, or None (click decides: a terminal)."""
    if choice == "always":
        return True
    if choice == "never" or environ.get("NO_COLOR"):  # https://no-color.org: set and not empty
        return False
    return None


def global_options(
    ctx: click.Context, directory: Path | None, *, quiet: bool, verbose: int, color: str
) -> None:
    """Apply the options given before the subcommand (``vxds -C DIR -q list``)."""
    from vxds.errors import UsageError

    if quiet and verbose:
        raise UsageError("-q and -v ask for opposite things; give one of them")
    if directory is not None:
        os.chdir(directory)  # as git -C: every path on the command line is read from DIR
    ctx.color = color_choice(color, os.environ)
    ctx.meta[QUIET], ctx.meta[VERBOSE] = quiet, verbose
    if verbose >= 2:
        started = time.perf_counter()
        ctx.call_on_close(lambda: click.echo(f"vxds: {time.perf_counter() - started:.2f} s", err=True))


def error_text(exc: VxdsError) -> str:
    """The error as a user reads it: ``error:`` first line, details, then a hint."""
    first, _, rest = exc.message.partition("\n")
    lines = [click.style(f"error: {first}", fg="red")]
    if rest:
        lines.append(rest)
    if exc.hint:
        lines.append(click.style(f"hint: {exc.hint}", fg="cyan"))
    return "\n".join(lines)


def quiet_asked() -> bool:
    """True when ``vxds -q`` was given before the subcommand (whether or not it has its own -q)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET))


def note(text: str, **style: Any) -> None:
    """A line on standard error that is neither a result nor an error: ``vxds -q`` drops it."""
    if not quiet_asked():
        click.secho(text, err=True, **style)


def error(exc: VxdsError) -> None:
    click.echo(error_text(exc), err=True)


def failed(message: str, code: int, *, hint: str | None = None) -> None:
    """An error for ``--format json``: ``{"error", "code"[, "hint"]}`` on stdout (code: the exit code)."""
    body: dict[str, Any] = {"error": message, "code": code}
    if hint:
        body["hint"] = hint
    print_json(body)


def state(word: str) -> str:
    return click.style(word, fg=STATE_COLOURS.get(word))


def print_json(value: Any) -> None:
    import orjson

    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Left-aligned columns; widths ignore ANSI colour codes."""
    every = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(click.unstyle(row[i])) for row in every) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(every):
        cells = [cell + " " * (widths[i] - len(click.unstyle(cell))) for i, cell in enumerate(row)]
        line = "  ".join(cells).rstrip()
        lines.append(click.style(line, bold=True) if n == 0 else line)
    return "\n".join(lines)


class _RichTask:
    def __init__(self, progress: Any, task_id: Any) -> None:
        self._progress, self._id = progress, task_id

    def advance(self, amount: int = 1) -> None:
        self._progress.advance(self._id, amount)

    def close(self) -> None:
        self._progress.remove_task(self._id)


class RichProgress:
    """Progress bars on standard error, through rich (imported only when used)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True, no_color=click.globals.resolve_color_default() is False),
            transient=True,
        )

    def __enter__(self) -> RichProgress:
        self._started = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._progress.stop()

    def task(self, label: str, total: int | None = None) -> Task:
        # Started with the first task, so work before it runs without rich's refresh thread
        # (vxds verify forks worker processes then, which is unsafe once threads run).
        if not self._started:
            self._progress.start()
            self._started = True
        return _RichTask(self._progress, self._progress.add_task(label, total=total))

    def error(self, exc: VxdsError) -> None:
        """Print an error above the bars (they share standard error)."""
        from rich.text import Text

        self._progress.console.print(Text.from_ansi(error_text(exc)), soft_wrap=True)

    def echo(self, text: str) -> None:
        """Print a line above the bars, so both stay readable on one terminal."""
        if not sys.stdout.isatty():
            click.echo(text)
            return
        from rich.text import Text

        self._progress.console.print(Text.from_ansi(text), soft_wrap=True)


class _Quiet:
    """The ``Progress`` used when no bar is drawn."""

    def task(self, label: str, total: int | None = None) -> Task:
        return NO_PROGRESS.task(label, total)

    def echo(self, text: str) -> None:
        click.echo(text)

    def error(self, exc: VxdsError) -> None:
        error(exc)


class _NoBar:
    def __enter__(self) -> _Quiet:
        return _Quiet()

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(quiet: bool) -> Any:
    """A context manager giving a ``Progress``: a rich bar on a terminal, else nothing."""
    if quiet or quiet_asked() or not sys.stderr.isatty():
        return _NoBar()
    return RichProgress()
