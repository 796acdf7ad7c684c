"""Vector payloads: Arrow IPC streams of (key, float32 vector, metadata JSON text).

Never JSON floats: a float32 survives the log bit for bit, and encoding 500 x 1024 floats as Arrow
costs a memcpy rather than half a million ``repr`` calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from engine.errors import CorruptEvent

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VectorBatch:
    """Rows of one put. ``metadata`` holds JSON text (None for a vector without metadata)."""

    keys: list[str]
    vectors: Vectors
    metadata: list[str | None]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def slice(self, start: int, stop: int) -> VectorBatch:
        return VectorBatch(self.keys[start:stop], self.vectors[start:stop], self.metadata[start:stop])

    def nbytes(self) -> int:
        return int(self.vectors.nbytes) + sum(len(k) for k in self.keys) + sum(len(m or "") for m in self.metadata)


def json_bytes(value: object) -> bytes:
    """Compact UTF-8 JSON. orjson is ~20x faster than ``json``; ``json`` takes what orjson refuses
    (integers past 64 bits, non-string keys) so that any JSON value a client can send round-trips."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def metadata_text(value: object) -> str | None:
    return None if value is None else json_bytes(value).decode()


_ROUNDED = 2.0**63  # orjson reads integers in [-2**63, 2**64) exactly, larger ones as floats


def rounded_by_orjson(value: object) -> bool:
    """Whether orjson may have rounded an integer in this parsed value: it reads an integer past 64
    bits as a float, and every float that large is integral (``json`` keeps the integer). Checking
    the parsed value, not the text: a regex over a 700 KB PutVectors body cost more than parsing it."""
    if isinstance(value, float):
        return abs(value) >= _ROUNDED
    if isinstance(value, dict):
        return any(rounded_by_orjson(v) for v in value.values())
    if isinstance(value, list):
        return any(rounded_by_orjson(v) for v in value)
    return False


def loads_exact(data: str | bytes) -> Any:
    """JSON at orjson's speed, read exactly: ``json`` again where orjson may have rounded."""
    value = orjson.loads(data)
    return json.loads(data) if rounded_by_orjson(value) else value


def parse_metadata(text: str | None) -> dict[str, Any] | None:
    """The inverse of ``metadata_text``: a value must come back, and filter, exactly as it was sent."""
    if not text:
        return None
    return dict(loads_exact(text))


def vectors_array(vectors: Vectors) -> pa.FixedSizeListArray:
    d = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, d)


def vector_matrix(column: pa.Array | pa.ChunkedArray) -> Vectors:
    """A fixed-size-list float32 column as an (n, d) array: one copy at most, no per-row Python."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    d = column.type.list_size
    if len(column) == 0:
        return np.zeros((0, d), np.float32)
    flat = column.values[column.offset * d : (column.offset + len(column)) * d]  # .values ignores slicing
    out: Vectors = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(column), d)
    return out


def to_table(batch: VectorBatch) -> pa.Table:
    return pa.table(
        {
            "key": pa.array(batch.keys, pa.string()),
            "vector": vectors_array(batch.vectors),
            "metadata": pa.array(batch.metadata, pa.string()),
        }
    )


def encode_vectors(batch: VectorBatch) -> bytes:
    table = to_table(batch)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode_vectors(key: str, data: bytes) -> VectorBatch:
    try:
        table = pa.ipc.open_stream(data).read_all()
        return VectorBatch(
            keys=table.column("key").to_pylist(),
            vectors=vector_matrix(table.column("vector")),
            metadata=table.column("metadata").to_pylist(),
        )
    except (pa.ArrowException, KeyError, ValueError) as e:
        raise CorruptEvent(key, f"bad vector payload: {e}") from None
