"""The ``vxds`` command group. Subcommands are imported only when run, so ``--help`` is fast.

``vxds.cli.main`` holds the entry point, which imports this module (and click) only after
it started ``verify --data``'s hashing."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from vxds import __version__

# name -> (module, one-line help); the help is here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("vxds.cli.init", "Scaffold a vxds repository in the current folder."),
    "new": ("vxds.cli.new", "Add a recipe from a template and register it in datasets.yaml."),
    "bump": ("vxds.cli.bump", "Freeze a dataset's published version and add the next one."),
    "lock": ("vxds.cli.lock", "Run recipes and write their locks."),
    "list": ("vxds.cli.list", "List datasets with the state of their locks."),
    "status": ("vxds.cli.status", "Lock state and data drift per dataset; exit 1 if any needs work."),
    "show": ("vxds.cli.show", "Count a lock's resources per split, type and attribute."),
    "diff": ("vxds.cli.diff", "Show what changed between two locks, revisions or versions."),
    "log": ("vxds.cli.log", "List the commits that changed a dataset's lock, with counts."),
    "query": ("vxds.cli.query", "Run SQL (DuckDB) over the locks and their Git history."),
    "completion": ("vxds.cli.completion", "Print the shell completion script (bash, zsh or fish)."),
    "merge-driver": ("vxds.cli.merge_driver", "Git merge driver for lock files (run by Git)."),
    "install": ("vxds.cli.install", "Register the lock merge driver with Git in this repository."),
    "materialize": ("vxds.cli.materialize", "Write a lock's resources to a folder, checking every byte."),
    "verify": ("vxds.cli.verify", "Check manifest, locks, leakage and (optionally) data and recipes."),
    "push": ("vxds.cli.push", "Upload the locked bytes the content-addressed store lacks."),
    "gc": ("vxds.cli.gc", "Remove store objects no lock in the named revisions references."),
    "import": ("vxds.cli.import_", "Copy a dataset's lock from a registry repository, pinned to a commit."),
    "update": ("vxds.cli.update", "Move imported datasets to the newest commit of their registry rev."),
    "catalog": ("vxds.cli.catalog", "Ingest folders into a versioned catalog; list it as of a snapshot."),
}

EPILOG = """\b
Examples:
  vxds lock --all                 lock every dataset in datasets.yaml
  vxds lock viseg_training@2      lock one version
  vxds lock --all --check         exit 1 if any lock is missing or would change
  vxds list                       fresh, stale, missing or corrupt, per dataset
  vxds show viseg_training --by attrs.site
  vxds verify --no-exec           check every lock without running recipe code

Exit codes: 0 success, 1 a check found something, 2 bad usage or input, 130 interrupted.
"""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command: click.Command = importlib.import_module(COMMANDS[cmd_name][0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> Any:
        from vxds.errors import VxdsError

        try:
            result = super().invoke(ctx)
        except VxdsError as exc:
            from vxds.cli.output import FORMAT, error, failed

            error(exc)
            if ctx.meta.get(FORMAT) == "json":
                failed(exc.message, exc.exit_code, hint=exc.hint)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # the reader went away (| head): stop quietly, as git does
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except OSError as exc:  # a file that cannot be read or written: bad input, not a bug
            from vxds.cli.output import FORMAT, failed

            where = f"{exc.filename}: " if exc.filename else ""
            click.secho(f"error: {where}{exc.strerror or exc}", fg="red", err=True)
            if ctx.meta.get(FORMAT) == "json":
                failed(f"{where}{exc.strerror or exc}", 2)
            ctx.exit(2)
        if isinstance(result, int) and result:
            ctx.exit(result)
        return result


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="vxds")
@click.option(
    "-C",
    "directory",
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Run as if vxds was started in DIR (as git -C).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print results and errors only; no progress bar.")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Say more on stderr: why each recipe ran or was skipped; -vv: timings too.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the output (auto: on a terminal, unless NO_COLOR is set).",
)
@click.pass_context
def cli(ctx: click.Context, directory: Path | None, quiet: bool, verbose: int, color: str) -> None:
    """vxds: declarative, content-hashed datasets you can review in Git.

    Recipes (Python functions) select resources from a source; `vxds lock` writes the
    exact result, with versions and blake3 hashes, under locks/ for you to commit.
    """
    from vxds.cli.output import global_options

    global_options(ctx, directory, quiet=quiet, verbose=verbose, color=color)
