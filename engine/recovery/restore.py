"""Point-in-time restore: a replay of the log into a new index.

A restore builds a new index (new id, empty log) whose first event is a marker, "the state of index
X at seq N", and whose dataset is that state: copied from the newest Lance version folded up to N
(the fast path: ``versions/`` maps the index's restore points, folded seqs, to pinned Lance
versions; ``engine/materialize/restore_points.py``), then the rest of X's log up to N folded on
top; or X's whole log from seq 0 if no point precedes N. Because the
marker names its source, a restored index can itself be rebuilt from logs alone. Under a log
retention the log starts at a base point (``engine/log/start.py``): a restore goes back to that
point's time and no further, and says so.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import anyio

from engine import keys
from engine.catalog.state import Index
from engine.context import RequestContext
from engine.dataset import HOLD, copy_version, pin, unpin
from engine.errors import LogTruncated, ObjectNotFound, ValidationError
from engine.log import Event, tail_seq
from engine.log.chain import verify_chain
from engine.log.event import VECTORS_RESTORED, encode, json_payload
from engine.log.reader import read_header
from engine.log.start import LogStart, read_start
from engine.materialize.materializer import Materializer
from engine.settings import Settings
from engine.store import ObjectStore

Progress = Callable[[int, int], None]  # (objects folded so far, objects to fold)


def too_old(start: LogStart, what: str) -> LogTruncated:
    oldest = datetime.fromtimestamp(start.base_time, UTC).isoformat(timespec="seconds")
    return LogTruncated(
        f"{what} is before the oldest restorable point: the index's log retention "
        f"({start.retention:g} s) dropped its log before {oldest} (seq {start.base_seq}); "
        f"restore to {oldest} or later"
    )


async def seq_at_time(store: ObjectStore, prefix: str, when: float) -> int:
    """The last seq appended at or before ``when`` (-1 if none): a binary search over headers."""
    start = await read_start(store, prefix)
    lo = -1
    if start is not None:
        if when < start.base_time:
            raise too_old(start, "that time")
        lo = start.base_seq  # its object may be gone, but it was appended at base_time <= when
    hi = await tail_seq(store, prefix, lo) + 1  # time(lo) <= when < time(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        header = await read_header(store, keys.log_entry(prefix, mid))
        if float(header["time"]) <= when:
            lo = mid
        else:
            hi = mid
    return lo


async def _points(store: ObjectStore, source: Index, upto: int) -> list[tuple[int, int]]:
    """(seq, lance_version) of the restore points of ``source`` at or before ``upto``, newest first."""
    start = await read_start(store, keys.index_log(source.bucket_id, source.id))
    out: list[tuple[int, int]] = []
    async for info in store.list(keys.index_versions(source.bucket_id, source.id)):
        if keys.seq_of(info.key) > upto:
            break
        if start is not None and keys.seq_of(info.key) < start.base_seq:
            continue  # an older point whose log since is gone (pruned at the next prune)
        with contextlib.suppress(ObjectNotFound):  # thinned away since the listing
            doc = json.loads((await store.get(info.key)).data)
            out.append((int(doc["seq"]), int(doc["lance_version"])))
    return out[::-1]


async def _copy_start(store: ObjectStore, source: Index, upto: int, into: str, hold: str) -> tuple[int, int] | None:
    """Copy the newest restore point of ``source`` at or before ``upto`` to the dataset ``into``;
    (its seq, the copy's version), or None (replay from seq 0). The point's version is held with a
    tag while it is copied, so a prune in any process cannot remove it meanwhile; a point pruned
    before the hold was taken is passed over for the next older one."""
    src = store.lance_location(keys.index_lance(source.bucket_id, source.id))
    for seq, version in await _points(store, source, upto):
        if version == 0:
            return seq, 0  # nothing had been written yet: no copy needed
        if not await anyio.to_thread.run_sync(pin, src, hold, version):
            continue
        try:
            copied = await anyio.to_thread.run_sync(copy_version, src, version, store.lance_location(into))
        finally:
            await anyio.to_thread.run_sync(unpin, src, hold)
        return seq, copied
    return None


TRUNCATION_RETRIES = 3


async def clear(store: ObjectStore, prefix: str) -> None:
    """Delete every object under ``prefix`` (a scratch or half-built dataset)."""
    async for info in store.list(prefix):
        with contextlib.suppress(ObjectNotFound):
            await store.delete(info.key)


async def _replay(
    store: ObjectStore,
    settings: Settings,
    source: Index,
    upto: int,
    target: Index,
    hold: str,
    progress: Progress | None,
) -> tuple[int, Materializer]:
    """Copy the newest point of ``source`` at or before ``upto`` into ``target``'s dataset and fold
    the log from there up to ``upto``; (objects folded, the replay)."""
    root = keys.index_root(target.bucket_id, target.id)
    replay_key = keys.restore_checkpoint(root, 0)
    start = await _copy_start(store, source, upto, keys.lance_under(root), hold)
    if start is not None:
        await store.put(replay_key, json.dumps({"seq": start[0], "lance_version": start[1]}).encode())
    replay = Materializer(
        store,
        replace(source, non_filterable_keys=target.non_filterable_keys),
        settings,
        target=root,
        until=upto,
        checkpoint_key=replay_key,
    )
    done, total = 0, upto - (start[0] if start else -1)
    while folded := await replay.run_once():
        done += folded
        if progress is not None:
            progress(done, total)
    return done, replay


async def build_restored(
    store: ObjectStore,
    settings: Settings,
    ctx: RequestContext,
    source: Index,
    upto: int,
    target: Index,
    event_id: str,
    now: float,
    progress: Progress | None = None,
) -> int:
    """Write the restore marker and the dataset of ``target``; returns the objects replayed."""
    root = keys.index_root(target.bucket_id, target.id)
    marker = {
        "bucket_id": source.bucket_id,
        "index_id": source.id,
        "upto_seq": upto,
        "source": f"{source.bucket_name}/{source.name}",
    }
    ev = Event.new(ctx, id=event_id, type=VECTORS_RESTORED, time=now, payload=json_payload(marker))
    await store.put_if_absent(
        keys.log_entry(keys.index_log(target.bucket_id, target.id), 0), encode(0, now, [ev], prev="")
    )
    for attempt in range(TRUNCATION_RETRIES):
        try:
            done, replay = await _replay(store, settings, source, upto, target, f"{HOLD}{event_id}", progress)
            break
        except LogTruncated:
            # The source's log start moved on while this replayed (a prune in the process that folds
            # it): start again from the newer base, if the seq is still restorable.
            await check_restorable(store, source, upto)
            if attempt == TRUNCATION_RETRIES - 1:
                raise
            await clear(store, keys.lance_under(root))
            await clear(store, keys.restore_checkpoint(root, 0))
    # A replay folds without maintaining the vector index (one build at the end beats a build and
    # retrains along the way); a copied version carries its index, which this only extends.
    await anyio.to_thread.run_sync(replay.dataset.open)
    await anyio.to_thread.run_sync(replay.dataset.maintain)
    version = replay.dataset.version
    await store.put(
        keys.index_checkpoint(target.bucket_id, target.id), json.dumps({"seq": 0, "lance_version": version}).encode()
    )
    return done


async def check_chain(store: ObjectStore, source: Index, upto: int) -> None:
    """Refuse (before anything is written) to restore from a log whose hash chain is broken up to
    ``upto``: from its start, not only the stretch after the restore point replayed, since that
    point's dataset was folded from the objects before it. It reads that much of the log once."""
    report = await verify_chain(store, keys.index_log(source.bucket_id, source.id), until=upto)
    if not report.ok:
        f = report.findings[0]
        raise ValidationError(
            f"the log of {source.bucket_name}/{source.name} fails its hash chain check at seq {f.seq} "
            f"({f.kind}: {f.detail}); run `vecledger audit --verify`, or restore with allowBrokenChain "
            "to replay it as it is",
            field="allowBrokenChain",
        )


def check_upto(upto: int, tail: int, what: str) -> int:
    if upto < 0:
        raise ValidationError(f"the index had no events yet at {what}", field="to")
    if upto > tail:
        raise ValidationError(f"seq {upto} is beyond the end of the log (the last seq is {tail})", field="to")
    return upto


async def check_restorable(store: ObjectStore, index: Index, upto: int) -> None:
    """Refuse (before anything is written) a seq whose log the index's retention dropped."""
    start = await read_start(store, keys.index_log(index.bucket_id, index.id))
    if start is not None and upto < start.base_seq:
        raise too_old(start, f"seq {upto}")


async def last_seq(store: ObjectStore, index: Index) -> int:
    return await tail_seq(store, keys.index_log(index.bucket_id, index.id))
