"""Every statement of docs/query.md's cookbook prints what the page shows, so it cannot drift."""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
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


@pytest.mark.usefixtures("tagged")
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_every_statement_gives_the_same_answer_cold_and_warm(project: Path, invoke: Invoke, fmt: str) -> None:
    """Cold: no Parquet copy, each statement's locks converted first; warm: read from the
    copies. Both print what the page shows, and JSON the rows Arrow gives (``vxds.query``)."""
    import vxds
    from vxds.query.render import json_bytes
    from vxds.query.result import from_arrow

    for args, sql, output in _examples():
        shutil.rmtree(project / ".vxds" / "query", ignore_errors=True)
        cold = invoke("query", *args, sql, "--format", fmt)
        assert (project / ".vxds" / "query").is_dir(), sql  # the copies were made
        warm = invoke("query", *args, sql, "--format", fmt)
        assert (cold.exit_code, warm.exit_code) == (0, 0), cold.output + warm.output
        assert cold.output == warm.output, sql
        if fmt == "table":
            assert _shown(warm.output) == _shown(output), sql
        if fmt == "json":
            revs = [value for flag, value in itertools.pairwise(args) if flag == "--rev"]
            through_arrow = json_bytes(from_arrow(vxds.query(sql, rev=revs)))
            assert warm.output == through_arrow.decode(), sql
