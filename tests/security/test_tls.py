"""HTTPS end to end: ``vecledger serve --tls-cert/--tls-key`` with boto3, the TOS and OSS SDKs and the
console, each verifying the server's certificate against a CA made for the test; and
``aws:SecureTransport`` true only over TLS.

The server answers on ``vecledger.test:<port>`` (and OSS's bucket hosts under it), names this
process resolves to loopback, as a hosts file would: the certificate names them, and OSS needs
bucket host names that resolve.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss
import alibabacloud_oss_v2.vectors as oss_vectors
import alibabacloud_oss_v2.vectors.models as M
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.backends import Backend
from tests.server import ALICE, BOB, RunningServer, running_server

DOMAIN = "vecledger.test"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("vecledger test CA"))
        .issuer_name(_name("vecledger test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.DNSName(DOMAIN), x509.DNSName(f"*.{DOMAIN}"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(DOMAIN))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def tls_server(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningServer, Path]]:
    ca, cert, key = make_certificates(tmp_path)
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(host, str) and (host == DOMAIN or host.endswith(f".{DOMAIN}")):
            host = "127.0.0.1"
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))  # the TOS and OSS SDKs verify through requests
    with running_server(backend, tls_cert=str(cert), tls_key=str(key), base_host=f"{DOMAIN}:{{port}}") as srv:
        yield srv, ca


def test_every_sdk_and_the_console_work_over_https(tls_server: tuple[RunningServer, Path]) -> None:
    srv, ca = tls_server
    assert srv.url.startswith(f"https://{DOMAIN}:")
    s3 = _boto3(srv, ca)
    s3.create_vector_bucket(vectorBucketName="tls")
    s3.create_index(vectorBucketName="tls", indexName="idx", dataType="float32", dimension=2, distanceMetric="cosine")
    s3.put_vectors(vectorBucketName="tls", indexName="idx", vectors=[{"key": "a", "data": {"float32": [1, 0]}}])

    from tos.vector_client import VectorClient

    tos = VectorClient(ALICE.access_key_id, ALICE.secret_access_key, srv.url, "cn-beijing", enable_verify_ssl=True)
    got = tos.get_vectors(vector_bucket_name="tls", index_name="idx", keys=["a"], account_id=ALICE.account)
    assert [v.key for v in got.vectors] == ["a"]

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(ALICE.access_key_id, ALICE.secret_access_key)
    cfg.region, cfg.account_id, cfg.endpoint = "cn-hangzhou", ALICE.account, srv.url
    listed = oss_vectors.Client(cfg).list_vectors(M.ListVectorsRequest(bucket="tls", index_name="idx"))
    assert [v["key"] for v in listed.vectors] == ["a"]

    page = httpx.get(f"{srv.url}/console/", verify=ssl.create_default_context(cafile=str(ca)))
    assert page.status_code == 200 and "<html" in page.text.lower()
    with pytest.raises(httpx.ConnectError):  # and a client that does not trust the CA refuses it
        httpx.get(f"{srv.url}/healthz", verify=ssl.create_default_context())
    with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP gets no answer on the TLS port
        httpx.get(srv.url.replace("https://", "http://") + "/healthz")


def _boto3(srv: RunningServer, ca: Path, cred: Any = ALICE) -> Any:
    import boto3

    return boto3.client(
        "s3vectors",
        endpoint_url=srv.url,
        region_name="us-east-1",
        aws_access_key_id=cred.access_key_id,
        aws_secret_access_key=cred.secret_access_key,
        verify=str(ca),
    )


def test_secure_transport_is_true_over_tls(tls_server: tuple[RunningServer, Path]) -> None:
    srv, ca = tls_server
    a, b = _boto3(srv, ca), _boto3(srv, ca, BOB)
    a.create_vector_bucket(vectorBucketName="tls")
    only_tls = {
        "Effect": "Allow",
        "Principal": {"AWS": BOB.account},
        "Action": "s3vectors:GetVectorBucket",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    a.put_vector_bucket_policy(
        vectorBucketName="tls", policy=json.dumps({"Version": "2012-10-17", "Statement": [only_tls]})
    )
    arn = f"arn:aws:s3vectors:us-east-1:{ALICE.account}:bucket/tls"
    assert b.get_vector_bucket(vectorBucketArn=arn)["vectorBucket"]["vectorBucketName"] == "tls"


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`")
def test_the_console_signs_in_and_works_over_https(tls_server: tuple[RunningServer, Path]) -> None:
    """The console in headless Chromium over HTTPS: WebCrypto (which its SigV4 needs) is only
    available to secure origins other than localhost, so this is the deployment that matters."""
    from playwright.sync_api import expect, sync_playwright

    from tests.api.test_console import CHROMIUM_ARGS

    srv, _ = tls_server
    rules = f"--host-resolver-rules=MAP {DOMAIN} 127.0.0.1, MAP *.{DOMAIN} 127.0.0.1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules], headless=True)
        try:
            # The test CA is not in Chromium's store; the Python clients above verify it.
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{srv.url}/console")
            assert page.url == f"{srv.url}/console/"
            page.fill("#login-key", ALICE.access_key_id)
            page.fill("#login-secret", ALICE.secret_access_key)
            page.click("#login-submit")
            expect(page.locator("#who-key")).to_have_text(ALICE.access_key_id)
            page.fill("#new-bucket", "over-tls")
            page.click("#create-bucket")
            expect(page.locator("#bucket-list tr[data-bucket=over-tls]")).to_be_visible()
        finally:
            browser.close()
    assert _boto3(srv, tls_server[1]).get_vector_bucket(vectorBucketName="over-tls")["vectorBucket"]
