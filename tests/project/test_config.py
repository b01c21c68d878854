"""vxds/project/config.py: ``[tool.vxds] record_tables``."""

from __future__ import annotations

from pathlib import Path

import pytest

from vxds.errors import ConfigError
from vxds.project.config import load_config


def _config(root: Path, body: str) -> Path:
    (root / "pyproject.toml").write_text(f"[tool.vxds]\n{body}")
    return root


def test_record_tables_reach_sources_with_the_storage_options(tmp_path: Path) -> None:
    config = load_config(
        _config(tmp_path, 'record_tables = ["clinical/*.tsv"]\n[tool.vxds.storage]\nretries = 2\n')
    )
    assert config.record_tables == ("clinical/*.tsv",)
    assert config.storage == {"retries": 2, "record_tables": ["clinical/*.tsv"]}


def test_no_record_tables_by_default(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, ""))
    assert config.record_tables == ()
    assert "record_tables" not in config.storage


@pytest.mark.parametrize("value", ['"clinical/*.tsv"', "[1]", '[""]', "{a = 1}"])
def test_record_tables_must_be_a_list_of_globs(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[tool.vxds\] record_tables must be a list of glob strings"):
        load_config(_config(tmp_path, f"record_tables = {value}\n"))
