"""Shared fixtures: real files in a temporary folder, and a small vxds project."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.helpers import DEMO_MANIFEST, DEMO_RECIPE

# Tests never look for a Google Cloud machine's metadata server (google-auth and gcsfs would
# ask 169.254.169.254 when no GCS credentials are configured); set before they are imported.
os.environ.setdefault("NO_GCE_CHECK", "true")


def _write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def write_tree() -> Callable[[Path, Mapping[str, str | bytes]], Path]:
    """``write_tree(root, {"a/b.txt": "text", "c.bin": b"bytes"})`` writes real files."""
    return _write_tree


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project: pyproject with [tool.vxds], a manifest, one recipe and a BIDS-ish folder."""
    return _write_tree(
        tmp_path / "project",
        {
            "pyproject.toml": '[tool.vxds]\nsource = "./data"\n',
            "datasets.yaml": DEMO_MANIFEST,
            "recipes/demo.py": DEMO_RECIPE,
            "data/sub-01/anat/sub-01_T2w.nii.gz": b"\x5c\x01\x00\x00volume one",
            "data/sub-01/anat/sub-01_T2w.json": '{"EchoTime": 0.1}',
            "data/sub-02/anat/sub-02_T2w.nii.gz": b"\x5c\x01\x00\x00volume two",
            "data/sub-03/anat/sub-03_T2w.nii.gz": b"\x5c\x01\x00\x00volume three",
        },
    )


from tests.azurite import azurite  # noqa: E402,F401  (a session fixture shared by Azure tests)
from tests.gcsserver import gcs_server  # noqa: E402,F401  (a session fixture shared by GCS tests)
from tests.s3server import s3_server  # noqa: E402,F401  (a session fixture shared by S3 tests)
