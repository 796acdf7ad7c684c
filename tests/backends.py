"""The two storage backends every storage test runs on: a local folder, and S3 through a real moto
HTTP server. Each S3 test gets a bucket of its own: moto's LIST is O(bucket size), and a fresh
bucket keeps tests independent."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3

from engine import Engine
from engine.clock import RandomIds
from engine.settings import IndexTuning, S3Settings, Settings
from engine.store import LanceLocation, ObjectStore, open_store

_bucket_numbers = itertools.count()


@dataclass(frozen=True)
class Backend:
    name: str
    root: str
    settings: Settings

    def with_settings(self, **changes: Any) -> Backend:
        return replace(self, settings=replace(self.settings, **changes))

    def with_tuning(self, **changes: Any) -> Backend:
        return self.with_settings(tuning=replace(self.settings.tuning, **changes))

    async def store(self) -> ObjectStore:
        return await open_store(self.root, self.settings)

    def lance_location(self, path: str) -> LanceLocation:
        """Where a Lance dataset at ``path`` under the root lives, for the tests that write one
        with the adapter directly, outside an event loop."""

        async def locate() -> LanceLocation:
            store = await self.store()
            try:
                return store.lance_location(path)
            finally:
                await store.close()

        return asyncio.run(locate())

    def engine(self, seed: int | None = None, **kw: Any) -> contextlib.AbstractAsyncContextManager[Engine]:
        return Engine.open(self.root, self.settings, ids=RandomIds(seed) if seed is not None else None, **kw)


def _s3_settings(endpoint: str) -> S3Settings:
    return S3Settings(endpoint_url=endpoint, access_key_id="test", secret_access_key="test", region="us-east-1")


def make_backend(kind: str, tmp_path: Path, moto_endpoint: Callable[[], str]) -> Backend:
    # Small thresholds so that index builds and folds happen at test sizes; fast polling.
    base = Settings(
        local_fsync=False,
        materialize_interval=0.05,
        tuning=IndexTuning(build_threshold=2_000, optimize_unindexed_rows=2_000, compact_fragments=16),
    )
    if kind == "local":
        return Backend("local", str(tmp_path / "root"), base)
    endpoint = moto_endpoint()
    bucket = f"vecledger-test-{next(_bucket_numbers)}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).create_bucket(Bucket=bucket)
    return Backend("s3", f"s3://{bucket}/root", replace(base, s3=_s3_settings(endpoint)))
