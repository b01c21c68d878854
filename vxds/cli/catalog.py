"""``vxds catalog``: an embedded, versioned catalog (SQLite) to lock against as of a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vxds.cli.options import format_option, quiet_option, root_option
from vxds.cli.output import note, print_json, progress_bar, table
from vxds.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = """\b
Examples:
  vxds catalog init --catalog data/catalog.db
  vxds catalog ingest ./incoming              snapshot 1: every file and clinical row
  vxds catalog ingest ./incoming              snapshot 2: changed files get new versions
  vxds catalog ls --at 1                      what snapshot 1 held
  vxds catalog log                            the snapshots, with counts
  vxds catalog log basel/participants.tsv     the versions of one resource
  vxds lock clinical --at 1                   resolve a recipe as of snapshot 1

The catalog is --catalog PATH, or the project's [tool.vxds] source when it is catalog:PATH.
"""

INIT_EPILOG = """\b
Examples:
  vxds catalog init --catalog data/catalog.db   data/catalog.db and data/catalog.objects/
  vxds catalog init                             the catalog [tool.vxds] source names
"""

INGEST_EPILOG = """\b
Examples:
  vxds catalog ingest ./incoming              the next snapshot: every file and clinical row
  vxds catalog ingest ./incoming -q           the same, printing nothing
  vxds catalog ingest ./incoming --format json
"""

LS_EPILOG = """\b
Examples:
  vxds catalog ls                             the latest snapshot's resources
  vxds catalog ls --at 1 --prefix basel/      what snapshot 1 held under basel/
  vxds catalog ls --format json
"""

LOG_EPILOG = """\b
Examples:
  vxds catalog log                            the snapshots, newest first, with counts
  vxds catalog log basel/participants.tsv     every version of one resource
"""


def catalog_option(func: F) -> F:
    decorated: F = click.option(
        "--catalog",
        "-c",
        "catalog",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The catalog database (default: [tool.vxds] source, when it is catalog:PATH).",
    )(func)
    return decorated


def _path(catalog: Path | None, root: Path | None) -> Path:
    if catalog is not None:
        return catalog
    from vxds.project.config import load_config
    from vxds.sources import scheme_of
    from vxds.sources.catalog.store import catalog_path

    config = load_config(root)
    if config.source and scheme_of(config.source) == "catalog":
        return catalog_path(config.source, config.root)
    raise UsageError(
        "which catalog? pass --catalog PATH",
        hint='or set source = "catalog:PATH" in [tool.vxds] of pyproject.toml',
    )


@click.group("catalog", epilog=EPILOG)
def command() -> None:
    """An embedded catalog whose resources keep every version, snapshot by snapshot."""


@command.command("init", epilog=INIT_EPILOG)
@catalog_option
@root_option
def init(catalog: Path | None, root: Path | None) -> None:
    """Create an empty catalog database and its object store."""
    from vxds.sources.catalog.store import Catalog, objects_dir

    path = _path(catalog, root)
    Catalog.init(path)
    click.echo(f"created {path} (objects in {objects_dir(path)})")


@command.command("ingest", epilog=INGEST_EPILOG)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@catalog_option
@format_option
@quiet_option
@root_option
def ingest(folder: Path, catalog: Path | None, fmt: str, quiet: bool, root: Path | None) -> None:
    """Record FOLDER as the catalog's next snapshot.

    New resources get version 1, changed ones (hash or metadata) the next version, and
    resources no longer in FOLDER are marked deleted at this snapshot.
    """
    from vxds.project.config import load_config
    from vxds.sources.base import SourceContext
    from vxds.sources.catalog.store import Catalog

    path = _path(catalog, root)
    opened = Catalog(path)
    config = load_config(root)
    with progress_bar(quiet or fmt == "json") as progress:
        context = SourceContext(
            base=Path.cwd(), cache_dir=config.cache_dir, progress=progress, options=config.storage
        )
        snapshot = opened.ingest(folder, context=context, origin=str(folder))
    if fmt == "json":
        print_json({"snapshot": snapshot.__dict__})
    elif not quiet:
        click.echo(
            f"snapshot {snapshot.id}: {snapshot.total} resources"
            f" (+{snapshot.added} ~{snapshot.changed} -{snapshot.deleted})"
        )


@command.command("ls", epilog=LS_EPILOG)
@click.option("--at", metavar="SNAPSHOT", help="List the catalog as of this snapshot (default: latest).")
@click.option("--prefix", default="", help="Only resources whose id starts with this.")
@catalog_option
@format_option
@root_option
def ls(at: str | None, prefix: str, catalog: Path | None, fmt: str, root: Path | None) -> None:
    """The resources current at a snapshot, with their versions."""
    from vxds.sources.catalog.store import Catalog

    opened = Catalog(_path(catalog, root))
    number = opened.snapshot_number(at)
    found = opened.resources(number, prefix)
    if fmt == "json":
        print_json({"snapshot": number, "resources": [r.to_record() for r in found]})
        return
    rows = [[r.id, str(r.version), r.type, str(r.size)] for r in found]
    if rows:
        click.echo(table(rows, ["ID", "VERSION", "TYPE", "SIZE"]))
    note(f"{len(rows)} resources at snapshot {number}")


@command.command("log", epilog=LOG_EPILOG)
@click.argument("resource_id", required=False, metavar="[ID]")
@catalog_option
@format_option
@root_option
def log(resource_id: str | None, catalog: Path | None, fmt: str, root: Path | None) -> None:
    """The versions of resource ID, or without ID the catalog's snapshots."""
    from vxds.errors import NotFoundError
    from vxds.sources.catalog.store import Catalog

    opened = Catalog(_path(catalog, root))
    if resource_id is None:
        snapshots = opened.snapshots()
        if fmt == "json":
            print_json({"snapshots": [s.__dict__ for s in snapshots]})
            return
        rows = [
            [str(s.id), s.created, f"+{s.added} ~{s.changed} -{s.deleted}", str(s.total), s.origin]
            for s in reversed(snapshots)
        ]
        click.echo(table(rows, ["SNAPSHOT", "CREATED", "CHANGES", "RESOURCES", "FROM"]))
        return
    history = opened.history(resource_id)
    if not history:
        raise NotFoundError(f"catalog {opened.path}: no resource {resource_id!r}")
    if fmt == "json":
        print_json(
            {
                "id": resource_id,
                "versions": [
                    {
                        "version": h.resource.version,
                        "hash": h.resource.hash,
                        "size": h.resource.size,
                        "added_at": h.added_at,
                        "removed_at": h.removed_at,
                        "deleted": h.deleted,
                    }
                    for h in history
                ],
            }
        )
        return
    rows = []
    for h in reversed(history):
        until = (
            "current"
            if h.removed_at is None
            else f"{'deleted' if h.deleted else 'replaced'} at {h.removed_at}"
        )
        rows.append([str(h.resource.version), str(h.added_at), until, str(h.resource.hash)])
    click.echo(table(rows, ["VERSION", "SNAPSHOT", "UNTIL", "HASH"]))
