"""Checks every dialect shares, done before anything reaches the log.

Dialect-specific limits (name patterns, batch sizes, topK caps) live in ``api/``; what is here is
what makes a request meaningless to the engine whatever dialect sent it.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from engine.catalog.state import Index
from engine.errors import ValidationError
from engine.log.payload import VectorBatch, Vectors, metadata_text

METRICS = ("euclidean", "cosine")
MAX_KEY_LENGTH = 1024
MAX_INTEGER = int(sys.float_info.max)  # larger integers have no double to compare as


def dimension(value: Any, max_dimension: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= max_dimension:
        raise ValidationError(f"dimension must be an integer from 1 to {max_dimension}", field="dimension")
    return value


def metric(value: Any) -> str:
    if value not in METRICS:
        raise ValidationError(f"distanceMetric must be one of {', '.join(METRICS)}", field="distanceMetric")
    return str(value)


def vector(index: Index, value: Any, field: str = "queryVector") -> Vectors:
    arr = _as_float32(value, field)
    if arr.ndim != 1 or arr.shape[0] != index.dimension:
        raise ValidationError(
            f"{field} has dimension {arr.shape[-1] if arr.ndim else 0}; index {index.name!r} expects {index.dimension}",
            field=field,
        )
    _check_values(index, arr[None, :], field)
    return arr


def _as_float32(value: Any, field: str) -> Vectors:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{field} must hold numbers only", field=field) from None
    with np.errstate(over="ignore"):
        return arr.astype(np.float32)


def _check_values(index: Index, arr: Vectors, field: str, keys: list[str] | None = None) -> None:
    """Finite values, and no zero vector under cosine. In AWS's words: a put names the record
    ("Invalid record for key 'k': vector contains NaNs or Infs"), a query its query vector."""
    bad = ~np.isfinite(arr).all(axis=1)
    reason = "vector contains NaNs or Infs"
    if not bad.any() and index.metric == "cosine":
        bad, reason = np.abs(arr).max(axis=1) == 0, "cosine distance does not support vectors with zero norm"
    if not bad.any():
        return
    if keys is None:
        raise ValidationError(
            f"Query vector contains invalid values or is invalid for this index: {reason}", field=field
        )
    i = int(np.argmax(bad))
    raise ValidationError(f"Invalid record for key '{keys[i]}': {reason}", field=f"vectors[{i}]")


def key(value: Any, field: str = "key") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise ValidationError(f"{field} must be a string of 1 to {MAX_KEY_LENGTH} characters", field=field)
    return value


def keys(values: Any, field: str = "keys") -> list[str]:
    if not isinstance(values, list) or not values:
        raise ValidationError(f"{field} must be a non-empty list of keys", field=field)
    return [key(v, f"{field}[{i}]") for i, v in enumerate(values)]


def _finite_json(value: Any) -> bool:
    """No NaN or Infinity, and no integer past a double's range: every number can be compared as
    a double (filters) and read back (integers past 64 bits do come back exactly)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= MAX_INTEGER
    if isinstance(value, list):
        return all(_finite_json(v) for v in value)
    if isinstance(value, dict):
        return all(_finite_json(v) for v in value.values())
    return True


def metadata(value: Any, field: str = "metadata") -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be a JSON object", field=field)
    if not _finite_json(value):
        raise ValidationError(f"{field} holds NaN, Infinity or a number past the range of a double", field=field)
    try:
        return metadata_text(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{field} is not valid JSON", field=field) from None


def batch(index: Index, keys_: list[str], vectors: Any, metas: list[Any]) -> VectorBatch:
    """A put's rows as one validated batch."""
    if not keys_:
        raise ValidationError("vectors must not be empty", field="vectors")
    arr = _as_float32(vectors, "vectors")
    if arr.ndim != 2 or arr.shape[1] != index.dimension or arr.shape[0] != len(keys_):
        raise ValidationError(f"every vector must have dimension {index.dimension}", field="vectors")
    _check_values(index, arr, "vectors", [str(k) for k in keys_])
    checked_keys = [key(k, f"vectors[{i}].key") for i, k in enumerate(keys_)]
    texts = [metadata(m, f"vectors[{i}].metadata") for i, m in enumerate(metas)]
    return VectorBatch(checked_keys, arr, texts)
