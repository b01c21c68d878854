"""``vxds verify``: check manifest, locks, leakage, data and reproducibility; print findings."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from collections.abc import Callable

    from vxds.project.config import Config
    from vxds.verify import Report, Sample
    from vxds.verify.findings import Finding

    Prehashed = Callable[[str, tuple[int, int, int]], str | None]

# The checks (``vxds.verify``) are imported inside the command, after ``--data`` has started
# hashing (cli/prefetch.py): importing them is most of the command's own start-up.

EPILOG = """\b
Examples:
  vxds verify                          everything that needs no recipe code and no data
  vxds verify --no-exec                for pull requests from forks: never imports a recipe
  vxds verify --reproduce              also re-run every recipe and compare with its lock
  vxds verify --data --sample 5%       also re-hash a seeded 5% of each lock's resources
  vxds verify viseg_training@2 --format json
  vxds verify --no-exec --base origin/main   in CI: a published version must not change
  vxds verify --materialized out/            an output folder against its receipt and lock

Codes (VX101 ...) are explained in docs/checks.md. Exit 1 when an error is found (or,
with --strict, a warning); 0 otherwise.
"""

SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "skipped": "cyan"}  # by Finding.severity
MAX_DRIFT_LINES = 40


def _line(finding: Finding) -> str:
    severity = click.style(f"{finding.severity:<7}", fg=SEVERITY_COLOURS[finding.severity])
    where = f"{finding.where}: " if finding.where else ""
    return f"  {severity} {finding.code} {where}{finding.message}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def summary_line(report: Report, sample: Sample | None, seed: int, *, manifest_only: bool = False) -> str:
    checked = f"{_plural(report.datasets, 'lock')}, {_plural(report.resources, 'resource')}"
    if manifest_only:
        checked = f"the manifest, {_plural(report.datasets, 'dataset')}"
    if report.data_checked:
        checked += f", {report.data_checked:,} re-hashed"
        if sample is not None:
            checked += f" (sample {sample}, seed {seed})"
    found = [_plural(report.errors, "error"), _plural(report.warnings, "warning")]
    if report.skipped:
        found.append(f"{report.skipped:,} skipped")
    return f"verified {checked}: {', '.join(found)}"


def _drift_lines(report: Report, dataset: str) -> list[str]:
    """``--reproduce``: what re-running the recipe changed, as ``vxds diff`` shows it."""
    drift = report.drift.get(dataset)
    if drift is None:
        return []
    from vxds.cli.diff import paint
    from vxds.report.text import render

    lines = list(render([drift], paint=paint))[:-1]  # the summary is the finding's message
    if len(lines) > MAX_DRIFT_LINES:
        lines = [
            *lines[:MAX_DRIFT_LINES],
            f"... {len(lines) - MAX_DRIFT_LINES} more lines: vxds diff shows all",
        ]
    return [f"      {line}" for line in lines]


def render_text(report: Report, *, quiet: bool) -> list[str]:
    """Findings grouped per dataset (project-wide ones first)."""
    out = []
    for dataset, items in groupby(report.findings, key=lambda f: f.dataset or ""):
        shown = [f for f in items if not quiet or f.severity != "skipped"]
        if shown:
            out.append(click.style(dataset or "project", bold=True))
            for finding in shown:
                out.append(_line(finding))
                if finding.code == "VX601":
                    out.extend(_drift_lines(report, dataset))
    return out


def _materialized(out: Path, root: Path | None) -> Report:
    """``--materialized OUT``: the folder against its receipt and the lock the receipt names."""
    from vxds.errors import VxdsError
    from vxds.locks.store import Lock, lock_dir, read_lock
    from vxds.materialize.check import check_output, receipt_dataset
    from vxds.project.config import load_config
    from vxds.project.manifest import parse_spec
    from vxds.verify import Report
    from vxds.verify.findings import SKIPPED, Finding

    lock: Lock | None = None
    skipped: list[Finding] = []
    key = receipt_dataset(out)
    if key is not None:
        try:
            config = load_config(root)
            name, version = parse_spec(key)
            lock = read_lock(lock_dir(config.locks, name, version or 0))
        except VxdsError as exc:
            reason = f"the lock of {key} could not be read ({exc.message}); checked against the receipt only"
            skipped.append(Finding("VX702", SKIPPED, reason, dataset=key, file=out.as_posix()))
    findings = skipped + check_output(out, lock)
    resources = sum(split.count for split in lock.splits.values()) if lock is not None else 0
    return Report(findings, datasets=1, resources=resources)


@click.command("verify", epilog=EPILOG)
@click.argument("datasets", nargs=-1, metavar="[NAME[@VERSION]]...", shell_complete=complete_datasets)
@click.option(
    "--no-exec", is_flag=True, help="Never import or run recipe code; checks that need it are skipped."
)
@click.option("--reproduce", is_flag=True, help="Re-run the recipes and compare with their locks.")
@click.option("--data", is_flag=True, help="Re-hash the resources' bytes from the source.")
@click.option(
    "--sample",
    metavar="N|P%",
    help="With --data: re-hash N resources (or P%) of each lock, chosen at random.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="With --sample: the random seed.")
@click.option(
    "--manifest-only", is_flag=True, help="Check datasets.yaml (schema and scripts) and nothing else."
)
@click.option(
    "--base",
    metavar="REV",
    help="Locks at this Git revision are published: fail if one changed without a new version.",
)
@click.option(
    "--materialized",
    type=click.Path(path_type=Path),
    metavar="OUT",
    help="Check a folder written by 'vxds materialize' against its receipt and lock, nothing else.",
)
@click.option("--store", "store", metavar="URL", help="Check every resource is in this store.")
@click.option("--from-store", is_flag=True, help="With --data: re-hash the store's copies instead.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--no-cache", is_flag=True, help="Check every lock line again, ignoring results kept in .vxds/."
)
@jobs_option
@executor_option
@format_option
@quiet_option
@root_option
def command(
    datasets: tuple[str, ...],
    data: bool,
    sample: str | None,
    seed: int,
    materialized: Path | None,
    from_store: bool,
    strict: bool,
    no_cache: bool,
    executor: str | None,
    fmt: str,
    quiet: bool,
    root: Path | None,
    **checks: Any,  # no_exec, reproduce, manifest_only, base, store, jobs: Options' own fields
) -> int:
    """Check the manifest, every lock and (optionally) the data and the recipes.

    Without --reproduce no recipe code is run; with --no-exec none is even imported,
    whatever else is asked. Nothing in the repository is written."""
    from vxds.project.config import load_config

    _check_usage(sample=sample, data=data, from_store=from_store)
    if materialized is not None:
        report = _materialized(materialized, root)
        return _show(report, fmt=fmt, quiet=quiet, strict=strict, sample=None, seed=seed)
    config = with_executor(load_config(root), executor)
    manifest_only = bool(checks["manifest_only"])
    local = config.executor in (None, "local")  # on a cluster, the workers hash: nothing ahead
    ahead = data and sample is None and not from_store and not manifest_only and local
    prehashed = _start_hashing(config, datasets) if ahead else None
    if not ahead:
        _stop_early()
    from vxds.verify import Options, Sample, run

    parsed = Sample.parse(sample) if sample is not None else None
    with progress_bar(quiet or fmt == "json") as progress:
        options = Options(
            data=data,
            sample=parsed,
            seed=seed,
            from_store=from_store,
            use_cache=not no_cache,
            progress=progress,
            prehashed=prehashed,
            **checks,
        )
        report = run(config, datasets, options)
    return _show(
        report, fmt=fmt, quiet=quiet, strict=strict, sample=parsed, seed=seed, manifest_only=manifest_only
    )


def _check_usage(*, sample: str | None, data: bool, from_store: bool) -> None:
    """``--sample`` and ``--from-store`` go with ``--data`` only."""
    from vxds.errors import UsageError

    if sample is not None and not data:
        raise UsageError("--sample goes with --data")
    if from_store and not data:
        raise UsageError("--from-store goes with --data")


def _start_hashing(config: Config, datasets: tuple[str, ...]) -> Prehashed:
    """``--data``: start hashing the large files, before the checks are even imported."""
    from vxds.cli.prefetch import start

    return start(config.root, config.locks, config.source, datasets).get


def _stop_early() -> None:
    """No hashing ahead: stop the child ``main`` may have forked for it (cli/early.py)."""
    from vxds.cli import early

    early.stop()


def _show(
    report: Report,
    *,
    fmt: str,
    quiet: bool,
    strict: bool,
    sample: Sample | None,
    seed: int,
    manifest_only: bool = False,
) -> int:
    if fmt == "json":
        document = {"findings": [f.to_json() for f in report.findings], "summary": report.summary()}
        if report.drift:
            document["drift"] = {key: diff.to_json() for key, diff in sorted(report.drift.items())}
        print_json(document)
    else:
        lines = render_text(report, quiet=quiet)
        if lines:
            click.echo("\n".join(lines))
        if not quiet or report.errors or (strict and report.warnings):
            click.echo(summary_line(report, sample, seed, manifest_only=manifest_only))
    return 1 if report.errors or (strict and report.warnings) else 0
