"""``vxds bump``: close a published version and open the next (the work is in
``vxds.project.manifest_edit``)."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.completion import complete_datasets
from vxds.cli.options import quiet_option, root_option

EPILOG = """\b
Examples:
  vxds bump all_basel_data   all_basel_data@1 gets frozen: true, @2 is added after it

Then change the recipe: 'vxds lock --all' writes locks/all_basel_data/2/ and the
frozen all_basel_data@1 keeps its lock as published (see docs/checks.md).
"""


@click.command("bump", epilog=EPILOG)
@click.argument("name", shell_complete=complete_datasets)
@quiet_option
@root_option
def command(name: str, quiet: bool, root: Path | None) -> int:
    """Mark NAME's highest version frozen and add the next version with the same recipe."""
    from vxds.project.config import load_config
    from vxds.project.manifest_edit import bump_dataset

    config = load_config(root)
    bumped = bump_dataset(config.manifest, name, default_source=config.source)
    if not quiet:
        manifest = config.relative(config.manifest)
        click.echo(f"{click.style('  frozen', fg='green')}  {name}@{bumped.frozen} in {manifest}")
        click.echo(f"{click.style('   added', fg='green')}  {name}@{bumped.added} in {manifest}")
        click.echo(f"next: change the recipe, then 'vxds lock {name}@{bumped.added}'")
    return 0
