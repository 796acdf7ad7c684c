"""The S3 dialect under a few hundred generated requests: no 5xx, errors in shape, still serving.

The long version is ``python -m tools.fuzz --requests N``; this one keeps CI under a minute. The
requests come from the server's own OpenAPI description (``api/openapi.py``), so a new operation
or field is fuzzed as soon as it exists.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from api.openapi import openapi
from tests.backends import make_backend
from tests.server import ALICE, running_server
from tools import fuzz


def test_the_openapi_description_covers_every_operation_and_is_served(tmp_path: Path) -> None:
    from api.call import OPERATIONS

    doc = openapi()
    assert set(doc["paths"]) == {f"/{name}" for name in OPERATIONS}
    put = doc["components"]["schemas"]["PutVectors"]
    assert put["required"] == ["vectors"] and put["additionalProperties"] is False
    with running_server(make_backend("local", tmp_path, lambda: "")) as srv:
        served = json.loads(urllib.request.urlopen(f"{srv.url}/_vecledger/openapi.json").read())
    assert served == json.loads(json.dumps(doc))


def test_generated_requests_never_get_a_5xx_or_a_malformed_error(tmp_path: Path) -> None:
    with running_server(make_backend("local", tmp_path, lambda: "")) as srv:
        report = fuzz.run(srv.url, ALICE.access_key_id, ALICE.secret_access_key, n=300, seed=1)
        assert report.failures == []
        assert report.sent == 300
        assert all(status < 500 for status in report.statuses)
        assert report.statuses[200] > 0 and report.statuses[400] > 0  # both sides of validation were reached
        assert srv.s3vectors().get_index(vectorBucketName=fuzz.BUCKET, indexName=fuzz.INDEX)["index"]  # still up


def test_the_checker_flags_what_it_must() -> None:
    """The fuzz oracle itself: a 5xx, a non-JSON body, an error without its type header."""
    ok = {"x-amzn-ErrorType": "ValidationException"}
    assert fuzz.check_reply(400, ok, b'{"message":"bad"}') is None
    assert fuzz.check_reply(200, {}, b"{}") is None
    assert fuzz.check_reply(500, ok, b'{"message":"boom"}') is not None
    assert fuzz.check_reply(400, ok, b"<html>") is not None
    assert fuzz.check_reply(400, {}, b'{"message":"bad"}') is not None
    assert fuzz.check_reply(403, ok, b'{"Message":"bad"}') is not None


def test_generated_filters_and_policies_never_get_a_5xx(tmp_path: Path) -> None:
    """The documents inside requests (tools/fuzz_documents.py): filters in QueryVectors, policies
    put, then deciding a GetIndex, then deleted."""
    with running_server(make_backend("local", tmp_path, lambda: "")) as srv:
        for target, n in (("filters", 200), ("policies", 150)):
            report = fuzz.run(srv.url, ALICE.access_key_id, ALICE.secret_access_key, n=n, seed=3, target=target)
            assert report.failures == [], target
            assert report.statuses[200] > 0 and report.statuses[400] > 0, (target, report.statuses)
        assert srv.s3vectors().get_index(vectorBucketName=fuzz.BUCKET, indexName=fuzz.INDEX)["index"]
