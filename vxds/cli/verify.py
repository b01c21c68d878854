"""``vxds verify``: check manifest, locks, leakage, data and reproducibility; print findings."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import click

from vxds.cli.options import format_option, jobs_option, quiet_option, root_option
from vxds.cli.output import print_json, progress_bar
from vxds.findings import ERROR, SKIPPED, WARNING, Finding
from vxds.verify import Options, Report, Sample, run

EPILOG = """\b
Examples:
  vxds verify                          everything that needs no recipe code and no data
  vxds verify --no-exec                for pull requests from forks: never imports a recipe
  vxds verify --reproduce              also re-run every recipe and compare with its lock
  vxds verify --data --sample 5%       also re-hash a seeded 5% of each lock's resources
  vxds verify viseg_training@2 --format json

Codes (VX101 ...) are explained in docs/checks.md. Exit 1 when an error is found (or,
with --strict, a warning); 0 otherwise.
"""

SEVERITY_COLOURS = {ERROR: "red", WARNING: "yellow", SKIPPED: "cyan"}


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


def render_text(report: Report, *, quiet: bool) -> list[str]:
    """Findings grouped per dataset (project-wide ones first)."""
    out = []
    for dataset, items in groupby(report.findings, key=lambda f: f.dataset or ""):
        shown = [f for f in items if not quiet or f.severity != SKIPPED]
        if shown:
            out.append(click.style(dataset or "project", bold=True))
            out.extend(_line(f) for f in shown)
    return out


@click.command("verify", epilog=EPILOG)
@click.argument("datasets", nargs=-1, metavar="[NAME[@VERSION]]...")
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
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option(
    "--no-cache", is_flag=True, help="Check every lock line again, ignoring results kept in .vxds/."
)
@jobs_option
@format_option
@quiet_option
@root_option
def command(
    datasets: tuple[str, ...],
    no_exec: bool,
    reproduce: bool,
    data: bool,
    sample: str | None,
    seed: int,
    manifest_only: bool,
    strict: bool,
    no_cache: bool,
    jobs: int | None,
    fmt: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Check the manifest, every lock and (optionally) the data and the recipes.

    Without --reproduce no recipe code is run; with --no-exec none is even imported,
    whatever else is asked. Nothing in the repository is written.
    """
    from vxds.config import load_config
    from vxds.errors import UsageError

    if sample is not None and not data:
        raise UsageError("--sample goes with --data")
    parsed = Sample.parse(sample) if sample is not None else None
    config = load_config(root)
    with progress_bar(quiet or fmt == "json") as progress:
        options = Options(
            no_exec=no_exec,
            data=data,
            sample=parsed,
            seed=seed,
            reproduce=reproduce,
            manifest_only=manifest_only,
            use_cache=not no_cache,
            jobs=jobs,
            progress=progress,
        )
        report = run(config, datasets, options)
    if fmt == "json":
        print_json({"findings": [f.to_json() for f in report.findings], "summary": report.summary()})
    else:
        lines = render_text(report, quiet=quiet)
        if lines:
            click.echo("\n".join(lines))
        if not quiet or report.errors or (strict and report.warnings):
            click.echo(summary_line(report, parsed, seed, manifest_only=manifest_only))
    return 1 if report.errors or (strict and report.warnings) else 0
