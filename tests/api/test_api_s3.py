"""boto3's s3vectors client against a real vecledger server, exactly as a user would drive it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.server import ALICE, RunningServer

ACCT = ALICE.account


def error_of(call: Any, **kw: Any) -> tuple[str, int, dict[str, Any]]:
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    assert r["ResponseMetadata"]["RequestId"]
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r


def vec(*xs: float) -> dict[str, list[float]]:
    return {"float32": list(xs)}


def test_buckets_indexes_policies_tags(srv: RunningServer) -> None:
    c = srv.s3vectors()
    arn = c.create_vector_bucket(vectorBucketName="docs", tags={"team": "search"})["vectorBucketArn"]
    assert arn == f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/docs"
    got = c.get_vector_bucket(vectorBucketName="docs")["vectorBucket"]
    assert got["vectorBucketName"] == "docs" and got["vectorBucketArn"] == arn
    assert got["creationTime"].year >= 2026
    assert c.get_vector_bucket(vectorBucketArn=arn)["vectorBucket"]["vectorBucketName"] == "docs"

    index_arn = c.create_index(
        vectorBucketName="docs",
        indexName="main.v1",
        dataType="float32",
        dimension=3,
        distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": ["body"]},
    )["indexArn"]
    assert index_arn == f"{arn}/index/main.v1"
    idx = c.get_index(indexArn=index_arn)["index"]
    assert (idx["dimension"], idx["distanceMetric"], idx["dataType"]) == (3, "cosine", "float32")
    assert idx["metadataConfiguration"] == {"nonFilterableMetadataKeys": ["body"]}
    assert c.get_index(vectorBucketName="docs", indexName="main.v1")["index"]["indexArn"] == index_arn

    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "444455556666"},
                    "Action": "s3vectors:GetIndex",
                    "Resource": f"{arn}/*",
                }
            ],
        }
    )
    c.put_vector_bucket_policy(vectorBucketName="docs", policy=policy)
    assert json.loads(c.get_vector_bucket_policy(vectorBucketArn=arn)["policy"]) == json.loads(policy)
    c.delete_vector_bucket_policy(vectorBucketName="docs")
    assert error_of(c.get_vector_bucket_policy, vectorBucketName="docs")[:2] == ("NotFoundException", 404)

    c.tag_resource(resourceArn=index_arn, tags={"a": "1", "b": "2"})
    c.untag_resource(resourceArn=index_arn, tagKeys=["a"])
    assert c.list_tags_for_resource(resourceArn=index_arn)["tags"] == {"b": "2"}
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "search"}

    c.put_vector_bucket_default_index_mode(vectorBucketName="docs", defaultIndexMode="ENHANCED")
    assert c.get_vector_bucket(vectorBucketName="docs")["vectorBucket"]["defaultIndexMode"] == "ENHANCED"
    c.update_index_mode(indexArn=index_arn, indexMode="ENHANCED")
    assert c.get_index(indexArn=index_arn)["index"]["indexMode"] == "ENHANCED"

    assert error_of(c.delete_vector_bucket, vectorBucketName="docs")[:2] == ("ConflictException", 409)
    c.delete_index(indexArn=index_arn)
    assert error_of(c.get_index, indexArn=index_arn)[:2] == ("NotFoundException", 404)
    c.delete_vector_bucket(vectorBucketArn=arn)
    assert error_of(c.get_vector_bucket, vectorBucketName="docs")[:2] == ("NotFoundException", 404)


def test_catalog_errors(srv: RunningServer) -> None:
    # boto3 checks lengths and required fields itself; switch that off so the server's checks are tested.
    c = srv.s3vectors(parameter_validation=False)
    c.create_vector_bucket(vectorBucketName="b-one")
    assert error_of(c.create_vector_bucket, vectorBucketName="b-one")[:2] == ("ConflictException", 409)
    for bad in ["ab", "UPPER", "-lead", "trail-", "under_score", "x" * 64, "dots.not.allowed"]:
        code, status, r = error_of(c.create_vector_bucket, vectorBucketName=bad)
        assert (code, status) == ("ValidationException", 400), bad
        assert r["fieldList"][0]["path"] == "vectorBucketName"
    ok = {"vectorBucketName": "b-one", "dataType": "float32", "dimension": 4, "distanceMetric": "euclidean"}
    c.create_index(indexName="idx", **ok)
    assert error_of(c.create_index, indexName="idx", **ok)[:2] == ("ConflictException", 409)
    for change in [
        {"indexName": "Bad_Name"},
        {"indexName": "idx2", "dimension": 0},
        {"indexName": "idx2", "dimension": 4097},
        {"indexName": "idx2", "distanceMetric": "dotproduct"},
        {"indexName": "idx2", "metadataConfiguration": {"nonFilterableMetadataKeys": [f"k{i}" for i in range(11)]}},
    ]:
        assert error_of(c.create_index, **(ok | change))[:2] == ("ValidationException", 400), change
    assert error_of(c.create_index, **(ok | {"indexName": "idx3", "vectorBucketName": "nope"}))[:2] == (
        "NotFoundException",
        404,
    )
    # Neither or both addressing forms.
    assert error_of(c.get_vector_bucket)[:2] == ("ValidationException", 400)
    code, _, _ = error_of(
        c.get_vector_bucket,
        vectorBucketName="b-one",
        vectorBucketArn=f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/b-one",
    )
    assert code == "ValidationException"
    assert error_of(c.get_index, indexArn="arn:aws:s3vectors:us-east-1:bad")[:2] == ("ValidationException", 400)
    code, _, _ = error_of(c.put_vector_bucket_policy, vectorBucketName="b-one", policy="{not json")
    assert code == "ValidationException"
    code, _, _ = error_of(
        c.put_vector_bucket_policy,
        vectorBucketName="b-one",
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    assert code == "ValidationException"
    with pytest.raises(ParamValidationError):
        srv.s3vectors().create_vector_bucket()
    assert error_of(c.create_vector_bucket)[:2] == ("ValidationException", 400)
    assert error_of(c.create_vector_bucket, vectorBucketName=5)[:2] == ("ValidationException", 400)


def test_vectors_read_your_writes_and_errors(srv: RunningServer) -> None:
    c = srv.s3vectors(parameter_validation=False)
    c.create_vector_bucket(vectorBucketName="vbk")
    c.create_index(
        vectorBucketName="vbk",
        indexName="idx",
        dataType="float32",
        dimension=3,
        distanceMetric="euclidean",
        metadataConfiguration={"nonFilterableMetadataKeys": ["text"]},
    )
    where = {"vectorBucketName": "vbk", "indexName": "idx"}
    c.put_vectors(
        **where,
        vectors=[
            {"key": "a", "data": vec(1, 0, 0), "metadata": {"genre": "doc", "year": 2020, "text": "alpha"}},
            {"key": "b", "data": vec(0, 1, 0), "metadata": {"genre": ["news", "doc"], "year": 2022}},
            {"key": "c", "data": vec(0, 0, 1)},
        ],
    )
    # Read-your-writes: no waiting for the materializer.
    r = c.query_vectors(**where, topK=2, queryVector=vec(1, 0, 0), returnDistance=True, returnMetadata=True)
    assert r["distanceMetric"] == "euclidean"
    assert [v["key"] for v in r["vectors"]] == ["a", "b"]
    assert r["vectors"][0]["distance"] == pytest.approx(0.0)
    assert r["vectors"][1]["distance"] == pytest.approx(math.sqrt(2))
    assert r["vectors"][0]["metadata"] == {"genre": "doc", "year": 2020, "text": "alpha"}
    r = c.query_vectors(**where, topK=5, queryVector=vec(0, 0, 1), filter={"genre": "doc"})
    assert [v["key"] for v in r["vectors"]] == ["a", "b"] or [v["key"] for v in r["vectors"]] == ["b", "a"]
    assert all("distance" not in v and "metadata" not in v for v in r["vectors"])
    r = c.query_vectors(
        **where, topK=5, queryVector=vec(1, 0, 0), filter={"$and": [{"genre": "doc"}, {"year": {"$gt": 2021}}]}
    )
    assert [v["key"] for v in r["vectors"]] == ["b"]

    got = c.get_vectors(**where, keys=["c", "a", "zz"], returnData=True, returnMetadata=True)["vectors"]
    assert [g["key"] for g in got] == ["c", "a"]
    assert got[1]["data"]["float32"] == [1.0, 0.0, 0.0]
    assert got[0]["metadata"] == {}
    assert c.get_vectors(**where, keys=["a"])["vectors"] == [{"key": "a"}]

    c.put_vectors(**where, vectors=[{"key": "a", "data": vec(0.5, 0.5, 0), "metadata": {"genre": "new"}}])
    assert c.get_vectors(**where, keys=["a"], returnMetadata=True)["vectors"][0]["metadata"] == {"genre": "new"}
    c.delete_vectors(**where, keys=["b"])
    r = c.query_vectors(**where, topK=5, queryVector=vec(0, 1, 0))
    assert [v["key"] for v in r["vectors"]] == ["a", "c"]

    def bad(**kw: Any) -> str:
        return error_of(c.put_vectors, **where, **kw)[0]

    assert bad(vectors=[{"key": "x", "data": vec(1, 2)}]) == "ValidationException"  # dimension
    assert bad(vectors=[{"key": "x", "data": vec(1, float("nan"), 0)}]) == "ValidationException"
    assert bad(vectors=[{"key": "x", "data": vec(1, float("inf"), 0)}]) == "ValidationException"
    assert bad(vectors=[{"key": "x" * 1025, "data": vec(1, 0, 0)}]) == "ValidationException"
    assert bad(vectors=[{"key": "x", "data": vec(1, 0, 0)}] * 501) == "ValidationException"
    assert bad(vectors=[{"key": "x", "data": vec(1, 0, 0), "metadata": {"k": "v" * 3000}}]) == "ValidationException"
    assert (
        bad(vectors=[{"key": "x", "data": vec(1, 0, 0), "metadata": {f"k{i}": i for i in range(51)}}])
        == "ValidationException"
    )
    assert bad(vectors=[{"key": "x", "data": vec(1, 0, 0), "metadata": {"nested": {"a": 1}}}]) == "ValidationException"
    # Long non-filterable metadata is fine (only filterable metadata is capped at 2 KB).
    c.put_vectors(**where, vectors=[{"key": "long", "data": vec(1, 1, 1), "metadata": {"text": "v" * 3000}}])
    assert error_of(c.get_vectors, **where, keys=[f"k{i}" for i in range(101)])[0] == "ValidationException"
    assert error_of(c.delete_vectors, **where, keys=[f"k{i}" for i in range(501)])[0] == "ValidationException"
    q = {"topK": 3, "queryVector": vec(1, 0, 0)}
    assert error_of(c.query_vectors, **where, **(q | {"queryVector": vec(1, 0)}))[0] == "ValidationException"
    assert error_of(c.query_vectors, **where, **(q | {"topK": 10_001}))[0] == "ValidationException"
    assert error_of(c.query_vectors, **where, **(q | {"filter": {"text": "alpha"}}))[0] == "ValidationException"
    assert error_of(c.query_vectors, **where, **(q | {"filter": {"year": {"$gt": "x"}}}))[0] == "ValidationException"
    assert error_of(c.query_vectors, vectorBucketName="vbk", indexName="nope", **q)[:2] == ("NotFoundException", 404)
    # The log holds only the valid writes: the engine still sees exactly these keys.
    listed = c.list_vectors(**where)["vectors"]
    assert sorted(v["key"] for v in listed) == ["a", "c", "long"]


def test_cosine_zero_vector_and_unknown_operation(srv: RunningServer) -> None:
    import urllib.request

    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="czb")
    c.create_index(vectorBucketName="czb", indexName="idx", dataType="float32", dimension=2, distanceMetric="cosine")
    code, _, r = error_of(
        c.put_vectors, vectorBucketName="czb", indexName="idx", vectors=[{"key": "z", "data": vec(0, 0)}]
    )
    assert code == "ValidationException" and "zero" in r["Error"]["Message"]
    req = urllib.request.Request(f"{srv.url}/NoSuchOperation", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code in (403, 404)  # unsigned: refused before routing
    assert e.value.headers["x-amzn-ErrorType"]


def test_every_list_paginates(srv: RunningServer) -> None:
    c = srv.s3vectors()
    for i in range(7):
        c.create_vector_bucket(vectorBucketName=f"page-{i}")
    pages = list(c.get_paginator("list_vector_buckets").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["vectorBuckets"]) for p in pages] == [3, 3, 1]
    assert [b["vectorBucketName"] for p in pages for b in p["vectorBuckets"]] == [f"page-{i}" for i in range(7)]
    assert [b["vectorBucketName"] for b in c.list_vector_buckets(prefix="page-1")["vectorBuckets"]] == ["page-1"]
    for i in range(5):
        c.create_index(
            vectorBucketName="page-0", indexName=f"idx-{i}", dataType="float32", dimension=2, distanceMetric="euclidean"
        )
    pages = list(c.get_paginator("list_indexes").paginate(vectorBucketName="page-0", PaginationConfig={"PageSize": 2}))
    assert [i["indexName"] for p in pages for i in p["indexes"]] == [f"idx-{i}" for i in range(5)]
    assert len(pages) == 3
    assert error_of(c.list_indexes, vectorBucketName="page-0", nextToken="garbage!")[0] == "ValidationException"

    where = {"vectorBucketName": "page-0", "indexName": "idx-0"}
    keys = [f"key-{i:04d}" for i in range(1200)]
    for start in range(0, 1200, 500):
        c.put_vectors(
            **where,
            vectors=[
                {"key": k, "data": vec(i, 1), "metadata": {"i": i}}
                for i, k in enumerate(keys[start : start + 500], start)
            ],
        )
    pages = list(c.get_paginator("list_vectors").paginate(**where, returnMetadata=True))
    assert [len(p["vectors"]) for p in pages] == [500, 500, 200]
    assert [v["key"] for p in pages for v in p["vectors"]] == keys
    segmented = []
    for s in range(4):
        seg = [
            v["key"]
            for p in c.get_paginator("list_vectors").paginate(
                **where, segmentCount=4, segmentIndex=s, PaginationConfig={"PageSize": 100}
            )
            for v in p["vectors"]
        ]
        assert seg
        segmented += seg
    assert sorted(segmented) == keys
    assert error_of(c.list_vectors, **where, segmentCount=4)[0] == "ValidationException"
    assert error_of(c.list_vectors, **where, segmentCount=2, segmentIndex=2)[0] == "ValidationException"
    assert error_of(c.list_vectors, **where, maxResults=1001)[0] == "ValidationException"


def test_query_pages_to_top_k_10000(srv: RunningServer) -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="big")
    c.create_index(vectorBucketName="big", indexName="idx", dataType="float32", dimension=4, distanceMetric="euclidean")
    where = {"vectorBucketName": "big", "indexName": "idx"}
    rng = np.random.default_rng(1)
    data = rng.standard_normal((10_050, 4)).astype(np.float32)
    for start in range(0, len(data), 500):
        c.put_vectors(
            **where,
            vectors=[
                {"key": f"v{i}", "data": {"float32": data[i].tolist()}}
                for i in range(start, min(start + 500, len(data)))
            ],
        )
    q = rng.standard_normal(4).astype(np.float32)
    pages = list(
        c.get_paginator("query_vectors").paginate(
            **where, topK=10_000, queryVector={"float32": q.tolist()}, returnDistance=True
        )
    )
    assert len(pages) == 100 and all(len(p["vectors"]) == 100 for p in pages)
    got = [v["key"] for p in pages for v in p["vectors"]]
    assert len(set(got)) == 10_000
    distances = [v["distance"] for p in pages for v in p["vectors"]]
    assert distances == sorted(distances)
    exact = np.sqrt(((data - q) ** 2).sum(axis=1))
    assert set(got) == {f"v{i}" for i in np.argsort(exact)[:10_000]}
    small = c.query_vectors(**where, topK=100, queryVector={"float32": q.tolist()})
    assert "nextToken" not in small and len(small["vectors"]) == 100
    first = c.query_vectors(**where, topK=300, queryVector={"float32": q.tolist()})
    code = error_of(
        c.query_vectors, **where, topK=300, queryVector={"float32": [1.0, 2.0, 3.0, 4.0]}, nextToken=first["nextToken"]
    )[0]
    assert code == "ValidationException"
