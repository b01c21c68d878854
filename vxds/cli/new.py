"""``vxds new``: a recipe from a template, registered in datasets.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from vxds.cli.options import quiet_option, root_option
from vxds.project.config import load_config

EPILOG = """\b
Examples:
  vxds new lesion_seg --description "T2w with lesion masks"
  vxds new lesion_seg --version 2 --script recipes/lesion_seg.py   a new version, same recipe
"""


@click.command("new", epilog=EPILOG)
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--description", default="", help="One line saying what the dataset holds.")
@click.option(
    "--script",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use an existing recipe script instead of writing recipes/NAME.py.",
)
@click.option("--source", help="Source URL for this dataset (default: [tool.vxds] source).")
@click.option(
    "--group-by",
    default="attrs.subject",
    show_default=True,
    help="Field whose values must not span splits ('' for none).",
)
@quiet_option
@root_option
def command(
    name: str,
    version: int,
    description: str,
    script: Path | None,
    source: str | None,
    group_by: str,
    quiet: bool,
    root: Path | None,
) -> int:
    """Add dataset NAME: write recipes/NAME.py from a template and register it in datasets.yaml."""
    from vxds.project.new_dataset import add_dataset, check_name

    check_name(name)  # before looking for the project: a bad name is the first thing to hear
    config = load_config(root)
    added = add_dataset(
        config,
        name,
        version=version,
        description=description,
        script=script,
        source=source,
        group_by=group_by,
    )
    if not quiet:
        click.echo(f"created {config.relative(added.script)}" if added.created else f"using {script}")
        click.echo(f"registered {name}@{version} in {config.relative(added.manifest)}")
        click.echo(f"next: edit the recipe, then run 'vxds lock {name}@{version}'")
    return 0
