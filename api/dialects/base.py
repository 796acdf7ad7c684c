"""What a wire dialect decides, and nothing else: the interface the operations are written against.

S3 Vectors and TOS Vectors speak ``POST /<Operation>`` with the same JSON fields, OSS Vectors a
REST form of them (routed in ``api/operations/oss.py``); they differ in resource ids (ARN, TRN,
ACS), where the bucket and account come from (body or Host), timestamps, a few limits and the error
shape. The operations (``api/operations/``) are written once against this class.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from api import limits
from api.errors import ApiError, validation
from engine import BucketRef, IndexRef

_ARN = re.compile(r"^arn:aws[-a-z0-9]*:s3vectors:([a-z0-9-]+):(\d{12}):bucket/([^/]+)(?:/index/([^/]+))?$")
_TRN = re.compile(r"^trn:tosvectors:([a-z0-9-]+):(\d+):bucket/([^/]+)(?:/index/([^/]+))?$")


# AWS's words (moto's aws_verified tests check them against AWS).
EITHER_INDEX = "Must specify either indexArn or both vectorBucketName and indexName"
EITHER_BUCKET = "Must specify either vectorBucketName or vectorBucketArn but not both"


@dataclass(frozen=True)
class Dialect(ABC):
    name: str
    id_suffix: str  # "Arn" or "Trn": vectorBucketArn / indexTrn ...
    bucket_name_max: int
    top_k_max: int
    query_page: int  # results per QueryVectors page
    delete_keys_max: int
    max_filter_depth: int = 10
    list_filter: bool = False  # ListVectors takes a filter (OSS)
    max_indexes: int | None = None  # per bucket, where lower than the engine's
    catalog_page: int = 500  # ListVectorBuckets / ListIndexes results without a maxResults
    max_buckets: int | None = None  # per account, where lower than the engine's

    def index_name(self, name: str) -> str:
        return limits.index_name(name)

    def check_batch_size(self, keys: list[str]) -> None:
        """1 to 500 vectors per PutVectors; past it, AWS (and OSS) answer a ValidationException."""
        limits.count(keys, 1, limits.MAX_PUT, "vectors")

    def check_batch(self, keys: list[str], metadata: list[Any], non_filterable: tuple[str, ...]) -> None:
        """Dialect rules for a PutVectors batch beyond the shared ones (none by default)."""
        return

    @abstractmethod
    def bucket_id(self, region: str, account: str, bucket: str) -> str: ...

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

    @abstractmethod
    def ok(self, body: Any, request_id: str) -> Response: ...

    @abstractmethod
    def error(self, err: ApiError, request_id: str) -> Response: ...

    @abstractmethod
    def bucket_of(
        self, caller_account: str, host: tuple[str, str] | None, name: str | None, arn: str | None, field: str
    ) -> BucketRef: ...

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
                raise validation(EITHER_INDEX, "indexArn")
            account, b, i = self.parse_id(arn, "indexArn")
            if i is None:
                raise validation("indexArn must name an index", "indexArn")
            return IndexRef(account, b, i)
        if index is None:
            raise validation(EITHER_INDEX, "indexName")
        ref = self.bucket_of(caller_account, host, bucket, None, "vectorBucketName")
        # A name no index could have is a bad request (as on AWS), not a missing index.
        return IndexRef(ref.account, ref.name, self.index_name(index))
