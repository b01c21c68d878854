"""The values verify works with: options, targets, the report, the context, and the
results remembered between runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vxds.errors import UsageError, VxdsError
from vxds.fs import JsonCache
from vxds.locks.format import HEADER, Header
from vxds.locks.store import Lock
from vxds.progress import NO_PROGRESS, Progress
from vxds.project.config import Config
from vxds.project.manifest import Entry
from vxds.sources import Source
from vxds.verify.findings import ERROR, SKIPPED, WARNING, Finding

# Bump when a line check changes, so results remembered by an older vxds are not trusted.
CHECKS_VERSION = 1
CACHE_FILE = "verified.json"
CHUNK_LINES = 8192

# Which code each kind of lock problem gets (kinds: ``locks.format.KINDS``).
PROBLEM_CODES = {
    "unreadable": "VX301",
    "toml": "VX301",
    "header": "VX301",
    "format": "VX302",
    "recipe-digest": "VX303",
    "lock-digest": "VX303",
    "unlisted-split": "VX304",
    "missing-split": "VX304",
    "split-digest": "VX304",
    "json": "VX305",
    "schema": "VX306",
    "canonical": "VX307",
    "order": "VX308",
    "duplicate": "VX309",
    "unsafe-id": "VX310",
    "conflict": "VX313",
}


@dataclass(frozen=True)
class Sample:
    """``--sample``: a number of resources per lock, or a percentage of each lock."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> Sample:
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if 0 < percent <= 100:
                    return cls(percent=percent)
            elif int(text) > 0:
                return cls(count=int(text))
        except ValueError:
            pass
        raise UsageError(
            f"--sample {text!r}: expected a positive number of resources or a percentage such as 5%"
        )

    def size(self, total: int) -> int:
        if self.count is not None:
            return min(self.count, total)
        assert self.percent is not None
        return min(total, max(1, -(-int(total * self.percent * 100) // 10000))) if total else 0

    def __str__(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.percent:g}%"


@dataclass(frozen=True)
class Options:
    no_exec: bool = False
    data: bool = False
    sample: Sample | None = None
    seed: int = 0
    reproduce: bool = False
    manifest_only: bool = False
    use_cache: bool = True
    jobs: int | None = None
    progress: Progress = NO_PROGRESS
    base: str | None = None  # a Git revision whose locks are published: they must not change
    # --data: digests hashed ahead while the other checks ran, by path and stat (cli/prefetch.py)
    prehashed: Callable[[str, tuple[int, int, int]], str | None] | None = None


@dataclass
class Target:
    """One dataset version to check: a manifest entry, a lock on disk, or both."""

    key: str
    path: Path
    entry: Entry | None  # None: a lock with no dataset in the manifest (or an unreadable manifest)
    lock: Lock | None = None  # set once the lock passed every integrity check
    header: Header | None = None  # set once the header could be read
    resources: int = 0


@dataclass
class Report:
    """What ``run`` found, with what it looked at (for the summary line)."""

    findings: list[Finding]
    datasets: int
    resources: int
    data_checked: int = 0
    drift: dict[str, Any] = field(default_factory=dict)  # name@version -> DatasetDiff (--reproduce)

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == WARNING for f in self.findings)

    @property
    def skipped(self) -> int:
        return sum(f.severity == SKIPPED for f in self.findings)

    def summary(self) -> dict[str, int]:
        return {
            "datasets": self.datasets,
            "resources": self.resources,
            "data_checked": self.data_checked,
            "errors": self.errors,
            "warnings": self.warnings,
            "skipped": self.skipped,
        }


@dataclass
class Context:
    config: Config
    options: Options
    cache: ResultCache
    sources: dict[str, Source | VxdsError] = field(default_factory=dict)
    hashed: dict[str, str | None] = field(default_factory=dict)  # path -> digest (None: missing)
    prechecked: dict[str, Checked] = field(default_factory=dict)  # key -> done by ``precheck``
    data_checked: int = 0
    resolver: Any = None  # a vxds.recipes.resolver.Resolver, made on first use by --reproduce
    at_resolvers: dict[str, Any] = field(default_factory=dict)  # snapshot -> Resolver (time travel)
    published: dict[str, Any] = field(default_factory=dict)  # name@version -> PublishedChange (--base)
    drift: dict[str, Any] = field(default_factory=dict)  # name@version -> DatasetDiff (--reproduce)

    def finding(self, target: Target, code: str, severity: str, message: str, **where: Any) -> Finding:
        where.setdefault("file", self.config.relative(target.path / HEADER))
        return Finding(code, severity, message, dataset=target.key, **where)


class ResultCache:
    """Content digests whose checks passed before, kept in ``.vxds/verified.json``.

    A key is a digest of exactly the bytes (and settings) that were checked, so a
    remembered pass is as good as checking again; ``--no-cache`` ignores the file.
    """

    def __init__(self, path: Path | None) -> None:
        self._file = JsonCache(path, CHECKS_VERSION)
        keys = self._file.data.get("passed")
        self.passed: set[str] = {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else set()
        self.added: list[str] = []

    def __contains__(self, key: str) -> bool:
        return key in self.passed

    def add(self, key: str) -> None:
        if key not in self.passed:
            self.passed.add(key)
            self.added.append(key)

    def save(self) -> None:
        """Write the passes, old and new, when there are new ones (a failure is ignored)."""
        if self.added:
            self._file.data["passed"] = sorted(self.passed)
            self._file.mark()
            self._file.save()


@dataclass(frozen=True)
class Checked:
    """What ``check_integrity`` found about one lock (made here or in a worker process)."""

    findings: list[Finding]
    header: Header | None = None
    resources: int = 0
    passed: tuple[str, ...] = ()  # new ``ResultCache`` keys

    @property
    def ok(self) -> bool:
        return self.header is not None and not self.findings
