"""What ``[tool.vxds.storage]`` says to one bucket source: the options that apply to its store,
the retries, backoff and concurrency, the checksum policy and the tables kept as records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vxds.errors import SourceError
from vxds.sources.objectstore.checksums import Policy, policy_of

DEFAULT_CONCURRENCY = 32
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 0.2  # seconds before the first retry; doubled each time
# What a store that takes only its own sub-table still takes from the top level.
SHARED = ("retries", "concurrency", "backoff", "checksums", "allow_weak_checksums")


@dataclass
class Settings:
    record_tables: list[str]
    checksums: Policy
    retries: int
    backoff: float
    concurrency: int
    rest: dict[str, Any]  # everything else: the store's own options (credentials, endpoint...)


def settings_of(
    options: Mapping[str, Any], url: str, table: str, shared_options: bool, jobs: int | None
) -> Settings:
    """The settings of the source at ``url`` from ``options`` (``[tool.vxds.storage]``): its
    top level (only ``SHARED`` keys unless ``shared_options``) under its sub-table ``table``."""
    top = {k: v for k, v in options.items() if not isinstance(v, dict)}
    if not shared_options:
        top = {k: v for k, v in top.items() if k in SHARED}
    own = options.get(table) if table else None
    merged = {**top, **(own if isinstance(own, dict) else {})}
    record_tables = [str(p) for p in merged.pop("record_tables", None) or []]
    checksums = policy_of(merged, url)
    retries = _count(merged.pop("retries", DEFAULT_RETRIES), "retries", url)
    backoff = _seconds(merged.pop("backoff", DEFAULT_BACKOFF), "backoff", url)
    concurrency = max(1, _count(merged.pop("concurrency", jobs or DEFAULT_CONCURRENCY), "concurrency", url))
    return Settings(record_tables, checksums, retries, backoff, concurrency, merged)


def _count(value: object, name: str, url: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"source {url!r}: [tool.vxds.storage] {name} must be a whole number, got {value!r}")
    return value


def _seconds(value: object, name: str, url: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 60:
        raise SourceError(
            f"source {url!r}: [tool.vxds.storage] {name} must be 0 to 60 seconds, got {value!r}"
        )
    return float(value)
