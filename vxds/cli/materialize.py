"""``vxds materialize``: write a lock's resources to a folder, checking every byte."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
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
from vxds.cli.output import note, print_json, progress_bar
from vxds.cli.push import store_reader
from vxds.errors import UsageError

if TYPE_CHECKING:
    from vxds.locks.splits import Split
    from vxds.materialize import Report, Target
    from vxds.project.config import Config

EPILOG = """\b
Examples:
  vxds materialize viseg_training@1 -o out/ -m files
  vxds materialize viseg_training -o out/ -m bids -m clinical-csv --split train
  vxds materialize all_basel_data -o out/ -m files --mode hardlink
  vxds materialize -f locks/clinical_cohort/1/resources.cohort.jsonl -o out/ -m clinical-to-csv

\b
Modules:
  files          OUT/<split>/<id>
  bids           OUT/bids/<split>/, one BIDS dataset per split
  clinical-csv   OUT/clinical/<split>.csv (alias clinical-to-csv)
  fw-dataset     OUT/fw-dataset/versions/<version>/

Running again skips what is in place and correct. Nothing is removed without --prune: files an
earlier run placed that this one does not want (fewer -m, fewer resources) are kept and counted.
A folder holding another dataset or version is refused (exit 2) unless --force.
Exit 1 when a resource could not be placed; exit 2 (after keeping what was placed) when the
disk is full.
"""


def _from_lock(dataset: str, config: Config, source: str | None) -> Target:
    from vxds.locks.store import lock_dir
    from vxds.materialize import Target
    from vxds.materialize.lock_lines import read_checked
    from vxds.project.manifest import load_manifest, parse_spec

    manifest = load_manifest(
        config.manifest, default_source=config.source, require_scripts=False, cache_dir=config.cache_dir
    )
    entry = manifest.find(*parse_spec(dataset))
    # every line checked before anything is written (a resealed lock has any lines)
    lock = read_checked(lock_dir(config.locks, entry.name, entry.version), config)
    header = lock.header
    return Target(
        header.name, header.version, header, lock.splits, source or header.source, config.root, config.storage
    )


def _from_files(files: tuple[Path, ...], config: Config, source: str | None) -> Target:
    from vxds.locks.store import read_lock
    from vxds.materialize import Target

    splits = _bare_splits(files)
    folders = {path.resolve().parent for path in files}
    header = None
    if len(folders) == 1 and (next(iter(folders)) / "lock.toml").is_file():
        # read_lock checks every split file in the folder against lock.toml, these included.
        header = read_lock(next(iter(folders))).header
    url = source or (header.source if header is not None else None) or config.source
    if header is not None:
        return Target(header.name, header.version, header, splits, url, config.root, config.storage)
    return Target("dataset", None, None, splits, url, config.root, config.storage)


def _source_fix(config: Config) -> str:
    if config.in_project:
        return "pass --source URL or set source in [tool.vxds] of pyproject.toml"
    return "pass --source URL (outside a project there is no [tool.vxds] to set it in)"


def _default_out(config: Config, target: Target, by_split: bool) -> Path:
    """No -o: ``materialized/<split>`` (-f) or ``materialized/NAME@VERSION`` in the project."""
    name = "+".join(sorted(target.splits)) if by_split or target.key is None else target.key
    out = config.root / "materialized" / name
    note(f"note: no -o given: writing to {_shown(out)}")
    return out


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _bare_splits(files: tuple[Path, ...]) -> dict[str, Split]:
    """The split files given with -f, by split name; one split or one id in two is refused
    (files from different runs can disagree, and a resource belongs to one split)."""
    from vxds.locks.bare import INDEX_RE, read_bare
    from vxds.locks.splits import SPLIT_FILE_RE

    splits: dict[str, Split] = {}
    given: dict[str, Path] = {}
    owner: dict[str, Path] = {}
    for path in files:
        match = SPLIT_FILE_RE.match(path.name) or INDEX_RE.match(path.name)
        if match is None:
            expected = "resources.<split>.jsonl (or, sharded, resources.<split>.shards.json)"
            raise UsageError(f"{path}: expected a file named {expected}")
        name = match.group(1)
        if name in given:
            raise UsageError(f"{given[name]} and {path} are both split {name!r}")
        splits[name], given[name] = read_bare(path), path  # every line checked: nothing vouches
        _claim_ids(splits[name], path, owner)
    return splits


def _claim_ids(split: Split, path: Path, owner: dict[str, Path]) -> None:
    """Record ``split``'s ids as ``path``'s; ``UsageError`` naming both files on an overlap."""
    ids = [resource.id for resource in split.resources()]
    shared = sorted(rid for rid in ids if rid in owner)
    if shared:
        first = shared[0]
        more = f" (and {len(shared) - 1} more)" if len(shared) > 1 else ""
        raise UsageError(
            f"{owner[first]} and {path} both hold {first!r}{more}; a resource belongs to one split"
        )
    owner.update(dict.fromkeys(ids, path))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused for the run, which keeps every resource and placed file
    until it ends: the collector would only walk them again and again (a quarter of the CPU
    of 100,000 hard links, bench/materialize_bench.py); it collects again once the run is over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _print(report: Report) -> None:
    for notice in report.notices:
        click.secho(f"note: {notice}", fg="yellow", err=True)
    for failure in report.failures:
        what = failure.resource or failure.path
        click.secho(f"error: {what}: {failure.message}", fg="red", err=True)
    words = f"{report.placed} placed, {report.unchanged} unchanged"
    if report.removed:
        words += f", {report.removed} removed"
    if report.failures:
        words += f", {len(report.failures)} failed"
    modules = ", ".join(report.modules)
    click.echo(f"{report.out}: {words} ({modules}; splits {', '.join(report.splits)})")
    if report.kept:
        click.echo(
            f"{report.kept} file(s) of an earlier run kept, not wanted by this one; --prune removes them",
            err=True,
        )


@click.command("materialize", epilog=EPILOG)
@click.argument(
    "dataset", metavar="NAME[@VERSION] | -f FILE", required=False, shell_complete=complete_datasets
)
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A resources.<split>.jsonl lockfile to materialize (repeatable) instead of NAME.",
)
@click.option(
    "-o",
    "--out",
    "out",
    default=None,
    type=click.Path(path_type=Path),
    help="Output folder (default: materialized/<split> or materialized/NAME@VERSION in the project).",
)
@click.option(
    "-m", "--module", "modules", multiple=True, metavar="MODULE", help="Layout to write (repeatable)."
)
@click.option("--split", "splits", multiple=True, metavar="SPLIT", help="Only these splits (repeatable).")
@click.option(
    "--mode",
    type=click.Choice(["copy", "hardlink", "symlink", "reflink"]),
    default="copy",
    show_default=True,
    help="How resource files are placed; falls back to copy where the file system cannot.",
)
@click.option("--source", "source", default=None, metavar="URL", help="Read bytes from this source instead.")
@click.option(
    "--store", "store", default=None, metavar="URL", help="Fall back to this store (docs/store.md)."
)
@click.option("--from-store", is_flag=True, help="Read every resource from the store, not the source.")
@click.option(
    "--prune", is_flag=True, help="Remove the files an earlier run placed that this one does not want."
)
@click.option("--force", is_flag=True, help="Write into a folder that holds another dataset or version.")
@jobs_option
@executor_option
@format_option
@quiet_option
@root_option
@_collector_paused()
def command(
    dataset: str | None,
    files: tuple[Path, ...],
    out: Path | None,
    modules: tuple[str, ...],
    splits: tuple[str, ...],
    mode: str,
    source: str | None,
    store: str | None,
    from_store: bool,
    prune: bool,
    force: bool,
    jobs: int | None,
    executor: str | None,
    fmt: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Write a lock's resources to OUT in one or more layouts, checking every byte."""
    from vxds.materialize import materialize
    from vxds.project.config import load_config

    if bool(dataset) == bool(files):
        raise UsageError("give either NAME[@VERSION] or -f resources.<split>.jsonl, not both or neither")
    config = with_executor(load_config(root), executor)
    target = _from_lock(dataset, config, source) if dataset else _from_files(files, config, source)
    if target.source_url is None and not from_store:
        raise UsageError(f"no source to read the locked bytes from; {_source_fix(config)}")
    out = out if out is not None else _default_out(config, target, bool(files))
    with progress_bar(quiet or fmt == "json") as progress:
        report = materialize(
            target,
            out,
            modules,
            splits=splits,
            mode=mode,
            jobs=jobs,
            progress=progress,
            cache_dir=config.cache_dir,
            store=store_reader(config, store, from_store),
            from_store=from_store,
            prune=prune,
            force=force,
            executor=config.executor,
        )
    if fmt == "json":
        print_json(report.to_json())
    elif not quiet or report.failures:
        _print(report)
    return 0 if report.ok else 1
