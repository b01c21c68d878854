"""vxds/project/new_dataset.py: a dataset added as a recipe and a manifest entry, without printing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vxds.errors import UsageError
from vxds.project.config import load_config
from vxds.project.manifest import load_manifest
from vxds.project.new_dataset import NewDataset, add_dataset, check_name


def test_add_dataset_writes_the_recipe_and_appends_the_entry(project: Path) -> None:
    config = load_config(project)
    before = (project / "datasets.yaml").read_text()
    added = add_dataset(config, "lesion-seg", description="T2w masks")
    script = project / "recipes/lesion-seg.py"
    assert added == NewDataset("lesion-seg", 1, script, True, project / "datasets.yaml")
    assert "def lesion_seg(" in script.read_text()
    text = (project / "datasets.yaml").read_text()
    assert text.startswith(before)  # appended; what was there is kept byte for byte
    entry = load_manifest(config.manifest, default_source=config.source).find("lesion-seg", 1)
    assert (entry.entrypoint, entry.group_by, entry.script) == ("lesion_seg", "attrs.subject", script)


def test_add_dataset_registers_an_existing_script_as_a_new_version(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    config = load_config(project)
    added = add_dataset(config, "demo", version=2, script=Path("recipes/demo.py"), group_by=None)
    assert (added.script, added.created) == (project / "recipes/demo.py", False)
    assert load_manifest(config.manifest, default_source=config.source).versions("demo") == [1, 2]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("Demo", {}, "dataset name 'Demo' must use only lower-case letters"),
        ("demo", {}, "demo@1 is already in datasets.yaml"),
        ("demo", {"version": 2}, "recipes/demo.py already exists"),
        ("other", {"script": Path("/nonexistent/r.py")}, "--script /nonexistent/r.py: no such file"),
    ],
)
def test_add_dataset_refuses(project: Path, name: str, kwargs: dict[str, Any], message: str) -> None:
    before = (project / "datasets.yaml").read_bytes()
    with pytest.raises(UsageError, match=message):
        add_dataset(load_config(project), name, **kwargs)
    assert (project / "datasets.yaml").read_bytes() == before


def test_check_name() -> None:
    check_name("a-b_2")
    with pytest.raises(UsageError, match="must use only"):
        check_name("a b")
