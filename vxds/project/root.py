"""Where a project's root is: the nearest folder holding datasets.yaml or ``[tool.vxds]``.

Plain ``os.path`` and bytes: ``vxds verify --data`` looks for the root before anything else
is imported (cli/early.py). ``config.find_root`` is this function, as a ``Path``.
"""

from __future__ import annotations

import os

MANIFEST = "datasets.yaml"  # the manifest's name when [tool.vxds] names none


def declares_vxds(pyproject: str) -> bool:
    """Whether the file holds a ``[tool.vxds`` table header. Bytes, not text: a file that is
    not UTF-8 still says whether it is vxds', and ``load_config`` then reports it by name."""
    try:
        with open(pyproject, "rb") as fh:
            return b"[tool.vxds" in fh.read()
    except OSError:
        return False


def find_root(start: str | None = None) -> str:
    """The nearest folder at or above ``start`` (the current one) holding the manifest or a
    pyproject.toml with ``[tool.vxds]``; ``start`` itself, resolved, when none does."""
    here = folder = os.path.realpath(start or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(folder, MANIFEST)) or declares_vxds(
            os.path.join(folder, "pyproject.toml")
        ):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return here
        folder = parent
