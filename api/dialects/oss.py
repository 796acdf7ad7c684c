"""Alibaba Cloud OSS Vectors' wire shape; its REST routes are in ``api/operations/oss.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from api.dialects.base import Dialect
from api.errors import OSS_EC, ApiError, oss_code, validation
from engine.refs import BucketRef

_OSS_INDEX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}$")


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
            # OSS: "up to 10 filterable and non-filterable metadata fields combined" (seed 002).
            if isinstance(meta, dict) and len(meta) > 10:
                raise validation(
                    "at most 10 metadata keys per vector, filterable and non-filterable combined",
                    f"vectors[{i}].metadata",
                )

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


OSS = OssDialect(
    "oss",
    "Arn",
    bucket_name_max=63,
    top_k_max=100,  # QueryVectors: "1 to 30 by default", raised to 100 at most on request
    query_page=100,
    delete_keys_max=500,
    max_filter_depth=8,
    list_filter=True,
    max_indexes=100,
)
