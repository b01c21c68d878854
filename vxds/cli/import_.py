"""``vxds import``: a dataset's lock from a registry repository, pinned to one commit (the
work is in ``vxds.registry``)."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import quiet_option, root_option

EPILOG = """\b
Examples:
  vxds import https://github.com/org/data-platform viseg_training@2 --rev v3
  vxds import ../registry clinical_cohort --as cohort      the registry's HEAD, renamed
  vxds import file:///srv/git/registry.git all_basel_data@1 --rev main

The lock is written to locks/LOCAL/V/ and the manifest gets an entry with an import:
block (url, rev, commit, name, version). 'vxds lock' never runs it; 'vxds verify'
checks it against the registry; 'vxds update' moves it on (see docs/registry.md).
"""


@click.command("import", epilog=EPILOG)
@click.argument("url")
@click.argument("dataset", metavar="NAME[@V]")
@click.option("--rev", default=None, metavar="REV", help="Branch, tag or commit of the registry [its HEAD].")
@click.option(
    "--as", "local", default=None, metavar="LOCAL", help="The dataset's name here [its name there]."
)
@quiet_option
@root_option
def command(
    url: str, dataset: str, rev: str | None, local: str | None, quiet: bool, root: Path | None
) -> int:
    """Copy NAME[@V]'s lock from the registry at URL and pin it in datasets.yaml."""
    from vxds.project.config import load_config
    from vxds.registry.imports import import_dataset

    config = load_config(root)
    done = import_dataset(config, url, dataset, rev=rev, local=local)
    if not quiet:
        block = done.block
        click.echo(
            f"{click.style('imported', fg='green')}  {done.key} from {block['url']} "
            f"({block['name']}@{block['version']} at {block['rev']}, {block['commit'][:12]})"
        )
    return 0
