"""What differs between the S3 Vectors and TOS Vectors wire dialects, and nothing else.

Both speak ``POST /<Operation>`` with the same JSON fields; they differ in resource ids (ARN vs
TRN), where the bucket and account come from (body vs Host), timestamps, a few limits and the error
shape. The operations themselves (``api/operations.py``) are written once against this interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from api import limits
from api.errors import OSS_EC, TOS_EC, WIRE, ApiError, Kind, oss_code, validation
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
    max_filter_depth: int = 10
    list_filter: bool = False  # ListVectors takes a filter (OSS)
    max_indexes: int | None = None  # per bucket, where lower than the engine's

    def index_name(self, name: str) -> str:
        return limits.index_name(name)

    def check_batch(self, keys: list[str], metadata: list[Any], non_filterable: tuple[str, ...]) -> None:
        """Dialect rules for a PutVectors batch beyond the shared ones."""

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

    def creation_time(self, t: float) -> float | int | str:
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

    def creation_time(self, t: float) -> float | int | str:
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


class OssDialect(Dialect):
    """Alibaba OSS Vectors: bucket and account always from the Host; JSON errors under "Error"."""

    def bucket_id(self, region: str, account: str, bucket: str) -> str:
        return f"acs:ossvector:{region}:{account}:{bucket}"

    def parse_id(self, value: str, field: str) -> tuple[str, str, str | None]:
        raise validation("OSS requests address buckets by host name", field)

    def creation_time(self, t: float) -> float | int | str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"

    def index_name(self, name: str) -> str:
        if not _OSS_INDEX.match(name):
            raise validation("indexName must be 1 to 63 letters and digits, starting with a letter", "indexName")
        return name

    def check_batch(self, keys: list[str], metadata: list[Any], non_filterable: tuple[str, ...]) -> None:
        if len(set(keys)) != len(keys):
            raise validation("a key appears twice in one batch; the whole batch is refused", "vectors")
        for i, meta in enumerate(metadata):
            if isinstance(meta, dict) and sum(1 for k in meta if k not in non_filterable) > 10:
                raise validation("at most 10 filterable metadata keys per vector", f"vectors[{i}].metadata")

    def ok(self, body: Any, request_id: str) -> Response:
        content = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(content, media_type="application/json", headers={"x-oss-request-id": request_id})

    def error(self, err: ApiError, request_id: str) -> Response:
        code, status = oss_code(err.kind, err.reason)
        body = {"Error": {"Code": code, "Message": err.message, "RequestId": request_id, "EC": OSS_EC}}
        # The SDK parses JSON errors only with a Content-Type of exactly application/json.
        return Response(
            orjson.dumps(body),
            status_code=status,
            media_type="application/json",
            headers={"x-oss-request-id": request_id, "x-oss-ec": OSS_EC},
        )

    def bucket_of(
        self, caller_account: str, host: tuple[str, str] | None, name: str | None, arn: str | None, field: str
    ) -> BucketRef:
        if host is None:
            raise validation("OSS requests name the bucket in the Host: <bucket>-<account>.<endpoint>", field)
        return BucketRef(host[1], host[0])


_OSS_INDEX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}$")

S3 = S3Dialect("s3", "Arn", bucket_name_max=63, top_k_max=10_000, query_page=100, delete_keys_max=500)
TOS = TosDialect("tos", "Trn", bucket_name_max=32, top_k_max=1_000, query_page=1_000, delete_keys_max=100)
OSS = OssDialect(
    "oss",
    "Arn",
    bucket_name_max=63,
    top_k_max=500,
    query_page=500,
    delete_keys_max=500,
    max_filter_depth=8,
    list_filter=True,
    max_indexes=100,
)
ALL_DIALECTS = (S3, TOS, OSS)


def detect(headers: dict[str, str]) -> Dialect:
    """TOS always sends x-tos-content-sha256, OSS x-oss-date (signed or not); the rest is S3."""
    auth = headers.get("authorization", "")
    if "x-tos-content-sha256" in headers or auth.startswith("TOS4-"):
        return TOS
    if "x-oss-date" in headers or "x-oss-content-sha256" in headers or auth.startswith("OSS4-"):
        return OSS
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
