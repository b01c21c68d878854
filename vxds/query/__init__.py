"""SQL over locks and their history with DuckDB (``vxds query``, ``vxds.query``), and locks
as data frames (``LockedDataset.to_arrow()``).

``tables`` finds the locks (the working tree or Git revisions) and names each split's
files; ``engine`` makes them DuckDB views and runs a statement; ``frames`` reads one lock
held in memory; ``render`` turns a result into JSON, CSV or Parquet bytes. DuckDB and
pyarrow are the ``query`` extra and are imported only when a query runs.

This package is also callable, as ``vxds.query(sql, rev=...)``: importing any of its
modules makes the name ``vxds.query`` this package (Python's import system binds it), so
the package answers the call that ``vxds.api.query`` documents.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(
        self, sql: str, *, rev: str | Sequence[str] | None = None, root: str | Path | None = None
    ) -> Any:
        from vxds.query.engine import query

        return query(sql, rev=rev, root=root)


sys.modules[__name__].__class__ = _CallablePackage
