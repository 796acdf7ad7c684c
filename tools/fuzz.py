"""Fuzz the S3 Vectors dialect from its own OpenAPI description: no 5xx, every error in shape.

Request bodies are generated with hypothesis from the JSON schemas in ``api.openapi.openapi()``
(the server's own request models), then often damaged: a required field dropped, an unknown one
added, a value replaced by one of the wrong type or by a hostile one (NaN, huge numbers, long and
odd strings, deep nesting). Names are drawn mostly from a bucket and index that exist, so that
valid-ish requests get past "not found" into the handlers. Every request is signed with SigV4 by
botocore, so it reaches validation rather than stopping at authentication.

    python -m tools.fuzz --requests 5000 [--url http://127.0.0.1:8000] [--seed 1]
                         [--target operations|filters|policies|all]

``--target filters`` sends QueryVectors with filters built by ``tools.fuzz_documents``, and
``policies`` PutVectorBucketPolicy with generated policies, each followed by a GetIndex that the
policy (if it was accepted) decides, and a DeleteVectorBucketPolicy; ``all`` mixes the three.

Without ``--url`` it starts a server of its own on a scratch folder. It prints the requests sent,
the statuses seen and every failure (a 5xx, or an error body not in the dialect's shape).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import strategies as st

from api.openapi import openapi

BUCKET, INDEX = "fuzz", "idx"
NAMES: dict[str, list[str]] = {
    "vectorBucketName": [BUCKET, "nope", ""],
    "indexName": [INDEX, "missing", "x"],
    "vectorBucketArn": [f"arn:aws:s3vectors:us-east-1:111122223333:bucket/{BUCKET}", "arn:bogus"],
    "indexArn": [f"arn:aws:s3vectors:us-east-1:111122223333:bucket/{BUCKET}/index/{INDEX}", "arn:x:y"],
    "dataType": ["float32", "float16", ""],
    "distanceMetric": ["cosine", "euclidean", "dot"],
}
HOSTILE_TEXT = st.sampled_from(["", "a" * 1025, "\u0000", "ключ🔑", "../../etc", "%00", "\ud7ff", " " * 300])
HOSTILE_NUMBER = st.sampled_from([math.nan, math.inf, -math.inf, 1e39, -(2**63), 2**70, 0, -1, 1e-320])


def _json_leaf() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        HOSTILE_TEXT,
    )


ANY_JSON = st.recursive(
    _json_leaf(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Filters: mostly well-formed operators over a few keys, sometimes nonsense.
_OPERAND = st.one_of(st.integers(-5, 5), st.lists(st.integers(0, 3), max_size=3), st.booleans(), HOSTILE_NUMBER)
_OPERATORS = st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$bogus"])
_FILTER_LEAF = st.dictionaries(
    st.sampled_from(["m", "n", "x.y"]),
    st.integers(-5, 5) | st.text(max_size=4) | st.dictionaries(_OPERATORS, _OPERAND, min_size=1, max_size=2),
    min_size=1,
    max_size=2,
)
FILTERS = (
    st.recursive(
        _FILTER_LEAF,
        lambda inner: st.dictionaries(st.sampled_from(["$and", "$or"]), st.lists(inner, max_size=3), min_size=1),
        max_leaves=12,
    )
    | ANY_JSON
)


@dataclass
class Schemas:
    """Strategies for the components of one OpenAPI document."""

    doc: dict[str, Any]
    cache: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)

    def of(self, schema: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
        if "$ref" in schema:
            ref = schema["$ref"].rsplit("/", 1)[1]
            if ref not in self.cache:
                self.cache[ref] = st.deferred(lambda: self.object(self.doc["components"]["schemas"][ref]))
            return self.cache[ref]
        if "anyOf" in schema:
            return st.one_of([self.of(s, name) for s in schema["anyOf"]])
        kind = schema.get("type")
        if name in NAMES:
            return st.sampled_from(NAMES[name]) | st.text(max_size=70)
        if name == "filter":
            return FILTERS
        if name == "float32":
            dims = st.sampled_from([2, 2, 2, 1, 3, 0, 4097])
            return dims.flatmap(lambda d: st.lists(st.floats(-10, 10, width=32), min_size=d, max_size=d)) | st.lists(
                HOSTILE_NUMBER, min_size=2, max_size=2
            )
        if kind == "object":
            return self.object(schema)
        if kind == "array":
            return st.lists(self.of(schema.get("items", {}), name), max_size=4)
        if kind == "string":
            return st.text(max_size=30) | HOSTILE_TEXT
        if kind == "integer":
            return st.integers(-3, 12) | st.integers(-(2**70), 2**70)
        if kind == "number":
            return st.floats(-100, 100) | HOSTILE_NUMBER
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return ANY_JSON  # no schema: any JSON value (metadata, filters)

    def object(self, schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if not props:  # a free-form map (tags)
            return st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3)
        return st.fixed_dictionaries(
            {k: self.of(v, k) for k, v in props.items() if k in required},
            optional={k: self.of(v, k) for k, v in props.items() if k not in required},
        )


@st.composite
def damaged(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any] | Any:
    """A body, left alone half the time; otherwise one of a handful of client mistakes."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "drop", "extra", "wrong-type", "hostile", "not-an-object"]))
    if how == "keep" or not isinstance(body, dict):
        return body
    if how == "drop" and body:
        body = dict(body)
        body.pop(draw(st.sampled_from(sorted(body))))
    elif how == "extra":
        body = body | {draw(st.text(min_size=1, max_size=10)): draw(ANY_JSON)}
    elif how in ("wrong-type", "hostile") and body:
        key = draw(st.sampled_from(sorted(body)))
        body = body | {key: draw(ANY_JSON if how == "wrong-type" else HOSTILE_NUMBER | HOSTILE_TEXT)}
    elif how == "not-an-object":
        return draw(ANY_JSON)
    return body


def _encode(doc: Any) -> bytes:
    """JSON, with NaN and Infinity written as the bare tokens some clients send."""
    return json.dumps(doc, allow_nan=True).encode()


RAW_DAMAGE: list[Callable[[bytes], bytes]] = [
    lambda b: b[: len(b) // 2],  # truncated
    lambda b: b + b"}",  # trailing garbage
    lambda b: b.replace(b'"', b"'", 1),  # not JSON
    lambda b: b"\xff\xfe" + b,  # not UTF-8
    lambda b: b"",  # empty
]


def requests_strategy(doc: dict[str, Any] | None = None) -> st.SearchStrategy[tuple[str, bytes]]:
    """(operation, body) pairs for every operation in the description."""
    doc = doc or openapi()
    schemas = Schemas(doc)
    per_op = []
    for path, item in sorted(doc["paths"].items()):
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        op = path.lstrip("/")
        body = schemas.of(schema).flatmap(damaged).map(_encode)
        raw = st.tuples(body, st.sampled_from(RAW_DAMAGE)).map(lambda p: p[1](p[0]))
        per_op.append(st.tuples(st.just(op), body | body | body | raw))
    return st.one_of(per_op)


@dataclass(frozen=True)
class Outcome:
    status: int
    problem: str | None  # None: a well-formed reply


def sign_and_send(url: str, op: str, body: bytes, key: str, secret: str, session: requests.Session) -> Outcome:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=f"{url}/{op}", data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "s3vectors", "us-east-1").add_auth(req)
    r = session.post(str(req.url), data=body, headers=dict(req.headers.items()), timeout=120)
    return Outcome(r.status_code, check_reply(r.status_code, dict(r.headers), r.content))


def check_reply(status: int, headers: dict[str, str], content: bytes) -> str | None:
    """What is wrong with a reply, or None."""
    if status >= 500:
        return f"HTTP {status}: {content[:300]!r}"
    try:
        doc = json.loads(content or b"{}")
    except ValueError:
        return f"HTTP {status}: the body is not JSON: {content[:200]!r}"
    if status == 200:
        return None if isinstance(doc, dict) else f"HTTP 200 with a non-object body: {content[:200]!r}"
    lower = {k.lower(): v for k, v in headers.items()}
    if not lower.get("x-amzn-errortype", "").endswith("Exception"):
        return f"HTTP {status} without an x-amzn-ErrorType: {lower}"
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return f"HTTP {status}: the error body has no message: {content[:200]!r}"
    return None


def prepare(url: str, key: str, secret: str) -> None:
    """The bucket and index most generated requests name."""
    session = requests.Session()
    sign_and_send(url, "CreateVectorBucket", _encode({"vectorBucketName": BUCKET}), key, secret, session)
    index = {"vectorBucketName": BUCKET, "indexName": INDEX, "dataType": "float32", "dimension": 2}
    sign_and_send(url, "CreateIndex", _encode(index | {"distanceMetric": "cosine"}), key, secret, session)
    vectors = [{"key": f"k{i}", "data": {"float32": [1.0, float(i)]}, "metadata": {"m": i}} for i in range(5)]
    body = {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": vectors}
    sign_and_send(url, "PutVectors", _encode(body), key, secret, session)


@dataclass
class Report:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def documents_strategy(target: str) -> st.SearchStrategy[list[tuple[str, bytes]]]:
    """Requests built around a generated filter or policy (one or more, sent in order)."""
    from tools.fuzz_documents import FILTERS, POLICIES

    address = {"vectorBucketName": BUCKET, "indexName": INDEX}
    query = FILTERS.map(
        lambda f: [
            ("QueryVectors", _encode(address | {"topK": 3, "queryVector": {"float32": [1.0, 0.5]}, "filter": f}))
        ]
    )
    policy = POLICIES.map(
        lambda p: [
            ("PutVectorBucketPolicy", _encode({"vectorBucketName": BUCKET, "policy": p})),
            ("GetIndex", _encode(address)),
            ("DeleteVectorBucketPolicy", _encode({"vectorBucketName": BUCKET})),
        ]
    )
    single = requests_strategy().map(lambda r: [r])
    return {"filters": query, "policies": policy, "all": st.one_of(single, query, policy)}.get(target, single)


def run(url: str, key: str, secret: str, n: int, seed: int, target: str = "operations") -> Report:
    """Send ``n`` generated requests; stop early on nothing (every failure is collected)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    prepare(url, key, secret)
    report = Report()
    session = requests.Session()

    @hseed(seed)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(documents_strategy(target))
    def one(reqs: list[tuple[str, bytes]]) -> None:
        for op, body in reqs:
            out = sign_and_send(url, op, body, key, secret, session)
            report.sent += 1
            report.statuses[out.status] += 1
            if out.problem is not None:
                report.failures.append(f"{op} {body[:300]!r}: {out.problem}")

    one()
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--url", help="a running server (default: start one on a scratch folder)")
    ap.add_argument("--access-key", default="fuzz")
    ap.add_argument("--secret-key", default="fuzz-secret")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=["operations", "filters", "policies", "all"], default="operations")
    args = ap.parse_args(argv)
    if args.url:
        report = run(args.url, args.access_key, args.secret_key, args.requests, args.seed, args.target)
    else:
        report = _with_own_server(args.requests, args.seed, args.target)
    print(f"requests sent: {report.sent}")
    print("statuses: " + ", ".join(f"{s}: {c}" for s, c in sorted(report.statuses.items())))
    print(f"failures: {len(report.failures)}")
    for f in report.failures[:50]:
        print("  " + f)
    return 1 if report.failures else 0


def _with_own_server(n: int, seed: int, target: str) -> Report:
    import socket
    import threading
    import time

    import uvicorn

    from api.app import create_app
    from api.config import Credential, ServerConfig

    cred = Credential("fuzz", "fuzz-secret", "111122223333")
    with tempfile.TemporaryDirectory() as root:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = ServerConfig(root=root, port=port, credentials={cred.access_key_id: cred})
        server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        try:
            return run(f"http://127.0.0.1:{port}", cred.access_key_id, cred.secret_access_key, n, seed, target)
        finally:
            server.should_exit = True
            thread.join(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
