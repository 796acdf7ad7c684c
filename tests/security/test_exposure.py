"""What an unauthenticated caller, or a caller whose request failed, learns about other tenants.

Before: ``/metrics`` labelled every account, bucket and index for anyone; ``/readyz`` and store
failures repeated store error texts (object keys with internal ids, the endpoint); uvicorn took
``X-Forwarded-For`` from loopback, so the audit's source address (and ``aws:SourceIp``) could be
forged.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.store import FaultyStore, ObjectStore
from engine.store.faulty import ERROR, Fault
from tests.api.test_admin import admin
from tests.backends import Backend
from tests.server import ALICE, BOB, running_server


def make_index(client: Any) -> None:
    client.create_vector_bucket(vectorBucketName="private-plans")
    client.create_index(
        vectorBucketName="private-plans", indexName="merger", dataType="float32", dimension=2, distanceMetric="cosine"
    )
    client.put_vectors(
        vectorBucketName="private-plans", indexName="merger", vectors=[{"key": "k", "data": {"float32": [1, 2]}}]
    )


def test_metrics_name_no_tenant_without_the_token(backend: Backend) -> None:
    with running_server(backend) as srv:
        make_index(srv.s3vectors())
        text = httpx.get(f"{srv.url}/metrics").text
        assert "vecledger_index_tail_rows" in text and "vecledger_requests_total" in text
        assert "private-plans" not in text and "merger" not in text and ALICE.account not in text
    with running_server(backend, metrics_token="s3cret-token") as srv:
        assert httpx.get(f"{srv.url}/metrics").status_code == 401
        wrong = httpx.get(f"{srv.url}/metrics", headers={"authorization": "Bearer guess"})
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        srv.s3vectors().get_index(vectorBucketName="private-plans", indexName="merger")  # opens it
        text = httpx.get(f"{srv.url}/metrics", headers={"authorization": "Bearer s3cret-token"}).text
        assert 'bucket="private-plans"' in text and 'index="merger"' in text


def test_store_failures_reach_no_caller_in_detail(backend: Backend) -> None:
    broken = {"on": False}

    def wrap(store: ObjectStore) -> ObjectStore:
        return FaultyStore(store, lambda verb, key: Fault(ERROR) if broken["on"] else None)

    with running_server(backend, wrap_store=wrap) as srv:
        client = srv.s3vectors(retries={"max_attempts": 1})
        make_index(client)
        broken["on"] = True
        ready = httpx.get(f"{srv.url}/readyz")
        assert ready.status_code == 503 and "injected" not in ready.text and "catalog" not in ready.text, ready.text
        try:
            client.put_vectors(
                vectorBucketName="private-plans",
                indexName="merger",
                vectors=[{"key": "x", "data": {"float32": [1, 1]}}],
            )
            raise AssertionError("the put should have failed")
        except client.exceptions.ServiceUnavailableException as e:
            message = e.response["Error"]["Message"]
        assert "injected" not in message and "data/" not in message and "log" not in message, message
        broken["on"] = False


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(backend: Backend) -> None:
    def forge(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "203.0.113.9"

    def denied_source(bucket: str, **overrides: Any) -> str:
        with running_server(backend, **overrides) as srv:
            srv.s3vectors(ALICE).create_vector_bucket(vectorBucketName=bucket)
            bob = srv.s3vectors(BOB)
            bob.meta.events.register("before-sign.s3vectors.*", forge)
            arn = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/{bucket}"
            with pytest.raises(bob.exceptions.AccessDeniedException):
                bob.get_vector_bucket(vectorBucketArn=arn)
            status, reply = admin(srv, "audit", {"vectorBucketName": bucket, "outcome": "denied"})
            assert status == 200, reply
            (record,) = reply["records"]
            return str(record["source"])

    assert denied_source("direct") == "127.0.0.1"
    assert denied_source("proxied", proxy_headers=True, forwarded_allow_ips="127.0.0.1") == "203.0.113.9"
