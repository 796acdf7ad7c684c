"""Log retention: an index's oldest log objects dropped, once a restore point covers them.

Off by default: the log is the audit trail and the means of every restore. An operator (server
default ``log_retention``) or an index's owner (``index.retention``) may opt in; then, at a prune,
the newest kept restore point folded more than the retention ago becomes the log's *base*: its
Lance version stays pinned (``to_keep`` never drops it), the log's start object says so
(``engine/log/start.py``), and only then are the objects up to the base's seq deleted. A log
object is never deleted unless a pinned point holds the state it led to, so what was restorable
before stays restorable from the base on; restores to before the base's time are refused with
the oldest restorable time, and the audit reports what was dropped, when, and under whose
setting (``engine/audit/query.py``).
"""

from __future__ import annotations

import contextlib

from engine import failpoints, keys
from engine.catalog import Index
from engine.errors import CorruptEvent, ObjectNotFound
from engine.log.reader import read_header
from engine.log.start import LogStart, write_start
from engine.materialize.restore_points import Point
from engine.settings import Settings
from engine.store import ObjectStore

SERVER_DEFAULT = "server default (VECLEDGER_LOG_RETENTION)"


def log_retention(index: Index, settings: Settings) -> tuple[float | None, str]:
    """(seconds, who set them) of the index's log retention; None (or 0) keeps the log forever."""
    own = index.retention or {}
    if "log_retention" in own:
        return float(own["log_retention"]) or None, str(own.get("log_retention_set_by", ""))
    return settings.log_retention or None, SERVER_DEFAULT


def base_for(points: dict[int, Point], now: float, retention: float, current: LogStart | None) -> Point | None:
    """The point the log may be cut back to: the newest folded more than ``retention`` ago,
    if it is newer than the current base (pure)."""
    old = [p for p in points.values() if p.time <= now - retention]
    base = max(old, key=lambda p: p.seq, default=None)
    if base is None or (current is not None and base.seq <= current.base_seq):
        return None
    return base


async def _append_time(store: ObjectStore, key: str, fallback: float) -> float:
    try:
        return float((await read_header(store, key))["time"])
    except (ObjectNotFound, CorruptEvent):  # unreadable: the point's fold time is close enough
        return fallback


async def truncate(
    store: ObjectStore, index: Index, points: dict[int, Point], settings: Settings, current: LogStart | None
) -> LogStart | None:
    """Drop the log objects the index's retention lets go of; returns the log's start now.

    ``points`` are the kept, pinned restore points (after ``restore_points.prune``)."""
    retention, set_by = log_retention(index, settings)
    if retention is None:
        return current
    now = store.clock.now()
    base = base_for(points, now, retention, current)
    if base is None:
        return current
    prefix = keys.index_log(index.bucket_id, index.id)
    when = await _append_time(store, keys.log_entry(prefix, base.seq), base.time)
    start = LogStart(base.seq + 1, base.lance_version, when, now, retention, set_by)
    await write_start(store, prefix, start)  # first: from now on nothing below it is read
    failpoints.hit("materializer.truncate_log")
    async for info in store.list(prefix):
        if keys.seq_of(info.key) >= start.seq:
            break
        with contextlib.suppress(ObjectNotFound):
            await store.delete(info.key)
    return start
