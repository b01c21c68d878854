"""``vxds query``: SQL over the project's locks (and their history) with DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vxds.cli.options import root_option
from vxds.errors import UsageError

if TYPE_CHECKING:
    from vxds.query.result import Rows

EPILOG = """\b
Each lock is a view "name@version"; the view resources holds every lock's rows:
dataset, version, split, id, type, resource_version, hash, size, uri, attrs (JSON),
and rev (first) with --rev. With --rev, each lock at a revision is "REV:name@version"
(also "name@version" when one --rev is given). Cookbook: docs/query.md.

\b
Examples:
  vxds query 'SELECT split, count(*) FROM "viseg_training@1" GROUP BY split'
  vxds query "SELECT attrs->>'suffix' AS suffix, count(*) AS n FROM resources GROUP BY ALL"
  vxds query --rev v1 --rev main "SELECT rev, split, count(*) FROM resources GROUP BY ALL"
  vxds query "SELECT * FROM resources" --format parquet -o resources.parquet

Needs the query extra: pip install 'vxds[query]'.
"""
WIDE = 100_000  # columns of a pipe or file: a table keeps its natural width


@click.command("query", epilog=EPILOG)
@click.argument("sql")
@click.option(
    "--rev", "revs", multiple=True, metavar="REV", help="Read the locks at this Git revision (repeatable)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "parquet"]),
    default="table",
    show_default=True,
    help="Output format (parquet needs -o).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@root_option
def command(sql: str, revs: tuple[str, ...], fmt: str, output: Path | None, root: Path | None) -> int:
    """Run SQL (DuckDB) over the project's locks."""
    if fmt == "parquet" and output is None:
        raise UsageError("--format parquet writes a binary file: give it -o FILE")
    if fmt in ("csv", "parquet"):
        from vxds.query import render
        from vxds.query.engine import query

        write = render.csv_bytes if fmt == "csv" else render.parquet_bytes
        return _emit(write(query(sql, rev=list(revs), root=root)), output)
    from vxds.query.engine import over_locks
    from vxds.query.result import fetch

    result = over_locks(sql, rev=list(revs), root=root, read=fetch)
    if fmt == "table" and output is None:
        _print_table(result)
        return 0
    if fmt == "json":
        from vxds.query.render import json_bytes

        return _emit(json_bytes(result), output)
    return _emit(_text_table(result), output)


def _emit(rendered: bytes, output: Path | None) -> int:
    """Print ``rendered``, or write it to ``output`` atomically."""
    if output is None:
        click.echo(rendered.decode("utf-8"), nl=False)
        return 0
    from vxds.fs import atomic_write

    atomic_write(output, rendered)
    return 0


def _print_table(result: Rows) -> None:
    """Through rich: folded to a terminal's width, at its own width in a pipe or file."""
    import sys

    from rich.console import Console

    width = None if sys.stdout.isatty() else WIDE
    Console(highlight=False, width=width).print(_rich_table(result))


def _rich_table(result: Rows) -> Any:
    from rich import box
    from rich.table import Table

    from vxds.query.render import cell

    shown = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, numeric in zip(result.names, result.numeric, strict=True):
        shown.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in result.rows:
        shown.add_row(*(cell(value) for value in row))
    count = len(result.rows)
    shown.caption = f"{count} row{'s' if count != 1 else ''}"
    return shown


def _text_table(result: Rows) -> bytes:
    """The table as ``-o FILE`` holds it: what the terminal shows, without colour."""
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, highlight=False, no_color=True, width=WIDE).print(_rich_table(result))
    return out.getvalue().encode("utf-8")
