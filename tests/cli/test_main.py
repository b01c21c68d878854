from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import vxds
from tests.helpers import REPO, Invoke
from vxds.cli.main import plain_data_check


def test_help_lists_every_command_with_examples(invoke: Invoke) -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in ("init", "new", "lock", "list", "show"):
        assert f"  {name}  " in result.output
    assert "Examples:" in result.output
    for name in ("init", "new", "lock", "list", "show"):
        sub = invoke(name, "--help")
        assert sub.exit_code == 0
        assert "Usage: " in sub.output


def test_version(invoke: Invoke) -> None:
    assert invoke("--version").output.strip() == f"vxds, version {vxds.__version__}"


def test_help_imports_no_costly_module() -> None:
    code = (
        "import sys; from vxds.cli.main import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'git', 'rich', 'fsspec', 'jsonschema', 'yaml', 'tomlkit', 'orjson', 'blake3'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vxds", "list", "--root", str(REPO)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "viseg_training" in result.stdout


def test_unknown_command_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_repository_locks_are_fresh() -> None:
    """The committed example locks match their recipes and manifest."""
    result = subprocess.run(
        [sys.executable, "-m", "vxds", "list", "--root", str(REPO), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert {d["state"] for d in json.loads(result.stdout)["datasets"]} == {"fresh"}


@pytest.mark.parametrize(
    ("argv", "plain"),
    [
        (["verify", "--data"], (None, [])),
        (["-q", "verify", "--data", "ds@1", "--root", "/r"], ("/r", ["ds@1"])),
        (["verify", "--data", "--root=/r", "--format", "json", "-j", "4"], ("/r", [])),
        (["verify", "-q", "--no-cache", "--strict", "--no-exec", "--data", "a", "b"], (None, ["a", "b"])),
        (["verify"], None),  # no --data: nothing to hash
        (["verify", "--root", "--data"], None),  # --data is the root's value, not the flag
        (["verify", "--data", "--root"], None),  # a value missing: click says so
        (["verify", "--data", "--sample", "5"], None),  # options it does not know
        (["verify", "--data", "--from-store"], None),
        (["verify", "--data", "-C", "elsewhere"], None),
        (["-C", "elsewhere", "verify", "--data"], None),
        (["list", "--data"], None),
        ([], None),
    ],
)
def test_main_starts_hashing_early_only_for_a_plain_verify_data(
    argv: list[str], plain: tuple[str | None, list[str]] | None
) -> None:
    assert plain_data_check(argv) == plain


def test_the_command_group_is_imported_after_main_looked_at_the_arguments() -> None:
    code = "import sys; import vxds.cli.main; print(sorted({'click', 'vxds.cli.group'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
