"""Smaller conformance items of issue 20, each through the real SDK: TOS's "<account>/<user>"
principal, its 100-bucket limit and its 100-per-page catalog listings, an index inheriting its bucket's encryption, KMS
key ARNs checked, scores only where there is text, TagResource needing its tags, and CreateIndex
with tags needing TagResource.
"""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError
from tos.exceptions import TosServerError

from tests.api.test_hostile import s3_request
from tests.api.test_hybrid import client as model_client
from tests.server import ALICE, BOB, CAROL, RunningServer

KMS = f"arn:aws:kms:us-east-1:{ALICE.account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def code(fn: object, **kw: object) -> str:
    with pytest.raises(ClientError) as e:
        fn(**kw)  # type: ignore[operator]
    return str(e.value.response["Error"]["Code"])


def test_tos_user_principals_and_page_sizes(srv: RunningServer) -> None:
    tos = srv.tos(ALICE)
    tos.create_vector_bucket("shared")
    policy = {
        "Version": "2025-12-01",
        "Statement": [
            {"Effect": "Allow", "Principal": [f"{BOB.account}/carol"], "Action": ["tosvectors:*"], "Resource": ["*"]}
        ],
    }
    tos.put_vector_bucket_policy("shared", ALICE.account, json.dumps(policy))  # refused before
    arn = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/shared"
    assert srv.s3vectors(CAROL).get_vector_bucket(vectorBucketArn=arn)["vectorBucket"]["vectorBucketName"] == "shared"
    assert code(srv.s3vectors(BOB).get_vector_bucket, vectorBucketArn=arn) == "AccessDeniedException"
    for i in range(99):
        tos.create_vector_bucket(f"b{i:03d}")
    with pytest.raises(TosServerError) as e:  # "at most 100 vector buckets" per account (seed 004)
        tos.create_vector_bucket("one-too-many")
    assert e.value.status_code == 402 and e.value.code == "ServiceQuotaExceededException"
    srv.s3vectors().create_vector_bucket(vectorBucketName="via-s3")  # S3 Vectors' own limit is higher
    first = tos.list_vector_buckets()
    assert len(first.vector_buckets) == 100 and first.next_token  # TOS's documented default page
    assert len(srv.s3vectors().list_vector_buckets()["vectorBuckets"]) == 101  # S3's page stays 500


def test_an_index_has_its_buckets_encryption_and_kms_arns_are_checked(srv: RunningServer) -> None:
    c = srv.s3vectors()
    kms = {"sseType": "aws:kms", "kmsKeyArn": KMS}
    c.create_vector_bucket(vectorBucketName="sealed", encryptionConfiguration=kms)
    c.create_index(vectorBucketName="sealed", indexName="idx", dataType="float32", dimension=2, distanceMetric="cosine")
    assert c.get_index(vectorBucketName="sealed", indexName="idx")["index"]["encryptionConfiguration"] == kms
    bad = {"sseType": "aws:kms", "kmsKeyArn": "alias/not-an-arn"}
    assert code(c.create_vector_bucket, vectorBucketName="badkms", encryptionConfiguration=bad) == "ValidationException"


def test_scores_only_with_text_and_tags_need_their_permission(srv: RunningServer) -> None:
    s3v = model_client(srv)
    s3v.create_vector_bucket(vectorBucketName="scored")
    s3v.create_index(
        vectorBucketName="scored", indexName="idx", dataType="float32", dimension=2, distanceMetric="cosine"
    )
    s3v.put_vectors(vectorBucketName="scored", indexName="idx", vectors=[{"key": "a", "data": {"float32": [1, 0]}}])
    got = s3v.query_vectors(
        vectorBucketName="scored", indexName="idx", topK=1, queryVector={"float32": [1, 0]}, returnScores=True
    )["vectors"]
    assert [v["key"] for v in got] == ["a"] and "scores" not in got[0]

    arn = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/scored"
    url, headers = s3_request(srv, "tags/" + requests.utils.quote(arn, safe=""), b"{}")
    reply = requests.post(url, data=b"{}", headers=headers, timeout=30)
    assert reply.status_code == 400 and reply.headers["x-amzn-ErrorType"] == "ValidationException", reply.text

    create_only = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": BOB.account}, "Action": "s3vectors:CreateIndex", "Resource": "*"}
        ],
    }
    s3v.put_vector_bucket_policy(vectorBucketName="scored", policy=json.dumps(create_only))
    bob = srv.s3vectors(BOB)
    shape = {"vectorBucketArn": arn, "dataType": "float32", "dimension": 2, "distanceMetric": "cosine"}
    assert code(bob.create_index, indexName="tagged", tags={"team": "x"}, **shape) == "AccessDeniedException"
    bob.create_index(indexName="untagged", **shape)


def test_bad_names_and_tokens_are_validation_errors_everywhere(srv: RunningServer) -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="named")
    c.create_index(vectorBucketName="named", indexName="idx", dataType="float32", dimension=2, distanceMetric="cosine")
    # A name no bucket or index could have: ValidationException, as on AWS (NotFound before).
    assert code(c.get_index, vectorBucketName="Bad_Name", indexName="idx") == "ValidationException"
    assert code(c.get_index, vectorBucketName="named", indexName="UPPER") == "ValidationException"
    assert code(c.get_index, vectorBucketName="named", indexName="fine") == "NotFoundException"
    with pytest.raises(ClientError) as e:
        c.get_vectors(vectorBucketName="named", keys=["k"])
    assert e.value.response["Error"]["Message"] == "Must specify either indexArn or both vectorBucketName and indexName"
    for op, limit in (("ListIndexes", 512), ("QueryVectors", 4096)):
        body = {"vectorBucketName": "named", "nextToken": "x" * (limit + 1)}
        if op == "QueryVectors":
            body |= {"indexName": "idx", "topK": 1, "queryVector": {"float32": [1, 0]}}
        data = json.dumps(body).encode()
        url, headers = s3_request(srv, op, data)
        reply = requests.post(url, data=data, headers=headers, timeout=30)
        assert reply.status_code == 400 and f"1 to {limit} characters" in reply.text, (op, reply.text)


def test_tag_characters_are_the_models_and_untag_keys_are_checked(srv: RunningServer) -> None:
    """The model's tag pattern is ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``: letters, separators and
    numbers of any script, but no tab or newline (control characters)."""
    c = srv.s3vectors()
    arn = c.create_vector_bucket(vectorBucketName="tagged")["vectorBucketArn"]
    fine = {"équipe": "données 2026", "チーム": "ベクトル", "a.b:c/d=e+f-g@h_i": "", "space\u00a0sep": "x"}
    c.tag_resource(resourceArn=arn, tags=fine)
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == fine
    for bad in ({"tab\tkey": "v"}, {"k": "new\nline"}, {"k": "semi;colon"}, {"k" * 129: "v"}):
        assert code(c.tag_resource, resourceArn=arn, tags=bad) == "ValidationException", bad
    for keys in (["tab\tkey"], ["k" * 129], ["ok", "bad!"]):  # (boto3 itself refuses an empty one)
        assert code(c.untag_resource, resourceArn=arn, tagKeys=keys) == "ValidationException", keys
    c.untag_resource(resourceArn=arn, tagKeys=["équipe", "absent"])
    assert "équipe" not in c.list_tags_for_resource(resourceArn=arn)["tags"]
