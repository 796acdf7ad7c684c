"""OSS fusion mode through the SDK's own calls: a schema becomes an ENHANCED index with full text,
knn and ``$textMatch`` become vector, text and RRF hybrid search, and what vecledger cannot answer
exactly is an InvalidArgument, never an approximation."""

from __future__ import annotations

import itertools
from typing import Any

import alibabacloud_oss_v2 as oss
import alibabacloud_oss_v2.vectors as ov
import pytest

from tests.server import RunningServer

M = ov.models
B, IDX = "fusion", "shop"
SCHEMA = {
    "fields": [
        {"name": "embedding", "type": "vector", "dataType": "float32", "dimension": 2, "distanceMetric": "cosine"},
        {"name": "title", "type": "string", "text": {"enabled": True, "analyzer": "standard"}},
        {"name": "brand", "type": "string", "isPartitionKey": True},
        {"name": "price", "type": "double"},
    ]
}
ITEMS = [  # key, vector, title, brand, price
    ("a", [1.0, 0.0], "wireless noise cancelling headphones", "acme", 199.0),
    ("b", [0.9, 0.1], "wired headphones", "acme", 49.0),
    ("c", [0.0, 1.0], "wireless mouse", "zeta", 25.0),
    ("d", [0.7, 0.7], "bluetooth speaker, wireless", "zeta", 99.0),
    ("e", [-1.0, 0.0], "usb cable", "acme", 5.0),
]


def setup(c: Any) -> None:
    c.put_vector_bucket(M.PutVectorBucketRequest(bucket=B))
    c.put_vector_index_fusion(M.PutVectorIndexFusionRequest(bucket=B, index_name=IDX, schema_configuration=SCHEMA))
    vectors = [
        {"key": k, "data": {"float32": v}, "metadata": {"title": t, "brand": b, "price": p}} for k, v, t, b, p in ITEMS
    ]
    c.put_vectors(M.PutVectorsRequest(bucket=B, index_name=IDX, vectors=vectors))


def fusion(c: Any, **kw: Any) -> list[dict[str, Any]]:
    return list(c.query_vectors_fusion(M.QueryVectorsFusionRequest(bucket=B, index_name=IDX, **kw)).vectors)


def knn(top_k: int = 5, **kw: Any) -> dict[str, Any]:
    return {"field": "embedding", "queryVector": [1.0, 0.0], "topK": top_k, **kw}


def refused(c: Any, **kw: Any) -> str:
    with pytest.raises(oss.exceptions.OperationError) as e:
        fusion(c, **kw)
    err: Any = e.value.unwrap()
    assert err.status_code == 400, err
    return str(err.message)


def test_a_fusion_index_is_shown_with_its_schema(srv: RunningServer) -> None:
    c = srv.oss()
    setup(c)
    index = c.get_vector_index(M.GetVectorIndexRequest(bucket=B, index_name=IDX)).index
    assert (index["mode"], index["schemaConfiguration"], index["dimension"]) == ("fusion", SCHEMA, 2)
    two = {"fields": [*SCHEMA["fields"], {**SCHEMA["fields"][0], "name": "other"}]}
    for schema in (
        two,
        {"fields": [SCHEMA["fields"][1]]},
        {"fields": [{**SCHEMA["fields"][0], "distanceMetric": "ip"}]},
    ):
        with pytest.raises(oss.exceptions.OperationError) as e:
            c.put_vector_index_fusion(
                M.PutVectorIndexFusionRequest(bucket=B, index_name="bad", schema_configuration=schema)
            )
        assert e.value.unwrap().code == "VectorIndexParameterInvalid"


def test_knn_text_and_rrf_answer_as_vector_text_and_hybrid_search(srv: RunningServer) -> None:
    c = srv.oss()
    setup(c)
    by_vector = fusion(c, knn=[knn()], limit=5, return_metadata=True, return_metadata_fields=["brand"])
    assert [v["key"] for v in by_vector] == ["a", "b", "d", "c", "e"]  # nearest to (1, 0) first
    assert by_vector[0]["score"] == pytest.approx(1.0) and by_vector[0]["metadata"] == {"brand": "acme"}
    assert all(x["score"] >= y["score"] for x, y in itertools.pairwise(by_vector))
    by_text = fusion(c, query={"title": {"$textMatch": {"value": "wireless headphones"}}}, limit=5)
    assert {v["key"] for v in by_text} == {"a", "b", "c", "d"} and by_text[0]["key"] == "a"  # both words
    filtered = fusion(c, knn=[knn()], query={"$and": {"clauses": [{"price": {"$range": {"gte": 20, "lt": 100}}}]}})
    assert [v["key"] for v in filtered] == ["b", "d", "c"]
    assert [v["key"] for v in fusion(c, knn=knn(), partition_keys=["zeta"])] == ["d", "c"]
    # An rrf retriever over the two lists is Reciprocal Rank Fusion of them, each cut at windowSize.
    text = {"title": {"$textMatch": "wireless"}}
    retriever = {
        "rrf": {
            "k": 10,
            "windowSize": 3,
            "retrievers": [{"retriever": {"knn": knn(top_k=3)}}, {"retriever": {"simple": {"query": text}}}],
        }
    }
    fused = fusion(c, retriever=retriever, limit=4)
    vector_list = [v["key"] for v in fusion(c, knn=[knn(top_k=3)], limit=3)]
    text_list = [v["key"] for v in fusion(c, query=text, limit=3)]
    expected: dict[str, float] = {}
    for keys in (vector_list, text_list):
        for r, key in enumerate(keys, start=1):
            expected[key] = expected.get(key, 0.0) + 1 / (10 + r)
    assert [v["key"] for v in fused] == sorted(expected, key=lambda k: (-expected[k], k))[:4]
    assert [v["score"] for v in fused] == pytest.approx(sorted(expected.values(), reverse=True)[:4])


def test_what_cannot_be_answered_exactly_is_refused(srv: RunningServer) -> None:
    c = srv.oss()
    setup(c)
    assert "one knn" in refused(c, knn=[knn(), knn()])
    assert "field" in refused(c, knn=[{**knn(), "field": "nope"}])
    assert "_score" in refused(c, knn=[knn()], sort=[{"price": {"order": "asc"}}])
    assert "one page" in refused(c, query={"title": {"$textMatch": "usb"}}, next_token="x")
    assert "$textMatch" in refused(c, query={"$or": {"clauses": [{"title": {"$textMatch": "usb"}}, {"price": 5}]}})
    weighted = {"rrf": {"retrievers": [{"retriever": {"knn": knn()}, "weight": 2.0}]}}
    assert "weight 1" in refused(c, retriever=weighted)
    assert "only limit" in refused(c, retriever={"rrf": {"retrievers": []}}, knn=[knn()])
    assert "limit" in refused(c, knn=[knn()], limit=101)


def test_malformed_clauses_are_invalid_arguments_not_crashes(srv: RunningServer) -> None:
    """The body model types only the top level; every clause below is checked before it is read."""
    c = srv.oss()
    setup(c)
    for kw in (
        {"knn": [{**knn(), "topK": "5"}]},
        {"retriever": {"rrf": {"retrievers": ["knn"]}}},
        {"retriever": {"rrf": {"retrievers": [{"retriever": {"simple": "text"}}]}}},
        {"retriever": {"rrf": {"k": "60", "retrievers": [{"retriever": {"knn": knn()}}]}}},
        {"retriever": {"rrf": {"retrievers": "all"}}},
        {"knn": [knn()], "sort": [{"_score": "desc"}]},
    ):
        refused(c, **kw)
    schema = {"fields": [{**SCHEMA["fields"][0], "dimension": "2"}, {"name": "t", "type": "string", "text": "on"}]}
    for bad in (schema, {"fields": [{**SCHEMA["fields"][0], "dimension": "2"}]}):
        with pytest.raises(oss.exceptions.OperationError) as e:
            c.put_vector_index_fusion(
                M.PutVectorIndexFusionRequest(bucket=B, index_name="bad", schema_configuration=bad)
            )
        assert e.value.unwrap().status_code == 400
