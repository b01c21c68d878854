from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import Invoke


def test_show_counts_per_split_type_and_attribute(project: Path, invoke: Invoke) -> None:
    invoke("lock", "--all")
    result = invoke("show", "viseg_training@1", "--by", "attrs.site", "--by", "attrs.StationName")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "viseg_training@1: 26 resources in 2 splits"
    assert ["Mask", "2", "11"] in [line.split() for line in lines]
    assert ["Volume", "2", "11"] in [line.split() for line in lines]
    assert ["total", "4", "22"] in [line.split() for line in lines]
    assert ["(none)", "4", "22"] in [line.split() for line in lines]  # volumes have no site column


def test_show_json(project: Path, invoke: Invoke) -> None:
    invoke("lock", "clinical_cohort")
    data = json.loads(invoke("show", "clinical_cohort", "--by", "attrs.site", "--format", "json").stdout)
    assert data["name"] == "clinical_cohort"
    cohort = data["splits"]["cohort"]
    assert cohort["count"] == 13
    assert cohort["types"] == {"ClinicalRecord": 13}
    assert cohort["by"]["attrs.site"] == {"USB-A": 4, "USB-B": 3, "USZ": 6}


def test_show_missing_lock_is_an_error(project: Path, invoke: Invoke) -> None:
    result = invoke("show", "clinical_cohort")
    assert result.exit_code == 2
    assert "the lock is missing" in result.output
