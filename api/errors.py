"""The one table that maps failures to each dialect's wire codes.

Engine errors and API-level refusals both become an ``ApiError`` of some ``Kind``; each dialect
then renders the kind with its own code, status and body shape (``api/dialects/``).
"""

from __future__ import annotations

import enum
import logging

from engine import errors as e

log = logging.getLogger("vecledger.api")


class Kind(enum.Enum):
    VALIDATION = "validation"
    ACCESS_DENIED = "access_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    QUOTA = "quota"
    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    UNKNOWN_OPERATION = "unknown_operation"


# kind -> dialect -> (code, HTTP status)
WIRE: dict[Kind, dict[str, tuple[str, int]]] = {
    Kind.VALIDATION: {"s3": ("ValidationException", 400), "tos": ("ValidationException", 400)},
    Kind.ACCESS_DENIED: {"s3": ("AccessDeniedException", 403), "tos": ("AccessDeniedException", 403)},
    Kind.NOT_FOUND: {"s3": ("NotFoundException", 404), "tos": ("NotFoundException", 404)},
    Kind.CONFLICT: {"s3": ("ConflictException", 409), "tos": ("ConflictException", 409)},
    Kind.QUOTA: {"s3": ("ServiceQuotaExceededException", 402), "tos": ("ServiceQuotaExceededException", 402)},
    Kind.THROTTLED: {"s3": ("TooManyRequestsException", 429), "tos": ("TooManyRequestsException", 429)},
    Kind.TIMEOUT: {"s3": ("RequestTimeoutException", 408), "tos": ("RequestTimeoutException", 408)},
    Kind.UNAVAILABLE: {"s3": ("ServiceUnavailableException", 503), "tos": ("ServiceUnavailableException", 503)},
    Kind.INTERNAL: {"s3": ("InternalServerException", 500), "tos": ("InternalServerException", 500)},
    Kind.UNKNOWN_OPERATION: {"s3": ("UnknownOperationException", 404), "tos": ("UnknownOperationException", 404)},
}

# Volcengine's detailed error code ("EC") per kind.
TOS_EC: dict[Kind, str] = {
    Kind.VALIDATION: "0017-00000001",
    Kind.ACCESS_DENIED: "0003-00000001",
    Kind.NOT_FOUND: "0017-00000404",
    Kind.CONFLICT: "0017-00000409",
    Kind.QUOTA: "0017-00000402",
    Kind.THROTTLED: "0017-00000429",
    Kind.TIMEOUT: "0017-00000408",
    Kind.UNAVAILABLE: "0017-00000503",
    Kind.INTERNAL: "0017-00000500",
    Kind.UNKNOWN_OPERATION: "0017-00000000",
}

ENGINE_KINDS: list[tuple[type[e.VecledgerError], Kind]] = [
    (e.ValidationError, Kind.VALIDATION),
    (e.NotFound, Kind.NOT_FOUND),
    (e.Conflict, Kind.CONFLICT),
    (e.QuotaExceeded, Kind.QUOTA),
    (e.Throttled, Kind.THROTTLED),
    (e.StoreUnavailable, Kind.UNAVAILABLE),
    (e.Unavailable, Kind.UNAVAILABLE),
    (e.CorruptEvent, Kind.INTERNAL),
]


# The engine errors that OSS names by themselves rather than by their kind (the reason below).
ENGINE_REASONS: list[tuple[type[e.VecledgerError], str]] = [
    (e.IndexNotFound, "IndexNotFound"),
    (e.PolicyNotFound, "PolicyNotFound"),
    (e.IndexAlreadyExists, "IndexAlreadyExists"),
    (e.BucketNotEmpty, "BucketNotEmpty"),
]

# OSS names errors by what failed, not only by kind: (kind, reason) -> (code, status), where the
# reason is one of ``ENGINE_REASONS``, an auth failure, or the area of a validation failure.
OSS: dict[tuple[Kind, str | None], tuple[str, int]] = {
    (Kind.VALIDATION, None): ("InvalidArgument", 400),
    (Kind.VALIDATION, "index"): ("VectorIndexParameterInvalid", 400),
    (Kind.VALIDATION, "MalformedJson"): ("MalformedJson", 400),
    (Kind.VALIDATION, "InvalidArgument"): ("InvalidArgument", 400),
    (Kind.ACCESS_DENIED, None): ("AccessDenied", 403),
    (Kind.ACCESS_DENIED, "SignatureDoesNotMatch"): ("SignatureDoesNotMatch", 403),
    (Kind.ACCESS_DENIED, "RequestTimeTooSkewed"): ("RequestTimeTooSkewed", 403),
    (Kind.ACCESS_DENIED, "InvalidAccessKeyId"): ("InvalidAccessKeyId", 403),
    (Kind.ACCESS_DENIED, "InvalidDigest"): ("InvalidDigest", 400),
    (Kind.ACCESS_DENIED, "InvalidArgument"): ("InvalidArgument", 400),
    (Kind.NOT_FOUND, None): ("NoSuchBucket", 404),
    (Kind.NOT_FOUND, "IndexNotFound"): ("NoSuchVectorIndex", 404),
    (Kind.NOT_FOUND, "PolicyNotFound"): ("NoSuchBucketPolicy", 404),
    (Kind.CONFLICT, None): ("BucketAlreadyExists", 409),
    (Kind.CONFLICT, "IndexAlreadyExists"): ("VectorBucketIndexAlreadyExist", 409),
    (Kind.CONFLICT, "BucketNotEmpty"): ("BucketNotEmpty", 409),
    (Kind.QUOTA, None): ("VectorBucketIndexExceedLimit", 400),
    (Kind.THROTTLED, None): ("QpsLimitExceeded", 503),
    (Kind.TIMEOUT, None): ("RequestTimeout", 400),
    (Kind.UNAVAILABLE, None): ("ServiceUnavailable", 503),
    (Kind.INTERNAL, None): ("InternalError", 500),
    (Kind.UNKNOWN_OPERATION, None): ("InvalidArgument", 400),
}
OSS_EC = "0037-00000001"

# What each cloud says for the engine's named failures (TOS, a clone of S3 Vectors' API, documents
# no wording and takes S3's). Sources per row: docs/api.md, "Error wording".
WORDING: dict[type[e.VecledgerError], dict[str, str]] = {
    e.BucketNotFound: {
        "s3": "The specified vector bucket could not be found",
        "oss": "The specified bucket does not exist.",
    },
    e.IndexNotFound: {
        "s3": "The specified index could not be found",
        "oss": "The specified vector index does not exist.",
    },
    e.PolicyNotFound: {
        "s3": "The specified vector bucket policy could not be found",
        "oss": "The bucket policy does not exist.",
    },
    e.BucketAlreadyExists: {
        "s3": "A vector bucket with the specified name already exists",
        "oss": "The requested bucket name is not available.",
    },
    e.IndexAlreadyExists: {
        "s3": "An index with the specified name already exists",
        "oss": "The specified vector index already exists.",
    },
    e.BucketNotEmpty: {
        "s3": "The specified vector bucket is not empty",
        "oss": "The bucket you tried to delete is not empty.",
    },
}
# Operations on an index: AWS answers a missing bucket there as a missing index (GetIndex of an
# index in a bucket that does not exist: "The specified index could not be found").
INDEX_OPERATIONS = frozenset(
    {
        "GetIndex",
        "DeleteIndex",
        "UpdateIndexMode",
        "UpdateMetadataConfiguration",
        "PutVectors",
        "GetVectors",
        "ListVectors",
        "DeleteVectors",
        "QueryVectors",
    }
)


def oss_code(kind: Kind, reason: str | None) -> tuple[str, int]:
    return OSS.get((kind, reason)) or OSS[(kind, None)]


class ApiError(Exception):
    def __init__(
        self, kind: Kind, message: str, fields: list[tuple[str, str]] | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.fields = fields or []
        self.reason = reason


def validation(message: str, field: str | None = None) -> ApiError:
    return ApiError(Kind.VALIDATION, message, [(field, message)] if field else None)


def from_engine(err: e.VecledgerError, dialect: str = "s3", operation: str = "") -> ApiError:
    """The API's view of an engine error, worded as ``dialect``'s cloud words it."""
    if dialect != "oss" and isinstance(err, e.BucketNotFound) and operation in INDEX_OPERATIONS:
        err = e.IndexNotFound(err.name)
    for cls, kind in ENGINE_KINDS:
        if isinstance(err, cls):
            if isinstance(err, e.ValidationError):
                return validation(err.message, err.field)
            if kind is Kind.INTERNAL:
                log.error("internal error: %s", err)
                return ApiError(kind, "the service could not complete the request")
            if isinstance(err, e.StoreUnavailable) and not isinstance(err, e.PartialBatch):
                # Its text names object keys and the store's endpoint: the operator's, not the caller's.
                log.warning("store unavailable: %s", err)
                return ApiError(kind, "the object store is unavailable; retry the request")
            reason = next((r for c, r in ENGINE_REASONS if isinstance(err, c)), None)
            words = next((w for c, w in WORDING.items() if isinstance(err, c)), None)
            message = words.get(dialect, words["s3"]) if words else str(err)
            return ApiError(kind, message, reason=reason)
    log.error("unmapped engine error: %r", err)
    return ApiError(Kind.INTERNAL, "the service could not complete the request")
