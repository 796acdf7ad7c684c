"""Volcengine TOS Vectors: TRNs, the bucket and account from the Host or the body, integer
timestamps, errors as JSON with an ``EC`` code.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api import limits
from api.dialects.base import Dialect
from api.errors import TOS_EC, WIRE, ApiError, Kind, validation
from engine.refs import BucketRef


class TosDialect(Dialect):
    def bucket_id(self, region: str, account: str, bucket: str) -> str:
        return f"trn:tosvectors:{region}:{account}:bucket/{bucket}"

    def creation_time(self, t: float) -> float | int | str:
        return int(t)  # the SDK passes it through int()

    def check_batch_size(self, keys: list[str]) -> None:
        # TOS's PutVectors reference: past 500 vectors "the request is refused with a
        # ServiceUnavailableException" (503), not a ValidationException.
        if len(keys) > limits.MAX_PUT:
            raise ApiError(
                Kind.UNAVAILABLE, f"A PutVectors request holds at most {limits.MAX_PUT} vectors; it held {len(keys)}."
            )
        super().check_batch_size(keys)

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
        return BucketRef(caller_account, limits.bucket_name(name, self.bucket_name_max, field))


def _tos_headers(request_id: str) -> dict[str, str]:
    return {"x-tos-request-id": request_id, "x-tos-id-2": "vecledger"}


TOS = TosDialect(
    "tos",
    "Trn",
    bucket_name_max=32,
    top_k_max=1_000,
    query_page=1_000,
    delete_keys_max=100,
    catalog_page=100,
    max_buckets=100,
)
