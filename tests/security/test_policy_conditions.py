"""``Condition`` in bucket policies: a matrix of IAM's operators over the global keys, evaluated as
IAM documents them, then end to end through boto3 (source address, TLS, principal ARN, time).

Before: any ``Condition`` was refused at put time, so policies users copy from AWS's examples
(deny non-TLS, allow from a network) could not be used at all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.auth import conditions
from api.auth.conditions import RequestFacts
from api.errors import ApiError
from tests.api.test_api_auth import BUCKET_ARN, INDEX_ARN, code_of, setup_shared
from tests.server import ALICE, BOB, CAROL, RunningServer

NOW = 1_790_000_000.0  # 2026-09-21
ROOT = RequestFacts("10.1.2.3", True, f"arn:aws:iam::{BOB.account}:root", BOB.account, None, NOW, "us-east-1")
USER = RequestFacts("10.1.2.3", False, CAROL.principal, CAROL.account, "carol", NOW, "us-east-1")


@pytest.mark.parametrize(
    ("block", "facts", "holds"),
    [
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, ROOT, True),
        ({"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.1.2.3"]}}, ROOT, True),  # values OR
        ({"IpAddress": {"aws:SourceIp": "192.168.0.0/16"}}, ROOT, False),
        ({"NotIpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.0.0.0/8"]}}, ROOT, False),  # none may match
        ({"NotIpAddress": {"aws:SourceIp": "192.168.0.0/16"}}, ROOT, True),
        ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, ROOT, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, ROOT, False),
        ({"Bool": {"aws:SecureTransport": False}}, USER, True),
        ({"Bool": {"aws:SecureTransport": "TRUE"}}, ROOT, True),
        ({"StringEquals": {"aws:PrincipalAccount": BOB.account}}, USER, True),
        ({"StringNotEquals": {"aws:PrincipalAccount": [BOB.account, ALICE.account]}}, USER, False),
        ({"StringEqualsIgnoreCase": {"aws:username": "CAROL"}}, USER, True),
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/c?rol"}}, USER, True),
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, ROOT, False),
        ({"StringNotLike": {"aws:PrincipalArn": "*:root"}}, USER, True),
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{BOB.account}:*"}}, ROOT, True),
        ({"ArnEquals": {"aws:PrincipalArn": CAROL.principal}}, ROOT, False),
        ({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ALICE.account}:*"}}, USER, True),
        ({"StringEquals": {"aws:PrincipalType": "User"}}, USER, True),
        ({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, USER, False),
        ({"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}, ROOT, True),
        ({"DateGreaterThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}, ROOT, False),
        ({"DateGreaterThanEquals": {"aws:CurrentTime": "2026-09-21"}}, ROOT, True),
        ({"DateLessThanEquals": {"aws:EpochTime": NOW}}, ROOT, True),
        ({"NumericLessThan": {"aws:EpochTime": str(int(NOW))}}, ROOT, False),
        # A key the request does not have: false, except for negated operators, IfExists and Null.
        ({"StringEquals": {"aws:username": "carol"}}, ROOT, False),
        ({"StringNotEquals": {"aws:username": "carol"}}, ROOT, True),
        ({"StringEqualsIfExists": {"aws:username": "carol"}}, ROOT, True),
        ({"StringEqualsIfExists": {"aws:username": "mallory"}}, USER, False),
        ({"Null": {"aws:username": "true"}}, ROOT, True),
        ({"Null": {"aws:username": "true"}}, USER, False),
        ({"ForAnyValue:StringEquals": {"aws:username": ["x", "carol"]}}, USER, True),
        ({"ForAllValues:StringEquals": {"aws:username": "x"}}, ROOT, True),
        # Operators AND together, and so do keys within one operator.
        ({"Bool": {"aws:SecureTransport": "true"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, ROOT, True),
        ({"Bool": {"aws:SecureTransport": "true"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, USER, False),
        ({"StringEquals": {"aws:PrincipalAccount": BOB.account, "aws:username": "carol"}}, ROOT, False),
    ],
)
def test_condition_matrix(block: dict[str, Any], facts: RequestFacts, holds: bool) -> None:
    assert conditions.hold(conditions.parse(block), facts) is holds


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"StringEquals": {"s3vectors:sseType": "AES256"}}, "unsupported condition key"),
        ({"StringMaybe": {"aws:username": "x"}}, "unsupported condition operator"),
        ({"ForSomeValues:StringEquals": {"aws:username": "x"}}, "unsupported condition operator"),
        ({"NullIfExists": {"aws:username": "true"}}, "unsupported condition operator"),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}}, "aws:SourceIp"),
        ({"IpAddress": {"aws:username": "10.0.0.0/8"}}, "cannot be used with"),
        ({"DateLessThan": {"aws:CurrentTime": "next tuesday"}}, "not a date"),
        ({"Bool": {"aws:SecureTransport": "yes"}}, "not true or false"),
        ({"StringEquals": {"aws:username": []}}, "at least one value"),
        ({"StringEquals": "aws:username"}, "must map condition keys"),
        ([], "non-empty object"),
    ],
)
def test_conditions_a_server_cannot_evaluate_are_refused(block: Any, message: str) -> None:
    with pytest.raises(ApiError) as e:
        conditions.parse(block)
    assert message in e.value.message


def _policy(condition: dict[str, Any], effect: str = "Allow", principal: str = BOB.account) -> str:
    statement = {"Effect": effect, "Principal": {"AWS": principal}, "Action": "s3vectors:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement | {"Condition": condition}]})


def test_conditions_decide_real_requests(srv: RunningServer) -> None:
    setup_shared(srv)
    a, b = srv.s3vectors(ALICE), srv.s3vectors(BOB)

    def bob_reads() -> bool:
        try:
            b.get_index(indexArn=INDEX_ARN)
            return True
        except Exception as e:
            assert "AccessDenied" in str(e)
            return False

    cases = [
        ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, True),  # the test client is on loopback
        ({"NotIpAddress": {"aws:SourceIp": "127.0.0.1/32"}}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, False),  # plain HTTP
        ({"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{BOB.account}:root"}}, True),
        ({"DateGreaterThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}, False),
    ]
    for condition, allowed in cases:
        a.put_vector_bucket_policy(vectorBucketName="shared", policy=_policy(condition))
        assert bob_reads() is allowed, condition
    # AWS's own example: deny anything not over TLS, on top of an Allow. Over HTTP it bites even
    # the owner's reads.
    deny_plain = _policy({"Bool": {"aws:SecureTransport": "false"}}, effect="Deny", principal="*")
    a.put_vector_bucket_policy(vectorBucketName="shared", policy=deny_plain)
    assert code_of(a.get_index, indexArn=INDEX_ARN) == "AccessDeniedException"
    a.delete_vector_bucket_policy(vectorBucketName="shared")  # the root may still repair it
    assert a.get_vector_bucket(vectorBucketArn=BUCKET_ARN)["vectorBucket"]["vectorBucketName"] == "shared"
    bad = _policy({"StringEquals": {"aws:SourceVpc": "vpc-1"}})
    assert code_of(a.put_vector_bucket_policy, vectorBucketName="shared", policy=bad) == "ValidationException"
