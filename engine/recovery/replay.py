"""Replay checks: fold an index's log again from seq 0 into a scratch dataset and compare.

The log is the truth and the dataset is derived from it; this is how an operator proves that, for
one index, at any moment (``vecledger replay --check``, ``POST /_vecledger/replay-check``). A log
whose head log retention dropped is folded again from its base point (``engine/log/start.py``):
the check then proves the dataset from that point on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anyio
import pyarrow as pa
import pyarrow.compute as pc

from engine import keys
from engine.catalog.state import Index
from engine.dataset import HOLD, copy_version, open_version, pin, row_digests, unpin
from engine.errors import CorruptEvent, LogTruncated
from engine.log.start import LogStart, read_start
from engine.materialize.checkpoint import read_checkpoint
from engine.materialize.materializer import Materializer
from engine.recovery.restore import TRUNCATION_RETRIES, clear
from engine.settings import Settings
from engine.store import LanceLocation, ObjectStore


@dataclass
class CheckReport:
    seq: int
    rows: int
    scratch_rows: int
    from_seq: int = 0  # the seq the replay started from (a truncated log's start)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.rows == self.scratch_rows


async def replay_check(store: ObjectStore, settings: Settings, index: Index, nonce: str) -> CheckReport:
    """Re-fold the index from seq 0 into a scratch dataset and compare it with the live one, row by
    row: keys, vectors bit for bit, metadata. Streams both as per-row digests, so memory stays
    small whatever the index size."""
    cp = await read_checkpoint(store, index)
    scratch = keys.scratch_root(f"check-{index.id}-{nonce}")
    live_loc = store.lance_location(keys.index_lance(index.bucket_id, index.id))
    hold = f"{HOLD}check-{nonce}"  # the compared version outlives any prune meanwhile
    held = bool(cp.lance_version) and await anyio.to_thread.run_sync(pin, live_loc, hold, cp.lance_version)
    try:
        for attempt in range(TRUNCATION_RETRIES):
            start = await read_start(store, keys.index_log(index.bucket_id, index.id))
            try:
                if start is not None:
                    await _start_from_base(store, live_loc, index, start, scratch, f"{hold}-base")
                replay = Materializer(store, index, settings, target=scratch, until=cp.seq)
                await replay.run_to_end()
                break
            except LogTruncated:
                # Log retention moved the start on meanwhile (a prune elsewhere): from the new base.
                if attempt == TRUNCATION_RETRIES - 1:
                    raise
                await clear(store, scratch)
        live_ds = await anyio.to_thread.run_sync(open_version, live_loc, cp.lance_version or None)
        live = await anyio.to_thread.run_sync(row_digests, live_ds)
        again = await anyio.to_thread.run_sync(row_digests, replay.dataset.snapshot())
    finally:
        if held:
            await anyio.to_thread.run_sync(unpin, live_loc, hold)
        await clear(store, scratch)
    report = CheckReport(cp.seq, len(live), len(again), 0 if start is None else start.seq)
    report.mismatches = await anyio.to_thread.run_sync(_differences, live, again)
    return report


async def _start_from_base(
    store: ObjectStore, live: LanceLocation, index: Index, start: LogStart, scratch: str, hold: str
) -> None:
    """Seed the scratch dataset with the base point's version and checkpoint at its seq."""
    version = 0
    if start.base_version:
        if not await anyio.to_thread.run_sync(pin, live, hold, start.base_version):
            where = keys.log_start(keys.index_log(index.bucket_id, index.id))
            raise CorruptEvent(where, f"the log's base version {start.base_version} is gone")
        try:
            target = store.lance_location(keys.lance_under(scratch))
            version = await anyio.to_thread.run_sync(copy_version, live, start.base_version, target)
        finally:
            await anyio.to_thread.run_sync(unpin, live, hold)
    doc = {"seq": start.base_seq, "lance_version": version}
    await store.put(keys.checkpoint_under(scratch), json.dumps(doc).encode())


def _differences(live: pa.Table, again: pa.Table) -> list[str]:
    """What differs between two key-sorted digest tables (``row_digests``), key by key."""
    if live.column("key").equals(again.column("key")):
        out = []
        for column, what in (("vector", "vectors differ"), ("metadata", "metadata differs")):
            differ = pc.not_equal(live.column(column), again.column(column))
            keys_ = live.column("key").filter(differ).to_pylist()
            out += [f"{k}: {what}" for k in keys_]
        return sorted(out)
    a, b = set(live.column("key").to_pylist()), set(again.column("key").to_pylist())
    only = [f"{k}: only in the live dataset" for k in a - b] + [f"{k}: only in the replay" for k in b - a]
    common = pa.array(sorted(a & b), pa.string())

    def shared(t: pa.Table) -> pa.Table:
        return t.filter(pc.is_in(t.column("key"), common))

    return sorted(only) + _differences(shared(live), shared(again))
