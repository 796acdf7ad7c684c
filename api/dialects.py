"""What differs between the S3 Vectors and TOS Vectors wire dialects, and nothing else.

Both speak ``POST /<Operation>`` with the same JSON fields; they differ in resource ids (ARN vs
TRN), where the bucket and account come from (body vs Host), timestamps, a few limits and the error
shape. The operations themselves (``api/operations.py``) are written once against this interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from api.errors import TOS_EC, WIRE, ApiError, Kind, validation
from engine.engine import BucketRef, IndexRef

_ARN = re.compile(r"^arn:aws[-a-z0-9]*:s3vectors:([a-z0-9-]+):(\d{12}):bucket/([^/]+)(?:/index/([^/]+))?$")
_TRN = re.compile(r"^trn:tosvectors:([a-z0-9-]+):(\d+):bucket/([^/]+)(?:/index/([^/]+))?$")


@dataclass(frozen=True)
class Dialect:
    name: str
    id_suffix: str  # "Arn" or "Trn": vectorBucketArn / indexTrn ...
    bucket_name_max: int
    top_k_max: int
    query_page: int  # results per QueryVectors page
    delete_keys_max: int

    def bucket_id(self, region: str, account: str, bucket: str) -> str:
        raise NotImplementedError

    def index_id(self, region: str, account: str, bucket: str, index: str) -> str:
        return f"{self.bucket_id(region, account, bucket)}/index/{index}"

    def parse_id(self, value: str, field: str) -> tuple[str, str, str | None]:
        """(account, bucket, index or None) from an ARN/TRN; ValidationException if malformed."""
        m = (_ARN if self.id_suffix == "Arn" else _TRN).match(value)
        if not m:
            raise validation(f"{field} is not a valid resource id", field)
        return m.group(2), m.group(3), m.group(4)

    def creation_time(self, t: float) -> float | int:
        return t

    def ok(self, body: Any, request_id: str) -> Response:
        raise NotImplementedError

    def error(self, err: ApiError, request_id: str) -> Response:
        raise NotImplementedError

    def bucket_of(
        self, caller_account: str, host: tuple[str, str] | None, name: str | None, arn: str | None, field: str
    ) -> BucketRef:
        raise NotImplementedError

    def index_of(
        self,
        caller_account: str,
        host: tuple[str, str] | None,
        bucket: str | None,
        index: str | None,
        arn: str | None,
    ) -> IndexRef:
        if arn is not None:
            if bucket is not None or index is not None:
                raise validation("give either indexArn or vectorBucketName and indexName, not both", "indexArn")
            account, b, i = self.parse_id(arn, "indexArn")
            if i is None:
                raise validation("indexArn must name an index", "indexArn")
            return IndexRef(account, b, i)
        if index is None:
            raise validation("indexName is required", "indexName")
        ref = self.bucket_of(caller_account, host, bucket, None, "vectorBucketName")
        return IndexRef(ref.account, ref.name, index)


class S3Dialect(Dialect):
    def bucket_id(self, region: str, account: str, bucket: str) -> str:
        return f"arn:aws:s3vectors:{region}:{account}:bucket/{bucket}"

    def ok(self, body: Any, request_id: str) -> Response:
        return Response(
            orjson.dumps(body if body is not None else {}),
            media_type="application/json",
            headers={"x-amzn-RequestId": request_id},
        )

    def error(self, err: ApiError, request_id: str) -> Response:
        code, status = WIRE[err.kind][self.name]
        body: dict[str, Any] = {"message": err.message}
        if err.kind is Kind.VALIDATION:
            body["fieldList"] = [{"path": p, "message": m} for p, m in err.fields]
        return Response(
            orjson.dumps(body),
            status_code=status,
            media_type="application/json",
            headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id},
        )

    def bucket_of(
        self, caller_account: str, host: tuple[str, str] | None, name: str | None, arn: str | None, field: str
    ) -> BucketRef:
        if (name is None) == (arn is None):
            raise validation("give exactly one of vectorBucketName and vectorBucketArn", field)
        if arn is not None:
            account, bucket, index = self.parse_id(arn, "vectorBucketArn")
            if index is not None:
                raise validation("vectorBucketArn must name a bucket", "vectorBucketArn")
            return BucketRef(account, bucket)
        assert name is not None
        return BucketRef(caller_account, name)


class TosDialect(Dialect):
    def bucket_id(self, region: str, account: str, bucket: str) -> str:
        return f"trn:tosvectors:{region}:{account}:bucket/{bucket}"

    def creation_time(self, t: float) -> float | int:
        return int(t)  # the SDK passes it through int()

    def ok(self, body: Any, request_id: str) -> Response:
        content = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(content, media_type="application/json", headers=_tos_headers(request_id))

    def error(self, err: ApiError, request_id: str) -> Response:
        code, status = WIRE[err.kind][self.name]
        body = {
            "Code": code,
            "Message": err.message,
            "RequestId": request_id,
            "HostId": "vecledger",
            "EC": TOS_EC[err.kind],
        }
        return Response(
            orjson.dumps(body), status_code=status, media_type="application/json", headers=_tos_headers(request_id)
        )

    def bucket_of(
        self, caller_account: str, host: tuple[str, str] | None, name: str | None, arn: str | None, field: str
    ) -> BucketRef:
        if arn is not None:
            raise validation("TOS requests name buckets by vectorBucketName", field)
        if host is not None:
            host_bucket, account = host
            if name is not None and name != host_bucket:
                raise validation("vectorBucketName does not match the bucket in the Host name", field)
            return BucketRef(account, host_bucket)
        if name is None:
            raise validation("vectorBucketName is required", field)
        return BucketRef(caller_account, name)


def _tos_headers(request_id: str) -> dict[str, str]:
    return {"x-tos-request-id": request_id, "x-tos-id-2": "vecledger"}


S3 = S3Dialect("s3", "Arn", bucket_name_max=63, top_k_max=10_000, query_page=100, delete_keys_max=500)
TOS = TosDialect("tos", "Trn", bucket_name_max=32, top_k_max=1_000, query_page=1_000, delete_keys_max=100)


def detect(headers: dict[str, str]) -> Dialect:
    """TOS always sends x-tos-content-sha256 (signed or not); everything else on /<Op> is S3."""
    if "x-tos-content-sha256" in headers or headers.get("authorization", "").startswith("TOS4-"):
        return TOS
    return S3


def parse_host(host: str, base: str) -> tuple[str, str] | None:
    """(bucket, account) from ``<bucket>-<account>.<base>``; None for the bare base host.

    The label is split at its last '-': account ids are all digits, bucket names may hold '-'.
    """
    host = host.lower()
    base = base.lower()
    if host == base or not host.endswith("." + base):
        return None
    label = host[: -len(base) - 1]
    m = re.fullmatch(r"(.+)-(\d+)", label)
    return (m.group(1), m.group(2)) if m else None
