"""One error model: every failure a user can cause is a ``VxdsError``.

``str(error)`` is the message a user reads. The CLI maps ``exit_code`` to the process
exit status: 1 when a check found a problem or a difference, 2 for bad usage or bad input.
Nothing below the CLI prints or calls ``sys.exit``.
"""

from __future__ import annotations

from collections.abc import Iterable


class VxdsError(Exception):
    """Base class: a message for the user, an exit code and an optional hint."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(VxdsError):
    """The command line asked for something that cannot be done."""


class ConfigError(VxdsError):
    """``[tool.vxds]`` in pyproject.toml is wrong."""


class ManifestError(VxdsError):
    """``datasets.yaml`` is missing, unreadable or invalid; carries every problem found."""

    def __init__(self, problems: Iterable[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class RecipeError(VxdsError):
    """A recipe could not be loaded or run, or returned something unusable."""


class SourceError(VxdsError):
    """A source could not be opened or read."""


class NotFoundError(SourceError, KeyError):
    """A resource, dataset or version does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return VxdsError.__str__(self)


class LockError(VxdsError):
    """A lock could not be read or written."""


class CheckFailed(VxdsError):
    """A check ran and found something: exit code 1."""

    exit_code = 1
