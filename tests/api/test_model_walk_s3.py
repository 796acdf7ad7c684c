"""The newest s3vectors botocore model, walked: every operation it names is called through boto3
(with its own client-side checks off, so the server's are what is tested), every reply body is
checked against the operation's output shape, and every constrained member (lengths, ranges, list
sizes, enums, patterns, required) is sent just inside its bound, which must pass validation, and
just outside it, which must be a ValidationException in AWS's error shape.

The walk is driven by the model: an operation, or a constrained member, the model gains and this
file does not know fails the test until it is walked or skipped here with its reason.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError

from tests.api.test_hybrid import model_dir
from tests.server import ALICE, RunningServer

Maker = Callable[[], dict[str, Any]]
KMS = f"arn:aws:kms:us-east-1:{ALICE.account}:key/"
TEXT_KEYS = ["text", "t", "t" * 63, *(f"text{i}" for i in range(3, 10))]  # ten: the most an index takes
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ALICE.account}, "Action": "s3vectors:*", "Resource": "*"}
        ],
    }
)

# Members whose "just inside" value cannot be built, each with the reason; their "outside" is walked.
INSIDE_IMPOSSIBLE = {
    "resourceArn": "no ARN of 0 or 1,011 characters names a resource",
    "kmsKeyArn": "no key ARN of 1 character matches the pattern",
}
ARN = "<the ARN of the resource the baseline names>"
# Members of input shapes that the service sets, not the caller (the shape is shared with output).
OUTPUT_ONLY = {"status": "a text configuration's status is reported by GetIndex, never sent"}
# Values inside the model's bounds that AWS documents as refused in this state, with the source.
REFUSED = {
    ("UpdateIndexMode", "indexMode", "CLASSIC"): "user guide, Changing a vector index's mode: CLASSIC only "
    "for indexes in buckets created before 2026-09-30 (the walk's bucket is new)",
    ("PutVectorBucketDefaultIndexMode", "defaultIndexMode", "CLASSIC"): "the same rule for a bucket's default",
    ("QueryVectors", "queryMode", "CLASSIC"): "the model: You can't specify CLASSIC for an ENHANCED index",
}
DELETABLE = ["a", "a" * 63, *(f"x{i}" for i in range(2, 10))]  # the text keys of the "delete" variant's index


def model() -> dict[str, Any]:
    path = model_dir() / "s3vectors" / "2025-07-15" / "service-2.json"
    return dict(json.loads(path.read_text()))


class Walker:
    def __init__(self, srv: RunningServer) -> None:
        session = boto3.Session()
        session._session.get_component("data_loader").search_paths.insert(0, str(model_dir()))
        self.c = srv.s3vectors(session=session, parameter_validation=False, retries={"max_attempts": 1})
        self.c.meta.events.register("before-parse.s3vectors.*", self._keep)
        self.raw: dict[str, Any] = {}
        self.names = (f"w{n:03d}" for n in itertools.count())
        self.shapes = model()["shapes"]

    def _keep(self, response_dict: dict[str, Any], **_: Any) -> None:
        self.raw = response_dict

    def call(self, op: str, params: dict[str, Any]) -> tuple[int, Any]:
        """(HTTP status, the reply body as JSON: {} for an empty one)."""
        with contextlib.suppress(ClientError):  # the raw reply is what is checked
            getattr(self.c, xform_name(op))(**params)
        body = self.raw["body"]
        return self.raw["status_code"], json.loads(body) if body else {}

    # --- resources the baselines stand on ---------------------------------------------------

    def bucket(self) -> str:
        name = next(self.names)
        self.c.create_vector_bucket(vectorBucketName=name)
        return name

    def index(self, bucket: str = "walk", text_keys: list[str] | None = None) -> str:
        name = next(self.names)
        config = {"textSearchConfigurations": [{"metadataKey": k} for k in text_keys]} if text_keys else {}
        self.c.create_index(
            vectorBucketName=bucket,
            indexName=name,
            dataType="float32",
            dimension=2,
            distanceMetric="cosine",
            metadataConfiguration={"nonFilterableMetadataKeys": ["note"], **config},
        )
        return name

    def setup(self) -> None:
        self.c.create_vector_bucket(vectorBucketName="walk")
        self.c.put_vector_bucket_policy(vectorBucketName="walk", policy=POLICY)
        self.c.create_index(
            vectorBucketName="walk",
            indexName="idx",
            dataType="float32",
            dimension=2,
            distanceMetric="cosine",
            metadataConfiguration={
                "nonFilterableMetadataKeys": ["note"],
                "textSearchConfigurations": [{"metadataKey": k, "language": "en"} for k in TEXT_KEYS],
            },
        )
        vectors = [
            {"key": f"k{i}", "data": {"float32": [1.0, i / 10]}, "metadata": {"text": "the quick fox", "n": i}}
            for i in range(10)
        ]
        self.c.put_vectors(vectorBucketName="walk", indexName="idx", vectors=vectors)
        self.arn = self.c.get_vector_bucket(vectorBucketName="walk")["vectorBucket"]["vectorBucketArn"]

    # --- one valid request per operation, every optional member present where it can be ------

    def baselines(self) -> dict[str, Callable[[], dict[str, Any]]]:
        on_idx = {"vectorBucketName": "walk", "indexName": "idx"}
        query = {"topK": 3, "queryVector": {"float32": [1.0, 0.0]}, "returnMetadata": True, "returnDistance": True}
        return {
            "CreateVectorBucket": lambda: {
                "vectorBucketName": next(self.names),
                "encryptionConfiguration": {"sseType": "aws:kms", "kmsKeyArn": KMS + "k"},
                "tags": {"team": "walk"},
            },
            "GetVectorBucket": lambda: {"vectorBucketName": "walk"},
            "ListVectorBuckets": lambda: {"maxResults": 5, "prefix": "w"},
            "DeleteVectorBucket": lambda: {"vectorBucketName": self.bucket()},
            "PutVectorBucketPolicy": lambda: {"vectorBucketName": self.bucket(), "policy": POLICY},
            "GetVectorBucketPolicy": lambda: {"vectorBucketName": "walk"},
            "DeleteVectorBucketPolicy": lambda: self._with_policy(),
            "PutVectorBucketDefaultIndexMode": lambda: {"vectorBucketName": "walk", "defaultIndexMode": "ENHANCED"},
            "CreateIndex": lambda: {
                "vectorBucketName": "walk",
                "indexName": next(self.names),
                "dataType": "float32",
                "dimension": 2,
                "distanceMetric": "cosine",
                "metadataConfiguration": {
                    "nonFilterableMetadataKeys": ["note"],
                    "textSearchConfigurations": [{"metadataKey": "body", "language": "en"}],
                },
                "encryptionConfiguration": {"sseType": "aws:kms", "kmsKeyArn": KMS + "k"},
                "tags": {"team": "walk"},
            },
            "GetIndex": lambda: dict(on_idx),
            "ListIndexes": lambda: {"vectorBucketName": "walk", "maxResults": 5, "prefix": "i"},
            "DeleteIndex": lambda: {"vectorBucketName": "walk", "indexName": self.index()},
            "UpdateIndexMode": lambda: {**on_idx, "indexMode": "ENHANCED"},
            "UpdateMetadataConfiguration": lambda: {
                "vectorBucketName": "walk",
                "indexName": self.index(),
                "add": {"textSearchConfigurations": [{"metadataKey": "body", "language": "en"}]},
            },
            "PutVectors": lambda: {
                **on_idx,
                "vectors": [{"key": "p0", "data": {"float32": [0.5, 0.5]}, "metadata": {"n": 1, "note": "x"}}],
            },
            "GetVectors": lambda: {**on_idx, "keys": ["k0"], "returnData": True, "returnMetadata": True},
            "ListVectors": lambda: {
                **on_idx,
                "maxResults": 5,
                "segmentCount": 16,
                "segmentIndex": 0,
                "returnData": True,
                "returnMetadata": True,
            },
            "DeleteVectors": lambda: {**on_idx, "keys": ["gone"]},
            "QueryVectors": lambda: {
                **on_idx,
                **query,
                "filter": {"n": {"$gte": 0}},
                "queryMode": "ENHANCED",
                "queryTexts": [{"text": "fox", "metadataKey": "text"}],
                "returnScores": True,
            },
            "TagResource": lambda: {"resourceArn": self.arn, "tags": {"team": "walk"}},
            "UntagResource": lambda: {"resourceArn": self.arn, "tagKeys": ["team"]},
            "ListTagsForResource": lambda: {"resourceArn": self.arn},
        }

    def variants(self) -> dict[str, Callable[[], dict[str, Any]]]:
        """A second valid request where members exclude each other."""
        return {
            "UpdateMetadataConfiguration": lambda: {
                "vectorBucketName": "walk",
                "indexName": self.index(text_keys=DELETABLE),
                "delete": {"textSearchConfigurations": [{"metadataKey": "x2"}]},
            },
        }

    def _with_policy(self) -> dict[str, Any]:
        name = self.bucket()
        self.c.put_vector_bucket_policy(vectorBucketName=name, policy=POLICY)
        return {"vectorBucketName": name}


# --- the reply shape -------------------------------------------------------------------------


def conform(shapes: dict[str, Any], name: str, value: Any, path: str = "$") -> Iterator[str]:
    """Each way ``value`` departs from shape ``name``."""
    s = shapes[name]
    t = s["type"]
    if s.get("document"):
        return  # any JSON (metadata)
    if t == "structure":
        if not isinstance(value, dict):
            yield f"{path}: {type(value).__name__}, not an object"
            return
        yield from (f"{path}.{k}: not in the model" for k in value if k not in s["members"])
        yield from (f"{path}.{k}: required, missing" for k in s.get("required", []) if k not in value)
        if s.get("union") and len(value) != 1:
            yield f"{path}: a union with {len(value)} members"
        for k, v in value.items():
            if k in s["members"]:
                yield from conform(shapes, s["members"][k]["shape"], v, f"{path}.{k}")
    elif t == "list":
        if not isinstance(value, list):
            yield f"{path}: not a list"
            return
        if not s.get("min", 0) <= len(value) <= s.get("max", len(value)):
            yield f"{path}: {len(value)} items"
        for i, v in enumerate(value):
            yield from conform(shapes, s["member"]["shape"], v, f"{path}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            yield f"{path}: not a map"
            return
        for k, v in value.items():
            yield from conform(shapes, s["key"]["shape"], k, f"{path}{{key}}")
            yield from conform(shapes, s["value"]["shape"], v, f"{path}[{k!r}]")
    elif t == "string":
        if not isinstance(value, str):
            yield f"{path}: not a string"
        elif "enum" in s and value not in s["enum"]:
            yield f"{path}: {value!r} not in {s['enum']}"
        elif not s.get("min", 0) <= len(value) <= s.get("max", len(value)):
            yield f"{path}: {len(value)} characters"
        elif "pattern" in s and "\\p" not in s["pattern"] and not re.fullmatch(s["pattern"], value):
            yield f"{path}: {value!r} does not match {s['pattern']}"
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            yield f"{path}: not an integer"
        elif not s.get("min", value) <= value <= s.get("max", value):
            yield f"{path}: {value} out of range"
    elif t in ("float", "double", "timestamp") and (not isinstance(value, int | float) or isinstance(value, bool)):
        yield f"{path}: not a number"
    elif t == "boolean" and not isinstance(value, bool):
        yield f"{path}: not a boolean"


# --- the bounds -------------------------------------------------------------------------------


def leaves(shapes: dict[str, Any], name: str, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, shape) of every member of an input shape, nested ones too; a list is walked through
    its first item and a map through its first key ("{key}")."""
    s = shapes[name]
    if path:
        yield path, name
    if s["type"] == "structure":
        for k, m in s["members"].items():
            yield from leaves(shapes, m["shape"], (*path, k))
    elif s["type"] == "list":
        yield from leaves(shapes, s["member"]["shape"], (*path, 0))
    elif s["type"] == "map":
        yield (*path, "{key}"), s["key"]["shape"]


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        if p == "{key}":
            return next(iter(doc))
        doc = doc[p]
    return doc


def put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    *up, last = path
    parent = get(doc, tuple(up))
    if last == "{key}":
        old = next(iter(parent))
        parent[value] = parent.pop(old)
    else:
        parent[last] = value


def sized(path: tuple[Any, ...], shape: dict[str, Any], n: int, like: Any) -> Any:
    """A value of length (or count) ``n`` for the member at ``path``, valid in every other way."""
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    if shape["type"] == "string":
        if field == "resourceArn":
            return "a" * n if n > shape["max"] else None
        if field == "kmsKeyArn":
            return KMS + "k" * (n - len(KMS)) if n > len(KMS) else "" if n == 0 else None
        if field == "metadataKey" and path[0] == "queryTexts":
            return "t" * n
        return "a" * n
    items = []  # a list: ``n`` distinct copies of its first item
    for i in range(n):
        item = copy.deepcopy(like[0]) if like else ""
        if isinstance(item, str):
            item = f"{item}{i}"
        elif "key" in item:
            item["key"] = f"{item['key']}-{i}"
        elif "metadataKey" in item:
            keys = {"queryTexts": TEXT_KEYS, "delete": DELETABLE}.get(path[0], [f"x{i}" for i in range(n)])
            item["metadataKey"] = keys[i % len(keys)]
        items.append(item)
    return items


def cases(shapes: dict[str, Any], path: tuple[Any, ...], name: str, like: Any) -> Iterator[tuple[str, Any, bool]]:
    """(label, value, inside) for the member's bounds."""
    s = shapes[name]
    if "enum" in s:
        for v in s["enum"]:
            yield f"= {v}", v, True
        yield "= bogus", "bogus", False
    if s["type"] in ("string", "list") and ("min" in s or "max" in s):
        for n, inside in ((s.get("min"), True), (s.get("max"), True)):
            if n is not None:
                yield f"length {n}", sized(path, s, n, like), inside
        if s.get("min", 0) > 0:
            yield f"length {s['min'] - 1}", sized(path, s, s["min"] - 1, like), False
        if "max" in s:
            yield f"length {s['max'] + 1}", sized(path, s, s["max"] + 1, like), False
    if s["type"] == "integer":
        for n, inside in ((s.get("min"), True), (s.get("max"), True)):
            if n is not None:
                yield f"= {n}", n, inside
        if "min" in s:
            yield f"= {s['min'] - 1}", s["min"] - 1, False
        if "max" in s:
            yield f"= {s['max'] + 1}", s["max"] + 1, False
    if s["type"] == "string" and "pattern" in s and path[-1] in ("vectorBucketArn", "indexArn"):
        yield "the resource's ARN", ARN, True
        yield "malformed", "arn:aws:s3vectors:nowhere", False


def test_the_model_walk(srv: RunningServer) -> None:
    w = Walker(srv)
    w.setup()
    spec = model()
    baselines, variants = w.baselines(), w.variants()
    assert set(baselines) == set(spec["operations"]), "an operation of the model is not walked"
    failures: list[str] = []
    for op, info in spec["operations"].items():
        makers = [m for m in (baselines[op], variants.get(op)) if m]
        failures += replies(w, op, info, makers)
        failures += required(w, op, info, baselines[op])
        failures += bounds(w, op, info, makers)
    assert not failures, "\n".join(failures)


def replies(w: Walker, op: str, info: dict[str, Any], makers: list[Maker]) -> Iterator[str]:
    """Each valid request succeeds with a body of the output shape (or none where it has none)."""
    out = info.get("output", {}).get("shape")
    for make in makers:
        status, body = w.call(op, make())
        assert status == 200, (op, body)
        yield from (f"{op}: {p}" for p in conform(w.shapes, out, body)) if out else ()
        if not out and body:
            yield f"{op}: a body where the model has none"


def required(w: Walker, op: str, info: dict[str, Any], make: Maker) -> Iterator[str]:
    inp = w.shapes[info["input"]["shape"]]
    for member in inp.get("required", []):
        params = make()
        if inp["members"][member].get("location") != "uri":  # a path label cannot be left out
            del params[member]
            status, body = w.call(op, params)
            if status != 400:
                yield f"{op} without {member}: {status} {body}"


def bounds(w: Walker, op: str, info: dict[str, Any], makers: list[Maker]) -> Iterator[str]:
    shapes = w.shapes
    samples = [(m, m()) for m in makers]  # what each baseline holds (a baseline may create resources)
    for path, shape in leaves(shapes, info["input"]["shape"]):
        top_scalar = len(path) == 1 and shapes[shape]["type"] not in ("structure", "list", "map")
        held = next(((m, p) for m, p in samples if _holds(p, path)), None)
        holder, sample = held if held else (samples[0] if top_scalar else (None, {}))
        if holder is None:
            s = shapes[shape]
            if any(k in s for k in ("min", "max", "enum", "pattern")) and path[-1] not in OUTPUT_ONLY:
                yield f"{op} {path}: constrained, but no baseline holds it"
            continue
        like = get(sample, path) if _holds(sample, path) else None
        for label, value, inside in cases(shapes, path, shape, like):
            if value is None:
                assert inside and path[-1] in INSIDE_IMPOSSIBLE, (op, path, label)
                continue
            if inside and isinstance(value, str) and (op, path[-1], value) in REFUSED:
                continue
            status, body = w.call(op, mutated(holder(), path, value))
            where = f"{op} {'.'.join(map(str, path))} {label}"
            code = w.raw["headers"].get("x-amzn-errortype", "").split(":")[0]
            # An unissued token is refused as unknown; only a complaint about its length is wrong.
            token_refused = path[-1] == "nextToken" and "characters" not in body.get("message", "")
            if inside and code == "ValidationException" and not token_refused:
                yield f"{where}: refused: {body.get('message')}"
            if not inside:
                if (status, code) != (400, "ValidationException"):
                    yield f"{where}: {status} {code} {body}"
                yield from (f"{where}: {p}" for p in conform(shapes, "ValidationException", body))


def mutated(params: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    if path[-1] in ("vectorBucketArn", "indexArn"):  # the ARN in place of the names
        bucket = params.pop("vectorBucketName", None)
        index = params.pop("indexName", None) if path[-1] == "indexArn" else None
        if value is ARN:
            value = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/{bucket}"
            value += f"/index/{index}" if path[-1] == "indexArn" else ""
        params[path[-1]] = value
    else:
        put(params, path, value)
    if path[-1] == "sseType" and value == "AES256":
        get(params, path[:-1]).pop("kmsKeyArn")  # the model: a key ARN only with aws:kms
    return params


def _holds(params: dict[str, Any], path: tuple[Any, ...]) -> bool:
    try:
        get(params, path)
    except (KeyError, IndexError, StopIteration, TypeError):
        return False
    return True
