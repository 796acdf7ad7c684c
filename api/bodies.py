"""Request bodies: strict JSON into pydantic models, failures as ValidationException with fields.

PutVectors is the one hot body: 500 vectors of up to 4,096 floats each. Its fast path parses
with orjson and turns the rows into one numpy array in C, skipping the thousand model objects
pydantic would build; any body it is not sure of goes through the model, which is the authority
on what is valid and words the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError as PydanticError

from api import models
from api.errors import ApiError, Kind
from engine.log.payload import rounded_by_orjson

_ADDR = ("vectorBucketName", "indexName", "indexArn")
_PUT_FIELDS = frozenset((*_ADDR, "vectors"))
_VECTOR_FIELDS = frozenset(("key", "data", "metadata"))


def parse_body(model: Any, body: bytes) -> Any:
    """Parse ``body`` (empty means ``{}``) into ``model``; the error names every bad field."""
    try:
        return model.model_validate_json(body or b"{}")
    except PydanticError as e:
        fields = []
        malformed = False
        for err in e.errors():
            malformed = malformed or err["type"] == "json_invalid"
            path = ".".join(str(p) for p in err["loc"]) or "body"
            fields.append((path, str(err["msg"])))
        first = fields[0] if fields else ("body", "invalid request")
        message = "Malformed request body: " + (first[1] if first[0] == "body" else f"{first[0]}: {first[1]}")
        raise ApiError(Kind.VALIDATION, message, fields, reason="MalformedJson" if malformed else None) from None


@dataclass(frozen=True)
class PutBatch:
    """A PutVectors body as columns. ``data`` is None only when the rows differ in length (then
    ``lengths`` says how, and the handler refuses the batch)."""

    vectorBucketName: str | None
    indexName: str | None
    indexArn: str | None
    keys: list[str]
    data: np.ndarray | None
    lengths: list[int]
    metadata: list[Any]


def parse_put_vectors(body: bytes) -> PutBatch:
    fast = _fast_put(body)
    if fast is not None:
        return fast
    req: models.PutVectors = parse_body(models.PutVectors, body)
    rows = [v.data.float32 for v in req.vectors]
    lengths = [len(r) for r in rows]
    data = np.array(rows, dtype=np.float64) if len(set(lengths)) == 1 else None
    return PutBatch(
        req.vectorBucketName,
        req.indexName,
        req.indexArn,
        [v.key for v in req.vectors],
        data,
        lengths,
        [v.metadata for v in req.vectors],
    )


def _fast_put(body: bytes) -> PutBatch | None:
    """The common, well-formed body in C-speed steps; None whenever anything looks unusual."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or not doc.keys() <= _PUT_FIELDS or type(doc.get("vectors")) is not list:
        return None
    addr = [doc.get(f) for f in _ADDR]
    if any(a is not None and type(a) is not str for a in addr):
        return None
    keys, rows, metas = [], [], []
    for v in doc["vectors"]:
        if type(v) is not dict or not v.keys() <= _VECTOR_FIELDS:
            return None
        key, data = v.get("key"), v.get("data")
        if type(key) is not str or type(data) is not dict or len(data) != 1 or type(data.get("float32")) is not list:
            return None
        keys.append(key)
        rows.append(data["float32"])
        metas.append(v.get("metadata"))
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    if any(rounded_by_orjson(m) for m in metas):
        return None  # an integer past 64 bits in metadata: the model keeps it exact
    try:
        arr = np.array(rows)  # no dtype: numpy would parse strings as numbers if asked to
    except (ValueError, OverflowError):
        return None
    if arr.ndim != 2 or arr.dtype.kind not in "fi":
        return None
    # JSON true/false inside a float list would pass as 1.0/0.0; look closer only if the body has any.
    if (b"true" in body or b"false" in body) and bool in set(map(type, chain.from_iterable(rows))):
        return None
    data = arr.astype(np.float64, copy=False)
    return PutBatch(addr[0], addr[1], addr[2], keys, data, [arr.shape[1]] * len(rows), metas)
