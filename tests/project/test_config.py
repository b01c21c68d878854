"""vxds/project/config.py: ``[tool.vxds] record_tables``, ``dicom_allow`` and ``dicom_bids``."""

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


def test_dicom_allow_and_bids_rules(tmp_path: Path) -> None:
    body = (
        'dicom_allow = ["PatientAge", "EchoTime"]\n'
        '[tool.vxds.dicom_bids]\n"MR:*loc*" = "anat/T2w"\n"PT:*" = "pet/pet"\n'
    )
    config = load_config(_config(tmp_path, body))
    assert config.dicom_allow == ("EchoTime", "PatientAge")
    assert config.storage == {  # as sources and -m bids read them
        "dicom_allow": ["EchoTime", "PatientAge"],
        "dicom_bids": [["MR:*loc*", "anat/T2w"], ["PT:*", "pet/pet"]],
    }
    assert config.dicom_bids == (("MR:*loc*", "anat/T2w"), ("PT:*", "pet/pet"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('dicom_allow = "PatientAge"\n', "dicom_allow must be a list of DICOM keywords, got a string"),
        ('dicom_allow = ["PatientAgee"]\n', "dicom_allow: 'PatientAgee' is not a DICOM attribute keyword"),
        ('dicom_bids = "anat/T1w"\n', r"\[tool.vxds.dicom_bids\] must be a table, got a string"),
        (
            '[tool.vxds.dicom_bids]\n"MR:*" = "T1w"\n',
            r"'MR:\*' must map to 'datatype/suffix' \(e.g. 'anat/T1w'\), got 'T1w'",
        ),
        ('[tool.vxds.dicom_bids]\n"MR:*" = 1\n', "must map to 'datatype/suffix' .*, got an integer"),
    ],
)
def test_dicom_settings_are_checked(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, body))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.vxds]\nsource = \n", r"not valid TOML: Invalid value \(at line 2, column 10\)"),
        (
            "[tool.vxds]\nsource = 'a'\nsource = 'b'\n",
            r"not valid TOML: Cannot overwrite a value \(at line 3",
        ),
        ("[tool.vxds]\nx = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML: values nested too deeply"),
        ("tool = 1\n", r"'tool' must be a table \(\[tool.vxds\]\), got"),
    ],
)
def test_a_pyproject_that_is_not_valid_toml_is_one_line_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/pyproject.toml: {message}") as caught:
        load_config(tmp_path)
    assert "\n" not in str(caught.value)
