"""Security cases that tests/api/test_api_auth.py does not already cover, in every dialect.

Already covered there (and in tests/api/test_api_oss.py, tests/api/test_admin.py): a tampered S3 body,
wrong secret and unknown key (S3, TOS, OSS), an S3 request with no signature, the server clock
16 minutes ahead (S3, TOS), policy Deny over Allow, S3 cross-account reads, OSS Content-MD5, and
the audit endpoint refusing a non-owner. Here: tampering with the path, query and headers after
signing; dates too old and too new in all three dialects; a captured request replayed after the
skew window; unsigned TOS and OSS requests; cross-account listing through TOS and OSS; the audit
trail of all of these read back through the engine; no secret in any log line; admin endpoints
refusing non-owners, other dialects and unsigned callers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from tos.exceptions import TosServerError

from api.config import Credential
from engine.audit.query import AuditQuery, AuditRecord
from engine.clock import ManualClock
from tests.api.test_admin import admin
from tests.api.test_hostile import BUCKET, INDEX, Reply, error_code, s3_request, send, setup_index, tos_request
from tests.backends import Backend
from tests.server import ALICE, BOB, RunningServer, running_server

DENIED = {"s3": "AccessDeniedException", "tos": "AccessDeniedException"}


def post(url: str, headers: dict[str, str], body: bytes) -> Reply:
    r = requests.post(url, data=body, headers=headers, timeout=30)
    return Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)


async def audited(backend: Backend, q: AuditQuery | None = None) -> list[AuditRecord]:
    async with backend.engine() as engine:
        return await engine.audit_records(q or AuditQuery(outcome="denied"))


def one_second_later(stamp: str) -> str:
    t = time.strptime(stamp, "%Y%m%dT%H%M%SZ")
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.mktime(t) - time.timezone + 1))


async def test_tampering_after_signing_is_refused_and_audited(srv: RunningServer, backend: Backend) -> None:
    setup_index(srv)
    body = f'{{"vectorBucketName":"{BUCKET}","indexName":"{INDEX}"}}'.encode()
    for dialect, sign in (("s3", s3_request), ("tos", tos_request)):
        url, headers = sign(srv, "GetIndex", body)
        assert post(url, headers, body).status == 200  # untouched, it passes
        date = "x-amz-date" if dialect == "s3" else "x-tos-date"
        date = next(k for k in headers if k.lower() == date)
        tampered = [
            ("path", url.replace("/GetIndex", "/DeleteIndex"), headers, body),
            ("query", url + "?maxResults=1", headers, body),
            ("header", url, headers | {date: one_second_later(headers[date])}, body),
            ("signature", url, headers | {"Authorization": headers["Authorization"].replace("ture=", "ture=0")}, body),
        ]
        if dialect == "s3":  # TOS signs UNSIGNED-PAYLOAD: its body is not covered (see docs/security.md)
            tampered.append(("body", url, headers, body.replace(INDEX.encode(), b"ixx")))
        for what, u, h, b in tampered:
            reply = post(u, h, b)
            assert (reply.status, error_code(dialect, reply)) == (403, DENIED[dialect]), (dialect, what, reply)
    assert srv.s3vectors().get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]  # not deleted
    reasons = [(r.dialect, r.detail.get("reason", "")) for r in await audited(backend)]
    assert sum(d == "s3" and ("does not match" in r or "malformed" in r) for d, r in reasons) >= 5
    assert sum(d == "tos" and ("does not match" in r or "malformed" in r) for d, r in reasons) >= 4


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60], ids=["expired", "future-dated"])
async def test_requests_dated_outside_the_skew_window_in_every_dialect(backend: Backend, offset: float) -> None:
    """The server's clock moved by ``offset``: a fresh signature is then too old or too new."""
    clock = ManualClock(start=time.time() + offset)
    with running_server(backend, clock=clock) as srv:
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError) as ce:
            srv.s3vectors().list_vector_buckets()
        assert ce.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(TosServerError) as te:
            srv.tos().list_vector_buckets()
        assert (te.value.status_code, te.value.code) == (403, "AccessDeniedException")
        reply = send(srv, "oss", "GetIndex", b'{"indexName":"idx"}')
        assert (reply.status, error_code("oss", reply)) == (403, "RequestTimeTooSkewed")
    records = await audited(backend)
    assert {r.dialect for r in records if "too large" in r.detail.get("reason", "")} == {"s3", "tos", "oss"}


async def test_a_captured_request_replayed_after_the_skew_window_is_refused(backend: Backend) -> None:
    clock = ManualClock(start=time.time())
    with running_server(backend, clock=clock) as srv:
        setup_index(srv)
        body = f'{{"vectorBucketName":"{BUCKET}","indexName":"{INDEX}","keys":["a"]}}'.encode()
        url, headers = s3_request(srv, "DeleteVectors", body)
        assert post(url, headers, body).status == 200
        clock.advance(10 * 60)  # within the window a replay is still valid SigV4 (and DeleteVectors idempotent)
        assert post(url, headers, body).status == 200
        clock.advance(6 * 60)  # now 16 minutes after signing
        reply = post(url, headers, body)
        assert (reply.status, error_code("s3", reply)) == (403, "AccessDeniedException")
        tos_url, tos_headers = tos_request(srv, "GetIndex", body)
        clock.advance(16 * 60)
        reply = post(tos_url, tos_headers, body)
        assert (reply.status, error_code("tos", reply)) == (403, "AccessDeniedException")
    assert len([r for r in await audited(backend) if "too large" in r.detail.get("reason", "")]) == 2


async def test_unsigned_requests_are_refused_in_every_dialect(srv: RunningServer, backend: Backend) -> None:
    setup_index(srv)
    before = REGISTRY.get_sample_value("vecledger_auth_failures_total", {"outcome": "unknown_key"}) or 0.0
    body = b'{"indexName":"idx"}'
    unsigned = {
        "s3": ({}, "AccessDeniedException", 403),
        "tos": ({"x-tos-content-sha256": "UNSIGNED-PAYLOAD"}, "AccessDeniedException", 403),
        "oss": ({"x-oss-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}, "AccessDenied", 403),
    }
    for dialect, (headers, code, status) in unsigned.items():
        host = f"{BUCKET}-{ALICE.account}.127.0.0.1:{srv.port}" if dialect == "oss" else f"127.0.0.1:{srv.port}"
        path = "/?getVectorIndex" if dialect == "oss" else "/GetIndex"
        reply = post(f"{srv.url}{path}", headers | {"Host": host}, body)
        assert (reply.status, error_code(dialect, reply)) == (status, code), dialect
    # Signed by nobody: the operator's log and a metric, never any account's audit (docs/audit.md).
    assert [r for r in await audited(backend) if "not signed" in r.detail.get("reason", "")] == []
    assert REGISTRY.get_sample_value("vecledger_auth_failures_total", {"outcome": "unknown_key"}) == before + 3


async def test_another_account_cannot_list_or_read_buckets_in_any_dialect(srv: RunningServer, backend: Backend) -> None:
    setup_index(srv)
    assert srv.s3vectors(BOB).list_vector_buckets()["vectorBuckets"] == []
    assert srv.tos(BOB).list_vector_buckets().vector_buckets == []
    import alibabacloud_oss_v2.vectors.models as M

    assert not srv.oss(BOB).list_vector_buckets(M.ListVectorBucketsRequest()).buckets
    assert [b.name for b in srv.oss(ALICE).list_vector_buckets(M.ListVectorBucketsRequest()).buckets] == [BUCKET]

    with pytest.raises(TosServerError) as te:
        srv.tos(BOB).get_index(BUCKET, ALICE.account, INDEX)  # Alice's bucket, named by its host
    assert (te.value.status_code, te.value.code) == (403, "AccessDeniedException")
    reply = send(srv, "oss", "GetIndex", b'{"indexName":"idx"}', cred=BOB)  # Host: hostile-<Alice's account>
    assert (reply.status, error_code("oss", reply)) == (403, "AccessDenied")
    reply = send(srv, "oss", "QueryVectors", b'{"indexName":"idx","topK":1,"queryVector":{"float32":[1,0]}}', BOB)
    assert (reply.status, error_code("oss", reply)) == (403, "AccessDenied")

    status, out = admin(srv, "audit", {"vectorBucketName": BUCKET, "outcome": "denied"})  # Alice reads her trail
    assert status == 200
    assert {(r["dialect"], r["operation"]) for r in out["records"] if r["principal"] == BOB.principal} >= {
        ("tos", "GetIndex"),
        ("oss", "GetIndex"),
        ("oss", "QueryVectors"),
    }
    status, out = admin(srv, "audit", {"vectorBucketName": BUCKET}, cred=BOB)
    assert status == 404  # and Bob cannot read it


def test_admin_endpoints_refuse_non_owners_other_dialects_and_the_unsigned(srv: RunningServer) -> None:
    setup_index(srv)
    bodies = {
        "restore": {"vectorBucketName": BUCKET, "indexName": INDEX, "toSeq": 0, "intoIndexName": "stolen"},
        "quota": {"vectorBucketName": BUCKET, "indexName": INDEX, "requestsPerSecond": 0.001},
        "replay-check": {"vectorBucketName": BUCKET, "indexName": INDEX},
        "audit": {"vectorBucketName": BUCKET},
    }
    for action, body in bodies.items():
        status, out = admin(srv, action, body, cred=BOB)
        assert (status, out["code"]) == (404, "NotFoundException"), action  # Bob has no such bucket
        status, out = admin(srv, action, body, cred=Credential(ALICE.access_key_id, "guess", ALICE.account))
        assert (status, out["code"]) == (403, "AccessDeniedException"), action
        reply = post(f"{srv.url}/_vecledger/{action}", {"Content-Type": "application/json"}, b"{}")
        assert (reply.status, error_code("s3", reply)) == (403, "AccessDeniedException"), action
        url, headers = tos_request(srv, f"_vecledger/{action}", b"{}")
        reply = post(url, headers, b"{}")  # a TOS-signed call is not an admin call
        assert (reply.status, error_code("tos", reply)) == (404, "UnknownOperationException"), action
    names = [i["indexName"] for i in srv.s3vectors().list_indexes(vectorBucketName=BUCKET)["indexes"]]
    assert names == [INDEX]  # nothing was restored for Bob


def test_secret_keys_never_reach_the_logs(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = Credential(ALICE.access_key_id, "wrong-secret-xyzzy", ALICE.account)
    with running_server(backend) as srv:
        setup_index(srv)
        for cred in (ALICE, BOB, wrong):
            for dialect in ("s3", "tos", "oss"):
                send(srv, dialect, "GetIndex", b'{"indexName":"idx"}', cred)
                send(srv, dialect, "PutVectors", b'{"indexName":"idx","vectors":[{"key":"a"}]}', cred)
                send(srv, dialect, "QueryVectors", b"{not json", cred)
    # Every log line of the process: the server's, and the SDKs' (which log requests, signed headers included).
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_info or ''}" for r in caplog.records)
    # The capture saw the signed traffic: 27 requests, each logged by urllib3 (how many other lines
    # the SDKs log varies with load and versions).
    assert text.count('"POST ') >= 27
    for secret in (ALICE.secret_access_key, BOB.secret_access_key, wrong.secret_access_key):
        assert secret not in text


async def test_secret_keys_never_reach_the_audit_log(srv: RunningServer, backend: Backend) -> None:
    wrong = Credential(ALICE.access_key_id, "wrong-secret-plugh", ALICE.account)
    for dialect in ("s3", "tos", "oss"):
        send(srv, dialect, "GetIndex", b'{"indexName":"idx"}', wrong)
    records: list[Any] = await audited(backend, AuditQuery())
    assert len(records) >= 3
    dump = repr([r.to_json() for r in records])
    assert "wrong-secret-plugh" not in dump and ALICE.secret_access_key not in dump
