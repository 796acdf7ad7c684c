"""Signatures, accounts and bucket policies, through the real SDKs; refusals land in the audit log."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tos.exceptions import TosServerError

from api.config import Credential
from engine import keys
from engine.clock import ManualClock
from engine.log import read_log
from tests.backends import Backend
from tests.server import ALICE, BOB, CAROL, RunningServer, running_server

BUCKET_ARN = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/shared"
INDEX_ARN = f"{BUCKET_ARN}/index/docs"


def code_of(fn: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return str(e.value.response["Error"]["Code"])


async def audit_entries(backend: Backend) -> list[dict[str, Any]]:
    store = await backend.store()
    try:
        out = []
        async for obj in read_log(store, keys.AUDIT_LOG):
            for ev in obj.events:
                out.append(ev.json() | {"principal": ev.principal, "dialect": ev.dialect})
        return out
    finally:
        await store.close()


def setup_shared(srv: RunningServer) -> None:
    a = srv.s3vectors(ALICE)
    a.create_vector_bucket(vectorBucketName="shared")
    a.create_index(
        vectorBucketName="shared", indexName="docs", dataType="float32", dimension=2, distanceMetric="euclidean"
    )
    a.put_vectors(indexArn=INDEX_ARN, vectors=[{"key": "k", "data": {"float32": [1, 2]}, "metadata": {"m": 1}}])


async def test_other_accounts_are_denied_until_a_policy_allows(srv: RunningServer, backend: Backend) -> None:
    setup_shared(srv)
    a, b, carol = srv.s3vectors(ALICE), srv.s3vectors(BOB), srv.s3vectors(CAROL)
    query = {"indexArn": INDEX_ARN, "topK": 1, "queryVector": {"float32": [1, 2]}}

    assert b.list_vector_buckets()["vectorBuckets"] == []  # accounts never see each other's buckets
    assert code_of(b.get_vector_bucket, vectorBucketArn=BUCKET_ARN) == "AccessDeniedException"
    assert code_of(b.query_vectors, **query) == "AccessDeniedException"
    assert code_of(b.get_vector_bucket, vectorBucketName="shared") == "NotFoundException"  # Bob's own namespace

    a.put_vector_bucket_policy(
        vectorBucketName="shared",
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{BOB.account}:root"},
                        "Action": ["s3vectors:QueryVectors", "s3vectors:GetVectors"],
                        "Resource": INDEX_ARN,
                    },
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": f"arn:aws:iam::{BOB.account}:user/carol"},
                        "Action": "s3vectors:*",
                        "Resource": f"{BUCKET_ARN}*",
                    },
                ],
            }
        ),
    )
    hits = b.query_vectors(**query, returnMetadata=True)["vectors"]
    assert hits == [{"key": "k", "metadata": {"m": 1}}]
    assert code_of(b.put_vectors, indexArn=INDEX_ARN, vectors=[{"key": "x", "data": {"float32": [0, 1]}}]) == (
        "AccessDeniedException"
    )
    assert code_of(carol.query_vectors, **query) == "AccessDeniedException"  # explicit Deny beats the Allow

    # QueryVectors with metadata also needs GetVectors: take that away and the same query is refused.
    a.put_vector_bucket_policy(
        vectorBucketName="shared",
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": BOB.account},
                        "Action": "s3vectors:QueryVectors",
                        "Resource": INDEX_ARN,
                    }
                ],
            }
        ),
    )
    assert [h["key"] for h in b.query_vectors(**query)["vectors"]] == ["k"]
    assert code_of(b.query_vectors, **query, returnMetadata=True) == "AccessDeniedException"
    assert code_of(b.query_vectors, **query, filter={"m": 1}) == "AccessDeniedException"

    denied = await audit_entries(backend)
    assert len(denied) >= 6
    assert {d["operation"] for d in denied} >= {"GetVectorBucket", "QueryVectors", "PutVectors"}
    assert any(d["principal"] == CAROL.principal and "deny" in d["reason"] for d in denied)


async def test_bad_signatures_are_refused_and_audited(srv: RunningServer, backend: Backend) -> None:
    setup_shared(srv)
    wrong = Credential(ALICE.access_key_id, "not-the-secret", ALICE.account)
    unknown = Credential("AKIAUNKNOWN", "whatever", ALICE.account)
    for cred in (wrong, unknown):
        assert code_of(srv.s3vectors(cred).list_vector_buckets) == "AccessDeniedException"

    tampered = srv.s3vectors(ALICE)

    def tamper(request: Any, **_: Any) -> None:
        request.body = request.body.replace(b'"shared"', b'"shaped"')  # after signing

    tampered.meta.events.register("before-send.s3vectors.GetVectorBucket", tamper)
    assert code_of(tampered.get_vector_bucket, vectorBucketName="shared") == "AccessDeniedException"

    import urllib.error
    import urllib.request

    unsigned = urllib.request.Request(f"{srv.url}/ListVectorBuckets", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(unsigned)
    assert e.value.code == 403 and e.value.headers["x-amzn-ErrorType"] == "AccessDeniedException"

    with pytest.raises(TosServerError) as te:
        srv.tos(wrong).list_vector_buckets()
    assert (te.value.status_code, te.value.code) == (403, "AccessDeniedException")

    entries = await audit_entries(backend)
    reasons = [d["reason"] for d in entries]
    # A known key with a bad signature is its owner's to see; an unknown key or none is nobody's.
    misused = [d for d in entries if "signature does not match" in d["reason"]]
    assert len(misused) >= 3 and {d["principal"] for d in misused} == {ALICE.principal}
    assert {d["access_key_id"] for d in misused} == {ALICE.access_key_id}
    assert not any("does not exist" in r for r in reasons)
    assert not any("not signed" in r for r in reasons)


def test_requests_outside_the_clock_skew_window_are_refused(backend: Backend) -> None:
    clock = ManualClock(start=time.time() + 16 * 60)  # the server's clock runs 16 minutes ahead
    with running_server(backend, clock=clock) as srv:
        assert code_of(srv.s3vectors(ALICE).list_vector_buckets) == "AccessDeniedException"
        with pytest.raises(TosServerError) as te:
            srv.tos(ALICE).list_vector_buckets()
        assert te.value.status_code == 403
    clock = ManualClock(start=time.time() + 14 * 60)  # within the 15-minute bound
    with running_server(backend, clock=clock) as srv:
        assert srv.s3vectors(ALICE).list_vector_buckets()["vectorBuckets"] == []
