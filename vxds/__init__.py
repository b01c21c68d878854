"""vxds: declarative, content-hashed, reviewable datasets.

The public API is small (docs/api.md): ``recipe`` (alias
``dataset_compilation_entrypoint``), ``Resource``, ``Client``, ``lock``, ``load_lock`` and ``query``.
Attributes are imported on first use so that ``vxds --help`` and the pre-commit hooks
start fast.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not ``typing``'s: importing it costs ``vxds verify --data`` a head start
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Resource",
    "__version__",
    "dataset_compilation_entrypoint",
    "load_lock",
    "lock",
    "query",
    "recipe",
]

if TYPE_CHECKING:  # mypy takes any name TYPE_CHECKING as true
    from vxds.api import load_lock, lock, query
    from vxds.recipes.client import Client
    from vxds.recipes.decorator import dataset_compilation_entrypoint, recipe
    from vxds.resource import Resource

_LAZY = {
    "recipe": "vxds.recipes.decorator",
    "dataset_compilation_entrypoint": "vxds.recipes.decorator",
    "Resource": "vxds.resource",
    "Client": "vxds.recipes.client",
    "load_lock": "vxds.api",
    "lock": "vxds.api",
    "query": "vxds.api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vxds' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
