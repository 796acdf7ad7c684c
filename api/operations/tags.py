"""Tag operations (S3 only: ``/tags/<arn>``) on buckets and indexes."""

from __future__ import annotations

from typing import Any

from api import limits
from api.call import Call
from api.errors import ApiError, Kind, validation
from engine import BucketRef


async def tag_target(call: Call, arn: str) -> tuple[BucketRef, str | None]:
    account, bucket, index = call.dialect.parse_id(arn, "resourceArn")
    ref = BucketRef(account, bucket)
    await call.authorize(ref, index)
    return ref, index


async def tag_resource(call: Call, arn: str, tags: dict[str, str]) -> Any:
    ref, index = await tag_target(call, arn)
    current = await call.engine.tags(ref, index)
    if len(current | limits.tags(tags)) > limits.MAX_TAGS:
        raise ApiError(Kind.CONFLICT, f"a resource may have at most {limits.MAX_TAGS} tags")
    await call.engine.tag(call.ctx, ref, index, set=tags)
    return None


async def untag_resource(call: Call, arn: str, keys: list[str]) -> Any:
    if not keys:
        raise validation("tagKeys is required", "tagKeys")
    for i, k in enumerate(keys):
        limits.tag_key(k, f"tagKeys[{i}]")
    ref, index = await tag_target(call, arn)
    await call.engine.tag(call.ctx, ref, index, remove=keys)
    return None


async def list_tags(call: Call, arn: str) -> Any:
    ref, index = await tag_target(call, arn)
    return {"tags": await call.engine.tags(ref, index)}
