"""Request bodies of the S3 Vectors / TOS Vectors operations, validated strictly from JSON.

Unknown fields and wrong types are refused (``extra="forbid"``, strict types), and pydantic's Rust
JSON parser turns vector data into floats without a Python loop per number. Limits that differ
between dialects (name lengths, batch sizes, topK) are checked in ``api/operations/``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Req(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class VectorData(Req):
    float32: list[float]


class Encryption(Req):
    sseType: str | None = None
    kmsKeyArn: str | None = None


class TextSearchConfiguration(Req):
    metadataKey: str
    language: str | None = None
    status: str | None = None


class MetadataConfiguration(Req):
    nonFilterableMetadataKeys: list[str] | None = None
    textSearchConfigurations: list[TextSearchConfiguration] | None = None


class BucketAddr(Req):
    vectorBucketName: str | None = None
    vectorBucketArn: str | None = None


class IndexAddr(Req):
    vectorBucketName: str | None = None
    indexName: str | None = None
    indexArn: str | None = None


class Paging(Req):
    maxResults: int | None = None
    nextToken: str | None = None


class CreateVectorBucket(Req):
    vectorBucketName: str
    encryptionConfiguration: Encryption | None = None
    tags: dict[str, str] | None = None


class ListVectorBuckets(Paging):
    prefix: str | None = None


class PutVectorBucketPolicy(BucketAddr):
    policy: str


class PutVectorBucketDefaultIndexMode(BucketAddr):
    defaultIndexMode: str


class IndexShape(Req):
    dataType: str
    dimension: int
    distanceMetric: str


class CreateIndex(BucketAddr, IndexShape):
    indexName: str
    metadataConfiguration: MetadataConfiguration | None = None
    encryptionConfiguration: Encryption | None = None
    tags: dict[str, str] | None = None


class ListIndexes(BucketAddr, Paging):
    prefix: str | None = None


class UpdateIndexMode(IndexAddr):
    indexMode: str


class TextSearchKey(Req):
    metadataKey: str


class MetadataConfigurationAdd(Req):
    textSearchConfigurations: list[TextSearchConfiguration] | None = None


class MetadataConfigurationDelete(Req):
    textSearchConfigurations: list[TextSearchKey] | None = None


class UpdateMetadataConfiguration(IndexAddr):
    add: MetadataConfigurationAdd | None = None
    delete: MetadataConfigurationDelete | None = None


class PutInputVector(Req):
    key: str
    data: VectorData
    metadata: Any = None


class PutVectors(IndexAddr):
    vectors: list[PutInputVector]


class GetVectors(IndexAddr):
    keys: list[str]
    returnData: bool = False
    returnMetadata: bool = False


class DeleteVectors(IndexAddr):
    keys: list[str]


class ListVectors(IndexAddr, Paging):
    filter: Any = None  # OSS only
    segmentCount: int | None = None
    segmentIndex: int | None = None
    returnData: bool = False
    returnMetadata: bool = False


class QueryText(Req):
    text: str
    metadataKey: str


class QueryVectors(IndexAddr):
    topK: int
    queryVector: VectorData | None = None
    filter: Any = None
    queryMode: str | None = None
    returnMetadata: bool = False
    returnDistance: bool = False
    queryTexts: list[QueryText] | None = None
    returnScores: bool | None = None
    nextToken: str | None = None


class TagResource(Req):
    tags: dict[str, str]


# --- OSS bodies (PutVectorIndex and friends; the vector operations share the models above) ---


class OssPutVectorIndex(IndexShape):
    indexName: str
    metadata: MetadataConfiguration | None = None


class OssIndexName(Req):
    indexName: str


class OssPutVectorIndexFusion(Req):
    indexName: str
    mode: str | None = None
    schemaConfiguration: dict[str, Any]


class OssQueryVectorsFusion(Req):
    """Its expressions stay JSON: ``api/operations/oss_fusion.py`` reads them into S3's terms."""

    indexName: str
    knn: dict[str, Any] | list[dict[str, Any]] | None = None
    query: dict[str, Any] | None = None
    retriever: dict[str, Any] | None = None
    sort: list[dict[str, Any]] | None = None
    limit: int | None = None
    nextToken: str | None = None
    partitionKeys: list[str] | None = None
    returnMetadata: bool | None = None
    returnMetadataFields: list[str] | None = None


class OssListVectorIndexes(Paging):
    prefix: str | None = None
