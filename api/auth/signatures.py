"""Request signature verification: AWS SigV4 (boto3), TOS4 (Volcengine), with a bounded clock skew.

The recipes were checked against every request the three SDKs send (the tests sign with the
SDKs themselves). Verification never trusts anything the signature does not cover: the account a request
acts as comes from the access key, not from the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from calendar import timegm
from dataclasses import dataclass
from time import strptime
from urllib.parse import quote, unquote

from api.config import Credential

_AWS = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?"
    r"SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$"
)
_TOS = re.compile(
    r"TOS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/request, ?"
    r"SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$"
)


class AuthError(Exception):
    """The request is not signed by a known key, or not correctly, or not recently."""

    def __init__(self, message: str, access_key: str | None = None, reason: str = "AccessDenied") -> None:
        super().__init__(message)
        self.message = message
        self.access_key = access_key
        self.reason = reason  # the OSS error code for it; the other dialects answer AccessDenied


@dataclass(frozen=True)
class SignedRequest:
    method: str
    raw_path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
        for k, _, v in (p.partition("=") for p in query.split("&") if p)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def _timestamp(value: str | None) -> float:
    if not value:
        raise AuthError("the request has no date header")
    try:
        return float(timegm(strptime(value, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        raise AuthError("the request date is malformed", reason="InvalidArgument") from None


def _check_scope_date(scope_date: str, stamp: str | None, access_key: str) -> None:
    """The credential scope's day must be the signed date's: otherwise a signing key derived for
    one day would sign requests dated on another."""
    if not stamp or stamp[:8] != scope_date:
        raise AuthError("the credential scope's date does not match the request date", access_key)


def _check_skew(stamp: float, now: float, skew: float) -> None:
    if abs(now - stamp) > skew:
        raise AuthError(
            "the difference between the request time and the server's time is too large", reason="RequestTimeTooSkewed"
        )


def _lookup(keys: dict[str, Credential], access_key: str) -> Credential:
    cred = keys.get(access_key)
    if cred is None:
        raise AuthError("the access key id does not exist", access_key, reason="InvalidAccessKeyId")
    return cred


def _once_each(req: SignedRequest, signed: list[str], access_key: str) -> None:
    """Refuse a signed header sent twice: the signature would cover one copy while routing or the
    dialect read the other, so a captured request could be pointed elsewhere."""
    names = [k.lower() for k, _ in req.headers]
    for name in signed:
        if names.count(name) > 1:
            raise AuthError(f"the signed header {name} appears more than once", access_key, reason="InvalidArgument")


def _check_body_hash(declared: str | None, body: bytes, access_key: str) -> None:
    if declared is not None and declared != "UNSIGNED-PAYLOAD" and declared != _sha(body):
        raise AuthError("the body does not match its signed hash", access_key, reason="InvalidDigest")


def scheme_of(req: SignedRequest) -> str | None:
    auth = req.header("authorization") or ""
    return auth.split(" ", 1)[0] if auth else None


def verify_aws(req: SignedRequest, keys: dict[str, Credential], now: float, skew: float) -> Credential:
    m = _AWS.match(req.header("authorization") or "")
    if not m:
        raise AuthError("the Authorization header is malformed")
    access_key, date, region, service, signed, signature = m.groups()
    cred = _lookup(keys, access_key)
    _once_each(req, signed.split(";"), access_key)
    amz_date = req.header("x-amz-date")
    _check_skew(_timestamp(amz_date), now, skew)
    _check_scope_date(date, amz_date, access_key)
    segments = [s for s in req.raw_path.split("/") if s not in ("", ".")]
    uri = quote("/" + "/".join(segments), safe="/~") if segments else "/"
    headers = "".join(
        name + ":" + ",".join(" ".join(v.split()) for k, v in req.headers if k.lower() == name) + "\n"
        for name in signed.split(";")
    )
    payload = req.header("x-amz-content-sha256") or _sha(req.body)
    _check_body_hash(payload, req.body, access_key)
    canonical = "\n".join([req.method, uri, _canonical_query(req.query), headers, signed, payload])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date or "", scope, _sha(canonical)])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + cred.secret_access_key).encode(), date), region), service), "aws4_request")
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise AuthError("the request signature does not match", access_key, reason="SignatureDoesNotMatch")
    if "host" not in signed.split(";"):
        raise AuthError("the Host header must be signed", access_key)
    return cred


def verify_tos(req: SignedRequest, keys: dict[str, Credential], now: float, skew: float) -> Credential:
    m = _TOS.match(req.header("authorization") or "")
    if not m:
        raise AuthError("the Authorization header is malformed")
    access_key, date, region, service, signed, signature = m.groups()
    cred = _lookup(keys, access_key)
    _once_each(req, signed.split(";"), access_key)
    tos_date = req.header("x-tos-date")
    _check_skew(_timestamp(tos_date), now, skew)
    _check_scope_date(date, tos_date, access_key)
    headers = "".join(f"{name}:{req.header(name) or ''}\n" for name in signed.split(";"))
    canonical = "\n".join(
        [
            req.method,
            quote(unquote(req.raw_path), safe="/~"),
            _canonical_query(req.query),
            headers,
            signed,
            req.header("x-tos-content-sha256") or "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{date}/{region}/{service}/request"
    to_sign = "\n".join(["TOS4-HMAC-SHA256", tos_date or "", scope, _sha(canonical)])
    key = _hmac(_hmac(_hmac(_hmac(cred.secret_access_key.encode(), date), region), service), "request")
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise AuthError("the request signature does not match", access_key, reason="SignatureDoesNotMatch")
    if "host" not in signed.split(";"):
        raise AuthError("the Host header must be signed", access_key)
    # The TOS SDK signs UNSIGNED-PAYLOAD; a client that signs the body's hash gets it checked.
    _check_body_hash(req.header("x-tos-content-sha256"), req.body, access_key)
    return cred


def access_key_of(req: SignedRequest) -> str | None:
    """The access key a request claims, signed or not (for --no-auth and for auditing)."""
    m = re.search(r"Credential=([^/]+)/", req.header("authorization") or "")
    return m.group(1) if m else None


_OSS = re.compile(
    r"OSS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]*)/([^/]+)/aliyun_v4_request"
    r"(?:,AdditionalHeaders=([^,]+))?,Signature=([0-9a-f]{64})$"
)


def verify_oss(
    req: SignedRequest,
    keys: dict[str, Credential],
    now: float,
    skew: float,
    bucket: tuple[str, str] | None,
) -> Credential:
    """OSS4-HMAC-SHA256, "vectors" variant: the signed resource is rebuilt from the Host's bucket and
    account; Host and the body are not signed, so ``Content-MD5`` (signed) is checked against the body."""
    m = _OSS.match(req.header("authorization") or "")
    if not m:
        raise AuthError("the Authorization header is malformed", reason="InvalidArgument")
    access_key, date, region, product, additional, signature = m.groups()
    cred = _lookup(keys, access_key)
    oss_date = req.header("x-oss-date")
    _check_skew(_timestamp(oss_date), now, skew)
    _check_scope_date(date, oss_date, access_key)
    extra = additional.split(";") if additional else []
    resource = f"/acs:ossvector:{region}:{bucket[1]}:{bucket[0]}/" if bucket else f"/acs:ossvector:{region}::/"
    pairs = sorted(p.partition("=")[::2] for p in req.query.split("&") if p)
    query = "&".join(f"{k}={v}" if v else k for k, v in pairs)
    signed = sorted(
        (k.lower(), v)
        for k, v in req.headers
        if k.lower().startswith("x-oss-") or k.lower() in ("content-type", "content-md5") or k.lower() in extra
    )
    canonical = (
        f"{req.method}\n{quote(resource, safe='/')}\n{query}\n"
        + "".join(f"{k}:{v}\n" for k, v in signed)
        + f"\n{';'.join(extra)}\n{req.header('x-oss-content-sha256') or 'UNSIGNED-PAYLOAD'}"
    )
    scope = f"{date}/{region}/{product}/aliyun_v4_request"
    to_sign = "\n".join(["OSS4-HMAC-SHA256", oss_date or "", scope, _sha(canonical)])
    key = _hmac(
        _hmac(_hmac(_hmac(("aliyun_v4" + cred.secret_access_key).encode(), date), region), product), "aliyun_v4_request"
    )
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        raise AuthError("the request signature does not match", access_key, reason="SignatureDoesNotMatch")
    md5 = req.header("content-md5")
    if md5 is not None and md5 != base64.b64encode(hashlib.md5(req.body, usedforsecurity=False).digest()).decode():
        raise AuthError("the body does not match its Content-MD5", access_key, reason="InvalidDigest")
    return cred
