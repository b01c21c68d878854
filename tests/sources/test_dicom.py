"""vxds/sources/folder/dicom.py and ps3_15.py: DICOM by content, series attrs, no PHI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydicom.datadict import tag_for_keyword

from vxds.cli.main import cli
from vxds.sources.base import SourceContext
from vxds.sources.folder import dicom
from vxds.sources.folder.ps3_15 import BASIC_PROFILE, RETAINED, identifying, without_identifying
from vxds.sources.folder.source import FolderSource

from ..dicom_files import MR_UID, dicom_bytes, found_in, grep_values, identifying_values

WriteTree = Callable[..., Path]
RECIPE = """\
import vxds


@vxds.recipe()
def series(client):
    return {"all": list(client.query(type="DICOMSeries"))}
"""
MANIFEST = """\
- name: scans
  version: 1
  description: Every DICOM series.
  script_location: ./recipes/series.py
"""


def _project(root: Path, write_tree: WriteTree, tool: str = "") -> Path:
    phi = identifying_values()
    return write_tree(
        root,
        {
            "pyproject.toml": f'[tool.vxds]\nsource = "./data"\n{tool}',
            "datasets.yaml": MANIFEST,
            "recipes/series.py": RECIPE,
            "data/sub-01/ses-01/dicom/IM0000": dicom_bytes(instance=1, SeriesDescription="t1_mprage", **phi),
            "data/sub-01/ses-01/dicom/IM0001": dicom_bytes(instance=2, SeriesDescription="t1_mprage", **phi),
        },
    )


def _run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-C", str(root)], catch_exceptions=False)


def _text_under(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def test_the_profile_is_dicom_keywords() -> None:
    assert len(BASIC_PROFILE) > 250
    assert [k for k in BASIC_PROFILE if tag_for_keyword(k) is None] == []
    assert set(RETAINED) < BASIC_PROFILE
    assert {
        "PatientName",
        "PatientBirthDate",
        "PatientID",
        "OtherPatientIDs",
        "PatientAddress",
    } < BASIC_PROFILE
    assert identifying("PatientName")
    assert not identifying("PatientAge", allowed=["PatientAge"])
    assert not identifying("SeriesInstanceUID")
    assert not identifying("EchoTime")
    assert without_identifying({"PatientName": "x", "ProcedureStepDescription": "y", "EchoTime": 1}) == {
        "EchoTime": 1
    }


def test_no_identifying_value_reaches_a_lock_a_message_or_a_report(
    tmp_path: Path, write_tree: WriteTree
) -> None:
    root = _project(tmp_path / "project", write_tree)
    outputs = [
        _run(root, "lock", "--all"),
        _run(root, "show", "scans"),
        _run(root, "show", "scans", "--format", "json"),
        _run(root, "verify", "--data"),
        _run(root, "materialize", "scans", "-o", str(tmp_path / "out"), "-m", "files"),
    ]
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0, 0], [r.output for r in outputs]
    lock = _text_under(root / "locks")
    assert '"Modality":"MR"' in lock
    assert f'"SeriesInstanceUID":"{MR_UID}"' in lock
    assert '"SeriesDescription":"t1_mprage"' in lock
    written = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file() and not p.name.startswith("IM"))
    assert written  # the receipt and the ledger: what materialize says of the series
    receipt = "\n".join(p.read_text(errors="replace") for p in written)
    text = "\n".join([lock, _text_under(root / ".vxds"), receipt, *(r.output for r in outputs)])
    values = grep_values(identifying_values())
    assert len(values) > 250
    assert found_in(text, values) == []


def test_an_allowed_attribute_reaches_the_lock(tmp_path: Path, write_tree: WriteTree) -> None:
    root = _project(tmp_path / "project", write_tree, 'dicom_allow = ["PatientAge", "EchoTime"]\n')
    assert _run(root, "lock", "--all").exit_code == 0
    lock = _text_under(root / "locks")
    assert f'"PatientAge":"{identifying_values()["PatientAge"]}"' in lock
    assert "PatientName" not in lock


def test_an_unknown_allowed_name_is_a_one_line_error(tmp_path: Path, write_tree: WriteTree) -> None:
    root = _project(tmp_path / "project", write_tree, 'dicom_allow = ["PatientAgee"]\n')
    result = _run(root, "lock", "--all")
    assert result.exit_code == 2
    assert "dicom_allow: 'PatientAgee' is not a DICOM attribute keyword" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_headers_are_read_once_by_stat(
    tmp_path: Path, write_tree: WriteTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(
        tmp_path / "data", {"s/IM1": dicom_bytes(instance=1), "s/IM2": dicom_bytes(instance=2), "a.txt": "a"}
    )
    for path in [root, *root.rglob("*")]:  # old enough for the caches to trust
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    read: list[str] = []
    real = dicom.header_attrs

    def counting(path: str, keywords: tuple[str, ...]) -> dict[str, object]:
        read.append(Path(path).name)
        return real(path, keywords)

    monkeypatch.setattr(dicom, "header_attrs", counting)
    context = SourceContext(base=tmp_path, cache_dir=tmp_path / "cache")
    first = FolderSource(str(root), context).get("s")
    assert sorted(read) == ["IM1", "IM2", "a.txt"]
    read.clear()
    (root / "b.txt").write_text("new")  # the tree changed: it is indexed again, headers from the cache
    assert FolderSource(str(root), context).get("s") == first
    assert read == ["b.txt"]
