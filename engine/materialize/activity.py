"""Which indexes have writes to fold: one small mark per busy index, so that idle indexes cost
nothing, however many there are.

A writer puts ``activity/<bucket id>/<index id>`` before and after its first append of a busy
period (and again around any append that follows half an ``idle_exit`` of its own silence);
every materializing process lists ``activity/`` once per ``materialize_idle_interval`` and wakes
the materializers of the marked indexes, opening them if need be. A materializer that went ``idle_exit`` seconds
without a fold removes the mark, probes the log once more, and parks (lease released, no polling)
until a write in its process or a mark wakes it.

Why no write is left unfolded: the mark is put before the append, so a crash after an append
leaves the mark behind, and again after it, so a removal that came between the two cannot hide
it (a removal after the second put comes after the append, which the removal's probe sees). The
holder removes the mark only ``idle_exit`` after the start of its last fold, so at least
``idle_exit`` after the last append it folded, and any later append comes after more than half
an ``idle_exit`` of that writer's silence, so it is marked again.
"""

from __future__ import annotations

import contextlib

from engine import keys
from engine.catalog.state import Index
from engine.clock import Clock
from engine.errors import ObjectNotFound
from engine.store import ObjectStore, exists

MARK = b"{}"  # a mark's content: its presence is all it says


class ActivityMark:
    """The writer's side, one per index per process."""

    def __init__(self, store: ObjectStore, index: Index, clock: Clock, idle_exit: float) -> None:
        self.store = store
        self.key = keys.activity(index.bucket_id, index.id)
        self.clock = clock
        self.every = idle_exit / 2
        self._last: float | None = None  # monotonic time of this process's last append

    def due(self) -> bool:
        """Whether the next append must be marked (before and after it)."""
        return self._last is None or self.clock.monotonic() - self._last >= self.every

    async def mark(self) -> None:
        await self.store.put(self.key, MARK)

    def appended(self) -> None:
        self._last = self.clock.monotonic()


async def settle(store: ObjectStore, index: Index, folded_seq: int) -> bool:
    """Remove the index's mark if nothing lies past ``folded_seq``; False if something does
    (the mark is then put back: there is work)."""
    await unmark(store, index.bucket_id, index.id)
    if await exists(store, keys.log_entry(keys.index_log(index.bucket_id, index.id), folded_seq + 1)):
        await store.put(keys.activity(index.bucket_id, index.id), MARK)
        return False
    return True


async def marked(store: ObjectStore) -> list[tuple[str, str]]:
    """(bucket id, index id) of every marked index: one listing."""
    return [keys.activity_ids(info.key) async for info in store.list(keys.ACTIVITY)]


async def unmark(store: ObjectStore, bucket_id: str, index_id: str) -> None:
    """Remove an index's mark (it parks, or no longer exists)."""
    with contextlib.suppress(ObjectNotFound):
        await store.delete(keys.activity(bucket_id, index_id))
