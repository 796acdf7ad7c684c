"""What the vector reads of one index answer with: records, list pages, and list page tokens.

A token holds the last key of its page and the segment it belongs to, so a token of one segment
(or of one ``segmentCount``) is refused by another rather than silently skipping keys.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from engine.errors import ValidationError
from engine.log.payload import Vectors, parse_metadata, vector_matrix


@dataclass(frozen=True)
class VectorRecord:
    key: str
    vector: Vectors | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True)
class ListPage:
    vectors: list[VectorRecord]
    next_token: str | None


def encode_token(after: str, segment_count: int, segment_index: int) -> str:
    raw = json.dumps({"a": after, "c": segment_count, "i": segment_index}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, segment_count: int, segment_index: int) -> str:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, c, i = doc["a"], doc["c"], doc["i"]
    except (ValueError, KeyError, TypeError):
        raise ValidationError("invalid nextToken", field="nextToken") from None
    if (c, i) != (segment_count, segment_index) or not isinstance(after, str):
        raise ValidationError("nextToken does not belong to this segment", field="nextToken")
    return after


def records_of(table: Any) -> list[VectorRecord]:
    if len(table) == 0:
        return []
    flat = vector_matrix(table.column("vector"))
    metas = table.column("metadata").to_pylist()
    return [VectorRecord(k, flat[i], parse_metadata(metas[i])) for i, k in enumerate(table.column("key").to_pylist())]


def shaped(rec: VectorRecord, return_data: bool, return_metadata: bool) -> VectorRecord:
    return VectorRecord(rec.key, rec.vector if return_data else None, rec.metadata if return_metadata else None)
