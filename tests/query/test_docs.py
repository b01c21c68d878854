"""Every statement of docs/query.md's cookbook prints what the page shows, so it cannot drift."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import REPO, Invoke, commit_all, git

PAGE = REPO / "docs/query.md"
EXAMPLE = re.compile(r"```sql\n(?P<sql>.*?)```\n\n```text\n(?P<output>.*?)```", re.DOTALL)
FLAGS = re.compile(r"-- vxds query (?P<flags>.*)\n")


def _examples() -> list[tuple[list[str], str, str]]:
    found = []
    for match in EXAMPLE.finditer(PAGE.read_text(encoding="utf-8")):
        sql = match["sql"]
        flags = FLAGS.match(sql)
        args = shlex.split(flags["flags"]) if flags else []
        found.append((args, sql[flags.end() :] if flags else sql, match["output"]))
    return found


def _shown(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


def test_the_page_has_a_cookbook() -> None:
    examples = _examples()
    assert len(examples) >= 6
    assert any("--rev" in args for args, _, _ in examples)


@pytest.fixture
def tagged(project: Path, invoke: Invoke) -> Path:
    """v1 as committed; v2 with viseg_training@1 relocked holding out every third subject;
    the working tree back at v1."""
    manifest = project / "datasets.yaml"
    entry = "entrypoint: viseg_training\n"
    manifest.write_text(manifest.read_text().replace(entry, entry + "  params: {test_every: 3}\n", 1))
    assert invoke("lock", "viseg_training@1").exit_code == 0
    commit_all(project, "hold out every third subject")
    git(project, "tag", "v2")
    git(project, "checkout", "-q", "v1", "--", "datasets.yaml", "locks")
    return project


@pytest.mark.usefixtures("tagged")
def test_every_statement_prints_what_the_page_shows(invoke: Invoke) -> None:
    for args, sql, output in _examples():
        result = invoke("query", *args, sql)
        assert result.exit_code == 0, result.output
        assert _shown(result.output) == _shown(output), sql


@pytest.mark.usefixtures("tagged")
def test_the_python_example_runs() -> None:
    block = re.search(
        r"## From Python\n\n```python\n(?P<code>.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL
    )
    assert block is not None
    names: dict[str, object] = {}
    exec(block["code"], names)
    assert names["table"].num_rows == 2  # type: ignore[attr-defined]
    assert set(names["moved"].column("rev").to_pylist()) == {"v1", "main"}  # type: ignore[attr-defined]
