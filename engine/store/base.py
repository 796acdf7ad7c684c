"""The one object-store protocol every layer above talks to.

Six verbs and two conditional writes are all the engine needs: create-only PUT is the log append,
compare-and-swap is for checkpoints and leases. Backends raise only the store errors of
``engine.errors`` (``ObjectNotFound``, ``PreconditionFailed``, ``StoreUnavailable``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from engine.clock import Clock


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str


@dataclass(frozen=True)
class LanceLocation:
    """Where Lance should open a dataset that lives under a store prefix, and with which options."""

    uri: str
    storage_options: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    clock: Clock  # the engine's: the store's retries and the log reader's pause on it

    async def put_if_absent(self, key: str, data: bytes) -> str:
        """Create ``key``; raise ``PreconditionFailed`` if it exists. Returns the new etag."""
        ...

    async def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        """Replace ``key`` only while its etag is ``etag``; ``PreconditionFailed`` otherwise.

        A missing key raises ``ObjectNotFound``.
        """
        ...

    async def put(self, key: str, data: bytes) -> str:
        """Create or replace ``key`` unconditionally."""
        ...

    async def get(self, key: str) -> Blob: ...

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object; shorter if the object ends first."""
        ...

    async def head(self, key: str) -> ObjectInfo: ...

    def list(self, prefix: str, start_after: str | None = None) -> AsyncIterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, strictly after ``start_after`` if given."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""
        ...

    def lance_location(self, prefix: str) -> LanceLocation:
        """The URI and options Lance needs to read and write a dataset under ``prefix``."""
        ...

    async def close(self) -> None: ...


async def exists(store: ObjectStore, key: str) -> bool:
    from engine.errors import ObjectNotFound

    try:
        await store.head(key)
    except ObjectNotFound:
        return False
    return True
