"""Every example in docs/diff.md, docs/checks.md and docs/ci/ runs as written.

The pages are read, not copied: a ``$ vxds ...`` block is run and its output compared (with
each commit's sha, date and author masked), a ``sh`` block is run by bash with the real
``vxds`` on PATH, every read-only ``vxds`` command quoted inline runs without a usage error,
the JSON example has the keys of the real document, and each finding shown has the shape
``vxds verify`` prints, with a documented code; every command's ``--help`` has examples.
(docs/ci/ is run by test_diff.py.)
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tests.helpers import GIT_ENV, REPO, Invoke, commit_all, git
from vxds.cli.main import cli

PAGES = [REPO / "docs/diff.md", REPO / "docs/checks.md"]
FENCE_RE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
COMMIT_RE = re.compile(r"^[0-9a-f]{7}  \d{4}-\d\d-\d\d  .*$", re.M)
INLINE_RE = re.compile(r"`(vxds (?:diff|list|log|verify) [^`]*)`")  # a bare `vxds log` names the command
PLACEHOLDER_RE = re.compile(r"\b(?!HEAD\b)[A-Z][A-Z_]*\b|…|<")  # NAME, REV, OLD, ID ... are not examples
FINDING_RE = re.compile(r"^  (error|warning|skipped) +(VX\d{3}) \S+: \S.*$")


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE_RE.finditer(page.read_text(encoding="utf-8"))]


def _masked(text: str) -> str:
    return COMMIT_RE.sub("<commit>", text)


@pytest.fixture
def published(history: Path) -> Path:
    """The history of the examples, on a branch off main, with main as the upstream."""
    git(history, "branch", "-f", "origin/main", "main")
    git(history, "checkout", "-q", "-b", "next")
    return history


def test_shown_commands_print_what_the_page_shows(published: Path, invoke: Invoke) -> None:
    shown = [body for page in PAGES for _, body in _blocks(page) if body.startswith("$ vxds ")]
    assert len(shown) >= 3
    for body in shown:
        command, _, expected = body.partition("\n")
        result = invoke(*shlex.split(command)[2:])
        assert result.exit_code == 0, (command, result.output)
        assert _masked(result.output) == _masked(expected), command


def test_sh_blocks_run(published: Path) -> None:
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    blocks = [body for page in PAGES for language, body in _blocks(page) if language == "sh"]
    assert blocks
    for body in blocks:
        run = subprocess.run(
            ["bash", "-e", "-c", body], cwd=published, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, body + run.stdout + run.stderr
        git(published, "reset", "-q", "--hard", "main")  # the next block starts where this one did


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_inline_commands_run(published: Path, invoke: Invoke, page: Path) -> None:
    commands = sorted(
        {c for c in INLINE_RE.findall(page.read_text(encoding="utf-8")) if not PLACEHOLDER_RE.search(c)}
    )
    assert len(commands) >= 2
    for command in commands:
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code in (0, 1), (command, result.output)


def _keys(value: object) -> object:
    """The shape of a JSON value: the keys of every object, the shape of a list's first item."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value and isinstance(value[0], dict) else []
    return None


def test_the_json_example_has_the_documents_keys(history: Path, invoke: Invoke) -> None:
    [example] = [json.loads(body) for language, body in _blocks(REPO / "docs/diff.md") if language == "json"]
    real = json.loads(invoke("diff", "v1", "HEAD", "-d", "all_basel_data", "--format", "json").output)
    assert example["format"] == real["format"]
    doc, dataset = real["datasets"][0], example["datasets"][0]
    assert set(example) == set(real)
    assert set(dataset) == set(doc)
    changes = {c["kind"]: set(c) for c in doc["changes"]}
    for change in dataset["changes"]:
        assert set(change) == changes.get(change["kind"], set(change)), change["kind"]
    assert set(dataset["splits"]["all"]) == set(doc["splits"]["all"])


def test_findings_shown_are_what_verify_prints() -> None:
    text = (REPO / "docs/checks.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#+ (VX\d{3})|^\| (VX\d{3}) \|", text, re.M))
    codes = {a or b for a, b in documented}
    blocks = [
        body.splitlines()
        for page in PAGES
        for language, body in _blocks(page)
        if not language and any(FINDING_RE.match(line) for line in body.splitlines())
    ]
    assert len(blocks) >= 10
    for lines in blocks:
        for line in lines:
            if line.startswith("  ") and not line.startswith("      "):
                match = FINDING_RE.match(line)
                assert match, line
                assert match.group(2) in codes, line


def test_a_recipe_change_not_relocked_in_the_documented_markdown(published: Path, invoke: Invoke) -> None:
    """docs/diff.md's sentence for a stale lock is what the Markdown comment says."""
    recipe = published / "recipes/basel.py"
    recipe.write_text(recipe.read_text() + "# changed\n")
    commit_all(published, "not relocked")
    markdown = invoke("diff", "--format", "markdown", "origin/main...HEAD").output
    page = (REPO / "docs/diff.md").read_text(encoding="utf-8")
    sentence = "stale: the recipe script ./recipes/basel.py changed; the lock was not relocked"
    assert sentence in markdown
    assert sentence in " ".join(page.split())


Walked = Iterator[tuple[tuple[str, ...], click.Command]]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Walked:
    """Every command of the ``vxds`` group, subgroups' commands included, with its path."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_has_examples_in_its_help(invoke: Invoke) -> None:
    """Each ``--help`` (through the real CLI) has an Examples section whose lines run it."""
    walked = list(_commands(cli))
    assert len(walked) >= 24  # the subcommands, catalog's four, status and completion
    for path, _ in walked:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, path
        lines = result.stdout.splitlines()
        starts = [n for n, line in enumerate(lines) if re.match(r"^ *Examples\b.*:$", line)]
        assert starts, f"vxds {' '.join(path)} --help has no Examples section"
        section = itertools.takewhile(str.strip, lines[starts[0] + 1 :])
        shown = [line.split() for line in section]
        assert any(words[1 : 1 + len(path)] == list(path) for words in shown if words), path
