"""OSS Vectors walked from its SDK: every method of ``alibabacloud_oss_v2.vectors.Client`` (and each
paginator) is called; each reply body is compared with the SDK's result model (the members its
``_attribute_map`` reads from the body); each documented bound of a request member is sent just
inside, which must work, and just outside, which must be OSS's 400.

The SDK's models name members but not bounds, so the bounds come from OSS's API reference (the
seeds and help.aliyun.com), each with its source below.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import alibabacloud_oss_v2 as oss
import alibabacloud_oss_v2.models as L
import alibabacloud_oss_v2.vectors as ov

from tests.server import RunningServer

M = ov.models
B = "walk"
POLICY = json.dumps(
    {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Principal": ["*"], "Action": ["oss:*"], "Resource": ["acs:oss:*:*:walk"]}],
    }
)
# SDK methods vecledger answers with a documented refusal instead of running them, and why.
REFUSED = {"put_bucket_logging": "OSS access logs are objects in an OSS bucket, which vecledger does not host"}
# Result members a reply may leave out, and why.
OPTIONAL = {"next_token": "only while more pages remain", "next_marker": "likewise", "marker": "echoes the request"}
# (method, request member, low, high, source)
BOUNDS = [
    ("put_vector_index", "index_name", 1, 63, "PutVectorIndex: 1-63 letters and digits (seed 003)"),
    ("put_vector_index", "dimension", 1, 4096, "PutVectorIndex: dimension 1-4096 (seed 003)"),
    ("put_vector_index", "non_filterable_metadata_keys", 0, 10, "PutVectorIndex: at most 10 keys (seed 003)"),
    ("put_vectors", "vectors", 1, 500, "PutVectors: 1-500 vectors per request (seed 001)"),
    ("get_vectors", "keys", 1, 100, "GetVectors: at most 100 keys (help.aliyun.com GetVectors)"),
    ("delete_vectors", "keys", 1, 500, "DeleteVectors: at most 500 keys (help.aliyun.com DeleteVectors)"),
    ("query_vectors", "top_k", 1, 100, "QueryVectors: 1-30 by default, 100 at most (help.aliyun.com QueryVectors)"),
    ("list_vectors", "max_results", 1, 1000, "ListVectors: maxResults 1-1000 (help.aliyun.com ListVectors)"),
    ("list_vectors", "segment_count", 1, 16, "ListVectors: at most 16 segments (help.aliyun.com ListVectors)"),
    ("list_vector_buckets", "max_keys", 1, 1000, "ListVectorBuckets: max-keys 1-1000, as ListBuckets (seed 002)"),
]


class Walker:
    def __init__(self, srv: RunningServer) -> None:
        self.c = srv.oss(attempts=1)
        http = self.c._client._options.http_client
        send = http.send
        self.body: bytes = b""

        def keep(request: Any, **kw: Any) -> Any:
            response = send(request, **kw)
            self.body = response.read()
            return response

        http.send = keep

    def setup(self) -> None:
        self.c.put_vector_bucket(M.PutVectorBucketRequest(bucket=B))
        self.c.put_vector_index(M.PutVectorIndexRequest(bucket=B, **index("idx")))
        vectors = [{"key": f"k{i}", "data": {"float32": [1.0, i / 10]}, "metadata": {"n": str(i)}} for i in range(5)]
        self.c.put_vectors(M.PutVectorsRequest(bucket=B, index_name="idx", vectors=vectors))

    def calls(self) -> dict[str, Callable[[], Any]]:
        c, on = self.c, {"bucket": B, "index_name": "idx"}
        query = {"query_vector": {"float32": [1.0, 0.0]}, "top_k": 3, "return_distance": True, "return_metadata": True}
        return {
            "put_vector_bucket": lambda: c.put_vector_bucket(M.PutVectorBucketRequest(bucket="walk2")),
            "get_vector_bucket": lambda: c.get_vector_bucket(M.GetVectorBucketRequest(bucket=B)),
            "list_vector_buckets": lambda: c.list_vector_buckets(M.ListVectorBucketsRequest(max_keys=10)),
            "put_bucket_policy": lambda: c.put_bucket_policy(M.PutBucketPolicyRequest(bucket=B, body=POLICY)),
            "get_bucket_policy": lambda: c.get_bucket_policy(M.GetBucketPolicyRequest(bucket=B)),
            "delete_bucket_policy": lambda: c.delete_bucket_policy(M.DeleteBucketPolicyRequest(bucket=B)),
            "put_vector_index": lambda: c.put_vector_index(M.PutVectorIndexRequest(bucket=B, **index("idx2"))),
            "get_vector_index": lambda: c.get_vector_index(M.GetVectorIndexRequest(bucket=B, index_name="idx")),
            "list_vector_indexes": lambda: c.list_vector_indexes(M.ListVectorIndexesRequest(bucket=B, max_results=5)),
            "put_vectors": lambda: c.put_vectors(
                M.PutVectorsRequest(**on, vectors=[{"key": "p", "data": {"float32": [0.5, 0.5]}}])
            ),
            "get_vectors": lambda: c.get_vectors(
                M.GetVectorsRequest(**on, keys=["k0"], return_data=True, return_metadata=True)
            ),
            "list_vectors": lambda: c.list_vectors(
                M.ListVectorsRequest(**on, max_results=5, return_data=True, return_metadata=True)
            ),
            "query_vectors": lambda: c.query_vectors(M.QueryVectorsRequest(**on, **query, filter={"n": "1"})),
            "delete_vectors": lambda: c.delete_vectors(M.DeleteVectorsRequest(**on, keys=["p"])),
            "delete_vector_index": lambda: c.delete_vector_index(
                M.DeleteVectorIndexRequest(bucket=B, index_name="idx2")
            ),
            "delete_vector_bucket": lambda: c.delete_vector_bucket(M.DeleteVectorBucketRequest(bucket="walk2")),
            "put_bucket_logging": lambda: c.put_bucket_logging(
                L.PutBucketLoggingRequest(
                    bucket=B,
                    bucket_logging_status=L.BucketLoggingStatus(
                        logging_enabled=L.LoggingEnabled(target_bucket=B, target_prefix="log/")
                    ),
                )
            ),
            "get_bucket_logging": lambda: c.get_bucket_logging(L.GetBucketLoggingRequest(bucket=B)),
            "delete_bucket_logging": lambda: c.delete_bucket_logging(L.DeleteBucketLoggingRequest(bucket=B)),
            "put_vector_index_fusion": lambda: c.put_vector_index_fusion(
                M.PutVectorIndexFusionRequest(
                    bucket=B,
                    index_name="fused",
                    schema_configuration={
                        "fields": [
                            {
                                "name": "v",
                                "type": "vector",
                                "dataType": "float32",
                                "dimension": 2,
                                "distanceMetric": "cosine",
                            }
                        ]
                    },
                )
            ),
            "query_vectors_fusion": lambda: c.query_vectors_fusion(
                M.QueryVectorsFusionRequest(
                    bucket=B, index_name="idx", knn=[{"field": "v", "queryVector": [1.0, 0.0], "topK": 3}]
                )
            ),
        }


def index(name: str, **kw: Any) -> dict[str, Any]:
    return {"index_name": name, "data_type": "float32", "dimension": 2, "distance_metric": "cosine", **kw}


def reply_problems(name: str, result: Any, body: bytes) -> list[str]:
    """How a reply departs from the SDK's result model: body members it does not read, members it
    reads that are missing."""
    attributes = type(result)._attribute_map.items()
    in_body = [(k, v) for k, v in attributes if v.get("tag") == "xml" or v.get("position") == "body"]
    outputs = {k: v.get("rename", k) for k, v in in_body}
    if any(
        v.get("position") == "body" and v.get("type") in ("str", "bytes") for v in type(result)._attribute_map.values()
    ):
        return []  # the whole body is the member (a policy document)
    doc = json.loads(body) if body else {}
    root = getattr(type(result), "_xml_map", {}).get("name")
    doc = doc[root] if root else doc  # ListVectorBuckets' members sit under its root element
    problems = [
        f"{name}: body member {k!r} is not in {type(result).__name__}" for k in doc if k not in outputs.values()
    ]
    problems += [
        f"{name}: {k} missing" for k, v in vars(result).items() if k in outputs and v is None and k not in OPTIONAL
    ]
    return problems


def test_every_method_of_the_sdk_client_works_or_is_refused_as_documented(srv: RunningServer) -> None:
    w = Walker(srv)
    w.setup()
    calls = w.calls()
    methods = {
        n
        for n, f in inspect.getmembers(ov.Client, inspect.isfunction)
        if not n.startswith("_") and n != "invoke_operation" and not n.endswith("_paginator")
    }
    assert methods == set(calls), "a method of the SDK is not walked"
    failures = []
    for name, call in calls.items():
        try:
            result = call()
        except oss.exceptions.OperationError as e:
            err: Any = e.unwrap()
            if name not in REFUSED or (err.status_code, err.code) != (400, "InvalidArgument"):
                failures.append(f"{name}: {err.status_code} {err.code} {err.message}")
            continue
        if name in REFUSED:
            failures.append(f"{name}: listed as refused, but it worked: move it out of REFUSED")
        failures += reply_problems(name, result, w.body)
    assert not failures, "\n".join(failures)
    assert w.c.get_vector_bucket(M.GetVectorBucketRequest(bucket=B)).bucket_info  # logging touched nothing


def test_the_paginators_walk_every_page(srv: RunningServer) -> None:
    w = Walker(srv)
    w.setup()
    for i in range(3):
        w.c.put_vector_index(M.PutVectorIndexRequest(bucket=B, **index(f"more{i}")))
    pages = {
        "list_vector_buckets_paginator": lambda p: [
            b.name for r in p.iter_page(M.ListVectorBucketsRequest(max_keys=1)) for b in r.buckets or []
        ],
        "list_vector_indexes_paginator": lambda p: [
            i["indexName"] for r in p.iter_page(M.ListVectorIndexesRequest(bucket=B, max_results=1)) for i in r.indexes
        ],
        "list_vectors_paginator": lambda p: [
            v["key"]
            for r in p.iter_page(M.ListVectorsRequest(bucket=B, index_name="idx", max_results=2))
            for v in r.vectors
        ],
    }
    assert {n for n, _ in inspect.getmembers(ov.Client, inspect.isfunction) if n.endswith("_paginator")} == set(pages)
    got = {name: walk(getattr(w.c, name)()) for name, walk in pages.items()}
    assert got["list_vector_buckets_paginator"] == [B]
    assert sorted(got["list_vector_indexes_paginator"]) == ["idx", "more0", "more1", "more2"]
    assert sorted(got["list_vectors_paginator"]) == [f"k{i}" for i in range(5)]


def test_each_documented_bound_just_inside_and_just_outside(srv: RunningServer) -> None:
    w = Walker(srv)
    w.setup()
    failures = []
    for n, (method, member, low, high, source) in enumerate(BOUNDS):
        for value, inside in ((low, True), (high, True), (low - 1, False), (high + 1, False)):
            if value < 0:
                continue
            try:
                request(w, method, member, value, f"b{n}x{value}")
                if not inside:
                    failures.append(f"{method}.{member}={value}: accepted past the bound ({source})")
            except oss.exceptions.OperationError as e:
                err: Any = e.unwrap()
                bad_request = err.status_code == 400 and err.code in ("InvalidArgument", "VectorIndexParameterInvalid")
                if inside or not bad_request:
                    failures.append(f"{method}.{member}={value}: {err.status_code} {err.code} {err.message} ({source})")
    assert not failures, "\n".join(failures)


def request(w: Walker, method: str, member: str, n: int, name: str) -> Any:
    """``method`` with ``member`` of size or value ``n``, valid in every other way."""
    c, on = w.c, {"bucket": B, "index_name": "idx"}
    if method == "put_vector_index":
        sized = {
            "index_name": {"index_name": "i" * n},
            "dimension": {"index_name": name, "dimension": n},
            "non_filterable_metadata_keys": {
                "index_name": name,
                "metadata": {"nonFilterableMetadataKeys": [f"m{i}" for i in range(n)]},
            },
        }[member]
        return c.put_vector_index(M.PutVectorIndexRequest(bucket=B, **(index(name) | sized)))
    if method == "put_vectors":
        vectors = [{"key": f"{name}-{i}", "data": {"float32": [1.0, 0.5]}} for i in range(n)]
        return c.put_vectors(M.PutVectorsRequest(**on, vectors=vectors))
    if method in ("get_vectors", "delete_vectors"):
        model = M.GetVectorsRequest if method == "get_vectors" else M.DeleteVectorsRequest
        return getattr(c, method)(model(**on, keys=[f"k{i}" for i in range(n)]))
    if method == "query_vectors":
        return c.query_vectors(M.QueryVectorsRequest(**on, query_vector={"float32": [1.0, 0.0]}, top_k=n))
    if method == "list_vectors":
        extra = {"segment_index": 0} if member == "segment_count" else {}
        return c.list_vectors(M.ListVectorsRequest(**on, **{member: n}, **extra))
    return c.list_vector_buckets(M.ListVectorBucketsRequest(max_keys=n))
