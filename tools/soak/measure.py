"""What the soak measures of a root, on a local folder or on S3 (through moto): bytes and objects
under a prefix, the soak index's ids, its Lance location. Read from outside the server, as an
operator would see the root."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from engine import S3Settings, keys
from engine.store import LanceLocation, S3Store


@dataclass
class RootView:
    local: Path | None = None  # a folder root, or:
    endpoint: str | None = None  # S3 at this endpoint,
    bucket: str = ""  # in this bucket,
    prefix: str = ""  # under this prefix ("" or ending in "/")

    @classmethod
    def s3(cls, endpoint: str, bucket: str, prefix: str) -> RootView:
        view = cls(endpoint=endpoint, bucket=bucket, prefix=prefix.strip("/") + "/" if prefix else "")
        view._client().create_bucket(Bucket=bucket)
        return view

    @property
    def root(self) -> str:
        return str(self.local) if self.local is not None else f"s3://{self.bucket}/{self.prefix}"

    def _client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        pager = self._client().get_paginator("list_objects_v2")
        pages = pager.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        return [o for page in pages for o in page.get("Contents", [])]

    def sizes(self, prefix: str = "") -> tuple[int, int]:
        """(bytes, objects) under ``prefix`` of the root."""
        if self.local is None:
            objects = self._objects(prefix)
            return sum(int(o["Size"]) for o in objects), len(objects)
        total = files = 0
        for dirpath, _, names in os.walk(self.local / prefix):
            for n in names:
                try:
                    total += os.stat(os.path.join(dirpath, n)).st_size
                    files += 1
                except FileNotFoundError:
                    pass
        return total, files

    def index_ids(self) -> tuple[str, str]:
        """(bucket id, index id) of the soak's index: the first one created on this root."""
        if self.local is not None:
            bucket_id = next(p.name for p in (self.local / keys.DATA).iterdir())
            first = min((self.local / keys.DATA / bucket_id).iterdir(), key=lambda p: p.stat().st_ctime)
            return bucket_id, first.name
        oldest: dict[tuple[str, str], Any] = {}
        for o in self._objects(keys.DATA):
            bucket_id, index_id = o["Key"][len(self.prefix + keys.DATA) :].split("/")[:2]
            oldest[(bucket_id, index_id)] = min(o["LastModified"], oldest.get((bucket_id, index_id), o["LastModified"]))
        return min(oldest, key=lambda ids: oldest[ids])

    def lance(self, bucket_id: str, index_id: str) -> LanceLocation:
        key = keys.index_lance(bucket_id, index_id)
        if self.local is not None:
            return LanceLocation(str(self.local / key))
        settings = S3Settings(endpoint_url=self.endpoint, access_key_id="test", secret_access_key="test")
        return S3Store(self.bucket, self.prefix, settings).lance_location(key)
