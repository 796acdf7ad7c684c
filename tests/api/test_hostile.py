"""Hostile and malformed input, in all three dialects: refused in the dialect's own words, never a 500.

A client mistake must come back as that dialect's validation error (S3 ``x-amzn-ErrorType`` and
``{"message"}``, TOS ``{"Code", "EC"}``, OSS ``{"Error": {"Code"}}``), and must not write a single
event: the catalog and data logs are counted before and after. Requests are signed properly, so
they get past authentication and reach validation: SigV4 by botocore for S3, the TOS SDK's own
signer for TOS, and the OSS SDK's ``invoke_operation`` (which signs any body) for OSS.

Bodies over the limit and bodies that trickle in are refused while being read: a declared
Content-Length over the limit before a byte is read, a chunked body once the count passes it, a
slow one at the body deadline (``ServerConfig.body_timeout``); the connection is then closed.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from api.config import Credential
from tests.backends import Backend, make_backend
from tests.server import ALICE, RunningServer, running_server

BUCKET, INDEX = "hostile", "idx"
DIALECTS = ("s3", "tos", "oss")
OSS_SUB = {
    "PutVectors": "putVectors",
    "GetVectors": "getVectors",
    "ListVectors": "listVectors",
    "DeleteVectors": "deleteVectors",
    "QueryVectors": "queryVectors",
    "GetIndex": "getVectorIndex",
}
# The code a refused body gets: (dialect, "malformed" JSON, or a failed "validation") -> code.
CODES = {
    ("s3", "malformed"): "ValidationException",
    ("s3", "validation"): "ValidationException",
    ("tos", "malformed"): "ValidationException",
    ("tos", "validation"): "ValidationException",
    ("oss", "malformed"): "MalformedJson",
    ("oss", "validation"): "VectorIndexParameterInvalid",
    # Refused by the engine rather than the API layer (values, filters): the same codes.
    ("s3", "engine"): "ValidationException",
    ("tos", "engine"): "ValidationException",
    ("oss", "engine"): "VectorIndexParameterInvalid",
}


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lowercase names
    body: bytes


def s3_request(
    srv: RunningServer, op: str, body: bytes, cred: Credential = ALICE, method: str = "POST"
) -> tuple[str, dict[str, str]]:
    """URL and headers of a SigV4-signed S3 Vectors request, signed by botocore itself."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=f"{srv.url}/{op}", data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(cred.access_key_id, cred.secret_access_key), "s3vectors", "us-east-1").add_auth(req)
    return str(req.url), dict(req.headers.items())


def tos_request(srv: RunningServer, op: str, body: bytes, cred: Credential = ALICE) -> tuple[str, dict[str, str]]:
    """URL and headers of a TOS4-signed request, signed by the TOS SDK's signer (the base host:
    the bucket comes from the body, as in S3)."""
    from tos.auth import Auth
    from tos.http import Request as TosRequest

    host = f"127.0.0.1:{srv.port}"
    req = TosRequest("POST", f"{srv.url}/{op}", f"/{op}", host, data=body, headers={})
    req.headers["x-tos-content-sha256"] = "UNSIGNED-PAYLOAD"
    Auth(cred.access_key_id, cred.secret_access_key, "cn-beijing", service="tosvectors").sign_request(req)
    return str(req.url), {str(k): str(v) for k, v in req.headers.items()}


def send(srv: RunningServer, dialect: str, op: str, body: bytes, cred: Credential = ALICE) -> Reply:
    """One signed request with this exact body, whatever it holds."""
    if dialect == "oss":
        from alibabacloud_oss_v2.exceptions import OperationError
        from alibabacloud_oss_v2.types import OperationInput

        op_input = OperationInput(
            op_name=op,
            method="POST",
            headers={"Content-Type": "application/json"},
            parameters={OSS_SUB[op]: ""},
            body=body,
            bucket=BUCKET,
        )
        try:
            out = srv.oss(cred, account=ALICE.account, attempts=1).invoke_operation(op_input)
        except OperationError as e:
            err: Any = e.unwrap()
            return Reply(err.status_code, {k.lower(): v for k, v in err.headers.items()}, err.snapshot or b"")
        return Reply(out.status_code, {k.lower(): v for k, v in out.headers.items()}, out.http_response.content)
    url, headers = (s3_request if dialect == "s3" else tos_request)(srv, op, body, cred)
    r = requests.post(url, data=body, headers=headers, timeout=60)
    return Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


def error_code(dialect: str, reply: Reply) -> str:
    """The error code, after checking that the reply has the dialect's error shape."""
    doc = json.loads(reply.body)
    if dialect == "s3":
        assert isinstance(doc["message"], str) and reply.headers["x-amzn-requestid"]
        return reply.headers["x-amzn-errortype"]
    if dialect == "tos":
        assert isinstance(doc["Message"], str) and doc["RequestId"] == reply.headers["x-tos-request-id"]
        assert re.fullmatch(r"\d{4}-\d{8}", doc["EC"])
        return str(doc["Code"])
    err = doc["Error"]
    assert isinstance(err["Message"], str) and err["RequestId"] == reply.headers["x-oss-request-id"] and err["EC"]
    return str(err["Code"])


async def log_objects(backend: Backend) -> int:
    """How many events were ever appended: catalog log entries plus every index's data log entries."""
    store = await backend.store()
    try:
        n = 0
        async for _obj in store.list("catalog/log/"):
            n += 1
        async for obj in store.list("data/"):
            n += "/log/" in obj.key
        return n
    finally:
        await store.close()


def setup_index(srv: RunningServer, metric: str = "cosine") -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName=BUCKET)
    c.create_index(vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=2, distanceMetric=metric)


def nested(depth: int) -> str:
    return '{"$and":[' * depth + '{"x":1}' + "]}" * depth


QUERY = '{@A,"topK":1,"queryVector":{"float32":[0,1]}'

# (name, operation, body with @A where the index address goes, kind of refusal)
CASES: list[tuple[str, str, str | bytes, str]] = [
    ("truncated JSON", "PutVectors", '{@A,"vectors":[', "malformed"),
    ("truncated string", "GetIndex", '{"indexName":"id', "malformed"),
    ("trailing garbage", "GetVectors", '{@A,"keys":["a"]} trailing', "malformed"),
    ("not JSON at all", "QueryVectors", "topK=1", "malformed"),
    ("invalid UTF-8", "GetIndex", b'{"indexName":"\xff\xfe"}', "malformed"),
    ("lone surrogate escape", "PutVectors", '{@A,"vectors":[{"key":"\\ud800","data":{"float32":[1,2]}}]}', "malformed"),
    ("a list, not an object", "GetIndex", "[1,2]", "validation"),
    ("null body", "GetIndex", "null", "validation"),
    ("topK as a string", "QueryVectors", '{@A,"topK":"1","queryVector":{"float32":[0,1]}}', "validation"),
    ("keys as a string", "GetVectors", '{@A,"keys":"a"}', "validation"),
    ("vector as a string", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":"[1,2]"}}]}', "validation"),
    ("booleans in a vector", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":[true,1]}}]}', "validation"),
    ("key as a number", "PutVectors", '{@A,"vectors":[{"key":5,"data":{"float32":[1,2]}}]}', "validation"),
    ("returnData as a string", "GetVectors", '{@A,"keys":["a"],"returnData":"yes"}', "validation"),
    ("unknown field", "QueryVectors", '{@A,"topK":1,"queryVector":{"float32":[0,1]},"bogus":1}', "validation"),
    ('"NaN" as a string', "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":["NaN",1]}}]}', "validation"),
    ("NaN token in a vector", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":[NaN,1]}}]}', "engine"),
    ("Infinity token", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":[Infinity,1]}}]}', "engine"),
    ("-Infinity token", "QueryVectors", '{@A,"topK":1,"queryVector":{"float32":[-Infinity,1]}}', "engine"),
    ("1e999 overflows to inf", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":[1e999,1]}}]}', "engine"),
    ("beyond float32", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":[1e39,1]}}]}', "engine"),
    (
        "NaN in metadata",
        "PutVectors",
        '{@A,"vectors":[{"key":"a","data":{"float32":[1,2]},"metadata":{"m":NaN}}]}',
        "engine",
    ),
    ("NaN in a query", "QueryVectors", '{@A,"topK":1,"queryVector":{"float32":[NaN,0]}}', "engine"),
    (
        "NaN in a filter",
        "QueryVectors",
        '{@A,"topK":1,"queryVector":{"float32":[0,1]},"filter":{"m":{"$gt":NaN}}}',
        "engine",
    ),
    ("dimension 3 into 2", "PutVectors", '{@A,"vectors":[{"key":"a","data":{"float32":[1,2,3]}}]}', "validation"),
    ("query of dimension 1", "QueryVectors", '{@A,"topK":1,"queryVector":{"float32":[1]}}', "validation"),
    (
        "query of dimension 100,000",
        "QueryVectors",
        '{@A,"topK":1,"queryVector":{"float32":[' + ",".join(["0.5"] * 100_000) + "]}}",
        "validation",
    ),
    (
        "ragged batch",
        "PutVectors",
        '{@A,"vectors":[{"key":"a","data":{"float32":[1,2]}},{"key":"b","data":{"float32":[1]}}]}',
        "validation",
    ),
    ("zero vector under cosine", "PutVectors", '{@A,"vectors":[{"key":"z","data":{"float32":[0,0]}}]}', "engine"),
    ("empty key", "PutVectors", '{@A,"vectors":[{"key":"","data":{"float32":[1,2]}}]}', "validation"),
    (
        "1,025-character key",
        "PutVectors",
        '{@A,"vectors":[{"key":"' + "k" * 1025 + '","data":{"float32":[1,2]}}]}',
        "validation",
    ),
    ("no vectors", "PutVectors", '{@A,"vectors":[]}', "validation"),
    (
        "501 vectors",
        "PutVectors",
        '{@A,"vectors":[' + ",".join(f'{{"key":"k{i}","data":{{"float32":[1,2]}}}}' for i in range(501)) + "]}",
        "validation",
    ),
    ("topK 0", "QueryVectors", '{@A,"topK":0,"queryVector":{"float32":[0,1]}}', "validation"),
    ("topK 2**70", "QueryVectors", '{@A,"topK":' + str(2**70) + ',"queryVector":{"float32":[0,1]}}', "validation"),
    ("filter nested 12 deep", "QueryVectors", QUERY + ',"filter":' + nested(12) + "}", "validation"),
    ("JSON nested 100,000 deep", "QueryVectors", QUERY + ',"filter":' + "[" * 10**5 + "]" * 10**5 + "}", "malformed"),
    (
        "filter of 100,000 conditions",
        "QueryVectors",
        '{@A,"topK":1,"queryVector":{"float32":[0,1]},"filter":{"$or":['
        + ",".join(f'{{"x":{i}}}' for i in range(100_000))
        + "]}}",
        "engine",
    ),
    (
        "unknown filter operator",
        "QueryVectors",
        '{@A,"topK":1,"queryVector":{"float32":[0,1]},"filter":{"x":{"$regex":"."}}}',
        "engine",
    ),
    ("filter as a number", "QueryVectors", '{@A,"topK":1,"queryVector":{"float32":[0,1]},"filter":5}', "engine"),
    (
        "$in with a non-list",
        "QueryVectors",
        '{@A,"topK":1,"queryVector":{"float32":[0,1]},"filter":{"x":{"$in":"a"}}}',
        "engine",
    ),
    ("101 keys to get", "GetVectors", '{@A,"keys":[' + ",".join(f'"k{i}"' for i in range(101)) + "]}", "validation"),
    ("segmentIndex past segmentCount", "ListVectors", '{@A,"segmentCount":2,"segmentIndex":5}', "validation"),
]


def address(dialect: str) -> str:
    """OSS names the bucket in the Host; the others in the body."""
    return f'"indexName":"{INDEX}"' if dialect == "oss" else f'"vectorBucketName":"{BUCKET}","indexName":"{INDEX}"'


def addressed(dialect: str, doc: dict[str, Any]) -> bytes:
    addr = {"indexName": INDEX} | ({} if dialect == "oss" else {"vectorBucketName": BUCKET})
    return json.dumps(addr | doc).encode()


def materialize(body: str | bytes, dialect: str) -> bytes:
    raw = body.encode() if isinstance(body, str) else body
    return raw.replace(b"@A", address(dialect).encode())


# Where a dialect's own reference names another answer: TOS's PutVectors refuses more than 500
# vectors with ServiceUnavailableException (seed 004, PutVectors request elements).
OWN_ANSWER = {("tos", "501 vectors"): (503, "ServiceUnavailableException")}


async def test_malformed_bodies_are_refused_in_each_dialect_and_write_nothing(backend: Backend) -> None:
    with running_server(backend) as srv:
        setup_index(srv)
        before = await log_objects(backend)
        failures = []
        for dialect in DIALECTS:
            for name, op, body, kind in CASES:
                reply = send(srv, dialect, op, materialize(body, dialect))
                status, expected = OWN_ANSWER.get((dialect, name), (400, CODES[(dialect, kind)]))
                try:
                    code = error_code(dialect, reply)
                except (ValueError, KeyError, AssertionError) as e:
                    code = f"<unparsable error body: {e!r}>"
                if reply.status != status or code != expected:
                    failures.append(f"{dialect} {name}: {reply.status} {code}, expected {status} {expected}")
        assert failures == [], "\n".join(failures)
        assert await log_objects(backend) == before, "a refused request wrote to the log"


async def test_unicode_keys_and_metadata_round_trip_in_each_dialect(backend: Backend) -> None:
    with running_server(backend) as srv:
        setup_index(srv, "euclidean")
        for dialect in DIALECTS:
            key = f"ключ-🔑-{dialect}-\u0301e\u200b"
            meta = {"名前": "値🔑", "emoji🙂": ["a", "ü"]}
            vector = {"key": key, "data": {"float32": [1, 2]}, "metadata": meta}
            put = send(srv, dialect, "PutVectors", addressed(dialect, {"vectors": [vector]}))
            assert put.status == 200, put.body
        got = srv.s3vectors().get_vectors(
            vectorBucketName=BUCKET,
            indexName=INDEX,
            keys=[f"ключ-🔑-{d}-\u0301e\u200b" for d in DIALECTS],
            returnMetadata=True,
        )["vectors"]
        assert sorted(v["key"] for v in got) == sorted(f"ключ-🔑-{d}-\u0301e\u200b" for d in DIALECTS)
        assert all(v["metadata"] == {"名前": "値🔑", "emoji🙂": ["a", "ü"]} for v in got)


async def test_duplicate_keys_in_one_batch(backend: Backend) -> None:
    """S3 and TOS take a batch with a key twice (the later one wins); OSS refuses the whole batch."""
    with running_server(backend) as srv:
        setup_index(srv, "euclidean")
        for dialect in DIALECTS:
            body = {
                "vectors": [
                    {"key": "twice", "data": {"float32": [1, 1]}, "metadata": {"d": dialect, "n": 1}},
                    {"key": "twice", "data": {"float32": [2, 2]}, "metadata": {"d": dialect, "n": 2}},
                ],
            }
            before = await log_objects(backend)
            reply = send(srv, dialect, "PutVectors", addressed(dialect, body))
            if dialect == "oss":
                assert (reply.status, error_code(dialect, reply)) == (400, "VectorIndexParameterInvalid")
                assert await log_objects(backend) == before
                continue
            assert reply.status == 200, reply.body
            got = srv.s3vectors().get_vectors(
                vectorBucketName=BUCKET, indexName=INDEX, keys=["twice"], returnData=True, returnMetadata=True
            )["vectors"]
            assert got == [{"key": "twice", "data": {"float32": [2.0, 2.0]}, "metadata": {"d": dialect, "n": 2}}]


# --- bodies over the limit, and slow bodies: raw sockets, since no HTTP library sends them -------

DIALECT_HEADERS = {
    "s3": {"x-amz-date": "20260101T000000Z"},
    "tos": {"x-tos-content-sha256": "UNSIGNED-PAYLOAD"},
    "oss": {"x-oss-date": "20260101T000000Z", "x-oss-content-sha256": "UNSIGNED-PAYLOAD"},
}
LIMIT_CODES = {"s3": ("ValidationException", 400), "tos": ("ValidationException", 400), "oss": ("InvalidArgument", 400)}
TIMEOUT_CODES = {
    "s3": ("RequestTimeoutException", 408),
    "tos": ("RequestTimeoutException", 408),
    "oss": ("RequestTimeout", 400),
}


@pytest.fixture
def local_srv(tmp_path: Path) -> Iterator[RunningServer]:
    """Body limits are enforced before storage is touched: one backend is enough."""
    with running_server(make_backend("local", tmp_path, lambda: ""), body_timeout=1.0) as srv:
        yield srv


def head(srv: RunningServer, dialect: str, length: str) -> bytes:
    """The head of a POST with the dialect's headers (the signature cannot be checked before the
    body is read, so the body rules come first and apply to signed and unsigned requests alike)."""
    lines = ["POST /PutVectors HTTP/1.1", f"Host: 127.0.0.1:{srv.port}", "Content-Type: application/json", length]
    lines += [f"{k}: {v}" for k, v in DIALECT_HEADERS[dialect].items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_reply(sock: socket.socket, deadline: float) -> tuple[Reply, bool]:
    """The reply, and whether the server closed the connection after it."""
    data = b""
    closed = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.05)
        if not ready:
            if b"\r\n\r\n" in data and _complete(data):
                break
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            # The server replied and closed while the client was still sending (a loaded machine
            # can delay the client past its poll): what arrived before the reset is the reply.
            chunk = b""
        if not chunk:
            closed = True
            break
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Reply(int(lines[0].split()[1]), headers, body), closed


def _complete(data: bytes) -> bool:
    raw_head, _, body = data.partition(b"\r\n\r\n")
    for line in raw_head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_declared_oversized_body_is_refused_before_it_is_sent(local_srv: RunningServer, dialect: str) -> None:
    with socket.create_connection(("127.0.0.1", local_srv.port)) as sock:
        sock.sendall(head(local_srv, dialect, f"Content-Length: {1024**3}") + b'{"vectors":[')  # 1 GiB declared
        started = time.monotonic()
        reply, _ = read_reply(sock, started + 10)
    assert (error_code(dialect, reply), reply.status) == LIMIT_CODES[dialect]
    assert time.monotonic() - started < 5  # answered at once, without waiting for the GiB


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_chunked_body_is_refused_once_it_passes_the_limit(local_srv: RunningServer, dialect: str) -> None:
    chunk = b"x" * (1 << 20)
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", local_srv.port)) as sock:
        sock.sendall(head(local_srv, dialect, "Transfer-Encoding: chunked"))
        while sent < 200 * len(chunk):  # 200 MiB if the server never answers
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(frame)
            sent += len(frame)
        reply, _ = read_reply(sock, time.monotonic() + 10)
    assert (error_code(dialect, reply), reply.status) == LIMIT_CODES[dialect]
    # Answered soon after 20 MiB (what is past it sat in socket buffers, or was read and dropped).
    assert 20 * len(chunk) < sent < 60 * len(chunk)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_client_sending_all_of_an_oversized_body_reads_the_error(local_srv: RunningServer, dialect: str) -> None:
    """As the SDKs do: send every byte, then read. The server drops the rest and answers."""
    row = '{"key":"k","data":{"float32":[' + ",".join(["0.123456789"] * 4096) + "]}}"
    body = materialize('{@A,"vectors":[' + ",".join([row] * 500) + "]}", dialect)
    assert len(body) > 20 * 1024 * 1024
    reply = send(local_srv, dialect, "PutVectors", body)
    assert (error_code(dialect, reply), reply.status) == LIMIT_CODES[dialect]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_body_trickling_in_is_cut_off_at_the_deadline(local_srv: RunningServer, dialect: str) -> None:
    with socket.create_connection(("127.0.0.1", local_srv.port)) as sock:
        sock.sendall(head(local_srv, dialect, "Content-Length: 1000"))
        started = time.monotonic()
        reply, closed = None, False
        for byte in b'{"vectors":[' * 5:  # a byte every 0.2 s, 12 s in all: the 1 s deadline stops it
            if select.select([sock], [], [], 0.2)[0]:
                reply, closed = read_reply(sock, time.monotonic() + 5)
                break
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):  # closed between the poll and the send
                reply, closed = read_reply(sock, time.monotonic() + 5)
                break
        elapsed = time.monotonic() - started
    assert reply is not None
    assert (error_code(dialect, reply), reply.status) == TIMEOUT_CODES[dialect]
    assert 1.0 <= elapsed < 4 and closed


def test_the_body_deadline_defaults_to_30_seconds() -> None:
    from api.config import ServerConfig

    assert ServerConfig().body_timeout == 30.0 and ServerConfig().max_body_bytes == 20 * 1024 * 1024
