"""Following and writing the catalog log.

Every process folds the same catalog log into its own ``CatalogState``, starting from the newest
catalog snapshot (``snapshot.py``) when there is one. Before a read that must be
strongly consistent the catalog probes the log for entries past the newest seq it has folded (one
HEAD on S3, one ``stat`` on a folder), so a bucket created through any process is visible to the
next request on every process.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import anyio

from engine import keys
from engine.catalog import snapshot
from engine.catalog.state import CatalogState
from engine.clock import Clock, IdSource
from engine.context import RequestContext
from engine.log import Appender, Event, read_log
from engine.log.event import json_payload
from engine.store import ObjectStore

# None: no request scope (every refresh probes); False/True: a scope that has not / has probed.
_probed: contextvars.ContextVar[bool | None] = contextvars.ContextVar("catalog_probed", default=None)


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

    @contextlib.contextmanager
    def one_probe(self) -> Iterator[None]:
        """Within this block (one API request), probe the log once: the first refresh reads what
        is new, the later ones reuse that state. The request still sees every write acknowledged
        before it began, from any process; it just does not pay a probe per lookup."""
        token = _probed.set(False)
        try:
            yield
        finally:
            _probed.reset(token)

    async def refresh(self) -> CatalogState:
        """Fold every catalog event written since the last refresh, by any process."""
        if _probed.get() is True:
            return self.state
        if _probed.get() is False:
            _probed.set(True)
        async with self._lock:
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
