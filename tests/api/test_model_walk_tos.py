"""TOS Vectors walked from its own reference and its SDK: every method of ``tos.VectorClient`` is
called and its output object read; every operation of the API reference
(``tests/fixtures/tos-vectors-api.md``, the seed's text) is sent with each documented request
element just inside and just outside the bounds the reference states, each required element left
out, and each reply's fields compared with the reference's response tables.

Bounds and fields are parsed from the reference, not restated here: an operation or a bound the
reference gains is walked, or fails the test, without this file changing.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tos.enum import DataType, DistanceMetricType
from tos.exceptions import TosServerError
from tos.models2 import Vector, VectorData
from tos.vector_client import VectorClient

from tests.server import ALICE, RunningServer

ACCT = ALICE.account
REFERENCE = Path(__file__).parents[1] / "fixtures" / "tos-vectors-api.md"
POLICY = json.dumps(
    {
        "Version": "2025-12-01",
        "Statement": [{"Effect": "Allow", "Principal": [ACCT], "Action": ["tosvectors:*"], "Resource": ["*"]}],
    }
)
# Reply fields the reference's tables do not name, each with the reason it is there.
UNDOCUMENTED = {
    "vectorBucket": "the SDK reads GetVectorBucket's fields under it (GetVectorBucketOutput)",
    "encryptionConfiguration": "the bucket's encryption, as the S3 dialect reports it; the SDK ignores it",
    "sseType": "inside encryptionConfiguration",
    "vectorBucketTrn": "CreateVectorBucket answers the new bucket's TRN, as S3's answers its ARN; the SDK ignores it",
    "indexTrn": "CreateIndex answers the new index's TRN, likewise",
}
# Documented fields a reply may leave out, and why.
OPTIONAL = {
    "nextToken": "only while more pages remain",
    "QueryVectors.data": "no request element asks for it (AWS's QueryVectors returns none); the SDK reads it if sent",
}
Row = list[str]


def reference() -> dict[str, tuple[list[Row], list[Row]]]:
    """Operation -> (request element rows, response element rows) of the reference's tables."""
    ops = {}
    for section in re.split(r"^# (?=[A-Z][A-Za-z]+\s*$)", REFERENCE.read_text(), flags=re.M)[1:]:
        name, body = section.split("\n", 1)
        if "## 请求元素" not in body and "## 响应元素" not in body:
            continue
        request = body.split("## 请求元素", 1)[1].split("## 响应", 1)[0] if "## 请求元素" in body else ""
        response = body.split("## 响应元素", 1)[1] if "## 响应元素" in body else ""
        ops[name.strip()] = (_rows(request), _rows(response))
    return ops


def _rows(text: str) -> list[Row]:
    heads = ("| 名称", "| 参数名称", "| 字段", "| ---")
    lines = (line for line in text.splitlines() if line.startswith("| ") and not line.startswith(heads))
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


_RANGE = re.compile(r"最小(?:长度为|长度|值为)?\s*(\d+)\s*[，,]\s*最大(?:长度为|长度|值为)?\s*(\d+)")
_COUNT = re.compile(r"最少\s*(\d+)\s*(项|个字符|个)\s*[，,]\s*最多\s*(\d+)")
_SPAN = re.compile(r"取值范围：\s*(\d+)\s*到\s*(\d+)")


def bounds(description: str) -> Iterator[tuple[str, int, int]]:
    """("length" | "count" | "item length" | "value", low, high) that a description states."""
    for m in _COUNT.finditer(description):
        yield ("item length" if m.group(2) == "个字符" else "count"), int(m.group(1)), int(m.group(3))
    for m in itertools.chain(_RANGE.finditer(description), _SPAN.finditer(description)):
        if not _COUNT.search(description):
            yield "range", int(m.group(1)), int(m.group(2))


class Walker:
    def __init__(self, srv: RunningServer) -> None:
        self.t: VectorClient = srv.tos()
        self.t.max_retry_count = 0
        self.names = (f"w{n:03d}" for n in itertools.count())

    def send(self, op: str, body: dict[str, Any]) -> tuple[int, str, Any]:
        """(status, error code or "", reply JSON) for a body sent as it is: the SDK signs and
        carries it, its client-side checks are left out so the server's are what is tested."""
        try:
            rsp = self.t._req(action=op, method="POST", data=json.dumps(body), headers={}, func=op)
        except TosServerError as e:
            return e.status_code, e.code, {"Message": e.message}
        raw = rsp.read()
        if op == "GetVectorBucketPolicy":  # the body is the policy document, as the SDK reads it
            return rsp.status, "", {"policy": raw.decode()}
        return rsp.status, "", json.loads(raw) if raw else {}

    def bucket(self) -> str:
        name = next(self.names)
        self.t.create_vector_bucket(name)
        return name

    def index(self) -> str:
        name = next(self.names)
        self.send("CreateIndex", {**self.on("walk"), **_index(name)})
        return name

    def on(self, bucket: str, index: str | None = None) -> dict[str, Any]:
        return {"vectorBucketName": bucket, **({"indexName": index} if index else {})}

    def setup(self) -> None:
        self.t.create_vector_bucket("walk")
        self.t.put_vector_bucket_policy("walk", ACCT, POLICY)
        self.send("CreateIndex", {**self.on("walk"), **_index("idx")})
        vectors = [{"key": f"k{i}", "data": {"float32": [1.0, i / 10]}, "metadata": {"n": i}} for i in range(5)]
        assert self.send("PutVectors", {**self.on("walk", "idx"), "vectors": vectors})[0] == 200

    def baselines(self) -> dict[str, Callable[[], dict[str, Any]]]:
        idx = self.on("walk", "idx")
        return {
            "CreateVectorBucket": lambda: {"vectorBucketName": next(self.names)},
            "GetVectorBucket": lambda: self.on("walk"),
            "ListVectorBuckets": lambda: {"maxResults": 5, "prefix": "w"},
            "DeleteVectorBucket": lambda: self.on(self.bucket()),
            "PutVectorBucketPolicy": lambda: {**self.on(self.bucket()), "policy": POLICY},
            "GetVectorBucketPolicy": lambda: self.on("walk"),
            "DeleteVectorBucketPolicy": lambda: self._with_policy(),
            "CreateIndex": lambda: {**self.on("walk"), **_index(next(self.names))},
            "GetIndex": lambda: dict(idx),
            "ListIndexes": lambda: {**self.on("walk"), "maxResults": 5, "prefix": "i"},
            "DeleteIndex": lambda: self.on("walk", self.index()),
            "PutVectors": lambda: {**idx, "vectors": [{"key": "p0", "data": {"float32": [0.5, 0.5]}}]},
            "GetVectors": lambda: {**idx, "keys": ["k0"], "returnData": True, "returnMetadata": True},
            "ListVectors": lambda: {**idx, "maxResults": 5, "returnData": True, "returnMetadata": True},
            "DeleteVectors": lambda: {**idx, "keys": ["gone"]},
            "QueryVectors": lambda: {
                **idx,
                "topK": 3,
                "queryVector": {"float32": [1.0, 0.0]},
                "filter": {"n": {"$gte": 0}},
                "returnDistance": True,
                "returnMetadata": True,
            },
        }

    def _with_policy(self) -> dict[str, Any]:
        name = self.bucket()
        self.t.put_vector_bucket_policy(name, ACCT, POLICY)
        return self.on(name)


def _index(name: str) -> dict[str, Any]:
    return {
        "indexName": name,
        "dataType": "float32",
        "dimension": 2,
        "distanceMetric": "cosine",
        "metadataConfiguration": {"nonFilterableMetadataKeys": ["note"]},
    }


def sized(name: str, kind: str, n: int, like: Any) -> Any:
    """A value for element ``name`` of length, count or value ``n``, valid in every other way."""
    if kind == "range" and isinstance(like, int):
        return n
    if kind == "count":
        return [_nth(like[0], i) for i in range(n)]
    if kind == "item length":
        return ["k" * n]
    return "a" * n


def _nth(item: Any, i: int) -> Any:
    if isinstance(item, dict):
        return {**item, "key": f"{item['key']}-{i}"}
    return f"{item}-{i}"


def fields(doc: Any) -> Iterator[str]:
    """Every member name in a reply, nested ones too (a vector's metadata is the user's, skipped)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            if k != "metadata":
                yield from fields(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from fields(v)


def test_every_operation_of_the_reference_within_and_past_its_bounds(srv: RunningServer) -> None:
    w = Walker(srv)
    w.setup()
    ref, baselines = reference(), w.baselines()
    assert set(ref) == set(baselines), "an operation of the reference is not walked"
    failures: list[str] = []
    for op, (request, response) in ref.items():
        status, _, reply = w.send(op, baselines[op]())
        assert status == 200, (op, reply)
        documented = {r[0] for r in response}
        failures += [
            f"{op}: reply field {f!r} is undocumented" for f in set(fields(reply)) - documented - set(UNDOCUMENTED)
        ]
        missing = {f for f in documented - set(fields(reply)) if f not in OPTIONAL and f"{op}.{f}" not in OPTIONAL}
        failures += [f"{op}: documented field {f!r} missing" for f in missing]
        for row in request:
            name, description = row[0], row[-1]
            body = baselines[op]()
            if len(row) == 5 and row[2] == "是":
                del body[name]
                status, code, reply = w.send(op, body)
                if (status, code) != (400, "ValidationException"):
                    failures.append(f"{op} without {name}: {status} {code} {reply}")
            for kind, low, high in bounds(description):
                past = "ServiceUnavailableException" if "ServiceUnavailableException" in description else None
                for n, inside in ((low, True), (high, True), (low - 1, False), (high + 1, False)):
                    if n < 0 or (n == 0 and kind == "range" and low == 0):
                        continue
                    body = baselines[op]()
                    if name not in body and name != "nextToken":
                        failures.append(f"{op} {name}: bounded, but no baseline holds it")
                        break
                    body[name] = sized(name, kind, n, body.get(name))
                    status, code, reply = w.send(op, body)
                    where = f"{op} {name} {kind} {n}"
                    message = str(reply.get("Message", ""))
                    unknown_token = name == "nextToken" and "characters" not in message  # unissued, not too long
                    if inside and code == "ValidationException" and not unknown_token:
                        failures.append(f"{where}: refused: {message}")
                    expected = past if past and n > high else "ValidationException"  # "cannot exceed"
                    if not inside and code != expected:
                        failures.append(f"{where}: {status} {code} {reply}")
    assert not failures, "\n".join(failures)


def test_every_method_of_the_sdk_client(srv: RunningServer) -> None:
    """Each public method ``VectorClient`` defines, called through the SDK with its own checks,
    returns an output whose documented members are all filled."""
    t, b = srv.tos(), "sdk-walk"
    shape = {"data_type": DataType.DataTypeFloat32, "dimension": 2}
    cosine = DistanceMetricType.DistanceMetricCosine
    vec = VectorData(float32=[1.0, 0.0])
    calls: dict[str, Callable[[], Any]] = {
        "create_vector_bucket": lambda: t.create_vector_bucket(b),
        "get_vector_bucket": lambda: t.get_vector_bucket(b, ACCT).vector_bucket,
        "list_vector_buckets": lambda: t.list_vector_buckets(max_results=10).vector_buckets[0],
        "put_vector_bucket_policy": lambda: t.put_vector_bucket_policy(b, ACCT, POLICY),
        "get_vector_bucket_policy": lambda: t.get_vector_bucket_policy(b, ACCT),
        "delete_vector_bucket_policy": lambda: t.delete_vector_bucket_policy(b, ACCT),
        "create_index": lambda: t.create_index(b, ACCT, "idx", distance_metric=cosine, **shape),
        "get_index": lambda: t.get_index(b, ACCT, "idx").index,
        "list_indexes": lambda: t.list_indexes(b, ACCT).indexes[0],
        "put_vectors": lambda: t.put_vectors(b, ACCT, "idx", [Vector(key="k", data=vec, metadata={"n": 1})]),
        "get_vectors": lambda: t.get_vectors(b, ACCT, "idx", ["k"], return_data=True, return_metadata=True).vectors[0],
        "list_vectors": lambda: t.list_vectors(b, "idx", ACCT, return_data=True, return_metadata=True).vectors[0],
        "query_vectors": lambda: t.query_vectors(
            b, ACCT, "idx", query_vector=vec, top_k=1, return_distance=True, return_metadata=True
        ).vectors[0],
        "delete_vectors": lambda: t.delete_vectors(b, ACCT, "idx", ["k"]),
        "delete_index": lambda: t.delete_index(b, ACCT, "idx"),
        "delete_vector_bucket": lambda: t.delete_vector_bucket(b, ACCT),
    }
    defined = {
        n for n, f in inspect.getmembers(VectorClient, inspect.isfunction) if f.__qualname__.startswith("VectorClient.")
    }
    assert {n for n in defined if not n.startswith("_")} == set(calls), "a method of the SDK is not walked"
    for name, call in calls.items():
        out = call()
        unset = {"next_token", *(["data"] if name == "query_vectors" else [])}  # see OPTIONAL
        empty = [k for k, v in vars(out).items() if v is None and k not in unset]
        assert not empty, (name, empty)
    with pytest.raises(TosServerError):
        t.get_vector_bucket(b, ACCT)
