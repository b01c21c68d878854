"""The ``vxds`` entry point: ``main``, and the command group (``cli``, from cli/group.py).

``vxds verify --data`` hashes the locks' large files on another process while the checks
run (cli/prefetch.py); the sooner that starts, the sooner the command ends. So ``main``
looks at the command line before anything else is imported, and when it is a plain
``verify --data`` (only the options listed here), forks the hasher (cli/early.py) before
click and the command group are even imported. The command still parses its arguments with
click and makes every check; it takes the digests only if it asks for the same files.
"""

from __future__ import annotations

import gc
import sys

TYPE_CHECKING = False  # as in vxds/__init__.py: ``typing`` is not imported before the fork
if TYPE_CHECKING:
    from typing import Any

# verify's options the early start understands: any other option leaves it to the command.
_FLAGS = frozenset({"--data", "--no-exec", "--strict", "--no-cache", "--quiet", "-q"})
_VALUED = frozenset({"--root", "--format", "--jobs", "-j"})
_GLOBAL_FLAGS = frozenset({"--quiet", "-q"})  # -C DIR changes folder: left to the command


_GROUP_NAMES = frozenset({"cli", "COMMANDS", "EPILOG", "LazyGroup"})


def __getattr__(name: str) -> Any:
    """``cli``, ``COMMANDS`` ... from cli/group.py, imported on first use (any other name is
    missing: the import system asks for ``__path__`` and must not import click by it)."""
    if name not in _GROUP_NAMES:
        raise AttributeError(f"module 'vxds.cli.main' has no attribute {name!r}")
    from vxds.cli import group

    return getattr(group, name)


def plain_data_check(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``(--root, dataset specs)`` when ``argv`` is ``verify --data`` with only the options
    of ``_FLAGS`` and ``_VALUED`` (and ``-q`` before it); None for anything else."""
    args = list(argv)
    while args and args[0] in _GLOBAL_FLAGS:
        args.pop(0)
    if args[:1] != ["verify"]:
        return None
    options: dict[str, str] = {}
    specs: list[str] = []
    rest = iter(args[1:])
    for arg in rest:
        name, equals, value = arg.partition("=")
        if not (equals and name.startswith("--") and name in _VALUED):
            name, value = arg, "" if arg in _FLAGS or not arg.startswith("-") else next(rest, "-")
            if arg not in _FLAGS and arg not in _VALUED:
                if arg.startswith("-"):
                    return None  # an option the early start does not know
                specs.append(arg)
                continue
            if value.startswith("-"):
                return None
        options[name] = value
    return (options.get("--root"), specs) if "--data" in options else None


def main() -> None:
    # One process, one command: it makes millions of objects that live to its end (resources,
    # index entries, lock lines) and few cycles, and at Python's default threshold the cycle
    # collector walks them all again and again (0.4 s of CPU of a 100,000-file relock with
    # one file changed, bench/README.md). Collecting less often costs a little memory held by
    # cycles a little longer.
    gc.set_threshold(100_000, 50, 50)
    plain = plain_data_check(sys.argv[1:])
    if plain is None:
        from vxds.cli.group import cli

        cli(prog_name="vxds")
        return
    from vxds.cli import early

    early.start(*plain)
    from vxds.cli.group import cli

    try:
        cli(prog_name="vxds")
    except SystemExit as done:
        _exit_now(done.code)


def _exit_now(code: object) -> None:
    """End a plain ``verify --data`` without tearing the interpreter down: freeing every
    module and object it made took ~20 ms of CPU after the last line was printed. Its work
    is done by now (its caches written atomically, its thread pools' work returned), so
    what the interpreter's end would add is the ``atexit`` handlers, run here, and the
    flush of the output streams."""
    import atexit
    import os

    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")  # as the interpreter shows a SystemExit message
        code = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (| head): as the command group exits then
        os._exit(141)
    except OSError:  # output that cannot be written (a full disk): as the interpreter exits then
        os._exit(120)
    os._exit(code or 0)
