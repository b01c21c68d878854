"""``vxds lock``: run recipes and write their locks (the work is ``vxds.recipes.locking``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vxds.cli.completion import complete_datasets
from vxds.cli.options import (
    executor_option,
    format_option,
    jobs_option,
    only_with,
    quiet_option,
    refuse_together,
    require_one,
    root_option,
    verbose_option,
    with_executor,
)
from vxds.cli.output import print_json, progress_bar, state
from vxds.errors import UsageError

if TYPE_CHECKING:
    from vxds.project.config import Config
    from vxds.recipes.locking import Changes, LockOutcome, SplitFileOutcome

EPILOG = """\b
Examples:
  vxds lock --all                       lock every dataset (frozen versions are skipped)
  vxds lock viseg_training              lock the highest version of one dataset
  vxds lock viseg_training@1 clinical_cohort
  vxds lock --all --check               exit 1 if a lock is missing or would change
  vxds lock --all --dry-run             show what would change, write nothing
  vxds lock --stale                     relock what changed (the vxds-lock pre-commit hook)
  vxds lock --file recipes/viseg.py -o out/   write resources.<split>.jsonl to out/
  vxds lock viseg_training --at 3       resolve against snapshot 3 of a catalog source
  vxds lock --all -v                    say which recipes ran and why, and which were skipped
  vxds lock --all --refresh             run every recipe, even those whose inputs are unchanged
"""

NAME_THEM = "name the datasets to lock, or use --all or --stale (or --file SCRIPT)"


def _check_usage(ctx: click.Context) -> None:
    refuse_together(
        ctx,
        "script",
        ("datasets", "all_", "stale"),
        "--file locks one script; do not name datasets or use --all or --stale with it",
    )
    refuse_together(ctx, "datasets", ("all_",), NAME_THEM)
    require_one(ctx, ("datasets", "all_", "stale", "script"), NAME_THEM)
    only_with(
        ctx,
        "script",
        ("out", "entrypoint", "source", "params"),
        "--output, --entrypoint, --source and --param go with --file SCRIPT",
        hint="a dataset in the manifest takes them from its entry in datasets.yaml",
    )


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    from vxds.project.manifest import parse_value

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        params[key] = parse_value(value, f"--param {key}")
    return params


# --- rendering -----------------------------------------------------------------------------


def counted(counts: Mapping[str, int]) -> str:
    """``1 changed, 6 metadata``: the resources that changed, in ``vxds diff``'s categories."""
    from vxds.locks.changes import KINDS

    return ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts.get(kind))


def change_words(changes: Changes) -> str:
    """What changed, as ``vxds diff`` counts it, then why a lock with no other change changed."""
    words = [counted(changes.counts())] if any(changes.counts().values()) else []
    if changes.merged:
        words.append("relocks a Git merge")
    elif changes.new_snapshot:
        words.append("new snapshot")
    return "; ".join(words) or "no resource changed"


def outcome_json(outcome: LockOutcome, config: Config) -> dict[str, Any]:
    """One dataset in ``vxds lock --format json`` (documented in docs/commands.md)."""
    if outcome.error is not None:
        return {
            "name": outcome.name,
            "version": outcome.version,
            "status": "error",
            "error": str(outcome.error),
        }
    report: dict[str, Any] = {
        "name": outcome.name,
        "version": outcome.version,
        "path": config.relative(outcome.path),
        "splits": dict(outcome.splits),
        "digest": outcome.digest,
        "status": outcome.state,
    }
    if outcome.changes is not None:
        report["changes"] = change_words(outcome.changes)
        report["counts"] = outcome.changes.counts()
    if outcome.warning is not None:
        report["warning"] = outcome.warning
    if outcome.recipe is not None:
        report["recipe"] = outcome.recipe
    return report


def outcome_line(outcome: LockOutcome, *, verbose: bool = False) -> str:
    if outcome.state == "frozen":
        reason = outcome.recipe or "frozen (frozen: true in the manifest), its lock is left as it is"
        return f"{state('skipped')}  {outcome.key}: {reason}"
    detail = ", ".join(f"{name} {n}" for name, n in sorted(outcome.splits.items()))
    if outcome.changes is not None:
        detail += f"  ({change_words(outcome.changes)})"
    if verbose and outcome.recipe is not None:
        detail += f"  ({outcome.recipe})"
    return f"{state(outcome.state)}  {outcome.key}: {detail}"


def warn_empty(what: str, splits: list[str]) -> None:
    """A lock with an empty split is written (exit 0) but is most likely a recipe that matched nothing."""
    if splits:
        named = ("split " if len(splits) == 1 else "splits ") + ", ".join(sorted(splits))
        verb = "has" if len(splits) == 1 else "have"
        click.echo(
            f"{click.style('warning', fg='yellow')}: {what}: {named} {verb} no resources; does the"
            " source hold what the recipe asks for (its type and attrs)? 'vxds show' counts what was locked",
            err=True,
        )


def file_json(outcome: SplitFileOutcome) -> dict[str, Any]:
    report: dict[str, Any] = {"split": outcome.split, "path": str(outcome.path), "status": outcome.state}
    if outcome.count is not None:
        report.update(count=outcome.count, digest=outcome.digest)
    return report


def file_line(outcome: SplitFileOutcome) -> str:
    what = f"{outcome.count} resources" if outcome.count is not None else "a split this run did not write"
    return f"{state(outcome.state)}  {outcome.path}: {what}"


# --- the command ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """The options both ways of locking share: how to run, and how to show the outcome."""

    check: bool
    dry_run: bool
    jobs: int | None
    at: str | None
    fmt: str
    quiet: bool
    root: Path | None
    verbose: bool = False
    refresh: bool = False
    executor: str | None = None  # --executor: where the hashing runs
    checksums: str | None = None  # --checksums: over [tool.vxds] checksums

    @property
    def writes(self) -> bool:
        return not (self.check or self.dry_run)

    def progress(self) -> Any:
        return progress_bar(self.quiet or self.fmt == "json")


def _lock_script(
    run: _Run, script: Path, *, out: Path, entrypoint: str | None, source: str | None, params: dict[str, Any]
) -> int:
    """``--file``: exit 1 with ``--check`` when a file would change or be removed; like
    ``--check``, ``--dry-run`` writes and removes nothing."""
    from vxds.project.config import load_config, with_checksums
    from vxds.recipes.locking import lock_script

    config = with_checksums(with_executor(load_config(run.root), run.executor), run.checksums)
    with run.progress() as progress:
        outcomes = lock_script(
            config,
            script,
            out=out,
            entrypoint=entrypoint,
            source=source,
            params=params,
            dry_run=not run.writes,
            jobs=run.jobs,
            at=run.at,
            progress=progress,
        )
    if run.fmt == "json":
        print_json({"files": [file_json(o) for o in outcomes]})
    elif not run.quiet:
        for outcome in outcomes:
            click.echo(file_line(outcome))
    if run.fmt == "text":
        warn_empty(str(script), [o.split for o in outcomes if o.count == 0])
    return 1 if run.check and any(o.state != "unchanged" for o in outcomes) else 0


def _lock_datasets(run: _Run, names: tuple[str, ...], *, stale: bool, exit_code: bool) -> int:
    """Exit 2 when a dataset failed; 1 with ``--check`` when a lock would change, or with
    ``--exit-code`` when a lock was written."""
    from vxds.project.config import with_checksums
    from vxds.project.load import open_project
    from vxds.recipes.locking import lock_datasets, select_entries

    config, manifest = open_project(run.root)
    config = with_checksums(with_executor(config, run.executor), run.checksums)
    entries = select_entries(config, manifest, names, stale=stale)
    with run.progress() as progress:

        def show(outcome: LockOutcome) -> None:  # as each dataset is done, above the bar
            if outcome.error is not None:
                progress.error(outcome.error)
            elif not run.quiet:
                progress.echo(outcome_line(outcome, verbose=run.verbose))
            if outcome.warning is not None:
                click.echo(f"{click.style('warning', fg='yellow')}: {outcome.warning}", err=True)
            warn_empty(outcome.key, [n for n, count in outcome.splits.items() if count == 0])

        outcomes = lock_datasets(
            config,
            entries,
            dry_run=not run.writes,
            jobs=run.jobs,
            at=run.at,
            refresh=run.refresh,
            progress=progress,
            on_outcome=show if run.fmt == "text" else None,
        )
    if run.fmt == "json":
        print_json({"datasets": [outcome_json(o, config) for o in outcomes]})
    return _exit_code(outcomes, run, exit_code=exit_code)


def _exit_code(outcomes: list[LockOutcome], run: _Run, *, exit_code: bool) -> int:
    if any(o.error is not None for o in outcomes):
        return 2
    pending = [o for o in outcomes if o.pending]
    if run.check and pending and run.fmt == "text":
        click.echo(f"{len(pending)} lock(s) would change; run 'vxds lock' to update them.", err=True)
    if exit_code and any(o.state == "written" for o in outcomes):
        return 1
    return 1 if run.check and pending else 0


@click.command("lock", epilog=EPILOG)
@click.argument("datasets", nargs=-1, metavar="[NAME[@VERSION]]...", shell_complete=complete_datasets)
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
@click.option(
    "--refresh",
    is_flag=True,
    help="Run every recipe, even one whose fingerprint says nothing it read changed.",
)
@click.option(
    "--checksums",
    type=click.Choice(["bytes", "store"]),
    help="store: take a bucket's own checksum of each object instead of reading it (docs/checksums.md).",
)
@verbose_option
@jobs_option
@executor_option
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
    refresh: bool,
    checksums: str | None,
    verbose: bool,
    jobs: int | None,
    executor: str | None,
    fmt: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Run recipes and write their locks under locks/<name>/<version>/.

    A lock is rewritten only when its content changes; relocking unchanged inputs leaves
    the files byte for byte as they were. A recipe is not run again while nothing its last
    run read changed (docs/recipes.md, "When a recipe is skipped").
    """
    _check_usage(click.get_current_context())
    run = _Run(
        check,
        dry_run,
        jobs,
        at,
        fmt,
        quiet,
        root,
        verbose=verbose,
        refresh=refresh,
        executor=executor,
        checksums=checksums,
    )
    if script is not None:
        parsed = _parse_params(params)
        return _lock_script(run, script, out=out, entrypoint=entrypoint, source=source, params=parsed)
    return _lock_datasets(run, datasets, stale=stale, exit_code=exit_code)
