"""The project: where its root is, and ``[tool.vxds]`` from its pyproject.toml."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vxds.errors import ConfigError
from vxds.project.root import MANIFEST, declares_vxds
from vxds.project.root import find_root as find_root_path

DEFAULTS: dict[str, str] = {"manifest": MANIFEST, "locks": "locks"}
KNOWN_KEYS = (
    "manifest",
    "locks",
    "source",
    "storage",
    "record_tables",
    "dicom_allow",
    "dicom_bids",
    "store",
    "executor",
    "checksums",
    "allow_weak_checksums",
)
_BIDS_TARGET = re.compile(r"[a-z]+/[A-Za-z0-9]+\Z")  # datatype/suffix, e.g. anat/T1w


@dataclass(frozen=True)
class Config:
    """Resolved settings of one project; paths are absolute."""

    root: Path
    manifest: Path
    locks: Path
    source: str | None
    pyproject: Path | None
    # [tool.vxds.storage]: options for remote sources (see docs/sources.md); may hold secrets.
    storage: dict[str, Any] = field(default_factory=dict, repr=False)
    # [tool.vxds] record_tables: globs of the tables whose rows are ClinicalRecords, besides
    # participants.tsv. Sources are given it with the storage options (``record_tables``).
    record_tables: tuple[str, ...] = ()
    # [tool.vxds] dicom_allow: DICOM keywords a series' attrs may hold although the PS3.15
    # profile calls them identifying (or that vxds does not read by default). Sources get it
    # as ``dicom_allow``.
    dicom_allow: tuple[str, ...] = ()
    # [tool.vxds.dicom_bids]: "<Modality>:<SeriesDescription glob>" -> "datatype/suffix",
    # tried in order before the converter's defaults (vxds.materialize.dicom_nifti).
    dicom_bids: tuple[tuple[str, str], ...] = ()
    store: str | None = None  # [tool.vxds.store] url: the content-addressed store (docs/store.md)
    executor: str | None = None  # [tool.vxds.executor] url: where per-object work runs (docs/scale.md)

    @property
    def in_project(self) -> bool:
        """A manifest or a ``[tool.vxds]`` table is here, not only the folder vxds ran in."""
        pyproject = self.pyproject
        return self.manifest.is_file() or (pyproject is not None and declares_vxds(os.fspath(pyproject)))

    @property
    def cache_dir(self) -> Path:
        """Local, untracked state (the hash cache); listed in .gitignore by ``vxds init``."""
        return self.root / ".vxds"

    def relative(self, path: Path) -> str:
        """``path`` relative to the root, POSIX style, for messages and locks."""
        try:
            return Path(os.path.relpath(path, self.root)).as_posix()
        except ValueError:  # another drive on Windows
            return path.as_posix()


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding datasets.yaml or ``[tool.vxds]``."""
    return Path(find_root_path(None if start is None else os.fspath(start)))


def _read_tool_table(pyproject: Path) -> dict[str, Any]:
    """``[tool.vxds]``, read with ``tomllib`` (``tomli`` on Python 3.10); tomlkit only edits."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # bad syntax, or a key given twice
        raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{pyproject}: not valid TOML: values nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot read: {exc}") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{pyproject}: 'tool' must be a table ([tool.vxds]), got {_kind(tool)}")
    table = tool.get("vxds", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.vxds] must be a table, got {_kind(table)}")
    return table


def _kind(value: object) -> str:
    """What a wrong value is, in a few words: the value itself may be 5,000 digits long."""
    words = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}
    return next((word for kind, word in words.items() if isinstance(value, kind)), type(value).__name__)


def _path_string(pyproject: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        shown = "an empty string" if value == "" else _kind(value)
        raise ConfigError(f"{pyproject}: [tool.vxds] {key} must be a non-empty string, got {shown}")
    if "\0" in value:  # no path or URL holds one; the OS would refuse it later, in a traceback
        raise ConfigError(f"{pyproject}: [tool.vxds] {key} must not contain a NUL character")
    return value


def load_config(root: Path | None = None) -> Config:
    """Read ``[tool.vxds]`` (if any) and resolve every path against the root."""
    root = find_root() if root is None else root.resolve()
    pyproject = root / "pyproject.toml"
    table = _read_tool_table(pyproject) if pyproject.is_file() else {}
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(
            f"{pyproject}: [tool.vxds] has unknown key(s) {', '.join(map(repr, unknown[:5]))};"
            f" expected {', '.join(KNOWN_KEYS)}"
        )
    storage = table.pop("storage", {})
    if not isinstance(storage, dict):
        raise ConfigError(
            f"{pyproject}: [tool.vxds] storage must be a table ([tool.vxds.storage]), got {_kind(storage)}"
        )
    store = _store_url(pyproject, table.pop("store", {}))
    executor = _executor_url(pyproject, table.pop("executor", {}))
    tables = _record_tables(pyproject, table.pop("record_tables", []))
    if tables:
        storage = {**storage, "record_tables": list(tables)}
    allow = _dicom_allow(pyproject, table.pop("dicom_allow", []))
    if allow:
        storage = {**storage, "dicom_allow": list(allow)}
    storage = {**storage, **_checksums(pyproject, table)}
    dicom_bids = _dicom_bids(pyproject, table.pop("dicom_bids", {}))
    if dicom_bids:  # -m bids reads it where the source's options are (vxds.materialize.bids.dicom)
        storage = {**storage, "dicom_bids": [list(rule) for rule in dicom_bids]}
    for key, value in table.items():
        _path_string(pyproject, key, value)
    return Config(
        root=root,
        manifest=root / table.get("manifest", DEFAULTS["manifest"]),
        locks=root / table.get("locks", DEFAULTS["locks"]),
        source=table.get("source"),
        pyproject=pyproject if pyproject.is_file() else None,
        storage=storage,
        record_tables=tables,
        dicom_allow=allow,
        dicom_bids=dicom_bids,
        store=store,
        executor=executor,
    )


def _store_url(pyproject: Path, value: object) -> str | None:
    """``[tool.vxds.store]``: a table whose only key is ``url``."""
    if not isinstance(value, dict) or set(value) - {"url"}:
        raise ConfigError(f"{pyproject}: [tool.vxds.store] must be a table with one key, url")
    return _path_string(pyproject, "store.url", value["url"]) if "url" in value else None


def _executor_url(pyproject: Path, value: object) -> str | None:
    """``[tool.vxds.executor]``: a table whose only key is ``url`` (``local`` or tcp://HOST:PORT)."""
    if not isinstance(value, dict) or set(value) - {"url"}:
        raise ConfigError(f"{pyproject}: [tool.vxds.executor] must be a table with one key, url")
    if "url" not in value:
        return None
    url = _path_string(pyproject, "executor.url", value["url"])
    from vxds.executor import ExecutorError, check_url

    try:
        return check_url(url)
    except ExecutorError as exc:
        raise ConfigError(f"{pyproject}: [tool.vxds.executor] url: {exc.message}") from None


def _checksums(pyproject: Path, table: dict[str, Any]) -> dict[str, Any]:
    """``checksums = "store"`` and ``allow_weak_checksums``, as bucket sources are given them
    (docs/checksums.md)."""
    found: dict[str, Any] = {}
    if "checksums" in table:
        mode = table.pop("checksums")
        if mode not in ("bytes", "store"):
            raise ConfigError(
                f"{pyproject}: [tool.vxds] checksums must be 'bytes' or 'store', got {mode!r:.80}"
            )
        found["checksums"] = mode
    if "allow_weak_checksums" in table:
        allow = table.pop("allow_weak_checksums")
        if not isinstance(allow, list) or not all(name in ("md5", "crc32c") for name in allow):
            raise ConfigError(
                f"{pyproject}: [tool.vxds] allow_weak_checksums must list some of md5, crc32c,"
                f" got {allow!r:.80}"
            )
        found["allow_weak_checksums"] = sorted(set(allow))
    return found


def with_checksums(config: Config, mode: str | None) -> Config:
    """``config`` with ``--checksums MODE`` (when given) over ``[tool.vxds] checksums``."""
    if mode is None:
        return config
    return replace(config, storage={**config.storage, "checksums": mode})


def _record_tables(pyproject: Path, value: object) -> tuple[str, ...]:
    """``record_tables``: a list of non-empty glob strings."""
    if not isinstance(value, list) or not all(isinstance(p, str) and p and "\0" not in p for p in value):
        raise ConfigError(
            f"{pyproject}: [tool.vxds] record_tables must be a list of glob strings, got {_kind(value)}"
        )
    return tuple(value)


def _dicom_allow(pyproject: Path, value: object) -> tuple[str, ...]:
    """``dicom_allow``: DICOM keywords (``PatientAge``), each one pydicom's dictionary knows."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ConfigError(
            f"{pyproject}: [tool.vxds] dicom_allow must be a list of DICOM keywords, got {_kind(value)}"
        )
    if not value:
        return ()
    from pydicom.datadict import tag_for_keyword  # costly: only when a project allows one

    unknown = [name for name in value if tag_for_keyword(name) is None]
    if unknown:
        raise ConfigError(
            f"{pyproject}: [tool.vxds] dicom_allow: {unknown[0][:80]!r} is not a DICOM attribute keyword"
            " (e.g. 'PatientAge')"
        )
    return tuple(sorted(set(value)))


def _dicom_bids(pyproject: Path, value: object) -> tuple[tuple[str, str], ...]:
    """``[tool.vxds.dicom_bids]``: pattern -> ``datatype/suffix`` strings, in file order."""
    if not isinstance(value, dict):
        raise ConfigError(f"{pyproject}: [tool.vxds.dicom_bids] must be a table, got {_kind(value)}")
    for pattern, target in value.items():
        if not isinstance(target, str) or not _BIDS_TARGET.match(target):
            shown = repr(target[:80]) if isinstance(target, str) else _kind(target)
            raise ConfigError(
                f"{pyproject}: [tool.vxds.dicom_bids] {pattern[:80]!r} must map to 'datatype/suffix'"
                f" (e.g. 'anat/T1w'), got {shown}"
            )
    return tuple(value.items())
