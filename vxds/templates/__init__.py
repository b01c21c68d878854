"""Text templates used by ``vxds init`` and ``vxds new``."""

from __future__ import annotations

from importlib import resources


def read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
