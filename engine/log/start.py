"""Where a log starts once log retention has dropped its head.

A log is gap-free from seq 0 until an index's log retention deletes its oldest objects; from then
on a small object beside the log (``keys.log_start``) says where it starts and what replaces the
dropped part: a restore point (a pinned Lance version) holding the state as of the last dropped
seq. The start object is written *before* any object is deleted, so a reader that finds an
object missing below the start knows why, and a crash mid-deletion leaves only objects that the
next truncation deletes again. Readers that start at the very beginning of a log (replays,
audits, tail discovery) read it; the freshness probe of every query never does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from engine import keys
from engine.errors import ObjectNotFound
from engine.store import ObjectStore


@dataclass(frozen=True)
class LogStart:
    seq: int  # the first seq still in the log; every seq before it was dropped
    base_version: int  # the pinned Lance version holding the state as of seq - 1
    base_time: float  # when seq - 1 was appended: the oldest time a restore can go back to
    truncated_at: float  # when the head was last dropped
    retention: float  # the log retention (seconds) that dropped it
    set_by: str  # who set that retention ("server default" if nobody did)

    @property
    def base_seq(self) -> int:
        return self.seq - 1


async def read_start(store: ObjectStore, prefix: str) -> LogStart | None:
    """The log's start, or None if nothing was ever dropped from it."""
    try:
        doc = json.loads((await store.get(keys.log_start(prefix))).data)
    except ObjectNotFound:
        return None
    return LogStart(**{k: doc[k] for k in LogStart.__dataclass_fields__})


async def write_start(store: ObjectStore, prefix: str, start: LogStart) -> None:
    await store.put(keys.log_start(prefix), json.dumps(asdict(start)).encode())


async def first_seq(store: ObjectStore, prefix: str) -> int:
    """The first seq the log holds (0 unless its head was dropped)."""
    start = await read_start(store, prefix)
    return 0 if start is None else start.seq
