"""Catalog snapshots: a start from a snapshot and the log after it equals a start from the log alone,
and an unreadable snapshot falls back (to an older one, or to the whole log)."""

from __future__ import annotations

from engine import BucketRef, IndexRef
from engine.catalog import Catalog, CatalogState
from engine.catalog import snapshot as catalog_snapshot
from engine.clock import RandomIds, SystemClock
from engine.keys import CATALOG_LOG
from engine.keys import catalog_snapshot as snapshot_key
from engine.log import read_log
from engine.store import ObjectStore
from tests.backends import Backend
from tests.helpers import ACCOUNT, CTX

POLICY = '{"Version":"2012-10-17","Statement":[]}'


async def history(engine: object, start: int, n: int) -> None:
    """Buckets with indexes, policies, tags, quotas, text configurations and deletions."""
    from engine import Engine

    assert isinstance(engine, Engine)
    for i in range(start, start + n):
        bucket = BucketRef(ACCOUNT, f"bucket-{i}")
        await engine.create_bucket(CTX, bucket, tags={"n": str(i)})
        await engine.put_bucket_policy(CTX, bucket, POLICY)
        ref = IndexRef(ACCOUNT, bucket.name, "docs")
        await engine.create_index(CTX, ref, dimension=3, metric="cosine", non_filterable_keys=["body"])
        await engine.tag(CTX, bucket, "docs", set={"team": "search"})
        await engine.set_index_quota(CTX, ref, 100.0, None)
        if i % 3 == 0:
            await engine.delete_index(CTX, ref)
            await engine.create_index(CTX, ref, dimension=4, metric="euclidean")  # same name, new id
        if i % 4 == 1:
            await engine.delete_bucket_policy(CTX, bucket)


async def from_log_alone(store: ObjectStore) -> CatalogState:
    state = CatalogState()
    async for obj in read_log(store, CATALOG_LOG):
        for ev in obj.events:
            state.apply(ev)
        state.seq = obj.seq
    return state


async def fresh_start(store: ObjectStore) -> Catalog:
    catalog = Catalog(store, SystemClock(), RandomIds(0))
    await catalog.refresh()
    return catalog


async def test_a_snapshot_start_equals_a_full_log_start(backend: Backend) -> None:
    async with backend.with_settings(run_materializers=False).engine(seed=3) as engine:
        await history(engine, 0, 6)
        assert await engine.catalog.snapshot_if_due(10)
        first = engine.catalog.snapshot_seq
        assert not await engine.catalog.snapshot_if_due(10)  # nothing new enough since
        await history(engine, 6, 4)  # events after the snapshot: read from the log
        store = engine.store

        started = await fresh_start(store)
        assert started.snapshot_seq == first  # the start did use the snapshot ...
        assert started.state == await from_log_alone(store)  # ... and reached the same state
        assert started.state.seq > first
        assert started.state == engine.catalog.state

        # Writes after a snapshot start fold on top of it like any other.
        await history(engine, 10, 1)
        await started.refresh()
        assert started.state == await from_log_alone(store)

        # A second snapshot; only the newest two are kept.
        assert await engine.catalog.snapshot_if_due(1)
        await history(engine, 11, 1)
        assert await engine.catalog.snapshot_if_due(1)
        assert len(await catalog_snapshot.snapshot_seqs(store)) == catalog_snapshot.KEEP


async def test_an_unreadable_snapshot_falls_back_to_an_older_one_or_the_log(backend: Backend) -> None:
    async with backend.with_settings(run_materializers=False).engine(seed=4) as engine:
        await history(engine, 0, 3)
        await engine.catalog.snapshot_if_due(1)
        older = engine.catalog.snapshot_seq
        await history(engine, 3, 2)
        await engine.catalog.snapshot_if_due(1)
        newest = engine.catalog.snapshot_seq
        store = engine.store
        truth = await from_log_alone(store)

        data = bytearray((await store.get(snapshot_key(newest))).data)
        data[-10] ^= 0x01  # one flipped bit in the state: the checksum catches it
        await store.put(snapshot_key(newest), bytes(data))
        started = await fresh_start(store)
        assert started.snapshot_seq == older
        assert started.state == truth

        await store.put(snapshot_key(older), b"not a snapshot")
        started = await fresh_start(store)
        assert started.snapshot_seq == -1  # folded from seq 0
        assert started.state == truth
