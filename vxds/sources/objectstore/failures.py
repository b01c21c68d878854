"""How a failed call to an object store is classified, and what it raises.

A store's ``_classify`` names the kind of each failure; ``BucketSource`` retries the
transient ones and turns the others into one ``StoreFailure`` whose message says what a user
can do, and whose ``kind`` a caller checks instead of matching words in the message.
"""

from __future__ import annotations

from typing import Literal

from vxds.errors import SourceError

FailureKind = Literal["missing-container", "missing", "denied", "no-credentials", "transient"]
MISSING_CONTAINER: FailureKind = "missing-container"
MISSING: FailureKind = "missing"
DENIED: FailureKind = "denied"
NO_CREDENTIALS: FailureKind = "no-credentials"
TRANSIENT: FailureKind = "transient"


class StoreFailure(SourceError):
    """A failed call to the store, with the kind of failure it was (None: unclassified)."""

    def __init__(self, message: str, *, kind: FailureKind | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


class VersionGone(Exception):
    """A pinned read found another version than the one asked for."""
