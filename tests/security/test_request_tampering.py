"""A captured, validly signed request, altered in flight: a second Host header to point it at
another bucket, and a TOS body swapped under a signed body hash.

Before: the signature covered the first Host while routing read the last, and TOS's
``x-tos-content-sha256`` was signed but never compared with the body.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from urllib.parse import urlsplit

from tests.api.test_hostile import BUCKET, INDEX, Reply, error_code, s3_request, setup_index, tos_request
from tests.server import ALICE, RunningServer


def raw_post(url: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
    """POST with exactly these header lines, duplicates included (no client library sends those)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    conn.putrequest("POST", parts.path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    out = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    conn.close()
    return out


def test_a_second_host_header_is_refused_in_every_signed_dialect(srv: RunningServer) -> None:
    setup_index(srv)
    body = json.dumps({"vectorBucketName": BUCKET, "indexName": INDEX}).encode()
    victim_host = f"{BUCKET}-{ALICE.account}.127.0.0.1:{srv.port}"
    for dialect, sign in (("s3", s3_request), ("tos", tos_request)):
        url, signed = sign(srv, "DeleteIndex", body)
        lines = [(k, v) for k, v in signed.items() if k.lower() != "content-length"]
        host = next(v for k, v in lines if k.lower() == "host") if any(k.lower() == "host" for k, _ in lines) else None
        if host is None:
            lines.insert(0, ("Host", urlsplit(url).netloc))
        for extra in (victim_host, urlsplit(url).netloc):  # another bucket's host, or the same one again
            reply = raw_post(url, [*lines, ("Host", extra)], body)
            assert reply.status in (400, 403), (dialect, reply)
            assert error_code(dialect, reply) in ("ValidationException", "AccessDeniedException"), reply
    assert srv.s3vectors().get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]["indexName"] == INDEX


def test_a_tos_body_swapped_under_its_signed_hash_is_refused(srv: RunningServer) -> None:
    setup_index(srv)
    signed_body = json.dumps(
        {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": [{"key": "mine", "data": {"float32": [1, 2]}}]}
    ).encode()
    swapped = signed_body.replace(b'"mine"', b'"evil"')
    from tos.auth import Auth
    from tos.http import Request as TosRequest

    req = TosRequest(
        "POST", f"{srv.url}/PutVectors", "/PutVectors", f"127.0.0.1:{srv.port}", data=signed_body, headers={}
    )
    req.headers["x-tos-content-sha256"] = hashlib.sha256(signed_body).hexdigest()
    Auth(ALICE.access_key_id, ALICE.secret_access_key, "cn-beijing", service="tosvectors").sign_request(req)
    headers = [(str(k), str(v)) for k, v in req.headers.items() if str(k).lower() != "content-length"]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", f"127.0.0.1:{srv.port}"))
    reply = raw_post(f"{srv.url}/PutVectors", headers, swapped)
    assert reply.status in (400, 403) and error_code("tos", reply) == "AccessDeniedException", reply
    got = srv.s3vectors().get_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=["mine", "evil"])
    assert got["vectors"] == []
    assert raw_post(f"{srv.url}/PutVectors", headers, signed_body).status == 200  # the body it signed passes


def test_a_signing_key_of_another_day_is_refused(srv: RunningServer) -> None:
    """SigV4 signing keys are derived per day: one leaked for yesterday must not sign today's
    requests (the scope names yesterday while the request is dated now)."""
    import hmac
    import time

    setup_index(srv)
    body = json.dumps({"vectorBucketName": BUCKET, "indexName": INDEX}).encode()
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    yesterday = time.strftime("%Y%m%d", time.gmtime(time.time() - 86400))

    def h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    def signed(day: str) -> list[tuple[str, str]]:
        host = f"127.0.0.1:{srv.port}"
        payload = hashlib.sha256(body).hexdigest()
        canonical = "\n".join(["POST", "/GetIndex", "", f"host:{host}\nx-amz-date:{now}\n", "host;x-amz-date", payload])
        scope = f"{day}/us-east-1/s3vectors/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = h(h(h(h(("AWS4" + ALICE.secret_access_key).encode(), day), "us-east-1"), "s3vectors"), "aws4_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        auth = f"AWS4-HMAC-SHA256 Credential={ALICE.access_key_id}/{scope}, SignedHeaders=host;x-amz-date, "
        auth += f"Signature={signature}"
        return [("Host", host), ("X-Amz-Date", now), ("Authorization", auth), ("Content-Type", "application/json")]

    assert raw_post(f"{srv.url}/GetIndex", signed(now[:8]), body).status == 200  # today's key: fine
    reply = raw_post(f"{srv.url}/GetIndex", signed(yesterday), body)
    assert (reply.status, error_code("s3", reply)) == (403, "AccessDeniedException"), reply
