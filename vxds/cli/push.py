"""``vxds push``: copy the locked bytes the store lacks into it, checked on the way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vxds.cli.completion import complete_datasets
from vxds.cli.options import (
    executor_option,
    format_option,
    jobs_option,
    quiet_option,
    root_option,
    with_executor,
)
from vxds.cli.output import print_json, progress_bar

if TYPE_CHECKING:
    from vxds.project.config import Config
    from vxds.store.push import PushReport
    from vxds.store.reader import StoreReader

EPILOG = """\b
Examples:
  vxds push --all                          every lock in the working tree
  vxds push viseg_training@2 --store s3://bucket/vxds-store
  vxds push --all --rev v1.0 --rev main    the locks at these revisions

A second push uploads nothing. Exit 1 when a resource's source bytes no longer match the
lock (it is not pushed); see docs/store.md.
"""


def store_reader(config: Config, given: str | None, required: bool) -> StoreReader | None:
    """The store readers fall back to: ``--store``, else [tool.vxds.store]; None when
    neither is set, unless ``required`` (``--from-store``)."""
    from vxds.store.cas import open_store, store_url
    from vxds.store.reader import StoreReader

    if not (given or config.store or required):
        return None
    return StoreReader(open_store(store_url(given, config.store), base=config.root, options=config.storage))


def size_text(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count //= 1024
    return str(count)  # pragma: no cover


def summary(report: PushReport) -> str:
    words = f"{report.uploaded} uploaded ({size_text(report.bytes)}), {report.present} already in the store"
    if report.failures:
        words += f", {len(report.failures)} failed"
    return f"{report.store}: {words}"


@click.command("push", epilog=EPILOG)
@click.argument("datasets", nargs=-1, metavar="[NAME[@VERSION]]...", shell_complete=complete_datasets)
@click.option("--all", "every", is_flag=True, help="Every lock (of the working tree, or of each --rev).")
@click.option(
    "--rev", "revs", multiple=True, metavar="REV", help="Push the locks at this Git revision (repeatable)."
)
@click.option(
    "--store", "store", default=None, metavar="URL", help="The store (default: [tool.vxds.store] url)."
)
@jobs_option
@executor_option
@format_option
@quiet_option
@root_option
def command(
    datasets: tuple[str, ...],
    every: bool,
    revs: tuple[str, ...],
    store: str | None,
    jobs: int | None,
    executor: str | None,
    fmt: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Upload the bytes of every locked resource not yet in the store."""
    from vxds.errors import UsageError
    from vxds.project.config import load_config
    from vxds.store.cas import open_store, store_url
    from vxds.store.push import push
    from vxds.store.wanted import lock_refs, wanted

    if bool(datasets) == every:
        raise UsageError("give NAME[@VERSION]... or --all, not both or neither")
    config = with_executor(load_config(root), executor)
    opened = open_store(store_url(store, config.store), base=config.root, options=config.storage)
    needed = wanted(lock_refs(config, datasets, revs))
    with progress_bar(quiet or fmt == "json") as progress:
        report = push(config, opened, needed, jobs=jobs, progress=progress)
    if fmt == "json":
        failures = [{"lock": f.lock, "id": f.resource, "message": f.message} for f in report.failures]
        print_json(
            {
                "store": report.store,
                "uploaded": report.uploaded,
                "present": report.present,
                "bytes": report.bytes,
                "failures": failures,
            }
        )
    else:
        for failure in report.failures:
            click.secho(
                f"error: {failure.lock}: {failure.resource}: {failure.message}; not pushed",
                fg="red",
                err=True,
            )
        if not quiet or report.failures:
            click.echo(summary(report))
    return 0 if report.ok else 1
