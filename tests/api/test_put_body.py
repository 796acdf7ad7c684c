"""The PutVectors fast path reads exactly what the pydantic model would, and never more."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api import models
from api.bodies import _fast_put, parse_body, parse_put_vectors
from api.errors import ApiError


def body(vectors: list[dict[str, object]], **extra: object) -> bytes:
    return json.dumps({"vectorBucketName": "b1", "indexName": "i1", "vectors": vectors, **extra}).encode()


GOOD = [
    [{"key": "a", "data": {"float32": [1.5, -2, 3e-3]}, "metadata": {"genre": "x", "n": 1, "ok": True}}],
    [{"key": "a", "data": {"float32": [1, 2]}}, {"key": "b", "data": {"float32": [0.25, 4]}, "metadata": None}],
]


@pytest.mark.parametrize("vectors", GOOD)
def test_fast_path_agrees_with_the_model(vectors: list[dict[str, object]]) -> None:
    raw = body(vectors)
    fast = _fast_put(raw)
    assert fast is not None
    model = parse_body(models.PutVectors, raw)
    assert fast.keys == [v.key for v in model.vectors]
    assert fast.metadata == [v.metadata for v in model.vectors]
    assert fast.data is not None and fast.data.dtype == np.float64
    np.testing.assert_array_equal(fast.data, np.array([v.data.float32 for v in model.vectors]))
    assert (fast.vectorBucketName, fast.indexName, fast.indexArn) == ("b1", "i1", None)


@pytest.mark.parametrize(
    "row",
    [[1.0, True], [1.0, "2.0"], [1.0, None], [1.0, [2.0]], [1.0, {"x": 1}], [False, 1.0]],
    ids=["bool", "string", "null", "nested", "object", "leading-bool"],
)
def test_non_numbers_in_a_vector_are_refused_by_the_model(row: list[object]) -> None:
    raw = body([{"key": "a", "data": {"float32": row}}])
    assert _fast_put(raw) is None
    with pytest.raises(ApiError) as e:
        parse_put_vectors(raw)
    assert "vectors.0.data.float32" in str(e.value.fields)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"vectors": [{"key": "a", "data": {"float32": [1, 2]}, "extra": 1}]}',
        b'{"vectors": [{"key": 7, "data": {"float32": [1, 2]}}]}',
        b'{"vectors": [{"key": "a", "data": {"float32": [1, 2], "float16": []}}]}',
        b'{"vectors": [{"key": "a"}]}',
        b'{"vectors": {}}',
        b'{"vectors": [], "surprise": true}',
        b'{"vectors": [{"key": "a", "data": {"float32": [1, 2]}}]',
        b'{"indexName": 5, "vectors": [{"key": "a", "data": {"float32": [1, 2]}}]}',
    ],
    ids=["extra-field", "key-type", "second-type", "no-data", "not-a-list", "unknown-field", "truncated", "name-type"],
)
def test_malformed_bodies_fall_back_and_are_refused(raw: bytes) -> None:
    assert _fast_put(raw) is None
    with pytest.raises(ApiError):
        parse_put_vectors(raw)


def test_rows_of_different_lengths_keep_their_lengths() -> None:
    raw = body([{"key": "a", "data": {"float32": [1, 2]}}, {"key": "b", "data": {"float32": [1, 2, 3]}}])
    batch = parse_put_vectors(raw)
    assert batch.data is None and batch.lengths == [2, 3]


def test_true_in_metadata_does_not_defeat_the_fast_path() -> None:
    raw = body([{"key": "a", "data": {"float32": [1.0, 2.0]}, "metadata": {"flag": True, "no": False}}])
    fast = _fast_put(raw)
    assert fast is not None and fast.metadata == [{"flag": True, "no": False}]


def test_an_integer_past_64_bits_takes_the_exact_path() -> None:
    big = 123456789012345678901234567890
    raw = body([{"key": "a", "data": {"float32": [1.0, 2.0]}, "metadata": {"n": big}}])
    assert _fast_put(raw) is None  # orjson would round it to a float
    assert parse_put_vectors(raw).metadata == [{"n": big}]


def test_small_floats_keep_the_fast_path() -> None:
    """Python writes 1.2345678901234567e-4 as 0.00012345678901234567: a long run of fraction
    digits, not an integer past 64 bits. Embeddings are full of such floats."""
    row = [0.00012345678901234567, -0.000987654321098765432, 1234567890123456789.5]
    raw = body([{"key": "a", "data": {"float32": row}, "metadata": {"x": 0.00012345678901234567}}])
    assert b"00012345678901234567" in raw
    fast = _fast_put(raw)
    assert fast is not None
    assert fast.metadata == [{"x": 0.00012345678901234567}]
    assert fast.data is not None and fast.data.tolist() == [row]
