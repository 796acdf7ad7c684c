"""AWS's own error wording, case by case, through boto3.

Each expected message is what AWS answered when moto's ``aws_verified`` s3vectors tests
(getmoto/moto, tests/test_s3vectors/) were run against the real service, or what users pasted from
real AWS output (cited inline). Code that matches on messages, and test suites written against
AWS, see the same text here.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import ALICE, BOB, RunningServer

ACCT = ALICE.account


def error(fn: Any, **kw: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return str(e.value.response["Error"]["Code"]), str(e.value.response["Error"]["Message"])


def index(c: Any, bucket: str, name: str, dimension: int = 5, **kw: Any) -> None:
    shape = {"dataType": "float32", "dimension": dimension, "distanceMetric": "euclidean"} | kw
    c.create_index(vectorBucketName=bucket, indexName=name, **shape)


NO_BUCKET = ("NotFoundException", "The specified vector bucket could not be found")
NO_INDEX = ("NotFoundException", "The specified index could not be found")
NO_POLICY = ("NotFoundException", "The specified vector bucket policy could not be found")
EITHER_INDEX = ("ValidationException", "Must specify either indexArn or both vectorBucketName and indexName")


def test_buckets(srv: RunningServer) -> None:
    c = srv.s3vectors(parameter_validation=False)
    assert error(c.get_vector_bucket, vectorBucketName="missing-bucket") == NO_BUCKET
    assert error(c.delete_vector_bucket, vectorBucketName="missing-bucket") == NO_BUCKET
    for name in ("ab", "a" * 64):
        assert error(c.create_vector_bucket, vectorBucketName=name) == (
            "ValidationException",
            f"1 validation error detected. Value with length {len(name)} at '/vectorBucketName' failed to "
            "satisfy constraint: Member must have length between 3 and 63, inclusive",
        )
    for name in ("Upper-case", "under_score", "-dash-first"):
        assert error(c.create_vector_bucket, vectorBucketName=name) == (
            "ValidationException",
            "Invalid vector bucket name",
        )
    c.create_vector_bucket(vectorBucketName="words")
    assert error(c.create_vector_bucket, vectorBucketName="words") == (
        "ConflictException",
        "A vector bucket with the specified name already exists",
    )
    index(c, "words", "idx")
    assert error(c.delete_vector_bucket, vectorBucketName="words") == (
        "ConflictException",
        "The specified vector bucket is not empty",
    )


def test_indexes(srv: RunningServer) -> None:
    c = srv.s3vectors(parameter_validation=False)
    c.create_vector_bucket(vectorBucketName="words")
    failed = "1 validation error detected. Value at '/{}' failed to satisfy constraint: Member must {}"
    shape = {"vectorBucketName": "words", "dataType": "float32", "dimension": 5, "distanceMetric": "euclidean"}
    for bad, field, rule in (
        ({"dataType": "int"}, "dataType", "satisfy enum value set: [float32]"),
        ({"dimension": 99999}, "dimension", "be between 1 and 4096, inclusive"),
        ({"distanceMetric": "what"}, "distanceMetric", "satisfy enum value set: [euclidean, cosine]"),
    ):
        assert error(c.create_index, **(shape | bad), indexName="idx1") == (
            "ValidationException",
            failed.format(field, rule),
        )
    c.create_index(**shape, indexName="idx")
    # "An index with the specified name already exists": real AWS output (spiceai/spiceai#7576).
    assert error(c.create_index, **shape, indexName="idx") == (
        "ConflictException",
        "An index with the specified name already exists",
    )
    arn = f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/words/index/idx"
    assert error(c.get_index, vectorBucketName="words", indexArn=arn) == EITHER_INDEX
    # A missing bucket, for an index operation, is a missing index (AWS answers so).
    assert error(c.get_index, vectorBucketName="missing-bucket", indexName="idx") == NO_INDEX
    assert error(c.get_index, vectorBucketName="words", indexName="missing") == NO_INDEX
    assert error(c.get_index, indexArn=arn.replace("/idx", "/missing")) == NO_INDEX
    assert error(c.list_indexes, vectorBucketName="missing-bucket") == NO_BUCKET
    bucket_arn = f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/words"
    assert error(c.list_indexes, vectorBucketName="words", vectorBucketArn=bucket_arn) == (
        "ValidationException",
        "Must specify either vectorBucketName or vectorBucketArn but not both",
    )


def test_policies(srv: RunningServer) -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="words")
    assert error(c.get_vector_bucket_policy, vectorBucketName="words") == NO_POLICY
    assert error(c.get_vector_bucket_policy, vectorBucketName="missing-bucket") == NO_BUCKET
    assert error(c.delete_vector_bucket_policy, vectorBucketName="words") == NO_POLICY


def test_vectors(srv: RunningServer) -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="words")
    index(c, "words", "idx")
    one = [{"key": "my_first_vector", "data": {"float32": [1.0]}}]
    assert error(c.put_vectors, vectorBucketName="words", indexName="idx", vectors=one) == (
        "ValidationException",
        "Invalid record for key 'my_first_vector': vector must have length 5, but has length 1",
    )
    arn = f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/words/index/idx"
    both = {"vectorBucketName": "words", "indexArn": arn, "indexName": "idx"}
    assert error(c.put_vectors, **both, vectors=one) == EITHER_INDEX
    assert error(c.get_vectors, **both, keys=["k"]) == EITHER_INDEX
    assert error(c.delete_vectors, **both, keys=["k"]) == EITHER_INDEX
    assert error(c.list_vectors, vectorBucketName="words", indexArn=arn) == EITHER_INDEX
    for call, kw in ((c.get_vectors, {"keys": ["k"]}), (c.put_vectors, {"vectors": one})):
        assert error(call, vectorBucketName="words", indexName="missing", **kw) == NO_INDEX
        assert error(call, indexArn=arn.replace("/idx", "/missing"), **kw) == NO_INDEX
    # Real AWS output pasted in llama_index#21062 and langchain-aws#693.
    big = [{"key": "k", "data": {"float32": [1.0] * 5}, "metadata": {"m": "x" * 3000}}]
    assert error(c.put_vectors, vectorBucketName="words", indexName="idx", vectors=big) == (
        "ValidationException",
        "Invalid record for key 'k': Filterable metadata must have at most 2048 bytes",
    )
    code, message = error(
        c.query_vectors,
        vectorBucketName="words",
        indexName="idx",
        topK=1,
        queryVector={"float32": [1.0] * 5},
        filter={"$bad": 1},
    )
    assert code == "ValidationException" and message.startswith("Invalid query filter")  # mem0ai/mem0#4554


def test_denials(srv: RunningServer) -> None:
    """AWS output in awslabs/generative-ai-cdk-constructs#1305: "User: <arn> is not authorized to
    perform: s3vectors:DeleteVectors on resource: <arn> because no identity-based policy allows
    the s3vectors:DeleteVectors action" (vecledger decides by resource-based policy)."""
    srv.s3vectors().create_vector_bucket(vectorBucketName="private")
    arn = f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/private"
    code, message = error(srv.s3vectors(BOB).get_vector_bucket, vectorBucketArn=arn)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {BOB.principal} is not authorized to perform: s3vectors:GetVectorBucket on resource: {arn} "
        "because no resource-based policy allows the s3vectors:GetVectorBucket action"
    )


def test_vector_values(srv: RunningServer) -> None:
    """Live AWS probes recorded in FarukAda/aws-langchain-s3-vector-ts (docs/evidence/zero-vector.md)."""
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="words")
    index(c, "words", "cos", dimension=2, distanceMetric="cosine")
    zero = [{"key": "fine", "data": {"float32": [1.0, 0.0]}}, {"key": "z", "data": {"float32": [0.0, 0.0]}}]
    assert error(c.put_vectors, vectorBucketName="words", indexName="cos", vectors=zero) == (
        "ValidationException",
        "Invalid record for key 'z': cosine distance does not support vectors with zero norm",
    )
    code, message = error(
        c.query_vectors, vectorBucketName="words", indexName="cos", topK=1, queryVector={"float32": [0.0, 0.0]}
    )
    assert code == "ValidationException"
    assert message.startswith("Query vector contains invalid values or is invalid for this index")
