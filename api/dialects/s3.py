"""Amazon S3 Vectors: ARNs, names in the body, errors as ``x-amzn-ErrorType`` plus a JSON message."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api import limits
from api.dialects.base import EITHER_BUCKET, Dialect
from api.errors import WIRE, ApiError, Kind, validation
from engine.refs import BucketRef


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
            raise validation(EITHER_BUCKET, field)
        if arn is not None:
            account, bucket, index = self.parse_id(arn, "vectorBucketArn")
            if index is not None:
                raise validation("vectorBucketArn must name a bucket", "vectorBucketArn")
            return BucketRef(account, bucket)
        assert name is not None
        return BucketRef(caller_account, limits.bucket_name(name, self.bucket_name_max, field))


S3 = S3Dialect("s3", "Arn", bucket_name_max=63, top_k_max=10_000, query_page=100, delete_keys_max=500)
