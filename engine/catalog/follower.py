"""Following and writing the catalog log.

Every process folds the same catalog log into its own ``CatalogState``, starting from the newest
catalog snapshot (``snapshot.py``) when there is one. Before a read that must be
strongly consistent the catalog probes the log for entries past the newest seq it has folded (one
HEAD on S3, one ``stat`` on a folder), so a bucket created through any process is visible to the
next request on every process.

A data read (``tolerate``) may instead use a state probed at most ``catalog_staleness`` seconds
ago: its index's own log, which the read probes anyway, carries a mark of every change to the
index's catalog record (``INDEX_CHANGED``, ``TEXT_SEARCH_CHANGED``), written before the change is
acknowledged; a mark seen by any request of this process (``invalidate``) voids the recent state,
and a read that used it runs again on a probed one (``trusted``). So an index's deletion,
re-creation or mode change is seen at once; only bucket-wide changes (a policy) may take up to
``catalog_staleness`` to reach reads, as IAM's do (docs/notes/0007).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio

from engine import keys
from engine.catalog import snapshot
from engine.catalog.state import CatalogState
from engine.clock import Clock, IdSource
from engine.context import RequestContext
from engine.errors import NotFound
from engine.log import Appender, Event, read_log
from engine.log.event import json_payload
from engine.store import ObjectStore

# None: no request scope (every refresh probes); False/True: a scope that has not / has probed.
_probed: contextvars.ContextVar[bool | None] = contextvars.ContextVar("catalog_probed", default=None)
# Within a scope: how old (seconds) a probed state this request accepts, and the epoch of the
# recent state it used without probing (None: it used none, or probed since).
_tolerated: contextvars.ContextVar[float] = contextvars.ContextVar("catalog_tolerated", default=0.0)
_used_epoch: contextvars.ContextVar[int | None] = contextvars.ContextVar("catalog_used_epoch", default=None)
T = TypeVar("T")


class Catalog:
    def __init__(self, store: ObjectStore, clock: Clock, ids: IdSource) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.state = CatalogState()
        self._appender = Appender(store, keys.CATALOG_LOG, clock)
        self._lock = anyio.Lock(fast_acquire=True)
        self._waiting: dict[str, Any] = {}
        self._started = False
        self.snapshot_seq = -1  # the newest snapshot this process read or wrote
        self._epoch = 0  # bumped by invalidate()
        self._probed_epoch = -1  # the epoch and monotonic time at which the newest probe began
        self._probed_at = 0.0

    @contextlib.contextmanager
    def one_probe(self) -> Iterator[None]:
        """Within this block (one API request), probe the log once: the first refresh reads what
        is new, the later ones reuse that state. The request still sees every write acknowledged
        before it began, from any process; it just does not pay a probe per lookup."""
        tokens = _probed.set(False), _tolerated.set(0.0), _used_epoch.set(None)
        try:
            yield
        finally:
            _probed.reset(tokens[0])
            _tolerated.reset(tokens[1])
            _used_epoch.reset(tokens[2])

    def tolerate(self, seconds: float) -> None:
        """Let this request (a data read, within ``one_probe``) use a state probed at most
        ``seconds`` ago instead of probing; 0 keeps it strict."""
        if _probed.get() is False:
            _tolerated.set(seconds)

    def invalidate(self) -> None:
        """An index's log said its catalog record changed: no request may use the recent state
        any more, and one that did runs again (``trusted``)."""
        self._epoch += 1

    def trusted(self) -> bool:
        """False if this request used a recent state that was invalidated since."""
        used = _used_epoch.get()
        return used is None or used == self._epoch

    def _recent(self) -> bool:
        seconds = _tolerated.get()
        return seconds > 0 and self._probed_epoch == self._epoch and self.clock.monotonic() - self._probed_at <= seconds

    async def find(self, lookup: Callable[[CatalogState], T]) -> T:
        """``lookup`` on the state; a miss on a recent (unprobed) state is looked up again on a
        probed one: a bucket or index created by another process a moment ago is found."""
        state = await self.refresh()
        try:
            return lookup(state)
        except NotFound:
            if _used_epoch.get() is None:
                raise
        return lookup(await self.refresh(probe=True))

    async def refresh(self, *, probe: bool = False) -> CatalogState:
        """Fold every catalog event written since the last refresh, by any process (in a
        tolerant request, unless ``probe``, a recent enough state is used as it is)."""
        scoped = _probed.get()
        if scoped is True:
            return self.state
        if scoped is False:
            if not probe and self._recent():
                _used_epoch.set(self._epoch)
                return self.state
            _probed.set(True)
            _used_epoch.set(None)
        async with self._lock:
            epoch, began = self._epoch, self.clock.monotonic()
            if not self._started:
                self._started = True
                loaded = await snapshot.load_newest(self.store)
                if loaded is not None:
                    self.state, self.snapshot_seq = loaded, loaded.seq
            async for obj in read_log(self.store, keys.CATALOG_LOG, self.state.seq):
                for ev in obj.events:
                    outcome = self.state.apply(ev)
                    if ev.id in self._waiting:
                        self._waiting[ev.id] = outcome
                self.state.seq = obj.seq
            if began >= self._probed_at:
                self._probed_epoch, self._probed_at = epoch, began
        return self.state

    async def snapshot_if_due(self, every: int) -> bool:
        """Write a catalog snapshot if ``every`` events were folded since the last one; True if
        this process wrote one. Encoded under the lock, so it is the state at one seq."""
        async with self._lock:
            if self.state.seq < 0 or self.state.seq - self.snapshot_seq < every:
                return False
            seq, data = self.state.seq, snapshot.encode(self.state)
        wrote = await snapshot.write(self.store, seq, data)
        self.snapshot_seq = max(self.snapshot_seq, seq)
        return wrote

    async def submit(self, ctx: RequestContext, type: str, payload: dict[str, Any]) -> Event:
        """Check, append and fold one catalog event; raises the rejection if the fold refused it.

        The check before the append keeps invalid requests out of the log; the outcome of the fold
        after it settles races with other writers (the first event in log order wins).
        """
        event = Event.new(ctx, id=self.ids.new_id(), type=type, time=self.clock.now(), payload=json_payload(payload))
        state = await self.refresh()
        state.check(event)
        self._waiting[event.id] = None
        try:
            seq = await self._appender.append([event])
            token = _probed.set(None)  # folding our own event must read the log, scope or not
            try:
                while self.state.seq < seq:
                    await self.refresh()
            finally:
                _probed.reset(token)
            outcome = self._waiting[event.id]
        finally:
            self._waiting.pop(event.id, None)
        if outcome is not None:
            raise outcome
        return event
