"""OSS Vectors' fusion mode (PutVectorIndexFusion, QueryVectorsFusion), read into the hybrid
search vecledger already has (docs/notes/0002-hybrid-search.md).

A fusion index here is an ENHANCED index: its one vector field is the index's vectors, its
text-enabled string fields are text search configurations (the standard analyzer), its other
fields are metadata. A query's ``knn`` is the query vector, its ``$textMatch`` clauses are query
texts, the rest of its ``query`` (and ``partitionKeys``) a metadata filter, and an ``rrf``
retriever over one knn and one text retriever is the same RRF hybrid search. What vecledger cannot
answer exactly (several vector fields, weighted fusion, sorting by a field) is an InvalidArgument
naming it, never an approximation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from api import limits, models
from api.bodies import parse_body
from api.call import Call
from api.errors import validation
from api.operations.indexes import create_index_in, index_ref
from engine.catalog.state import Index
from engine.log.payload import parse_metadata
from engine.query.fusion import RRF_K, Scored

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_FIELD_TYPES = {"vector", "string", "long", "double", "bool", "ip", "geoPoint"}
_OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}
MAX_FIELDS, MAX_TEXT_FIELDS, MAX_LIMIT = 100, 8, 100


def _int(value: Any, low: int, high: int, field: str) -> int:
    """An integer member of a free-form clause (the body model types only the top level)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise validation(f"{field} must be an integer", field)
    return limits.in_range(value, low, high, field)


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise validation(f"{field} must be a JSON object", field)
    return value


def _fields(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str], str | None]:
    """(the vector field, the text-enabled fields, the partition key field) of a schema."""
    fields = schema.get("fields")
    if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
        raise validation(f"schemaConfiguration.fields must hold 1 to {MAX_FIELDS} fields", "schemaConfiguration.fields")
    vectors, texts, partition, names = [], [], None, set()
    for i, f in enumerate(fields):
        at = f"schemaConfiguration.fields[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not _FIELD_NAME.match(f["name"]):
            raise validation("a field name is 1-63 letters, digits or _, starting with a letter", f"{at}.name")
        if f["name"] in names:
            raise validation(f"field {f['name']!r} is defined twice", f"{at}.name")
        names.add(f["name"])
        if f.get("type") not in _FIELD_TYPES:
            raise validation(f"type must be one of {', '.join(sorted(_FIELD_TYPES))}", f"{at}.type")
        if f["type"] == "vector":
            vectors.append(f)
        text = _object(f.get("text") or {}, f"{at}.text")
        if text.get("enabled"):
            if f["type"] != "string":
                raise validation("only string fields take full text", f"{at}.text")
            if text.get("analyzer", "standard") != "standard":
                raise validation("vecledger has the standard analyzer only", f"{at}.text.analyzer")
            texts.append(f["name"])
        if f.get("isPartitionKey"):
            if f["type"] != "string" or partition is not None:
                raise validation("one string field at most is the partition key", f"{at}.isPartitionKey")
            partition = f["name"]
    if len(vectors) != 1:
        raise validation("vecledger builds fusion indexes of exactly one vector field", "schemaConfiguration.fields")
    if len(texts) > MAX_TEXT_FIELDS:
        raise validation(f"at most {MAX_TEXT_FIELDS} fields take full text", "schemaConfiguration.fields")
    return vectors[0], texts, partition


async def put_vector_index_fusion(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    req = parse_body(models.OssPutVectorIndexFusion, body)
    if req.mode != "fusion":
        raise validation("mode must be fusion", "mode")
    vector, texts, _ = _fields(req.schemaConfiguration)
    data_type, metric = vector.get("dataType", "float32"), vector.get("distanceMetric", "")
    if not isinstance(data_type, str) or not isinstance(metric, str):
        raise validation("a vector field's dataType and distanceMetric are strings", "schemaConfiguration.fields")
    dimension = _int(vector.get("dimension"), 1, call.engine.settings.max_dimension, "dimension")
    shape = models.IndexShape(dataType=data_type, dimension=dimension, distanceMetric=metric)
    config = models.MetadataConfiguration(
        textSearchConfigurations=[models.TextSearchConfiguration(metadataKey=t) for t in texts]
    )
    bucket = call.dialect.bucket_of(call.account, call.host, None, None, "Host")
    schema = {"mode": "fusion", "schemaConfiguration": req.schemaConfiguration}
    await create_index_in(call, bucket, req.indexName, shape, config, None, None, schema=schema)
    return None


# --- queries ---------------------------------------------------------------------------------


def _operand(arg: Any) -> Any:
    return arg["value"] if isinstance(arg, dict) and "value" in arg else arg


def _filter(expr: Any, at: str) -> dict[str, Any]:
    """A fusion query expression (no ``$textMatch``) in S3 Vectors' filter language."""
    if not isinstance(expr, dict) or not expr:
        raise validation("a query expression is a non-empty object", at)
    out: dict[str, Any] = {}
    for key, value in expr.items():
        if key in ("$and", "$or"):
            clauses = value.get("clauses") if isinstance(value, dict) else value
            if not isinstance(clauses, list) or not clauses:
                raise validation(f"{key} takes a non-empty list of clauses", at)
            out[key] = [_filter(c, f"{at}.{key}") for c in clauses]
        elif key.startswith("$"):
            raise validation(f"unknown operator {key}", at)
        elif not isinstance(value, dict):
            out[key] = value
        else:
            conditions: dict[str, Any] = {}
            for op, arg in value.items():
                if op == "$range" and isinstance(arg, dict):
                    conditions |= {f"${b}": v for b, v in arg.items() if b in ("gt", "gte", "lt", "lte")}
                elif op in _OPERATORS:
                    conditions[op] = _operand(arg)
                elif op == "$textMatch":
                    raise validation("$textMatch may stand only at the top of query or in its $and", at)
                else:
                    raise validation(f"unknown operator {op} for {key!r}", at)
            out[key] = conditions
    return out


def _split(query: dict[str, Any] | None, at: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """(the ``$textMatch`` texts, the other clauses as filters) of a query, whose clauses are ANDed."""
    if query is None:
        return [], []
    and_ = query.get("$and") if len(query) == 1 else None
    if and_ is None:
        clauses: Any = [{k: v} for k, v in query.items()]
    else:
        clauses = and_.get("clauses") if isinstance(and_, dict) else and_
    texts, rest = [], []
    for clause in clauses if isinstance(clauses, list) else [query]:  # else _filter names the fault
        cond = next(iter(clause.values())) if isinstance(clause, dict) and len(clause) == 1 else None
        if isinstance(cond, dict) and list(cond) == ["$textMatch"]:
            text = _operand(cond["$textMatch"])
            if not isinstance(text, str) or not 1 <= len(text) <= limits.MAX_QUERY_TEXT:
                raise validation(f"$textMatch takes a text of 1 to {limits.MAX_QUERY_TEXT} characters", at)
            texts.append((next(iter(clause)), text))
        else:
            rest.append(_filter(clause, at))
    return texts, rest


def _knn(knn: Any, index: Index, at: str) -> tuple[list[float], int, list[dict[str, Any]]]:
    """(query vector, topK, filters) of a single knn clause."""
    entries = knn if isinstance(knn, list) else [knn]
    if len(entries) != 1 or not isinstance(entries[0], dict):
        raise validation("vecledger takes exactly one knn clause (one vector field per index)", at)
    entry = entries[0]
    field = _schema_field(index, lambda f: f.get("type") == "vector")
    if field is not None and entry.get("field") != field:
        raise validation(f"knn.field must be the index's vector field {field!r}", f"{at}.field")
    vector = entry.get("queryVector")
    vector = vector.get("float32") if isinstance(vector, dict) else vector
    if not isinstance(vector, list) or len(vector) != index.dimension:
        raise validation(f"knn.queryVector must hold {index.dimension} numbers", f"{at}.queryVector")
    top_k = _int(entry.get("topK", 10), 1, MAX_LIMIT, f"{at}.topK")
    flt = [_filter(entry["filter"], f"{at}.filter")] if entry.get("filter") is not None else []
    return vector, top_k, flt


def _retriever(node: dict[str, Any], at: str) -> tuple[Any, dict[str, Any] | None, int, int]:
    """(knn clause or None, text query or None, RRF k, window) of an rrf retriever."""
    rrf = node.get("rrf") if len(node) == 1 else None
    if not isinstance(rrf, dict):
        raise validation("vecledger fuses with an rrf retriever only", at)
    knn, text = None, None
    parts = rrf.get("retrievers") or []
    for i, part in enumerate(parts if isinstance(parts, list) else [None]):
        inner = part.get("retriever") if isinstance(part, dict) else None
        if not isinstance(inner, dict) or len(inner) != 1 or part.get("weight", 1.0) != 1.0:
            raise validation("each rrf retriever is a knn or simple retriever of weight 1", f"{at}.retrievers[{i}]")
        if "knn" in inner and knn is None:
            knn = inner["knn"]
        elif "simple" in inner and text is None:
            text = _object(inner["simple"] or {}, f"{at}.retrievers[{i}].simple").get("query")
        else:
            raise validation("an rrf retriever fuses one knn and one simple retriever", f"{at}.retrievers[{i}]")
    k = _int(rrf.get("k", RRF_K), 1, 65536, f"{at}.rrf.k")
    return knn, text, k, _int(rrf.get("windowSize", 100), 1, MAX_LIMIT * 10, f"{at}.rrf.windowSize")


async def query_vectors_fusion(call: Call, body: bytes, query: dict[str, str], headers: dict[str, str]) -> Any:
    req = parse_body(models.OssQueryVectorsFusion, body)
    ref = await index_ref(call, models.IndexAddr(indexName=req.indexName), ("GetVectors",))
    index = await call.engine.get_index(ref)
    limit = limits.in_range(req.limit if req.limit is not None else 10, 1, MAX_LIMIT, "limit")
    if req.nextToken is not None:
        raise validation("vecledger answers a fusion query in one page of at most limit results", "nextToken")
    for s in req.sort or []:
        order = s.get("_score", s.get("score"))
        if list(s) not in (["_score"], ["score"]) or not isinstance(order, dict | None):
            raise validation("results are sorted by _score, best first, only", "sort")
        if (order or {}).get("order", "desc") != "desc":
            raise validation("results are sorted by _score, best first, only", "sort")
    knn, text_query, rrf_k, window = req.knn, req.query, RRF_K, limit
    if req.retriever is not None:
        if knn is not None or text_query is not None or req.sort:
            raise validation(
                "with retriever, only limit, partitionKeys and the metadata options may be given", "retriever"
            )
        knn, text_query, rrf_k, window = _retriever(req.retriever, "retriever")
    texts, filters = _split(text_query, "query")
    vector, top_k = None, limit
    if knn is not None:
        vector, top_k, knn_filters = _knn(knn, index, "knn")
        filters += knn_filters
    if vector is None and not texts:
        raise validation("give knn, a $textMatch query, or an rrf retriever of them", "query")
    if req.retriever is not None and filters:
        raise validation("the lists an rrf retriever fuses are unfiltered here; filter with partitionKeys", "retriever")
    partition = _schema_field(index, lambda f: bool(f.get("isPartitionKey")))
    if req.partitionKeys:
        if partition is None:
            raise validation("this index has no partition key field", "partitionKeys")
        filters.append({partition: {"$in": req.partitionKeys}})
    flt = filters[0] if len(filters) == 1 else {"$and": filters} if filters else None
    # Each list is cut at its depth (an rrf retriever's windowSize, else knn.topK or limit), and
    # ``limit`` rows are kept of what they give.
    depth = window if req.retriever is not None else top_k if vector is not None else limit
    hits = await call.engine.search(
        ref, vector, texts, depth, flt, metadata=bool(req.returnMetadata), rrf_k=rrf_k, keep=limit
    )
    keep = set(req.returnMetadataFields or [])
    vectors = []
    for h in hits[:limit]:
        v: dict[str, Any] = {"key": h.key, "score": _score(h, index.metric)}
        if req.returnMetadata:
            meta = parse_metadata(h.metadata) or {}
            v["metadata"] = {k: x for k, x in meta.items() if k in keep} if keep else meta
        vectors.append(v)
    return {"vectors": vectors}


def _schema_field(index: Index, which: Callable[[dict[str, Any]], bool]) -> str | None:
    """The name of the first field of a fusion index's schema that ``which`` picks (None: none,
    or a standard index)."""
    fields = ((index.schema or {}).get("schemaConfiguration") or {}).get("fields") or []
    return next((f["name"] for f in fields if which(f)), None)


def _score(h: Scored, metric: str) -> float:
    """Larger is more relevant, as OSS's score is: the RRF score of a hybrid hit, the BM25 sum of a
    text hit, and for a vector hit its cosine similarity or 1/(1 + its euclidean distance)."""
    if h.fused is not None:
        return float(h.fused)
    if h.distance is None:
        return float(sum(h.bm25.values()))
    distance = float(h.distance)
    return 1.0 - distance if metric == "cosine" else 1.0 / (1.0 + distance)
