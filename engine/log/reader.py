"""Reading a log in seq order from any point.

Reads stop at the first missing seq: the log is gap-free, so a missing entry can only be one that
is not written yet, or one that log retention dropped (``start.py``): a read that expects entries
(from the beginning, or up to a given seq) and finds none checks for that, and raises
``LogTruncated`` rather than yield a silently shorter log. Objects are fetched a window at a time,
concurrently, because one GET per object in sequence would make a cold replay on S3
latency-bound. A GET is idempotent, so a failed one is retried a few times here: a replay of
thousands of objects must not start over because one of them met a 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from engine import keys
from engine.clock import Backoff
from engine.errors import CorruptEvent, LogTruncated, ObjectNotFound, StoreUnavailable
from engine.log.event import EventObject, decode, decode_header, digest
from engine.log.start import read_start
from engine.store import ObjectStore

HEADER_PROBE = 64 * 1024  # a header is read from this much of an object's start
GET_ATTEMPTS = 4
GET_BACKOFF = Backoff(0.01, factor=4.0)  # 10, 40, 160 ms


async def _get(store: ObjectStore, key: str) -> bytes | None:
    for attempt in range(GET_ATTEMPTS):
        try:
            return (await store.get(key)).data
        except ObjectNotFound:
            return None
        except StoreUnavailable:
            if attempt == GET_ATTEMPTS - 1:
                raise
            await store.clock.sleep(GET_BACKOFF.delay(attempt))
    raise AssertionError("unreachable")


async def read_header(store: ObjectStore, key: str) -> dict[str, Any]:
    """An event object's verified header, without its payloads: its first ``HEADER_PROBE`` bytes,
    or the whole object when the header is longer than that."""
    try:
        header, _ = decode_header(key, await store.get_range(key, 0, HEADER_PROBE))
    except CorruptEvent:
        header, _ = decode_header(key, (await store.get(key)).data)
    return header


async def digest_of(store: ObjectStore, key: str) -> str:
    """An object's chain digest ("" if it does not exist: the link after a dropped head or gap)."""
    try:
        head = await store.get_range(key, 0, HEADER_PROBE)
    except ObjectNotFound:
        return ""
    try:
        return digest(head)
    except CorruptEvent:  # a header longer than the probe
        return digest((await store.get(key)).data)


async def read_log(
    store: ObjectStore, prefix: str, after: int = -1, *, until: int | None = None, window: int = 16
) -> AsyncIterator[EventObject]:
    """Yield the event objects with ``after < seq`` (and ``seq <= until`` if given), in order."""
    seq = after + 1
    width = 1  # the common case is one new entry or none: probe narrowly, then widen
    while until is None or seq <= until:
        count = width if until is None else min(width, until - seq + 1)
        results: list[bytes | None] = [None] * count

        async def fetch(i: int, results: list[bytes | None] = results, base: int = seq) -> None:
            results[i] = await _get(store, keys.log_entry(prefix, base + i))

        if count == 1:
            await fetch(0)  # the freshness probe of every read: no task group for one get
        else:
            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(fetch, i)
        for i, data in enumerate(results):
            if data is None:
                if seq + i == after + 1 and (after == -1 or until is not None):  # not one entry found
                    await _check_start(store, prefix, seq)
                return
            yield decode(keys.log_entry(prefix, seq + i), seq + i, data)
        seq += count
        width = min(window, width * 2)


async def _check_start(store: ObjectStore, prefix: str, seq: int) -> None:
    start = await read_start(store, prefix)
    if start is not None and seq < start.seq:
        raise LogTruncated(
            f"the log before seq {start.seq} was dropped by its log retention; it can be read from seq {start.seq} on"
        )
