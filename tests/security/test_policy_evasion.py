"""Bucket policies as an attacker probes them: elements that used to be ignored, the owner's users
skipping a Deny, the admin endpoints around the policy, and metadata read through a list filter.

Every case is a request a hostile principal sends through the SDK; each failed on the code before
these fixes (NotResource ignored, any user of the owning account exempt from a Deny of the policy
operations, admin actions never authorised, ListVectors' filter needing no GetVectors).
"""

from __future__ import annotations

import json
from typing import Any

import alibabacloud_oss_v2.vectors.models as M
import pytest
from alibabacloud_oss_v2.exceptions import OperationError
from alibabacloud_oss_v2.types import CaseInsensitiveDict, OperationInput

from tests.api.test_admin import admin
from tests.api.test_api_auth import BUCKET_ARN, INDEX_ARN, code_of, setup_shared
from tests.server import ALICE, BOB, CAROL, RunningServer


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_not_resource_is_honoured_not_ignored(srv: RunningServer) -> None:
    setup_shared(srv)
    a, b = srv.s3vectors(ALICE), srv.s3vectors(BOB)
    # "Everything in the bucket but the docs index": the old parser dropped NotResource and so
    # allowed docs too.
    allow_all_but_docs = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{BOB.account}:root"},
        "Action": "s3vectors:*",
        "NotResource": INDEX_ARN,
    }
    a.put_vector_bucket_policy(vectorBucketName="shared", policy=policy(allow_all_but_docs))
    assert b.get_vector_bucket(vectorBucketArn=BUCKET_ARN)["vectorBucket"]["vectorBucketName"] == "shared"
    assert code_of(b.get_index, indexArn=INDEX_ARN) == "AccessDeniedException"
    assert code_of(b.query_vectors, indexArn=INDEX_ARN, topK=1, queryVector={"float32": [1, 2]}) == (
        "AccessDeniedException"
    )


def test_not_action_and_not_principal_invert_their_element(srv: RunningServer) -> None:
    setup_shared(srv)
    a, b = srv.s3vectors(ALICE), srv.s3vectors(BOB)
    a.put_vector_bucket_policy(
        vectorBucketName="shared",
        policy=policy(
            {"Effect": "Allow", "Principal": "*", "NotAction": "s3vectors:GetVectors", "Resource": "*"},
            # Deny everyone but Alice's account the writes.
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": ALICE.account},
                "Action": "s3vectors:PutVectors",
                "Resource": "*",
            },
        ),
    )
    assert b.get_index(indexArn=INDEX_ARN)["index"]["indexName"] == "docs"
    assert code_of(b.get_vectors, indexArn=INDEX_ARN, keys=["k"]) == "AccessDeniedException"
    vectors = [{"key": "b", "data": {"float32": [1, 2]}}]
    assert code_of(b.put_vectors, indexArn=INDEX_ARN, vectors=vectors) == "AccessDeniedException"
    a.put_vectors(indexArn=INDEX_ARN, vectors=vectors)  # the NotPrincipal is exempt


def test_a_user_of_the_owning_account_cannot_lift_the_deny_on_it(srv: RunningServer) -> None:
    b, carol = srv.s3vectors(BOB), srv.s3vectors(CAROL)  # Carol is a user of Bob's account
    b.create_vector_bucket(vectorBucketName="locked")
    deny_carol = {
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{BOB.account}:user/carol"},
        "Action": "s3vectors:*",
        "Resource": "*",
    }
    b.put_vector_bucket_policy(vectorBucketName="locked", policy=policy(deny_carol))
    assert code_of(carol.delete_vector_bucket_policy, vectorBucketName="locked") == "AccessDeniedException"
    assert code_of(carol.get_vector_bucket_policy, vectorBucketName="locked") == "AccessDeniedException"
    assert json.loads(b.get_vector_bucket_policy(vectorBucketName="locked")["policy"])["Statement"][0]["Effect"] == (
        "Deny"
    )
    # Even denied everything itself, the root may always repair the policy (S3's lock-out rule).
    everyone = dict(deny_carol, Principal="*")
    b.put_vector_bucket_policy(vectorBucketName="locked", policy=policy(everyone))
    assert code_of(b.get_vector_bucket, vectorBucketName="locked") == "AccessDeniedException"
    b.delete_vector_bucket_policy(vectorBucketName="locked")
    assert b.get_vector_bucket(vectorBucketName="locked")["vectorBucket"]["vectorBucketName"] == "locked"


def test_the_admin_endpoints_obey_the_bucket_policy(srv: RunningServer) -> None:
    b, carol = srv.s3vectors(BOB), srv.s3vectors(CAROL)
    b.create_vector_bucket(vectorBucketName="held")
    b.create_index(
        vectorBucketName="held", indexName="secret", dataType="float32", dimension=2, distanceMetric="cosine"
    )
    b.put_vectors(vectorBucketName="held", indexName="secret", vectors=[{"key": "k", "data": {"float32": [1, 2]}}])
    arn = f"arn:aws:s3vectors:us-east-1:{BOB.account}:bucket/held/index/secret"
    deny_reads = {
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{BOB.account}:user/carol"},
        "Action": ["s3vectors:GetVectors", "s3vectors:QueryVectors", "s3vectors:AdminQuota"],
        "Resource": arn,
    }
    b.put_vector_bucket_policy(vectorBucketName="held", policy=policy(deny_reads))
    assert code_of(carol.get_vectors, indexArn=arn, keys=["k"]) == "AccessDeniedException"
    # Before: Carol restored a readable copy of the index she may not read, and set its quota.
    restore = {"vectorBucketName": "held", "indexName": "secret", "intoIndexName": "loot", "toSeq": 0}
    status, reply = admin(srv, "restore", restore, CAROL)
    assert (status, reply["code"]) == (403, "AccessDeniedException"), reply
    status, reply = admin(srv, "quota", {"vectorBucketName": "held", "indexName": "secret"}, CAROL)
    assert (status, reply["code"]) == (403, "AccessDeniedException"), reply
    status, reply = admin(srv, "replay-check", {"vectorBucketName": "held", "indexName": "secret"}, CAROL)
    assert (status, reply["code"]) == (403, "AccessDeniedException"), reply
    assert [i["indexName"] for i in b.list_indexes(vectorBucketName="held")["indexes"]] == ["secret"]
    # Allowed actions still work for her, and everything for the root.
    status, _ = admin(srv, "index-status", {"vectorBucketName": "held", "indexName": "secret"}, CAROL)
    assert status == 200
    status, reply = admin(srv, "restore", restore, BOB)
    assert status == 200, reply


def test_a_list_filter_needs_get_vectors_as_a_query_filter_does(srv: RunningServer) -> None:
    alice = srv.oss(ALICE)
    alice.put_vector_bucket(M.PutVectorBucketRequest(bucket="probe"))
    alice.put_vector_index(
        M.PutVectorIndexRequest(
            bucket="probe", index_name="idx", data_type="float32", dimension=2, distance_metric="cosine"
        )
    )
    alice.put_vectors(
        M.PutVectorsRequest(
            bucket="probe",
            index_name="idx",
            vectors=[{"key": "k", "data": {"float32": [1.0, 2.0]}, "metadata": {"salary": 250000}}],
        )
    )
    list_only = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": [BOB.account],
                "Action": ["oss:ListVectors"],
                "Resource": [f"acs:ossvector:*:{ALICE.account}:probe/*"],
            }
        ],
    }
    alice.put_bucket_policy(M.PutBucketPolicyRequest(bucket="probe", body=json.dumps(list_only)))
    bob = srv.oss(BOB, account=ALICE.account)

    def list_vectors(body: dict[str, Any]) -> Any:  # the SDK's model has no filter: send it raw
        op = OperationInput(
            op_name="ListVectors",
            method="POST",
            headers=CaseInsensitiveDict({"Content-Type": "application/json"}),
            parameters={"listVectors": ""},
            bucket="probe",
            body=json.dumps({"indexName": "idx"} | body).encode(),
        )
        return json.loads(bob.invoke_operation(op).http_response.content)

    assert [v["key"] for v in list_vectors({})["vectors"]] == ["k"]
    with pytest.raises(OperationError) as e:  # probing salaries through the filter: refused
        list_vectors({"filter": {"salary": {"$gt": 200000}}})
    assert "AccessDenied" in str(e.value)


def test_a_policy_over_20_kb_is_refused(srv: RunningServer) -> None:
    setup_shared(srv)
    a = srv.s3vectors(ALICE)
    big = policy(
        *[
            {"Sid": f"s{i}", "Effect": "Allow", "Principal": {"AWS": BOB.account}, "Action": "s3vectors:GetIndex"}
            | {"Resource": f"{BUCKET_ARN}/index/docs-{i:05d}"}
            for i in range(200)
        ]
    )
    assert len(big) > 20 * 1024
    assert code_of(a.put_vector_bucket_policy, vectorBucketName="shared", policy=big) == "ValidationException"
    assert code_of(a.get_vector_bucket_policy, vectorBucketName="shared") == "NotFoundException"
