"""Appending to a log: create-only PUTs at the next seq, with group commit.

Concurrent requests to one log share one event object: while one write is in flight, the requests
that arrive queue up and go out together in the next object. Every request is acknowledged only
after the object holding its events exists (durability = the append).

A lost race (``PreconditionFailed``) may be our own earlier attempt whose reply was lost and which
the HTTP layer re-sent; so on a 412 we read the object and, if it carries our first event's id, we
count it as our success instead of appending the events a second time.

Each object links to the one before it (its ``prev`` digest, ``event.py``). The appender keeps
the digest of what it wrote last, so a log with one writer pays nothing for the chain; after a
restart or a lost race it reads the previous object's header once (a ranged GET).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from engine import keys, metrics
from engine.clock import Backoff, Clock
from engine.errors import ObjectNotFound, PreconditionFailed, StoreUnavailable
from engine.log.event import Event, EventObject, digest, encode
from engine.log.reader import digest_of, read_header
from engine.log.start import first_seq
from engine.store import ObjectStore, exists

_UNAVAILABLE_RETRIES = 5
_UNAVAILABLE_BACKOFF = Backoff(0.02, cap=1.0)


@dataclass
class _Request:
    events: list[Event]
    size: int
    done: anyio.Event = field(default_factory=anyio.Event)
    seq: int = -1
    error: BaseException | None = None


class Appender:
    """Appends to the log under ``prefix``. One per log per process."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        clock: Clock,
        *,
        window: float = 0.0,
        max_bytes: int = 16 * 1024 * 1024,
        known_seq: int = -1,
        on_written: Callable[[EventObject], None] | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.clock = clock
        self.window = window
        self.max_bytes = max_bytes
        self._known = known_seq  # highest seq known to exist (-1: none known)
        self._next: int | None = None
        self._last: tuple[int, str] | None = None  # (seq, digest) of the last object this wrote
        self._pending: list[_Request] = []
        self._lock = anyio.Lock()
        self.on_written = on_written
        self.lost_races = 0
        self._kind = metrics.log_kind(prefix)

    async def append(self, events: list[Event]) -> int:
        """Append ``events`` (one request's) atomically; returns the seq of the object holding them."""
        req = _Request(events, sum(len(e.payload) for e in events))
        self._pending.append(req)
        async with self._lock:
            if not req.done.is_set():
                if self.window > 0:
                    await self.clock.sleep(self.window)
                batch = self._take_batch()
                with anyio.CancelScope(shield=True):
                    await self._flush(batch)
        await req.done.wait()
        if req.error is not None:
            raise req.error
        return req.seq

    def _take_batch(self) -> list[_Request]:
        batch: list[_Request] = []
        size = 0
        while self._pending:
            req = self._pending[0]
            if batch and size + req.size > self.max_bytes:
                break
            batch.append(self._pending.pop(0))
            size += req.size
        return batch

    async def _flush(self, batch: list[_Request]) -> None:
        events = [e for r in batch for e in r.events]
        started = metrics.stopwatch()
        try:
            seq = await self._write(events)
            metrics.LOG_APPEND_SECONDS.labels(self._kind).observe(metrics.stopwatch() - started)
            metrics.LOG_APPENDS.labels(self._kind).inc()
            metrics.LOG_APPEND_EVENTS.labels(self._kind).inc(len(events))
            if self.on_written is not None:
                self.on_written(EventObject(seq, self.clock.now(), tuple(events)))
        except BaseException as e:  # every waiter must wake, whatever happened
            metrics.LOG_APPEND_FAILURES.labels(self._kind).inc()
            for r in batch:
                r.error = e
                r.done.set()
            raise
        for r in batch:
            r.seq = seq
            r.done.set()

    async def _write(self, events: list[Event]) -> int:
        attempts = 0
        while True:
            if self._next is None:
                self._next = await tail_seq(self.store, self.prefix, self._known) + 1
            seq = self._next
            key = keys.log_entry(self.prefix, seq)
            data = encode(seq, self.clock.now(), events, await self._link(seq))
            try:
                await self.store.put_if_absent(key, data)
            except PreconditionFailed:
                self._last = None  # what is at ``seq`` now, ours or not, is not ``data``
                if await self._is_ours(key, events[0].id):
                    break
                self.lost_races += 1
                metrics.LOG_LOST_RACES.labels(self._kind).inc()
                self._known = seq
                self._next = await tail_seq(self.store, self.prefix, seq) + 1
                continue
            except StoreUnavailable:
                attempts += 1
                if attempts >= _UNAVAILABLE_RETRIES:
                    self._next = None  # the object may or may not exist now: rediscover the tail
                    raise
                await self.clock.sleep(_UNAVAILABLE_BACKOFF.delay(attempts))
                continue
            self._last = (seq, digest(data))
            break
        self._known = seq
        self._next = seq + 1
        return seq

    async def _link(self, seq: int) -> str:
        """The digest of the object before ``seq`` ("" before the first)."""
        if self._last is not None and self._last[0] == seq - 1:
            return self._last[1]
        return await digest_of(self.store, keys.log_entry(self.prefix, seq - 1)) if seq > 0 else ""

    async def _is_ours(self, key: str, event_id: str) -> bool:
        for attempt in range(_UNAVAILABLE_RETRIES):
            try:
                header = await read_header(self.store, key)
                return bool(header["events"]) and header["events"][0]["id"] == event_id
            except ObjectNotFound:
                return False
            except StoreUnavailable:
                await self.clock.sleep(_UNAVAILABLE_BACKOFF.delay(attempt))
        raise StoreUnavailable(f"cannot read {key} back")


async def tail_seq(store: ObjectStore, prefix: str, known: int = -1) -> int:
    """The highest seq present in the log, given that ``known`` exists (-1: nothing known).

    Galloping existence probes: O(log n) HEADs (stats on a folder) rather than a listing, which is
    O(log size) on a folder and slow on moto. Relies on the log being gap-free, which holds because
    a writer only tries seq N+1 after it has seen N exist; a log whose head log retention dropped
    says where it starts now.
    """
    if known < 0:
        known = await first_seq(store, prefix) - 1
    lo, step = known, 1
    while await exists(store, keys.log_entry(prefix, lo + step)):
        lo += step
        step *= 2
    hi = lo + step  # lo exists (or is -1), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if await exists(store, keys.log_entry(prefix, mid)):
            lo = mid
        else:
            hi = mid
    return lo
