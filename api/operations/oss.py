"""The Alibaba OSS Vectors dialect: operations chosen by sub-resource on ``/``.

Bucket and account come from the Host (``<bucket>-<account>.<base host>``). Index operations have
OSS's own names and shapes (``PutVectorIndex`` with ``metadata``, ISO dates, an index ``status``);
the vector operations share their JSON with S3 Vectors and reuse its handlers under OSS limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from api import limits, models
from api.auth import policy
from api.bodies import parse_body
from api.call import OPERATIONS, Call
from api.errors import ApiError, Kind, from_engine, validation
from api.operations.buckets import page_by_name
from api.operations.indexes import create_index_in, index_ref
from api.operations.oss_fusion import put_vector_index_fusion, query_vectors_fusion
from engine import BucketRef
from engine.catalog.state import Bucket, Index
from engine.errors import VecledgerError

VECTOR_OPS = {
    "putVectors": "PutVectors",
    "getVectors": "GetVectors",
    "listVectors": "ListVectors",
    "deleteVectors": "DeleteVectors",
    "queryVectors": "QueryVectors",
}


def _host_bucket(call: Call) -> BucketRef:
    return call.dialect.bucket_of(call.account, call.host, None, None, "Host")


async def _authorized_bucket(call: Call) -> BucketRef:
    ref = _host_bucket(call)
    await call.authorize(ref)
    return ref


def bucket_info(call: Call, b: Bucket) -> dict[str, Any]:
    region = call.config.region
    host = f"{b.name}-{b.account}.{call.config.public_host}"
    return {
        "Name": b.name,
        "Location": f"oss-{region}",
        "Region": region,
        "CreationDate": call.dialect.creation_time(b.creation_time),
        "ExtranetEndpoint": host,
        "IntranetEndpoint": host,
        "ResourceGroupId": "",
    }


def index_info(call: Call, i: Index) -> dict[str, Any]:
    return {
        "vectorBucketName": i.bucket_name,
        "indexName": i.name,
        "createTime": call.dialect.creation_time(i.creation_time),
        "dataType": i.data_type,
        "dimension": i.dimension,
        "distanceMetric": i.metric,
        "metadata": {"nonFilterableMetadataKeys": list(i.non_filterable_keys)},
        "status": "enable",
    } | (i.schema or {})  # a fusion index: its mode and schemaConfiguration


# --- buckets --------------------------------------------------------------------------------


async def put_vector_bucket(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    ref = _host_bucket(call)
    limits.bucket_name(ref.name, call.dialect.bucket_name_max, "bucket")
    if ref.account != call.account:
        await call.deny(ref, None, "a bucket can only be created in the caller's own account")
    tags = dict(parse_qsl(headers.get("x-oss-bucket-tagging", ""), keep_blank_values=True))
    await call.engine.create_bucket(call.ctx, ref, tags=limits.tags(tags))
    return None


async def get_vector_bucket(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    ref = await _authorized_bucket(call)
    return {"BucketInfo": bucket_info(call, await call.engine.get_bucket(ref))}


async def delete_vector_bucket(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    ref = await _authorized_bucket(call)
    await call.engine.delete_bucket(call.ctx, ref)
    return None


async def list_vector_buckets(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    prefix, marker = query.get("prefix", ""), query.get("marker", "")
    try:
        max_keys = int(query.get("max-keys") or 100)
    except ValueError:
        raise validation("max-keys must be a number", "max-keys") from None
    limits.in_range(max_keys, 1, 1000, "max-keys")
    buckets = [b for b in await call.engine.list_buckets(call.account, prefix) if b.name > marker]
    page = buckets[:max_keys]
    truncated = len(buckets) > max_keys
    result: dict[str, Any] = {
        "Prefix": prefix,
        "Marker": marker,
        "MaxKeys": max_keys,
        "IsTruncated": truncated,
        "Buckets": [bucket_info(call, b) for b in page],
    }
    if truncated:
        result["NextMarker"] = page[-1].name
    return {"ListAllMyBucketsResult": result}


async def put_policy(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    ref = await _authorized_bucket(call)
    text = body.decode("utf-8", errors="replace")
    policy.parse(text)
    await call.engine.put_bucket_policy(call.ctx, ref, text)
    return None


async def get_policy(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    ref = await _authorized_bucket(call)
    return (await call.engine.get_bucket_policy(ref)).encode()


async def delete_policy(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    ref = await _authorized_bucket(call)
    await call.engine.delete_bucket_policy(call.ctx, ref)
    return None


# --- logging ------------------------------------------------------------------------------
# OSS access logs are objects written into an OSS (object) bucket; vecledger hosts vector buckets
# only, and keeps its access records in the audit log (docs/audit.md). So logging is always off:
# GET says so in the SDK's JSON shape, DELETE leaves it off, PUT cannot turn it on.


async def get_logging(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    await call.engine.get_bucket(await _authorized_bucket(call))
    return {"BucketLoggingStatus": {}}


async def delete_logging(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    await call.engine.get_bucket(await _authorized_bucket(call))
    return None


async def put_logging(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    await _authorized_bucket(call)
    raise validation(
        "vecledger writes no OSS access-log objects (it hosts vector buckets only); its access records "
        "are the audit log: POST /_vecledger/audit",
        "BucketLoggingStatus",
    )


# --- indexes --------------------------------------------------------------------------------


async def put_vector_index(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    req = parse_body(models.OssPutVectorIndex, body)
    await create_index_in(call, _host_bucket(call), req.indexName, req, req.metadata, None, None)
    return None


async def get_vector_index(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    req = parse_body(models.OssIndexName, body)
    ref = await index_ref(call, models.IndexAddr(indexName=req.indexName))
    return {"index": index_info(call, await call.engine.get_index(ref))}


async def delete_vector_index(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    req = parse_body(models.OssIndexName, body)
    ref = await index_ref(call, models.IndexAddr(indexName=req.indexName))
    await call.engine.delete_index(call.ctx, ref)
    return None


async def list_vector_indexes(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    req = parse_body(models.OssListVectorIndexes, body)
    ref = await _authorized_bucket(call)
    indexes = await call.engine.list_indexes(ref, req.prefix or "")
    page, token = page_by_name(indexes, lambda i: i.name, req.maxResults, req.nextToken, call.dialect.catalog_page)
    out: dict[str, Any] = {"indexes": [index_info(call, i) for i in page]}
    return out | ({"nextToken": token} if token else {})


Handler = Callable[[Call, bytes, dict[str, str], dict[str, str]], Awaitable[Any]]

# (method, sub-resource) -> (operation name for policies and audit, handler)
ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("PUT", ""): ("CreateVectorBucket", put_vector_bucket),
    ("GET", "bucketInfo"): ("GetVectorBucket", get_vector_bucket),
    ("DELETE", ""): ("DeleteVectorBucket", delete_vector_bucket),
    ("PUT", "policy"): ("PutVectorBucketPolicy", put_policy),
    ("GET", "policy"): ("GetVectorBucketPolicy", get_policy),
    ("DELETE", "policy"): ("DeleteVectorBucketPolicy", delete_policy),
    ("POST", "putVectorIndex"): ("CreateIndex", put_vector_index),
    ("POST", "getVectorIndex"): ("GetIndex", get_vector_index),
    ("POST", "deleteVectorIndex"): ("DeleteIndex", delete_vector_index),
    ("POST", "listVectorIndexes"): ("ListIndexes", list_vector_indexes),
    ("GET", "logging"): ("GetBucketLogging", get_logging),
    ("DELETE", "logging"): ("DeleteBucketLogging", delete_logging),
    ("PUT", "logging"): ("PutBucketLogging", put_logging),
    ("POST", "putVectorIndexFusion"): ("CreateIndex", put_vector_index_fusion),
    ("POST", "queryVectorsFusion"): ("QueryVectors", query_vectors_fusion),
}
_SUBRESOURCES = {sub for _, sub in ROUTES} | set(VECTOR_OPS)
_PARAMETERS = {"prefix", "marker", "max-keys"}  # of ListVectorBuckets, the one GET with parameters


async def route(call: Call, method: str, query_string: str, headers: dict[str, str], body: bytes) -> Any:
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    unknown = sorted(k for k in query if k not in _SUBRESOURCES and k not in _PARAMETERS)
    if unknown:
        # Never fall back to the bare-bucket operation: ``PUT /?logging`` once created a bucket
        # and ``DELETE /?logging`` deleted one.
        raise ApiError(Kind.UNKNOWN_OPERATION, f"vecledger does not support the sub-resource ?{unknown[0]}")
    subs = [k for k in query if k in _SUBRESOURCES]
    sub = subs[0] if subs else ""
    if call.host is None:
        if method == "GET" and not sub:
            call.operation = "ListVectorBuckets"
            return await list_vector_buckets(call, body, query, headers)
        raise validation("this request needs a bucket host name: <bucket>-<account>.<endpoint>", "Host")
    try:
        if sub in VECTOR_OPS and method == "POST":
            call.operation = VECTOR_OPS[sub]
            op = OPERATIONS[call.operation]
            return await op.handler(call, op.parse(body))
        found = ROUTES.get((method, sub))
        if found is None:
            raise ApiError(Kind.UNKNOWN_OPERATION, f"unknown operation {method} /?{sub}")
        call.operation, handler = found
        return await handler(call, body, query, headers)
    except (ApiError, VecledgerError) as err:
        # OSS reports bad index and vector parameters as VectorIndexParameterInvalid, whether the
        # API layer or the engine (NaN, a zero cosine vector, a bad filter) found them.
        e = err if isinstance(err, ApiError) else from_engine(err, "oss", call.operation)
        if e.kind is Kind.VALIDATION and e.reason is None and (sub in VECTOR_OPS or "Index" in sub):
            e.reason = "index"
        if e is err:
            raise
        raise e from err
