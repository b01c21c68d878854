"""The README's front door: its first block gives the two commands a new user runs, and CI
runs the second of them exactly as written."""

from __future__ import annotations

import re

from tests.helpers import REPO


def _front_door() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None, "the README starts with a bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_first_block_installs_nothing_heavy_and_then_the_tests() -> None:
    try_it, tests = _front_door()
    venv = "python -m venv .venv && . .venv/bin/activate"
    assert try_it == f"{venv} && pip install -e . && vxds lock --all && vxds list"  # no dev extra
    assert tests.startswith("pip install -e '.[dev]' && .ci/install-azurite && ")
    assert tests.endswith("pytest -n auto")


def test_ci_runs_the_readme_test_command_as_written() -> None:
    _, tests = _front_door()
    ci = (REPO / ".ci/run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == tests


def test_the_hook_snippet_is_what_vxds_init_writes() -> None:
    """The README's pre-commit block is the template's local hooks, which work as written."""
    import yaml

    from vxds.templates import read

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## pre-commit") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    shown = yaml.safe_load(block.group(1))["repos"]
    written = yaml.safe_load(read("pre-commit-config.yaml.txt"))["repos"]
    assert [repo["repo"] for repo in shown] == ["local"]
    commit_hooks = [hook for hook in written[0]["hooks"] if "stages" not in hook]  # pre-push aside
    assert shown[0]["hooks"] == commit_hooks
    assert "<" not in block.group(1)  # no placeholder to fill in
