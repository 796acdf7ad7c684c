"""Records planted in someone else's audit, and the audit log flooded.

Before: an unsigned request was filed under whatever account and bucket its path named (anyone
could write "denied" records into any account's audit), by a regular expression quadratic in the
path, and every refused request wrote a durable record with no rate limit.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from api.auth.failures import AUDIT_BURST, MAX_RECORDED_PATH
from api.config import Credential
from engine.audit.query import parse_resource
from engine.clock import ManualClock
from tests.api.test_admin import admin
from tests.backends import Backend
from tests.server import ALICE, BOB, RunningServer, running_server

VICTIM_ARN = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/victim"


def records(srv: RunningServer, cred: Credential = ALICE, **body: Any) -> list[dict[str, Any]]:
    status, reply = admin(srv, "audit", {"outcome": "denied"} | body, cred)
    assert status == 200, reply
    return list(reply["records"])


def test_unsigned_requests_cannot_plant_records_in_another_accounts_audit(srv: RunningServer) -> None:
    srv.s3vectors(ALICE).create_vector_bucket(vectorBucketName="victim")
    forged = (
        "AWS4-HMAC-SHA256 Credential=AKIAFORGED/20261202/us-east-1/s3vectors/aws4_request, "
        + "SignedHeaders=host, Signature="
        + "0" * 64
    )
    for path, headers in [
        (f"/{VICTIM_ARN}", {}),
        (f"/x:{ALICE.account}:bucket/victim", {}),
        (f"/{ALICE.account}/victim/idx", {"authorization": forged}),
    ]:
        r = requests.post(srv.url + path, data=b"{}", headers=headers, timeout=30)
        assert r.status_code == 403
    assert records(srv, vectorBucketName="victim") == []
    assert records(srv) == []  # nor account-wide


def test_a_known_key_with_a_bad_signature_is_its_owners_to_see(srv: RunningServer) -> None:
    srv.s3vectors(ALICE).create_vector_bucket(vectorBucketName="victim")
    stolen_id = Credential(ALICE.access_key_id, "guessed-secret", ALICE.account)
    long_path = "/" + "x" * 5000
    for path in ("/ListVectorBuckets", long_path):
        r = requests.post(srv.url + path, data=b"{}", headers=_signed_by(srv, stolen_id, path), timeout=30)
        assert r.status_code == 403
    srv.s3vectors(BOB).list_vector_buckets()  # Bob's own requests leave Alice's audit alone
    mine = records(srv)  # Alice's root asks account-wide
    assert len(mine) == 2 and {r["principal"] for r in mine} == {ALICE.principal}
    assert all(len(r["resource"]) <= MAX_RECORDED_PATH + 3 for r in mine)
    assert records(srv, BOB) == []


def test_a_cross_account_denial_shows_in_the_owners_audit_only_when_the_bucket_exists(srv: RunningServer) -> None:
    srv.s3vectors(ALICE).create_vector_bucket(vectorBucketName="victim")
    b = srv.s3vectors(BOB)
    for arn in (VICTIM_ARN, f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/nonexistent"):
        try:
            b.get_vector_bucket(vectorBucketArn=arn)
        except Exception as e:
            assert "AccessDenied" in str(e)
    owner_view = records(srv, vectorBucketName="victim")
    assert [r["principal"] for r in owner_view] == [BOB.principal]
    assert [r["resource"] for r in records(srv)] == [VICTIM_ARN]  # not the bucket that does not exist


def test_failed_authentication_is_audited_at_a_bounded_rate(backend: Backend) -> None:
    clock = ManualClock(start=time.time())  # no time passes: no tokens come back
    with running_server(backend, clock=clock) as srv:
        wrong = Credential(ALICE.access_key_id, "wrong", ALICE.account)
        client = srv.s3vectors(wrong, retries={"max_attempts": 1})
        for _ in range(int(AUDIT_BURST) + 20):
            try:
                client.list_vector_buckets()
            except Exception as e:
                assert "AccessDenied" in str(e) or "SignatureDoesNotMatch" in str(e)
        assert len(records(srv)) == AUDIT_BURST


def test_resources_are_parsed_in_linear_time_and_correctly() -> None:
    assert parse_resource(VICTIM_ARN + "/index/idx") == (ALICE.account, "victim", "idx")
    assert parse_resource(f"trn:tosvectors:cn-beijing:{ALICE.account}:bucket/victim") == (ALICE.account, "victim", None)
    assert parse_resource(f"acs:ossvector:cn-hangzhou:{ALICE.account}:victim/index/i") == (ALICE.account, "victim", "i")
    assert parse_resource(f"{ALICE.account}/victim/idx") == (ALICE.account, "victim", "idx")
    assert parse_resource("/x:1:" * 200_000) == (None, None, None)  # quadratic before: minutes
    assert parse_resource(f"arn:aws:s3vectors:r:{ALICE.account}:bucket/") == (None, None, None)
    assert parse_resource("arn:aws:s3vectors:r:alice:bucket/b") == (None, None, None)


def _signed_by(srv: RunningServer, cred: Credential, path: str) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=srv.url + path, data=b"{}", headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(cred.access_key_id, cred.secret_access_key), "s3vectors", "us-east-1").add_auth(req)
    return dict(req.headers.items())
