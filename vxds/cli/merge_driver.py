"""``vxds merge-driver``: Git's merge driver for lock files (registered by ``vxds install``)."""

from __future__ import annotations

import click

EPILOG = """\b
Examples (Git runs it; by hand, to merge three copies of one split file):
  vxds merge-driver base.jsonl ours.jsonl theirs.jsonl locks/demo/1/resources.train.jsonl

\b
Git runs it, with the configuration that 'vxds install' (or 'vxds init') writes:
  git config merge.vxds.driver "vxds merge-driver %O %A %B %P"
  .gitattributes:  locks/**/lock.toml merge=vxds
                   locks/**/resources.*.jsonl merge=vxds

Exit codes: 0 merged cleanly, 1 conflicts (left between markers), 2 a file that
cannot be merged by id.
"""


@click.command("merge-driver", epilog=EPILOG)
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("ours", type=click.Path(dir_okay=False))
@click.argument("theirs", type=click.Path(dir_okay=False))
@click.argument("path", default="")
def command(base: str, ours: str, theirs: str, path: str) -> int:
    """Merge BASE, OURS and THEIRS of the lock file PATH into OURS, by resource id."""
    from vxds.git.merge_driver import run

    status, messages = run(base, ours, theirs, path or ours)
    for message in messages:
        click.secho(f"vxds merge: {message}", fg="yellow", err=True)
    if status == 0 and path.endswith(".toml"):
        from vxds.cli.output import note

        note(f"vxds merge: {path} merged; relock it before release (vxds lock)")
    return status
