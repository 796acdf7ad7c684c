"""Which process folds an index: a lease object in the store, taken and renewed by compare-and-swap.

Folds are idempotent and the checkpoint only moves forward by CAS, so two materializers on one
index stay correct without a lease; the lease stops them doing the work twice. Its generation
fences a holder that was paused past its expiry (GC, a stalled disk, a laptop lid): before each
Lance commit and each checkpoint the holder re-reads the lease, and once another process has taken
it (a higher generation) the old holder's next commit is refused with ``LeaseLost``. Expiry uses
the wall clock of each process, so clocks must agree to well within the lease time.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import anyio

from engine.clock import Clock
from engine.errors import LeaseLost, ObjectNotFound, PreconditionFailed
from engine.store import ObjectStore


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    generation: int
    expires: float
    etag: str


class Lease:
    def __init__(self, store: ObjectStore, key: str, holder: str, clock: Clock, duration: float) -> None:
        self.store = store
        self.key = key
        self.holder = holder
        self.clock = clock
        self.duration = duration
        self.generation: int | None = None  # set while this process holds the lease
        self._etag: str | None = None
        self._renewed_at = float("-inf")
        # The fold and its renewer both touch the lease; two CAS writes from one holder with the
        # same etag would make it lose the lease to itself.
        self._lock = anyio.Lock()

    @property
    def held(self) -> bool:
        return self.generation is not None and self.clock.now() < self._renewed_at + self.duration

    async def read(self) -> LeaseRecord | None:
        try:
            blob = await self.store.get(self.key)
        except ObjectNotFound:
            return None
        doc = json.loads(blob.data)
        return LeaseRecord(str(doc["holder"]), int(doc["generation"]), float(doc["expires"]), blob.etag)

    async def hold(self) -> bool:
        """Take the lease if it is free or expired, renew it if ours and a third of it has passed;
        True while this process holds it."""
        async with self._lock:
            return await self._hold()

    async def _hold(self) -> bool:
        now = self.clock.now()
        if self.held and now < self._renewed_at + self.duration / 3:
            return True
        current = await self.read()
        if current is None:
            return await self._write(1, None)
        if current.holder == self.holder and current.generation == self.generation:
            return await self._write(current.generation, current.etag)
        if current.expires <= now:
            return await self._write(current.generation + 1, current.etag)
        self.generation = None
        return False

    async def _write(self, generation: int, etag: str | None) -> bool:
        now = self.clock.now()
        doc = {"holder": self.holder, "generation": generation, "expires": now + self.duration}
        data = json.dumps(doc).encode()
        try:
            if etag is None:
                self._etag = await self.store.put_if_absent(self.key, data)
            else:
                self._etag = await self.store.put_if_match(self.key, data, etag)
        except (PreconditionFailed, ObjectNotFound):
            self.generation = None  # another process got there first
            return False
        self.generation, self._renewed_at = generation, now
        return True

    async def check(self) -> int:
        """The fence: the generation this process holds, or ``LeaseLost`` if it no longer does."""
        async with self._lock:
            current = await self.read()
            if (
                self.generation is None
                or current is None
                or current.holder != self.holder
                or current.generation != self.generation
                or current.expires <= self.clock.now()
            ):
                self.generation = None
                raise LeaseLost(self.key, current.generation if current else None)
            return self.generation

    async def release(self) -> None:
        """Let the next process take over at once (shutdown); harmless if the lease moved on."""
        if self.generation is None or self._etag is None:
            return
        doc = {"holder": self.holder, "generation": self.generation, "expires": 0.0}
        async with self._lock:
            with contextlib.suppress(PreconditionFailed, ObjectNotFound):
                await self.store.put_if_match(self.key, json.dumps(doc).encode(), self._etag)
            self.generation = None
