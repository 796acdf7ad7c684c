"""Index operations of the S3 Vectors and TOS Vectors APIs (OSS reaches them through ``oss.py``)."""

from __future__ import annotations

from typing import Any, Protocol

from api import limits, models
from api.call import Call, operation
from api.errors import ApiError, Kind, validation
from api.operations.buckets import bucket_of, index_summary, page_by_name, prefix_of
from engine import BucketRef, IndexRef

# --- indexes --------------------------------------------------------------------------------


class IndexAddress(Protocol):
    """What names an index in a request body (a model, or the PutVectors fast path's batch)."""

    @property
    def vectorBucketName(self) -> str | None: ...
    @property
    def indexName(self) -> str | None: ...
    @property
    def indexArn(self) -> str | None: ...


async def index_ref(call: Call, req: IndexAddress, also: tuple[str, ...] = ()) -> IndexRef:
    ref = call.dialect.index_of(call.account, call.host, req.vectorBucketName, req.indexName, req.indexArn)
    await call.authorize(ref.bucket_ref, ref.name, also)
    return ref


def _needs_enhanced(mode: str, field: str) -> None:
    if mode != "ENHANCED":
        raise validation("full-text search needs an index in ENHANCED mode", field)


@operation("CreateIndex", models.CreateIndex)
async def create_index(call: Call, req: models.CreateIndex) -> Any:
    bucket = call.dialect.bucket_of(
        call.account, call.host, req.vectorBucketName, req.vectorBucketArn, "vectorBucketName"
    )
    await create_index_in(
        call, bucket, req.indexName, req, req.metadataConfiguration, req.encryptionConfiguration, req.tags
    )
    return {f"index{call.dialect.id_suffix}": call.index_id(IndexRef(bucket.account, bucket.name, req.indexName))}


async def create_index_in(
    call: Call,
    bucket: BucketRef,
    name: str,
    shape: models.IndexShape,
    config: models.MetadataConfiguration | None,
    enc: models.Encryption | None,
    tags: dict[str, str] | None,
    schema: dict[str, Any] | None = None,
) -> None:
    """CreateIndex for every dialect (OSS calls it PutVectorIndex and names the config "metadata";
    its PutVectorIndexFusion passes the ``schema`` it was built from)."""
    name = call.dialect.index_name(name)
    await call.authorize(bucket, name, ("TagResource",) if tags else ())
    if shape.dataType != "float32":
        raise limits.enum_error("dataType", ["float32"])
    limits.in_range(shape.dimension, 1, call.engine.settings.max_dimension, "dimension")
    if shape.distanceMetric not in ("euclidean", "cosine"):
        raise limits.enum_error("distanceMetric", ["euclidean", "cosine"])
    config = config or models.MetadataConfiguration()
    non_filterable = config.nonFilterableMetadataKeys or []
    limits.count(non_filterable, 0, limits.MAX_NON_FILTERABLE, "metadataConfiguration.nonFilterableMetadataKeys")
    for key in non_filterable:
        if not 1 <= len(key) <= 63:
            raise validation(
                "metadata keys must be 1 to 63 characters", "metadataConfiguration.nonFilterableMetadataKeys"
            )
    text_field = "metadataConfiguration.textSearchConfigurations"
    text_search = limits.text_configs(config.textSearchConfigurations or [], text_field)
    if text_search and call.dialect.name != "s3" and schema is None:
        raise validation("full-text search is an S3 Vectors feature (and OSS's fusion mode)", text_field)
    encryption = limits.encryption(enc.sseType, enc.kmsKeyArn) if enc else None
    held = await call.engine.get_bucket(bucket)  # its default mode and encryption, read once
    if text_search:  # CreateIndex has no mode of its own: the index takes the bucket's default
        _needs_enhanced(held.default_index_mode, text_field)
    cap = call.dialect.max_indexes
    if cap is not None and len(await call.engine.list_indexes(bucket)) >= cap:
        raise ApiError(Kind.QUOTA, f"a vector bucket may hold at most {cap} indexes")
    await call.engine.create_index(
        call.ctx,
        IndexRef(bucket.account, bucket.name, name),
        dimension=shape.dimension,
        metric=shape.distanceMetric,
        non_filterable_keys=non_filterable,
        encryption=encryption if enc else held.encryption,  # without its own, the bucket's (GetIndex shows it)
        text_search=text_search,
        tags=limits.tags(tags),
        schema=schema,
    )


@operation("GetIndex", models.IndexAddr)
async def get_index(call: Call, req: models.IndexAddr) -> Any:
    ref = await index_ref(call, req)
    i = await call.engine.get_index(ref)
    config: dict[str, Any] = {"nonFilterableMetadataKeys": list(i.non_filterable_keys)}
    if i.text_search:
        status = await call.engine.text_search_status(ref)
        config["textSearchConfigurations"] = [
            c | {"status": status.get((c["metadataKey"], c.get("language")), "BUILDING")} for c in i.text_search
        ]
    out = index_summary(call, i) | {
        "dataType": i.data_type,
        "dimension": i.dimension,
        "distanceMetric": i.metric,
        "metadataConfiguration": config,
    }
    if call.dialect.name == "s3":
        out |= {"encryptionConfiguration": i.encryption or {"sseType": "AES256"}, "indexMode": i.mode}
    return {"index": out}


@operation("ListIndexes", models.ListIndexes)
async def list_indexes(call: Call, req: models.ListIndexes) -> Any:
    ref = await bucket_of(
        call, models.BucketAddr(vectorBucketName=req.vectorBucketName, vectorBucketArn=req.vectorBucketArn)
    )
    indexes = await call.engine.list_indexes(ref, prefix_of(req.prefix))
    page, token = page_by_name(indexes, lambda i: i.name, req.maxResults, req.nextToken, call.dialect.catalog_page)
    out: dict[str, Any] = {"indexes": [index_summary(call, i) for i in page]}
    return out | ({"nextToken": token} if token else {})


@operation("DeleteIndex", models.IndexAddr)
async def delete_index(call: Call, req: models.IndexAddr) -> Any:
    await call.engine.delete_index(call.ctx, await index_ref(call, req))
    return None


@operation("UpdateIndexMode", models.UpdateIndexMode)
async def update_index_mode(call: Call, req: models.UpdateIndexMode) -> Any:
    if req.indexMode not in limits.INDEX_MODES:
        raise limits.enum_error("indexMode", limits.INDEX_MODES)
    await call.engine.update_index_mode(call.ctx, await index_ref(call, req), req.indexMode)
    return None


@operation("UpdateMetadataConfiguration", models.UpdateMetadataConfiguration)
async def update_metadata_configuration(call: Call, req: models.UpdateMetadataConfiguration) -> Any:
    ref = await index_ref(call, req)
    index = await call.engine.get_index(ref)
    if (req.add is None) == (req.delete is None):
        raise validation("give exactly one of add and delete", "add")
    current = [dict(c) for c in index.text_search]
    if req.add is not None:
        added = limits.text_configs(req.add.textSearchConfigurations or [], "add.textSearchConfigurations")
        _needs_enhanced(index.mode, "add.textSearchConfigurations")
        if not added:  # the model allows an empty list (min 0): nothing changes, nothing is logged
            return {f"index{call.dialect.id_suffix}": call.index_id(ref)}
        for c in added:
            if any(o["metadataKey"] == c["metadataKey"] for o in current):
                raise ApiError(
                    Kind.CONFLICT, f"metadata key {c['metadataKey']!r} already has a text search configuration"
                )
        if len(current) + len(added) > limits.MAX_TEXT_CONFIGS:
            raise validation(f"an index may have at most {limits.MAX_TEXT_CONFIGS} text search configurations", "add")
        current += added
    else:
        assert req.delete is not None
        gone = [k.metadataKey for k in req.delete.textSearchConfigurations or []]
        limits.count(gone, 1, limits.MAX_TEXT_CONFIGS, "delete.textSearchConfigurations")
        for i, key in enumerate(gone):
            if not any(c["metadataKey"] == key for c in current):
                raise validation(
                    f"metadata key {key!r} has no text search configuration",
                    f"delete.textSearchConfigurations[{i}].metadataKey",
                )
        current = [c for c in current if c["metadataKey"] not in gone]
    await call.engine.update_text_search(call.ctx, ref, current)
    return {f"index{call.dialect.id_suffix}": call.index_id(ref)}
