"""Bucket operations of the S3 Vectors and TOS Vectors APIs: buckets, their policies, their default
index mode; and the summaries and name-ordered pages the catalog listings share."""

from __future__ import annotations

from typing import Any

from api import limits, models
from api.auth import policy
from api.call import Call, operation
from api.errors import ApiError, Kind, validation
from engine import BucketRef, IndexRef
from engine.catalog import Bucket, Index


def bucket_summary(call: Call, b: Bucket) -> dict[str, Any]:
    d = call.dialect
    out = {
        "vectorBucketName": b.name,
        f"vectorBucket{d.id_suffix}": call.bucket_id(BucketRef(b.account, b.name)),
        "creationTime": d.creation_time(b.creation_time),
    }
    return out | ({"projectName": "default"} if d.name == "tos" else {})


def index_summary(call: Call, i: Index) -> dict[str, Any]:
    d = call.dialect
    return {
        "vectorBucketName": i.bucket_name,
        "indexName": i.name,
        f"index{d.id_suffix}": call.index_id(IndexRef(i.account, i.bucket_name, i.name)),
        "creationTime": d.creation_time(i.creation_time),
    }


def page_by_name(
    items: list[Any], name: Any, max_results: int | None, token: str | None, default: int = limits.MAX_CATALOG_PAGE
) -> tuple[list[Any], str | None]:
    limit = limits.in_range(max_results, 1, limits.MAX_CATALOG_PAGE, "maxResults", default=default)
    if token is not None:
        if not 1 <= len(token) <= 512:  # the model's bounds
            raise validation("nextToken must be 1 to 512 characters", "nextToken")
        after = limits.decode_token(token).get("after")
        if not isinstance(after, str):
            raise validation("nextToken is not a token this service issued", "nextToken")
        items = [i for i in items if name(i) > after]
    page = items[:limit]
    more = len(items) > limit
    return page, limits.encode_token({"after": name(page[-1])}) if more else None


def prefix_of(prefix: str | None) -> str:
    if prefix is not None and not 1 <= len(prefix) <= 63:
        raise validation("prefix must be 1 to 63 characters", "prefix")
    return prefix or ""


# --- buckets --------------------------------------------------------------------------------


@operation("CreateVectorBucket", models.CreateVectorBucket)
async def create_vector_bucket(call: Call, req: models.CreateVectorBucket) -> Any:
    name = limits.bucket_name(req.vectorBucketName, call.dialect.bucket_name_max)
    if call.host is not None and call.host[0] != name:
        raise validation("vectorBucketName does not match the bucket in the Host name", "vectorBucketName")
    enc = req.encryptionConfiguration
    ref = BucketRef(call.account, name)
    cap = call.dialect.max_buckets
    if cap is not None and len(await call.engine.list_buckets(call.account)) >= cap:
        raise ApiError(Kind.QUOTA, f"an account may have at most {cap} vector buckets")
    await call.engine.create_bucket(
        call.ctx,
        ref,
        encryption=limits.encryption(enc.sseType, enc.kmsKeyArn) if enc else None,
        tags=limits.tags(req.tags),
    )
    return {f"vectorBucket{call.dialect.id_suffix}": call.bucket_id(ref)}


async def bucket_of(call: Call, req: models.BucketAddr) -> BucketRef:
    ref = call.dialect.bucket_of(call.account, call.host, req.vectorBucketName, req.vectorBucketArn, "vectorBucketName")
    await call.authorize(ref)
    return ref


@operation("GetVectorBucket", models.BucketAddr)
async def get_vector_bucket(call: Call, req: models.BucketAddr) -> Any:
    b = await call.engine.get_bucket(await bucket_of(call, req))
    out = bucket_summary(call, b)
    out["encryptionConfiguration"] = b.encryption or {"sseType": "AES256"}
    if call.dialect.name == "s3":
        out["defaultIndexMode"] = b.default_index_mode
    return {"vectorBucket": out}


@operation("ListVectorBuckets", models.ListVectorBuckets)
async def list_vector_buckets(call: Call, req: models.ListVectorBuckets) -> Any:
    buckets = await call.engine.list_buckets(call.account, prefix_of(req.prefix))
    page, token = page_by_name(buckets, lambda b: b.name, req.maxResults, req.nextToken, call.dialect.catalog_page)
    out: dict[str, Any] = {"vectorBuckets": [bucket_summary(call, b) for b in page]}
    return out | ({"nextToken": token} if token else {})


@operation("DeleteVectorBucket", models.BucketAddr)
async def delete_vector_bucket(call: Call, req: models.BucketAddr) -> Any:
    await call.engine.delete_bucket(call.ctx, await bucket_of(call, req))
    return None


@operation("PutVectorBucketPolicy", models.PutVectorBucketPolicy)
async def put_vector_bucket_policy(call: Call, req: models.PutVectorBucketPolicy) -> Any:
    ref = await bucket_of(call, req)
    policy.parse(req.policy)
    await call.engine.put_bucket_policy(call.ctx, ref, req.policy)
    return None


@operation("GetVectorBucketPolicy", models.BucketAddr)
async def get_vector_bucket_policy(call: Call, req: models.BucketAddr) -> Any:
    text = await call.engine.get_bucket_policy(await bucket_of(call, req))
    # The TOS SDK takes the whole response body as the policy.
    return text.encode() if call.dialect.name == "tos" else {"policy": text}


@operation("DeleteVectorBucketPolicy", models.BucketAddr)
async def delete_vector_bucket_policy(call: Call, req: models.BucketAddr) -> Any:
    await call.engine.delete_bucket_policy(call.ctx, await bucket_of(call, req))
    return None


@operation("PutVectorBucketDefaultIndexMode", models.PutVectorBucketDefaultIndexMode)
async def put_default_index_mode(call: Call, req: models.PutVectorBucketDefaultIndexMode) -> Any:
    if req.defaultIndexMode not in limits.INDEX_MODES:
        raise limits.enum_error("defaultIndexMode", limits.INDEX_MODES)
    await call.engine.put_default_index_mode(call.ctx, await bucket_of(call, req), req.defaultIndexMode)
    return None
