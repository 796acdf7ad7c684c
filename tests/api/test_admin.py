"""Restore, replay --check, audit and quotas as users run them: the CLI and the admin endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from tos.exceptions import TosServerError
from tos.models2 import Vector, VectorData

from api.config import Credential
from tests.backends import Backend
from tests.server import ALICE, BOB, RunningServer, running_server

ACCT = ALICE.account


def admin(srv: RunningServer, action: str, body: dict[str, Any], cred: Credential = ALICE) -> tuple[int, Any]:
    """A SigV4-signed POST, signed by botocore itself."""
    data = json.dumps(body).encode()
    req = AWSRequest(
        method="POST", url=f"{srv.url}/_vecledger/{action}", data=data, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(cred.access_key_id, cred.secret_access_key), "s3vectors", "us-east-1").add_auth(req)
    prepared = urllib.request.Request(req.url, data=data, headers=dict(req.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(prepared) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {"code": e.headers.get("x-amzn-ErrorType"), **json.loads(e.read() or b"{}")}


def cli(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECLEDGER_")}
    cmd = [str(Path(sys.executable).with_name("vecledger")), *args, "--root", backend.root, "--account", ACCT]
    if backend.name == "s3":
        cmd += ["--s3-endpoint", str(backend.settings.s3.endpoint_url)]
        env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def history(srv: RunningServer) -> None:
    c = srv.s3vectors()
    c.create_vector_bucket(vectorBucketName="hist")
    c.create_index(
        vectorBucketName="hist", indexName="docs", dataType="float32", dimension=2, distanceMetric="euclidean"
    )
    w = {"vectorBucketName": "hist", "indexName": "docs"}
    c.put_vectors(**w, vectors=[{"key": "a", "data": {"float32": [1, 0]}}, {"key": "b", "data": {"float32": [0, 1]}}])
    c.put_vectors(**w, vectors=[{"key": "a", "data": {"float32": [5, 5]}, "metadata": {"v": 2}}])  # seq 1
    c.delete_vectors(**w, keys=["b"])  # seq 2
    with pytest.raises(ClientError):
        srv.s3vectors(BOB).get_index(indexArn=f"arn:aws:s3vectors:us-east-1:{ACCT}:bucket/hist/index/docs")


def test_cli_restore_replay_and_audit(backend: Backend) -> None:
    with running_server(backend) as srv:
        history(srv)
    out = cli(backend, "restore", "--bucket", "hist", "--index", "docs", "--to-seq", "0", "--into", "docs-at-0")
    assert out.returncode == 0, out.stderr
    assert "restored hist/docs as of seq 0 into hist/docs-at-0" in out.stdout
    out = cli(backend, "replay", "--check", "--bucket", "hist", "--index", "docs")
    assert out.returncode == 0 and "consistent" in out.stdout, out.stdout + out.stderr
    out = cli(backend, "audit", "--bucket", "hist", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    ops = [(r["operation"], r["outcome"]) for r in records]
    assert ops[:5] == [
        ("CreateVectorBucket", "accepted"),
        ("CreateIndex", "accepted"),
        ("PutVectors", "accepted"),
        ("PutVectors", "accepted"),
        ("DeleteVectors", "accepted"),
    ]
    assert ("GetIndex", "denied") in ops and ("CreateIndex", "accepted") in ops[5:]  # the restore
    put = records[2]
    assert put["principal"] == ALICE.principal and put["dialect"] == "s3" and put["source"] == "127.0.0.1"
    assert put["request_id"] and put["count"] == 2
    out = cli(backend, "audit", "--bucket", "hist", "--key", "b", "--format", "jsonl")
    touching_b = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["operation"], r["keys"]) for r in touching_b] == [
        ("PutVectors", ["a", "b"]),
        ("DeleteVectors", ["b"]),
        ("RestoreIndex", None),
    ][: len(touching_b)]
    out = cli(backend, "audit", "--bucket", "hist")  # the table a person reads
    assert "PutVectors" in out.stdout and "denied" in out.stdout

    with running_server(backend) as srv:
        got = srv.s3vectors().get_vectors(
            vectorBucketName="hist", indexName="docs-at-0", keys=["a", "b"], returnData=True
        )["vectors"]
        assert got == [{"key": "a", "data": {"float32": [1.0, 0.0]}}, {"key": "b", "data": {"float32": [0.0, 1.0]}}]

    bad = cli(backend, "restore", "--bucket", "hist", "--index", "nope", "--to-seq", "0", "--into", "x1")
    assert bad.returncode == 2 and "not found" in bad.stderr
    bad = cli(backend, "restore", "--bucket", "hist", "--index", "docs", "--to-seq", "99", "--into", "x2")
    assert bad.returncode == 2 and "beyond the end of the log" in bad.stderr
    bad = cli(backend, "restore", "--bucket", "hist", "--index", "docs", "--to-time", "yesterday", "--into", "x3")
    assert bad.returncode != 0 and "ISO 8601" in bad.stderr


def test_admin_endpoints_are_for_owners(backend: Backend) -> None:
    with running_server(backend) as srv:
        history(srv)
        status, out = admin(
            srv, "restore", {"vectorBucketName": "hist", "indexName": "docs", "toSeq": 1, "intoIndexName": "docs-at-1"}
        )
        assert status == 200 and out["restoredFromSeq"] == 1
        got = srv.s3vectors().get_vectors(
            vectorBucketName="hist", indexName="docs-at-1", keys=["a", "b"], returnMetadata=True
        )["vectors"]
        assert got == [{"key": "a", "metadata": {"v": 2}}, {"key": "b", "metadata": {}}]
        status, out = admin(srv, "audit", {"vectorBucketName": "hist", "outcome": "denied"})
        assert status == 200 and [r["operation"] for r in out["records"]] == ["GetIndex"]
        status, out = admin(srv, "replay-check", {"vectorBucketName": "hist", "indexName": "docs"})
        assert status == 200 and out["ok"] is True
        status, out = admin(srv, "audit", {"vectorBucketName": "hist"}, cred=BOB)  # not Bob's bucket
        assert status == 404 and out["code"] == "NotFoundException"
        status, out = admin(
            srv,
            "restore",
            {
                "vectorBucketName": "hist",
                "indexName": "docs",
                "toSeq": 1,
                "toTime": "2026-01-01T00:00:00Z",
                "intoIndexName": "both",
            },
        )
        assert status == 400 and out["code"] == "ValidationException"


def test_quotas_throttle_each_sdk_in_its_own_words(backend: Backend) -> None:
    with running_server(backend) as srv:
        history(srv)
        status, out = admin(srv, "quota", {"vectorBucketName": "hist", "indexName": "docs", "vectorsPerSecond": 4})
        assert status == 200 and out["vectorsPerSecond"] == 4
        w = {"vectorBucketName": "hist", "indexName": "docs"}
        five = [{"key": f"q{i}", "data": {"float32": [1, 1]}} for i in range(3)]
        once = srv.s3vectors(retries={"mode": "standard", "total_max_attempts": 1})
        once.put_vectors(**w, vectors=five)
        with pytest.raises(ClientError) as e:
            once.put_vectors(**w, vectors=five)
        assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        for _ in range(3):  # the SDK's own retries get every batch through
            srv.s3vectors_with_retries(10).put_vectors(**w, vectors=five)
        with pytest.raises(TosServerError) as te:
            for _ in range(3):
                srv.tos().put_vectors(
                    "hist", ACCT, "docs", [Vector(key=f"t{i}", data=VectorData(float32=[1.0, 1.0])) for i in range(3)]
                )
        assert (te.value.status_code, te.value.code) == (429, "TooManyRequestsException")
        import alibabacloud_oss_v2 as oss
        import alibabacloud_oss_v2.vectors as ov

        with pytest.raises(oss.exceptions.OperationError) as oe:  # one attempt: no SDK retry to wait it out
            for _ in range(3):
                srv.oss(attempts=1).put_vectors(
                    ov.models.PutVectorsRequest(
                        bucket="hist",
                        index_name="docs",
                        vectors=[{"key": "o1", "data": {"float32": [1.0, 1.0]}}] * 1
                        + [{"key": f"o{i}", "data": {"float32": [1.0, 1.0]}} for i in range(2, 5)],
                    )
                )
        err = oe.value.unwrap()
        assert (err.status_code, err.code) == (503, "QpsLimitExceeded")
        status, out = admin(srv, "audit", {"vectorBucketName": "hist", "type": "request.throttled"})
        assert {r["dialect"] for r in out["records"]} >= {"s3", "tos", "oss"}
