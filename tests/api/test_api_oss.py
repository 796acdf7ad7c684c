"""Alibaba's alibabacloud_oss_v2.vectors client against a real vecledger server, unmodified."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import alibabacloud_oss_v2 as oss
import alibabacloud_oss_v2.vectors as ov
import pytest
from alibabacloud_oss_v2.types import OperationInput

from tests.backends import Backend
from tests.server import ALICE, BOB, RunningServer, running_server

M = ov.models


def oss_error(fn: Any, *args: Any, **kw: Any) -> Any:
    with pytest.raises(oss.exceptions.OperationError) as e:
        fn(*args, **kw)
    err = e.value.unwrap()
    assert err.request_id and err.ec
    return err


def raw(client: Any, bucket: str | None, op: str, body: bytes, method: str = "POST") -> Any:
    """A request signed by the SDK itself, for what its models cannot express."""
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    return client.invoke_operation(
        OperationInput(
            op_name=op,
            method=method,
            headers={"Content-Type": "application/json", "Content-MD5": md5},
            parameters={op[0].lower() + op[1:]: ""},
            body=body,
            bucket=bucket,
        )
    )


def setup_index(c: Any, bucket: str = "ossbucket", index: str = "ossindex", **kw: Any) -> None:
    c.put_vector_bucket(M.PutVectorBucketRequest(bucket=bucket))
    args = {"data_type": "float32", "dimension": 3, "distance_metric": "euclidean"} | kw
    c.put_vector_index(M.PutVectorIndexRequest(bucket=bucket, index_name=index, **args))


def test_every_oss_operation(srv: RunningServer) -> None:
    c = srv.oss()
    c.put_vector_bucket(M.PutVectorBucketRequest(bucket="ossbucket"))
    info = c.get_vector_bucket(M.GetVectorBucketRequest(bucket="ossbucket")).bucket_info
    assert info.name == "ossbucket" and info.creation_date.year >= 2026
    listed = c.list_vector_buckets(M.ListVectorBucketsRequest())
    assert [b.name for b in listed.buckets] == ["ossbucket"] and not listed.is_truncated

    policy = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": [BOB.account],
                    "Action": ["oss:GetVectorIndex"],
                    "Resource": ["acs:ossvector:*:*:ossbucket/*"],
                }
            ],
        }
    )
    c.put_bucket_policy(M.PutBucketPolicyRequest(bucket="ossbucket", body=policy))
    assert c.get_bucket_policy(M.GetBucketPolicyRequest(bucket="ossbucket")).body == policy

    c.put_vector_index(
        M.PutVectorIndexRequest(
            bucket="ossbucket",
            index_name="docs1",
            data_type="float32",
            dimension=3,
            distance_metric="cosine",
            metadata={"nonFilterableMetadataKeys": ["body"]},
        )
    )
    idx = c.get_vector_index(M.GetVectorIndexRequest(bucket="ossbucket", index_name="docs1")).index
    assert (idx["indexName"], idx["dimension"], idx["distanceMetric"], idx["status"]) == (
        "docs1",
        3,
        "cosine",
        "enable",
    )
    assert idx["metadata"] == {"nonFilterableMetadataKeys": ["body"]} and idx["createTime"].endswith("Z")
    # Bob may read the index through the OSS-syntax policy, and nothing else.
    bob = srv.oss(BOB, account=ALICE.account)
    assert bob.get_vector_index(M.GetVectorIndexRequest(bucket="ossbucket", index_name="docs1")).index
    err = oss_error(
        bob.query_vectors,
        M.QueryVectorsRequest(bucket="ossbucket", index_name="docs1", query_vector={"float32": [1, 0, 0]}, top_k=1),
    )
    assert (err.status_code, err.code) == (403, "AccessDenied")
    c.delete_bucket_policy(M.DeleteBucketPolicyRequest(bucket="ossbucket"))
    assert oss_error(c.get_bucket_policy, M.GetBucketPolicyRequest(bucket="ossbucket")).status_code == 404

    c.put_vectors(
        M.PutVectorsRequest(
            bucket="ossbucket",
            index_name="docs1",
            vectors=[
                {"key": "a", "data": {"float32": [1.0, 0.0, 0.0]}, "metadata": {"type": "comedy", "body": "x"}},
                {"key": "b", "data": {"float32": [0.0, 1.0, 0.0]}, "metadata": {"type": "drama"}},
                {"key": "c", "data": {"float32": [0.0, 0.0, 1.0]}, "metadata": {"type": "documentary"}},
            ],
        )
    )
    res = c.query_vectors(
        M.QueryVectorsRequest(
            bucket="ossbucket",
            index_name="docs1",
            query_vector={"float32": [1.0, 0.1, 0.0]},
            top_k=10,
            filter={"$and": [{"type": {"$nin": ["comedy", "documentary"]}}]},
            return_distance=True,
            return_metadata=True,
        )
    )
    assert [(v["key"], v["metadata"]) for v in res.vectors] == [("b", {"type": "drama"})]
    assert 0 < res.vectors[0]["distance"] < 1
    got = c.get_vectors(
        M.GetVectorsRequest(
            bucket="ossbucket", index_name="docs1", keys=["a", "zz"], return_data=True, return_metadata=True
        )
    ).vectors
    assert got == [{"key": "a", "data": {"float32": [1.0, 0.0, 0.0]}, "metadata": {"type": "comedy", "body": "x"}}]
    pages = list(
        c.list_vectors_paginator().iter_page(
            M.ListVectorsRequest(bucket="ossbucket", index_name="docs1", max_results=2)
        )
    )
    assert [[v["key"] for v in p.vectors] for p in pages] == [["a", "b"], ["c"]]
    segs = [
        c.list_vectors(
            M.ListVectorsRequest(bucket="ossbucket", index_name="docs1", segment_count=2, segment_index=i)
        ).vectors
        for i in range(2)
    ]
    assert sorted(v["key"] for s in segs for v in s) == ["a", "b", "c"]
    c.delete_vectors(M.DeleteVectorsRequest(bucket="ossbucket", index_name="docs1", keys=["a"]))
    assert [v["key"] for v in c.list_vectors(M.ListVectorsRequest(bucket="ossbucket", index_name="docs1")).vectors] == [
        "b",
        "c",
    ]

    for i in range(3):
        c.put_vector_index(
            M.PutVectorIndexRequest(
                bucket="ossbucket",
                index_name=f"extra{i}",
                data_type="float32",
                dimension=2,
                distance_metric="euclidean",
            )
        )
    pages = list(
        c.list_vector_indexes_paginator().iter_page(M.ListVectorIndexesRequest(bucket="ossbucket", max_results=2))
    )
    assert [i["indexName"] for p in pages for i in p.indexes] == ["docs1", "extra0", "extra1", "extra2"]
    for name in ["docs1", "extra0", "extra1", "extra2"]:
        c.delete_vector_index(M.DeleteVectorIndexRequest(bucket="ossbucket", index_name=name))
    c.delete_vector_bucket(M.DeleteVectorBucketRequest(bucket="ossbucket"))
    assert c.list_vector_buckets(M.ListVectorBucketsRequest()).buckets == []


def test_oss_error_codes(srv: RunningServer) -> None:
    c = srv.oss()
    setup_index(c)
    err = oss_error(c.put_vector_bucket, M.PutVectorBucketRequest(bucket="ossbucket"))
    assert (err.status_code, err.code) == (409, "BucketAlreadyExists")
    assert oss_error(c.get_vector_bucket, M.GetVectorBucketRequest(bucket="missing")).code == "NoSuchBucket"
    err = oss_error(c.delete_vector_bucket, M.DeleteVectorBucketRequest(bucket="ossbucket"))
    assert (err.status_code, err.code) == (409, "BucketNotEmpty")
    err = oss_error(c.get_vector_index, M.GetVectorIndexRequest(bucket="ossbucket", index_name="nope"))
    assert (err.status_code, err.code) == (404, "NoSuchVectorIndex")
    err = oss_error(
        c.put_vector_index,
        M.PutVectorIndexRequest(
            bucket="ossbucket", index_name="ossindex", data_type="float32", dimension=3, distance_metric="euclidean"
        ),
    )
    assert (err.status_code, err.code) == (409, "VectorBucketIndexAlreadyExist")
    for bad in [
        {"index_name": "has-hyphen"},
        {"index_name": "9lead"},
        {"index_name": "ok2", "dimension": 5000},
        {"index_name": "ok3", "distance_metric": "dot"},
    ]:
        args = {"bucket": "ossbucket", "data_type": "float32", "dimension": 3, "distance_metric": "euclidean"} | bad
        err = oss_error(c.put_vector_index, M.PutVectorIndexRequest(**args))
        assert (err.status_code, err.code) == (400, "VectorIndexParameterInvalid"), bad
    put = {"bucket": "ossbucket", "index_name": "ossindex"}
    err = oss_error(
        c.put_vectors,
        M.PutVectorsRequest(
            **put,
            vectors=[{"key": "dup", "data": {"float32": [1, 2, 3]}}, {"key": "dup", "data": {"float32": [3, 2, 1]}}],
        ),
    )
    assert err.code == "VectorIndexParameterInvalid" and "twice" in err.message
    assert c.get_vectors(M.GetVectorsRequest(**put, keys=["dup"])).vectors == []  # nothing of that batch landed
    err = oss_error(
        c.put_vectors,
        M.PutVectorsRequest(
            **put, vectors=[{"key": "k", "data": {"float32": [1, 2, 3]}, "metadata": {f"m{i}": "v" for i in range(11)}}]
        ),
    )
    assert err.code == "VectorIndexParameterInvalid"
    err = oss_error(c.query_vectors, M.QueryVectorsRequest(**put, query_vector={"float32": [1, 2, 3]}, top_k=101))
    assert err.code == "VectorIndexParameterInvalid"
    deep: dict[str, Any] = {"type": "x"}
    for _ in range(8):
        deep = {"$and": [deep]}
    err = oss_error(
        c.query_vectors, M.QueryVectorsRequest(**put, query_vector={"float32": [1, 2, 3]}, top_k=5, filter=deep)
    )
    assert err.code == "VectorIndexParameterInvalid"
    err = oss_error(raw, c, "ossbucket", "PutVectors", b'{"indexName": "ossindex", "vectors": [')
    assert (err.status_code, err.code) == (400, "MalformedJson")


def test_index_limit_per_bucket(srv: RunningServer) -> None:
    c = srv.oss()
    c.put_vector_bucket(M.PutVectorBucketRequest(bucket="many"))
    for i in range(100):
        c.put_vector_index(
            M.PutVectorIndexRequest(
                bucket="many", index_name=f"i{i}", data_type="float32", dimension=2, distance_metric="euclidean"
            )
        )
    err = oss_error(
        c.put_vector_index,
        M.PutVectorIndexRequest(
            bucket="many", index_name="one0more", data_type="float32", dimension=2, distance_metric="euclidean"
        ),
    )
    assert (err.status_code, err.code) == (400, "VectorBucketIndexExceedLimit")


def test_filtered_list_vectors_by_raw_signed_request(srv: RunningServer) -> None:
    c = srv.oss()
    setup_index(c)
    c.put_vectors(
        M.PutVectorsRequest(
            bucket="ossbucket",
            index_name="ossindex",
            vectors=[
                {
                    "key": f"k{i}",
                    "data": {"float32": [float(i), 1.0, 0.0]},
                    "metadata": {"type": "even" if i % 2 == 0 else "odd"},
                }
                for i in range(10)
            ],
        )
    )
    body = json.dumps({"indexName": "ossindex", "filter": {"type": "odd"}, "maxResults": 3, "returnMetadata": True})
    out = json.loads(raw(c, "ossbucket", "ListVectors", body.encode()).http_response.content)
    assert [v["key"] for v in out["vectors"]] == ["k1", "k3", "k5"] and out["nextToken"]
    body = json.dumps({"indexName": "ossindex", "filter": {"type": "odd"}, "nextToken": out["nextToken"]})
    rest = json.loads(raw(c, "ossbucket", "ListVectors", body.encode()).http_response.content)
    assert [v["key"] for v in rest["vectors"]] == ["k7", "k9"] and "nextToken" not in rest


def test_bad_oss_signatures(srv: RunningServer) -> None:
    from api.config import Credential

    setup_index(srv.oss())
    wrong = srv.oss(Credential(ALICE.access_key_id, "wrong", ALICE.account))
    err = oss_error(wrong.get_vector_bucket, M.GetVectorBucketRequest(bucket="ossbucket"))
    assert (err.status_code, err.code) == (403, "SignatureDoesNotMatch")
    unknown = srv.oss(Credential("AKIANOPE", "x", ALICE.account))
    assert oss_error(unknown.list_vector_buckets, M.ListVectorBucketsRequest()).code == "InvalidAccessKeyId"
    # Content-MD5 is signed and must match the body: tamper the body after signing.
    c = srv.oss()
    body = b'{"indexName": "ossindex", "keys": ["a"]}'
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    err = oss_error(
        c.invoke_operation,
        OperationInput(
            op_name="DeleteVectors",
            method="POST",
            bucket="ossbucket",
            parameters={"deleteVectors": ""},
            headers={"Content-Type": "application/json", "Content-MD5": md5},
            body=body.replace(b'"a"', b'"b"'),
        ),
    )
    assert err.code == "InvalidDigest"


def test_a_batch_that_fails_part_way_answers_503_and_keeps_what_landed(backend: Backend) -> None:
    """OSS documents it: on a 5xx only some of a batch may be written. Here the store takes the
    first two chunk events of the index's log and fails every append after that."""
    from dataclasses import replace

    from engine.store import FaultyStore
    from engine.store.faulty import ERROR, Fault

    appended: list[str] = []

    def rule(verb: str, key: str) -> Fault | None:
        if verb != "put_if_absent" or "/log/" not in key or not key.startswith("data/"):
            return None
        if len([k for k in appended if k == key]) == 0 and len(set(appended)) >= 2:
            return Fault(ERROR)
        appended.append(key)
        return None

    small = replace(backend, settings=replace(backend.settings, max_event_bytes=600, run_materializers=False))
    with running_server(small, wrap_store=lambda s: FaultyStore(s, rule)) as srv:
        c = srv.oss()
        setup_index(c)
        vectors = [{"key": f"v{i:03d}", "data": {"float32": [float(i), 1.0, 2.0]}} for i in range(100)]
        err = oss_error(c.put_vectors, M.PutVectorsRequest(bucket="ossbucket", index_name="ossindex", vectors=vectors))
        assert err.status_code == 503 and err.code == "ServiceUnavailable"
        listed = c.list_vectors(M.ListVectorsRequest(bucket="ossbucket", index_name="ossindex")).vectors
        landed = [v["key"] for v in listed]
        assert 0 < len(landed) < 100 and landed == [f"v{i:03d}" for i in range(len(landed))]


def test_logging_sub_resources_never_run_another_operation(srv: RunningServer) -> None:
    """``put/get/delete_bucket_logging``: before, PUT ran PutVectorBucket and DELETE deleted the
    (empty) bucket. Now logging is always off (vecledger writes no OSS access-log objects): GET says
    so in the SDK's shape, DELETE leaves it off, PUT is refused in OSS's shape; the bucket stays."""
    import alibabacloud_oss_v2.models as L
    import alibabacloud_oss_v2.vectors.models as M
    from alibabacloud_oss_v2.exceptions import OperationError

    client = srv.oss()
    client.put_vector_bucket(M.PutVectorBucketRequest(bucket="logged"))
    status = client.get_bucket_logging(L.GetBucketLoggingRequest(bucket="logged")).bucket_logging_status
    assert status is not None and status.logging_enabled is None
    client.delete_bucket_logging(L.DeleteBucketLoggingRequest(bucket="logged"))
    with pytest.raises(OperationError) as e:
        client.put_bucket_logging(
            L.PutBucketLoggingRequest(
                bucket="logged",
                bucket_logging_status=L.BucketLoggingStatus(
                    logging_enabled=L.LoggingEnabled(target_bucket="logged", target_prefix="log/")
                ),
            )
        )
    err: Any = e.value.unwrap()
    assert (err.status_code, err.code) == (400, "InvalidArgument") and "access-log" in err.message
    with pytest.raises(OperationError) as e:
        client.get_bucket_logging(L.GetBucketLoggingRequest(bucket="nobucket"))
    assert e.value.unwrap().code == "NoSuchBucket"
    for method in ("PUT", "DELETE"):  # any other sub-resource is an error, never a fallback
        with pytest.raises(OperationError) as e:
            raw(client, "logged", "Lifecycle", b"", method)
        assert (e.value.unwrap().status_code, e.value.unwrap().code) == (400, "InvalidArgument")
    assert client.get_vector_bucket(M.GetVectorBucketRequest(bucket="logged")).bucket_info is not None


def test_at_most_ten_metadata_keys_filterable_and_not_combined(srv: RunningServer) -> None:
    """Seed 002: "A single vector supports up to 10 filterable and non-filterable metadata fields combined"."""
    c = srv.oss()
    nf = [f"n{i}" for i in range(5)]
    setup_index(c, metadata={"nonFilterableMetadataKeys": nf})
    put = {"bucket": "ossbucket", "index_name": "ossindex"}
    ten = {**{k: "x" for k in nf}, **{f"f{i}": "y" for i in range(5)}}
    c.put_vectors(M.PutVectorsRequest(**put, vectors=[{"key": "ok", "data": {"float32": [1, 2, 3]}, "metadata": ten}]))
    eleven = {**ten, "f5": "z"}
    err = oss_error(
        c.put_vectors,
        M.PutVectorsRequest(**put, vectors=[{"key": "no", "data": {"float32": [1, 2, 3]}, "metadata": eleven}]),
    )
    assert err.code == "VectorIndexParameterInvalid" and "combined" in err.message
