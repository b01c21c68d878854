"""What a check reports: one finding per problem, with a stable code users can look up.

``verify`` (and every other checker: materialized outputs, hooks) returns a list of
``Finding`` values and never prints; the CLI renders them as text or JSON. Codes are
documented in ``docs/checks.md`` and never reused for another meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR, WARNING, SKIPPED = "error", "warning", "skipped"
SEVERITIES = (ERROR, WARNING, SKIPPED)


@dataclass(frozen=True)
class Finding:
    code: str  # stable, e.g. "VX301"; see docs/checks.md
    severity: str  # ERROR, WARNING or SKIPPED (a check that could not run, and why)
    message: str  # one sentence a user reads
    dataset: str | None = None  # "name@version" where the finding belongs to one
    file: str | None = None  # relative to the project root, '/'-separated
    line: int | None = None  # 1-based, where it applies

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def where(self) -> str:
        """``file:line`` (or ``file``, or empty) for a message prefix."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "dataset": self.dataset,
            "file": self.file,
            "line": self.line,
        }


def sort_key(finding: Finding) -> tuple[str, str, int, str]:
    """Stable report order: per dataset, then file, line and code."""
    return (finding.dataset or "", finding.file or "", finding.line or 0, finding.code)
