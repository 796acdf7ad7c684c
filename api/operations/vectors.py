"""Vector operations: PutVectors, GetVectors, ListVectors, DeleteVectors, QueryVectors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from api import limits, models
from api.bodies import PutBatch, parse_put_vectors
from api.call import Call, operation
from api.errors import validation
from api.operations.indexes import index_ref
from engine.catalog.state import Index
from engine.log.payload import parse_metadata
from engine.query.fusion import Scored
from engine.serving.records import VectorRecord


def _out(rec: VectorRecord, data: bool, metadata: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"key": rec.key}
    if data and rec.vector is not None:
        out["data"] = {"float32": rec.vector.tolist()}
    if metadata:
        out["metadata"] = rec.metadata if rec.metadata is not None else {}
    return out


def _keys(keys: list[str], high: int) -> list[str]:
    limits.count(keys, 1, high, "keys")
    for i, k in enumerate(keys):
        if not 1 <= len(k) <= limits.MAX_KEY_LENGTH:
            raise validation(f"keys must be 1 to {limits.MAX_KEY_LENGTH} characters", f"keys[{i}]")
    return keys


@operation("PutVectors", models.PutVectors, parse_put_vectors)
async def put_vectors(call: Call, req: PutBatch) -> Any:
    ref = await index_ref(call, req)
    index = await call.engine.get_index(ref)
    call.dialect.check_batch_size(req.keys)
    for i, key in enumerate(req.keys):
        if not 1 <= len(key) <= limits.MAX_KEY_LENGTH:
            raise validation(f"key must be 1 to {limits.MAX_KEY_LENGTH} characters", f"vectors[{i}].key")
    for i, n in enumerate(req.lengths):
        if n != index.dimension:
            record = f"Invalid record for key '{req.keys[i]}'"
            raise validation(
                f"{record}: vector must have length {index.dimension}, but has length {n}", f"vectors[{i}].data"
            )
    for i, meta in enumerate(req.metadata):
        limits.metadata(meta, index.non_filterable_keys, f"vectors[{i}].metadata", req.keys[i])
    call.dialect.check_batch(req.keys, req.metadata, index.non_filterable_keys)
    await call.engine.put_vectors(call.ctx, ref, req.keys, req.data, req.metadata)
    return None


@operation("GetVectors", models.GetVectors)
async def get_vectors(call: Call, req: models.GetVectors) -> Any:
    ref = await index_ref(call, req)
    found = await call.engine.get_vectors(
        ref, _keys(req.keys, limits.MAX_GET), return_data=req.returnData, return_metadata=req.returnMetadata
    )
    return {"vectors": [_out(r, req.returnData, req.returnMetadata) for r in found]}


@operation("DeleteVectors", models.DeleteVectors)
async def delete_vectors(call: Call, req: models.DeleteVectors) -> Any:
    ref = await index_ref(call, req)
    await call.engine.delete_vectors(call.ctx, ref, _keys(req.keys, call.dialect.delete_keys_max))
    return None


@operation("ListVectors", models.ListVectors)
async def list_vectors(call: Call, req: models.ListVectors) -> Any:
    # A filter reads metadata values as surely as returning them does.
    also = ("GetVectors",) if req.returnData or req.returnMetadata or req.filter is not None else ()
    ref = await index_ref(call, req, also)
    if (req.segmentCount is None) != (req.segmentIndex is None):
        raise validation("segmentCount and segmentIndex must be given together", "segmentCount")
    count = limits.in_range(req.segmentCount, 1, limits.MAX_SEGMENTS, "segmentCount", default=1)
    index = limits.in_range(req.segmentIndex, 0, limits.MAX_SEGMENTS - 1, "segmentIndex", default=0)
    if index >= count:
        raise validation("segmentIndex must be less than segmentCount", "segmentIndex")
    if req.nextToken is not None and not 1 <= len(req.nextToken) <= 2048:
        raise validation("nextToken must be 1 to 2048 characters", "nextToken")
    if req.filter is not None:
        if not call.dialect.list_filter:
            raise validation("ListVectors takes no filter in this API", "filter")
        limits.filter_depth(req.filter, call.dialect.max_filter_depth)
    page = await call.engine.list_vectors(
        ref,
        limit=limits.in_range(req.maxResults, 1, limits.MAX_LIST_PAGE, "maxResults", default=500),
        token=req.nextToken,
        segment_count=count,
        segment_index=index,
        return_data=req.returnData,
        return_metadata=req.returnMetadata,
        filter=req.filter,
    )
    out: dict[str, Any] = {"vectors": [_out(r, req.returnData, req.returnMetadata) for r in page.vectors]}
    return out | ({"nextToken": page.next_token} if page.next_token else {})


def _fingerprint(req: models.QueryVectors) -> str:
    """Ties a page token to the query it came from: same vector, texts, topK and filter."""
    vector = req.queryVector.float32 if req.queryVector else []
    texts = [[t.metadataKey, t.text] for t in req.queryTexts or []]
    parts = [req.indexArn, req.vectorBucketName, req.indexName, req.topK, vector, texts, req.filter]
    try:
        doc = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer past 64 bits in the filter: json takes any
        doc = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(doc).hexdigest()[:24]


def _query_texts(req: models.QueryVectors, index: Index) -> list[tuple[str, str]]:
    """``queryTexts`` checked as the model says: 1-10 entries, text 1-1024 characters, distinct
    keys, each with a text search configuration on an ENHANCED index."""
    texts = req.queryTexts
    if texts is None:
        return []
    limits.count(texts, 1, limits.MAX_QUERY_TEXTS, "queryTexts")
    if index.mode != "ENHANCED" or req.queryMode == "CLASSIC":
        raise validation("full-text search needs ENHANCED mode", "queryTexts")
    configured = {c["metadataKey"] for c in index.text_search}
    seen: set[str] = set()
    for i, t in enumerate(texts):
        if not 1 <= len(t.text) <= limits.MAX_QUERY_TEXT:
            raise validation(f"text must be 1 to {limits.MAX_QUERY_TEXT} characters", f"queryTexts[{i}].text")
        if t.metadataKey in seen:
            raise validation("each queryTexts entry must name a different metadataKey", f"queryTexts[{i}].metadataKey")
        if t.metadataKey not in configured:
            raise validation(
                f"metadata key {t.metadataKey!r} has no text search configuration", f"queryTexts[{i}].metadataKey"
            )
        seen.add(t.metadataKey)
    return [(t.metadataKey, t.text) for t in texts]


def _scores(h: Scored) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if h.fused is not None:
        out["fused"] = h.fused
    if h.distance is not None:
        out["vectorDistance"] = h.distance
    if h.bm25:
        out["bm25Scores"] = [{"metadataKey": k, "score": v} for k, v in h.bm25.items()]
    return out


@operation("QueryVectors", models.QueryVectors)
async def query_vectors(call: Call, req: models.QueryVectors) -> Any:
    also = ("GetVectors",) if req.filter is not None or req.returnMetadata or req.queryTexts else ()
    ref = await index_ref(call, req, also)
    index = await call.engine.get_index(ref)
    top_k = limits.in_range(req.topK, 1, call.dialect.top_k_max, "topK")
    if (req.queryTexts or req.returnScores) and call.dialect.name != "s3":
        raise validation("full-text search (queryTexts, returnScores) is an S3 Vectors feature", "queryTexts")
    texts = _query_texts(req, index)
    if req.queryVector is None and not texts:
        raise validation("give queryVector, queryTexts or both", "queryVector")
    if req.filter is not None:
        limits.filter_depth(req.filter, call.dialect.max_filter_depth)
    if req.queryVector is not None and len(req.queryVector.float32) != index.dimension:
        raise validation(
            f"queryVector has dimension {len(req.queryVector.float32)}; the index expects {index.dimension}",
            "queryVector",
        )
    if req.queryMode is not None:
        if req.queryMode not in limits.INDEX_MODES:
            raise limits.enum_error("queryMode", limits.INDEX_MODES)
        if req.queryMode == "CLASSIC" and index.mode == "ENHANCED":
            raise validation("queryMode CLASSIC cannot be used on an ENHANCED index", "queryMode")
    offset = 0
    if req.nextToken is not None:
        if not 1 <= len(req.nextToken) <= 4096:  # the model's bounds
            raise validation("nextToken must be 1 to 4096 characters", "nextToken")
        token = limits.decode_token(req.nextToken)
        if token.get("q") != _fingerprint(req) or not isinstance(token.get("o"), int):
            raise validation("nextToken belongs to a different query", "nextToken")
        offset = token["o"]
    vector = req.queryVector.float32 if req.queryVector is not None else None
    # Without distances to show, vector hits rank by Lance's float32 distances; a query that spans
    # pages ranks by the exact ones always, so that pages asked with and without agree.
    exact = bool(req.returnDistance) or top_k > call.dialect.query_page
    hits = await call.engine.search(
        ref, vector, texts, top_k, req.filter, metadata=bool(req.returnMetadata), distances=exact
    )
    page = hits[offset : offset + call.dialect.query_page]
    vectors = []
    for h in page:
        v: dict[str, Any] = {"key": h.key}
        if req.returnDistance and h.distance is not None:
            v["distance"] = h.distance
        if req.returnScores and req.queryTexts:  # a vector-only query has distances, not scores
            v["scores"] = _scores(h)
        if req.returnMetadata:
            v["metadata"] = parse_metadata(h.metadata) or {}
        vectors.append(v)
    out: dict[str, Any] = {"vectors": vectors}
    if call.dialect.name == "s3":  # S3's QueryVectorsOutput names the metric; OSS's and TOS's replies do not
        out["distanceMetric"] = index.metric
    end = offset + len(page)
    if end < len(hits):
        out["nextToken"] = limits.encode_token({"q": _fingerprint(req), "o": end})
    return out
