"""``vxds gc``: remove the store's objects that no lock references (a dry run by default)."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import format_option, quiet_option, root_option
from vxds.cli.output import print_json
from vxds.cli.push import size_text

EPILOG = """\b
Examples:
  vxds gc --store s3://bucket/vxds-store    what would go (nothing is removed)
  vxds gc --delete                          remove it
  vxds gc --rev main --rev v1.0 --delete    keep only what these revisions' locks need

Kept: every object a lock in the working tree or at the revisions references (default:
every branch and tag; --all-revs: every commit of the history).
"""


@click.command("gc", epilog=EPILOG)
@click.option(
    "--store", "store", default=None, metavar="URL", help="The store (default: [tool.vxds.store] url)."
)
@click.option(
    "--rev", "revs", multiple=True, metavar="REV", help="Keep what the locks at REV need (repeatable)."
)
@click.option("--all-revs", is_flag=True, help="Keep what the locks of any commit of the history need.")
@click.option(
    "--dry-run/--delete", "dry_run", default=True, show_default=True, help="Only say what would go."
)
@format_option
@quiet_option
@root_option
def command(
    store: str | None,
    revs: tuple[str, ...],
    all_revs: bool,
    dry_run: bool,
    fmt: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Remove objects no lock in the named revisions (default: every branch and tag) references."""
    from vxds.errors import UsageError
    from vxds.project.config import load_config
    from vxds.store.cas import open_store, store_url
    from vxds.store.gc import every_commit, gc
    from vxds.store.wanted import every_ref_name

    if revs and all_revs:
        raise UsageError("give --rev REV... or --all-revs, not both")
    config = load_config(root)
    opened = open_store(store_url(store, config.store), base=config.root, options=config.storage)
    chosen = list(revs) or (every_commit(config) if all_revs else every_ref_name(config))
    report = gc(config, opened, chosen, dry_run=dry_run)
    if fmt == "json":
        print_json(
            {
                "store": report.store,
                "dry_run": dry_run,
                "kept": report.kept,
                "freed": report.freed,
                "removed": [digest for digest, _ in report.removed],
            }
        )
        return 0
    if not quiet:
        verb = "would remove" if dry_run else "removed"
        for digest, size in report.removed:
            click.echo(f"{verb} blake3/{digest[:2]}/{digest[2:]} ({size_text(size)})")
    what = f"{len(report.removed)} objects ({size_text(report.freed)})"
    if report.temporaries:
        what += f" and {report.temporaries} files of killed writes"
    if dry_run:
        click.echo(
            f"{report.store}: would remove {what}, keep {report.kept}; run with --delete to remove them"
        )
    else:
        click.echo(f"{report.store}: removed {what}, kept {report.kept}")
    return 0
