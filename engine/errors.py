"""The one error tree of the engine.

Every failure the engine can report is one of these classes. The API maps each class to a wire
code per dialect in a single table (``api/errors.py``); backends translate their own exceptions
into these at the edge so nothing above ``engine/store`` ever sees a botocore or OS error.
"""

from __future__ import annotations


class VecledgerError(Exception):
    """Base of every engine error. ``retryable`` tells callers whether trying again can help."""

    retryable = False


# --- object store ---------------------------------------------------------------------------


class StoreError(VecledgerError):
    """A failure reported by the object store."""


class ObjectNotFound(StoreError):
    """The key does not exist."""


class PreconditionFailed(StoreError):
    """A create-only or compare-and-swap write lost: the key exists, or its etag moved on."""


class StoreUnavailable(StoreError):
    """The store did not answer usefully (5xx, throttling, timeout, lost reply). Safe to retry."""

    retryable = True


# --- log ------------------------------------------------------------------------------------


class CorruptEvent(VecledgerError):
    """An event object failed its checksum or has an unknown format. Never skipped."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"corrupt event {key}: {reason}")
        self.key = key
        self.reason = reason


# --- requests -------------------------------------------------------------------------------


class ValidationError(VecledgerError):
    """The request is malformed or breaks a limit. Nothing was written."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class LogTruncated(ValidationError):
    """What was asked for lies before the start of a log whose head log retention dropped."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="to")


class NotFound(VecledgerError):
    """A named resource does not exist."""

    resource = "resource"

    def __init__(self, name: str) -> None:
        super().__init__(f"{self.resource} {name!r} not found")
        self.name = name


class BucketNotFound(NotFound):
    resource = "vector bucket"


class IndexNotFound(NotFound):
    resource = "index"


class PolicyNotFound(NotFound):
    resource = "bucket policy"


class Conflict(VecledgerError):
    """The request conflicts with the current state (duplicate name, non-empty bucket)."""


class BucketAlreadyExists(Conflict):
    pass


class IndexAlreadyExists(Conflict):
    pass


class BucketNotEmpty(Conflict):
    pass


class QuotaExceeded(VecledgerError):
    """A service quota (indexes per bucket, buckets per account, ...) would be exceeded."""


class Throttled(VecledgerError):
    """A write quota of the index is exhausted for now. Retrying after a moment succeeds."""

    retryable = True


class PartialBatch(StoreUnavailable):
    """A batch split into chunk events failed part-way: the chunks in ``landed`` are in the log
    (and stay), the rest are not. Retrying the same request converges, since puts are upserts."""

    def __init__(self, message: str, landed: list[int], failed_chunk: int, chunks: int) -> None:
        super().__init__(message)
        self.landed = landed
        self.failed_chunk = failed_chunk
        self.chunks = chunks


class LeaseLost(VecledgerError):
    """This process no longer holds an index's materializer lease: another took it over (or it
    expired while this one was paused). Its next Lance commit or checkpoint must not happen."""

    def __init__(self, key: str, generation: int | None) -> None:
        super().__init__(f"{key}: the lease is now at generation {generation}")
        self.key = key
        self.generation = generation


class Unavailable(VecledgerError):
    """The engine cannot serve the request now (store down, shutting down). Retry later."""

    retryable = True
