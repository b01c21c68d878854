"""``vxds lock``: run recipes and write their locks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vxds.cli.options import format_option, jobs_option, quiet_option, root_option
from vxds.cli.output import print_json, progress_bar, state
from vxds.cli.project import open_project
from vxds.errors import UsageError, VxdsError
from vxds.hashing import hash_file
from vxds.locks.splits import Split, split_file
from vxds.locks.store import (
    Lock,
    guard_file,
    lock_dir,
    read_lock,
    same_on_disk,
    stale_split_files,
    write_lock,
    write_splits,
)

if TYPE_CHECKING:
    from vxds.project.config import Config
    from vxds.project.manifest import Entry
    from vxds.recipes.resolver import Resolver

EPILOG = """\b
Examples:
  vxds lock --all                       lock every dataset
  vxds lock viseg_training              lock the highest version of one dataset
  vxds lock viseg_training@1 clinical_cohort
  vxds lock --all --check               exit 1 if a lock is missing or would change
  vxds lock --all --dry-run             show what would change, write nothing
  vxds lock --stale                     relock what changed (the vxds-lock pre-commit hook)
  vxds lock --file recipes/viseg.py -o out/   write resources.<split>.jsonl to out/
  vxds lock viseg_training --at 3       resolve against snapshot 3 of a catalog source
"""


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def _change_words(old: Lock | None, new: Lock) -> str:
    if old is None:
        return f"+{sum(split.count for split in new.splits.values())} -0 ~0"
    from vxds.locks.diff import diff_locks
    from vxds.report.text import change_words

    diff = diff_locks(old, new)
    words = change_words(diff.counts())
    if old.header.merged:
        words += " relocks a Git merge"
    elif old.header.snapshot != new.header.snapshot:
        words += " new snapshot"
    return words


def _previous(directory: Path) -> Lock | None:
    try:
        return read_lock(directory)
    except VxdsError:
        return None


def _lock_one(
    resolver: Resolver, entry: Entry, config: Config, *, check: bool, dry_run: bool
) -> dict[str, Any]:
    lock = resolver.resolve(entry)
    directory = lock_dir(config.locks, entry.name, entry.version)
    from vxds.locks.recovery import restore_set_aside

    restore_set_aside(directory)  # a lock a killed 'vxds lock' left aside is not missing
    report: dict[str, Any] = {
        "name": entry.name,
        "version": entry.version,
        "path": config.relative(directory),
        "splits": {name: split.count for name, split in lock.splits.items()},
        "digest": lock.digest,
    }
    if check or dry_run:
        if same_on_disk(lock, directory):
            report["status"] = "unchanged"
        else:
            report["status"] = "would change" if (directory / "lock.toml").exists() else "missing"
            report["changes"] = _change_words(_previous(directory), lock)
        return report
    previous = None if same_on_disk(lock, directory) else _previous(directory)
    # Called for an unchanged lock too: the write also clears what a killed earlier one left.
    if not write_lock(lock, directory, guard=guard_file(config.cache_dir, entry.name, entry.version)):
        report["status"] = "unchanged"
        return report
    report["status"] = "written"
    report["changes"] = _change_words(previous, lock)
    return report


def _print_report(report: dict[str, Any], echo: Any = click.echo) -> None:
    name = f"{report['name']}@{report['version']}"
    detail = _summary(report["splits"])
    if "changes" in report:
        detail += f"  ({report['changes']})"
    echo(f"{state(report['status'])}  {name}: {detail}")


def _lock_file(
    script: Path,
    out: Path,
    entrypoint: str | None,
    source: str | None,
    params: dict[str, Any],
    root: Path | None,
    check: bool,
    fmt: str,
    quiet: bool,
    jobs: int | None,
    at: str | None,
) -> int:
    from vxds.project.config import load_config
    from vxds.recipes.resolver import Resolver

    config = load_config(root)
    with progress_bar(quiet or fmt == "json") as progress:
        splits = Resolver(config, progress=progress, jobs=jobs, at=at).resolve_script(
            script, entrypoint=entrypoint, source=source, params=params
        )
    changed = [name for name, split in splits.items() if not _file_matches(out / split_file(name), split)]
    stale = stale_split_files(out, splits)  # an earlier run's splits: OUT holds this run's only
    if not check and (changed or stale):
        write_splits(splits, out, unchanged=[name for name in splits if name not in changed])
    reports = _file_reports(splits, changed, stale, out, check)
    if fmt == "json":
        print_json({"files": reports})
    elif not quiet:
        for r in reports:
            what = f"{r['count']} resources" if "count" in r else "a split this run did not write"
            click.echo(f"{state(r['status'])}  {r['path']}: {what}")
    return 1 if check and (changed or stale) else 0


def _file_reports(
    splits: dict[str, Split], changed: list[str], stale: list[Path], out: Path, check: bool
) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = [
        {
            "split": name,
            "path": str(out / split_file(name)),
            "count": split.count,
            "digest": split.digest,
            "status": ("would change" if check else "written") if name in changed else "unchanged",
        }
        for name, split in splits.items()
    ]
    gone = "would remove" if check else "removed"
    reports += [
        {
            "split": path.name.removeprefix("resources.").removesuffix(".jsonl"),
            "path": str(path),
            "status": gone,
        }
        for path in stale
    ]
    return reports


def _file_matches(path: Path, split: Split) -> bool:
    try:
        return hash_file(path) == split.digest
    except OSError:
        return False


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    from vxds.project.manifest import parse_value

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        params[key] = parse_value(value, f"--param {key}")
    return params


@click.command("lock", epilog=EPILOG)
@click.argument("datasets", nargs=-1, metavar="[NAME[@VERSION]]...")
@click.option("--all", "all_", is_flag=True, help="Lock every dataset in the manifest.")
@click.option(
    "--stale",
    is_flag=True,
    help="Lock only the datasets whose lock is missing or stale (no recipe runs for the others).",
)
@click.option(
    "--file",
    "-f",
    "script",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Lock a recipe script on its own, outside the manifest.",
)
@click.option(
    "--output",
    "-o",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="With --file: where to write resources.<split>.jsonl.",
)
@click.option("--entrypoint", help="With --file: the recipe to run when the script has several.")
@click.option("--source", help="With --file: the source URL (default: [tool.vxds] source).")
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="With --file: a recipe parameter."
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a lock is missing or would change.")
@click.option("--dry-run", is_flag=True, help="Write nothing; show what would change.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when a lock was written (hooks: stop the commit so new locks are reviewed and staged).",
)
@click.option(
    "--at",
    metavar="SNAPSHOT",
    help="Resolve against this snapshot of the source (a catalog keeps every snapshot).",
)
@jobs_option
@format_option
@quiet_option
@root_option
def command(
    datasets: tuple[str, ...],
    all_: bool,
    stale: bool,
    script: Path | None,
    out: Path,
    entrypoint: str | None,
    source: str | None,
    params: tuple[str, ...],
    check: bool,
    dry_run: bool,
    exit_code: bool,
    at: str | None,
    jobs: int | None,
    fmt: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Run recipes and write their locks under locks/<name>/<version>/.

    A lock is rewritten only when its content changes; relocking unchanged inputs leaves
    the files byte for byte as they were.
    """
    if script is not None:
        if datasets or all_ or stale:
            raise UsageError("--file locks one script; do not name datasets or use --all or --stale with it")
        return _lock_file(
            script, out, entrypoint, source, _parse_params(params), root, check, fmt, quiet, jobs, at
        )
    if bool(datasets) == all_ and not (stale and not datasets):
        raise UsageError("name the datasets to lock, or use --all or --stale (or --file SCRIPT)")
    if entrypoint or source or params or out != Path("."):
        raise UsageError(
            "--output, --entrypoint, --source and --param go with --file SCRIPT",
            hint="a dataset in the manifest takes them from its entry in datasets.yaml",
        )
    from vxds.recipes.resolver import Resolver

    config, manifest = open_project(root)
    entries = manifest.select(datasets) if datasets else list(manifest)
    if stale:
        from vxds.locks.status import MISSING, STALE, lock_status

        entries = [e for e in entries if lock_status(e, config).state in (MISSING, STALE)]
    reports: list[dict[str, Any]] = []
    failed = False
    with progress_bar(quiet or fmt == "json") as progress:
        resolver = Resolver(config, progress=progress, jobs=jobs, at=at)
        for entry in entries:
            try:
                report = _lock_one(resolver, entry, config, check=check, dry_run=dry_run)
            except VxdsError as exc:
                failed = True
                report = {"name": entry.name, "version": entry.version, "status": "error", "error": str(exc)}
                if fmt == "text":
                    progress.error(exc)
            reports.append(report)
            if fmt == "text" and not quiet and report["status"] != "error":
                _print_report(report, progress.echo)
    if fmt == "json":
        print_json({"datasets": reports})
    if failed:
        return 2
    pending = [r for r in reports if r["status"] in ("would change", "missing")]
    if check and pending and fmt == "text":
        click.echo(f"{len(pending)} lock(s) would change; run 'vxds lock' to update them.", err=True)
    if exit_code and any(r["status"] == "written" for r in reports):
        return 1
    return 1 if check and pending else 0
