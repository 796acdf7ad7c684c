"""How callers name buckets and indexes: by account and name (dialects turn ARNs/TRNs into these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BucketRef:
    account: str
    name: str


@dataclass(frozen=True)
class IndexRef:
    account: str
    bucket: str
    name: str

    @property
    def bucket_ref(self) -> BucketRef:
        return BucketRef(self.account, self.bucket)
