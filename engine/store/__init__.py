"""Object stores: the bottom layer. ``open_store`` picks a backend from the root's scheme."""

from __future__ import annotations

from engine.clock import Clock
from engine.settings import Settings
from engine.store.base import Blob, LanceLocation, ObjectInfo, ObjectStore, exists
from engine.store.faulty import FaultyStore
from engine.store.local import LocalStore
from engine.store.s3 import S3Store

__all__ = [
    "Blob",
    "FaultyStore",
    "LanceLocation",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "exists",
    "open_store",
]


async def open_store(root: str, settings: Settings, clock: Clock | None = None) -> ObjectStore:
    """``s3://bucket/prefix`` opens S3 (endpoint from settings); anything else is a local folder."""
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {root!r}")
        return await S3Store.open(bucket, prefix, settings.s3, clock)
    path = root[len("file://") :] if root.startswith("file://") else root
    return LocalStore(path, fsync=settings.local_fsync, clock=clock)
