"""Volcengine's tos VectorClient against a real vecledger server (through the proxy setting)."""

from __future__ import annotations

from typing import Any

import pytest
from tos.enum import DataType, DistanceMetricType
from tos.exceptions import TosServerError
from tos.models2 import Vector, VectorData

from tests.server import ALICE, RunningServer

ACCT = ALICE.account


def tos_error(fn: Any, *args: Any, **kw: Any) -> TosServerError:
    with pytest.raises(TosServerError) as e:
        fn(*args, **kw)
    err = e.value
    assert err.request_id and err.ec  # request id from x-tos-request-id, EC in the body
    return err


def test_every_tos_operation(srv: RunningServer) -> None:
    t = srv.tos()
    t.create_vector_bucket("tos-bucket")
    b = t.get_vector_bucket("tos-bucket", ACCT).vector_bucket
    assert b.vector_bucket_name == "tos-bucket"
    assert b.vector_bucket_trn == f"trn:tosvectors:us-east-1:{ACCT}:bucket/tos-bucket"
    assert isinstance(b.creation_time, int) and b.creation_time > 1_700_000_000
    assert [x.vector_bucket_name for x in t.list_vector_buckets().vector_buckets] == ["tos-bucket"]

    policy = (
        '{"Version":"2025-12-01","Statement":[{"Effect":"Allow","Principal":["*"],'
        '"Action":["tosvectors:GetIndex"],"Resource":["trn:tosvectors:us-east-1:111122223333:bucket/tos-bucket/*"]}]}'
    )
    t.put_vector_bucket_policy("tos-bucket", ACCT, policy)
    assert t.get_vector_bucket_policy("tos-bucket", ACCT).policy == policy  # the raw document
    t.delete_vector_bucket_policy("tos-bucket", ACCT)
    assert tos_error(t.get_vector_bucket_policy, "tos-bucket", ACCT).status_code == 404

    t.create_index(
        "tos-bucket",
        ACCT,
        "tos-index",
        data_type=DataType.DataTypeFloat32,
        dimension=3,
        distance_metric=DistanceMetricType.DistanceMetricEuclidean,
        metadata_configuration={"nonFilterableMetadataKeys": ["note"]},
    )
    idx = t.get_index("tos-bucket", ACCT, "tos-index").index
    assert (idx.dimension, idx.index_trn) == (3, f"trn:tosvectors:us-east-1:{ACCT}:bucket/tos-bucket/index/tos-index")
    assert idx.metadata_configuration.non_filterable_metadata_keys == ["note"]
    assert [i.index_name for i in t.list_indexes("tos-bucket", ACCT).indexes] == ["tos-index"]

    t.put_vectors(
        "tos-bucket",
        ACCT,
        "tos-index",
        [
            Vector(key="k1", data=VectorData(float32=[1.0, 0.0, 0.0]), metadata={"genre": "doc", "note": "n1"}),
            Vector(key="k2", data=VectorData(float32=[0.0, 1.0, 0.0]), metadata={"genre": "news"}),
        ],
    )
    r = t.query_vectors(
        "tos-bucket",
        ACCT,
        "tos-index",
        query_vector=VectorData(float32=[1.0, 0.0, 0.0]),
        top_k=5,
        return_distance=True,
        return_metadata=True,
    )
    assert [(v.key, round(v.distance, 4)) for v in r.vectors] == [("k1", 0.0), ("k2", 1.4142)]
    assert r.vectors[0].metadata == {"genre": "doc", "note": "n1"}
    r = t.query_vectors(
        "tos-bucket",
        ACCT,
        "tos-index",
        query_vector=VectorData(float32=[1.0, 0.0, 0.0]),
        top_k=5,
        filter={"genre": {"$eq": "news"}},
    )
    assert [v.key for v in r.vectors] == ["k2"]
    got = t.get_vectors("tos-bucket", ACCT, "tos-index", ["k2", "nope"], return_metadata=True).vectors
    assert [(g.key, g.metadata) for g in got] == [("k2", {"genre": "news"})]
    page = t.list_vectors("tos-bucket", "tos-index", ACCT, max_results=1, return_metadata=True)
    assert [v.key for v in page.vectors] == ["k1"] and page.next_token
    page = t.list_vectors("tos-bucket", "tos-index", ACCT, max_results=1, next_token=page.next_token)
    assert [v.key for v in page.vectors] == ["k2"] and not page.next_token
    t.delete_vectors("tos-bucket", ACCT, "tos-index", ["k1"])
    assert [v.key for v in t.list_vectors("tos-bucket", "tos-index", ACCT).vectors] == ["k2"]

    err = tos_error(t.delete_vector_bucket, "tos-bucket", ACCT)
    assert (err.status_code, err.code) == (409, "ConflictException")
    t.delete_index("tos-bucket", ACCT, "tos-index")
    t.delete_vector_bucket("tos-bucket", ACCT)
    assert t.list_vector_buckets().vector_buckets == []


def test_tos_limits_and_error_shape(srv: RunningServer) -> None:
    t = srv.tos()
    t.create_vector_bucket("limits")
    err = tos_error(t.create_vector_bucket, "limits")
    assert (err.status_code, err.code) == (409, "ConflictException")
    err = tos_error(t.get_vector_bucket, "missing", ACCT)
    assert (err.status_code, err.code) == (404, "NotFoundException")
    t.create_index(
        "limits",
        ACCT,
        "idx",
        data_type=DataType.DataTypeFloat32,
        dimension=2,
        distance_metric=DistanceMetricType.DistanceMetricCosine,
    )
    err = tos_error(
        t.create_index,
        "limits",
        ACCT,
        "idx2",
        data_type=DataType.DataTypeInt8,
        dimension=2,
        distance_metric=DistanceMetricType.DistanceMetricCosine,
    )
    assert (err.status_code, err.code) == (400, "ValidationException")
    err = tos_error(t.query_vectors, "limits", ACCT, "idx", query_vector=VectorData(float32=[1.0, 0.0]), top_k=1001)
    assert err.code == "ValidationException" and "topK" in err.message
    err = tos_error(t.delete_vectors, "limits", ACCT, "idx", [f"k{i}" for i in range(101)])
    assert err.code == "ValidationException"
    err = tos_error(t.put_vectors, "limits", ACCT, "idx", [Vector(key="z", data=VectorData(float32=[0.0, 0.0]))])
    assert err.code == "ValidationException" and "zero" in err.message
    # TOS's PutVectors reference: more than 500 vectors is a ServiceUnavailableException.
    many = [Vector(key=f"k{i}", data=VectorData(float32=[1.0, 0.0])) for i in range(501)]
    err = tos_error(t.put_vectors, "limits", ACCT, "idx", many)
    assert (err.status_code, err.code) == (503, "ServiceUnavailableException") and "500" in err.message
    t.put_vectors("limits", ACCT, "idx", many[:500])
    assert len(t.list_vectors("limits", "idx", ACCT, max_results=1000).vectors) == 500
