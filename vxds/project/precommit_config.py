"""The vxds hooks in a repository's ``.pre-commit-config.yaml``, written or merged as text.

pre-commit reads only the configuration at the root of the Git repository and runs hooks
there, with ``files:`` patterns matched against paths from that root. A project in a
subfolder (``vxds init ml/datasets`` in a monorepo) gets hooks whose patterns start with
the subfolder and whose commands run in it (``vxds -C ml/datasets ...``). An existing
configuration is edited as text (pre-commit's autoupdate does the same): the vxds block is
inserted at the end of its ``repos:`` list, and every other line, comment and hook is kept.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Literal

from vxds.fs import atomic_write_text
from vxds.templates import read

Action = Literal["created", "updated", "kept", "skipped"]
TEMPLATE = "pre-commit-config.yaml.txt"
_REPOS_RE = re.compile(r"^repos:[ \t]*(#.*)?$", re.M)
_TOP_KEY_RE = re.compile(r"^[^\s#-]")


def scoped(text: str, prefix: str) -> str:
    """The template's lines for a project at ``prefix`` (a POSIX path from the Git root; "" is the root)."""
    if not prefix:
        return text
    pattern = re.escape(prefix) + "/"
    folder = shlex.quote(prefix)
    text = re.sub(r"^(\s*files: \^)", lambda m: m.group(1) + pattern, text, flags=re.M)
    return re.sub(r"^(\s*entry: vxds )", lambda m: f"{m.group(1)}-C {folder} ", text, flags=re.M)


def _block(prefix: str) -> str:
    """The template's ``- repo: local`` item, for insertion into another configuration."""
    body = scoped(read(TEMPLATE), prefix)
    item = body[body.index("  - repo: local") :]
    where = f"the vxds project in {prefix}/" if prefix else "the vxds project"
    return f"  # {where}: hooks written by 'vxds init' (docs/pre-commit.md)\n{item}"


def _marker(prefix: str) -> str:
    """A line that is in the configuration once these hooks are."""
    return scoped("        entry: vxds verify --manifest-only --quiet\n", prefix).strip()


def merged(text: str, prefix: str) -> str | None:
    """``text`` with the vxds hooks for ``prefix`` added to its ``repos:`` list, or None when
    ``repos:`` is not a block list this edit can extend (flow style, or no such key)."""
    found = _REPOS_RE.search(text)
    if found is None:
        return None
    lines = text[found.end() :].split("\n")[1:]
    used = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if used and not used[0].lstrip().startswith("- "):
        return None
    end = next((n for n, line in enumerate(lines) if _TOP_KEY_RE.match(line)), len(lines))
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1  # before the blank lines ending the list and the comments above the next key
    indent = len(used[0]) - len(used[0].lstrip()) if used else 2
    block = _block(prefix).replace("\n  ", "\n" + " " * indent)
    block = " " * indent + block[2:].rstrip("\n")
    head = text[: found.end()] + "\n"
    return head + "\n".join([*lines[:end], block, *lines[end:]]).rstrip("\n") + "\n"


def write(config: Path, prefix: str) -> Action:
    """Create ``config`` from the template, or add the hooks to it; never rewrite what is there."""
    if not config.exists():
        atomic_write_text(config, scoped(read(TEMPLATE), prefix))
        return "created"
    text = config.read_text(encoding="utf-8")
    if _marker(prefix) in text:
        return "kept"
    new = merged(text, prefix)
    if new is None:
        return "skipped"
    atomic_write_text(config, new)
    return "updated"
