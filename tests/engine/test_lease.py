"""Materializer leases: one folder per index at a time, handed over on expiry, fenced by generation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import keys
from engine.clock import ManualClock
from engine.errors import LeaseLost
from engine.materialize.lease import Lease
from engine.store import ObjectStore
from tests.backends import Backend
from tests.helpers import CTX, INDEX, make_index

D = 4


async def test_one_holder_then_a_handover_after_expiry_and_the_old_holder_is_fenced(store: ObjectStore) -> None:
    clock = ManualClock()
    a = Lease(store, "lease", "a", clock, duration=10)
    b = Lease(store, "lease", "b", clock, duration=10)
    assert await a.hold() and a.generation == 1
    assert not await b.hold() and b.generation is None
    clock.advance(5)
    assert await a.hold()  # renewed: a third of the lease had passed
    clock.advance(9)
    assert not await b.hold()  # the renewal moved the expiry on
    clock.advance(2)  # a stopped renewing (paused): the lease expires
    assert await b.hold() and b.generation == 2
    with pytest.raises(LeaseLost):
        await a.check()  # the fence: a's next commit must not happen
    assert not await a.hold() and a.generation is None
    await b.release()
    assert await a.hold() and a.generation == 3  # released: taken over at once


async def test_two_processes_racing_for_a_free_lease_get_one_winner(store: ObjectStore) -> None:
    clock = ManualClock()
    leases = [Lease(store, "lease", f"p{i}", clock, duration=10) for i in range(5)]
    import anyio

    won: list[bool] = []

    async def take(lease: Lease) -> None:
        won.append(await lease.hold())

    async with anyio.create_task_group() as tg:
        for lease in leases:
            tg.start_soon(take, lease)
    assert won.count(True) == 1


async def test_a_materializer_that_lost_its_lease_commits_nothing(backend: Backend) -> None:
    """Process A (paused, its clock behind) still believes it holds the lease; B took it over.
    A's next fold is refused before its Lance commit, and the checkpoint stays B's."""
    settings = dict(run_materializers=False, lease_seconds=10.0)
    clock_a, clock_b = ManualClock(), ManualClock()
    async with backend.with_settings(**settings).engine(seed=1, clock=clock_a) as a:
        await make_index(a, dimension=D)
        await a.put_vectors(CTX, INDEX, ["k1"], np.ones((1, D), np.float32), [None])
        assert await a.materialize(INDEX) == 1
        live_a = await a.live(INDEX)
        index = await a.get_index(INDEX)
        async with backend.with_settings(**settings).engine(seed=2, clock=clock_b) as b:
            assert await b.materialize(INDEX) == 0  # A holds the lease
            clock_b.advance(11)  # from B's side, A's lease has expired
            await b.put_vectors(CTX, INDEX, ["k2"], np.ones((1, D), np.float32), [None])
            assert await b.materialize(INDEX) == 1
            live_b = await b.live(INDEX)
            assert live_b.materializer.lease is not None and live_b.materializer.lease.generation == 2

            await a.put_vectors(CTX, INDEX, ["k3"], np.ones((1, D), np.float32), [None])
            version_before = live_a.materializer.dataset.version
            with pytest.raises(LeaseLost):
                await a.materialize(INDEX)
            assert live_a.materializer.dataset.version == version_before
            blob = await a.store.get(keys.index_checkpoint(index.bucket_id, index.id))
            assert json.loads(blob.data)["generation"] == 2

            # B folds on; every write (from either process) ends up folded and readable.
            assert await b.materialize(INDEX) == 1
            hits = await a.get_vectors(INDEX, ["k1", "k2", "k3"])
            assert [h.key for h in hits] == ["k1", "k2", "k3"]


@pytest.mark.parametrize("damage", ["bit-flip", "truncate"])
async def test_a_corrupt_log_object_stops_the_materializer_and_reads_keep_the_last_good_state(
    backend: Backend, damage: str
) -> None:
    import anyio

    from engine.errors import CorruptEvent, Unavailable

    b = backend.with_settings(run_materializers=False)
    async with b.engine(seed=3) as eng:
        await make_index(eng, dimension=D)
        for i in range(3):
            await eng.put_vectors(CTX, INDEX, [f"k{i}"], np.full((1, D), i + 1, np.float32), [{"i": i}])
        index = await eng.get_index(INDEX)
    # Damage the second put (seq 1) behind the service's back.
    store = await b.store()
    key = keys.log_entry(keys.index_log(index.bucket_id, index.id), 1)
    data = bytearray((await store.get(key)).data)
    if damage == "bit-flip":
        data[len(data) // 2] ^= 0x10
    else:
        del data[len(data) - 7 :]
    await store.put(key, bytes(data))
    await store.close()

    async with b.with_settings(run_materializers=True, materialize_interval=0.01).engine(seed=4) as eng:
        live = await eng.live(INDEX)
        with anyio.fail_after(10):
            while index.id not in eng.failed_materializers:
                await anyio.sleep(0.02)
        failure = eng.failed_materializers[index.id]
        assert isinstance(failure, CorruptEvent) and failure.key == key
        # Reads answer from what precedes the damaged object; nothing after it is skipped to.
        hits = await eng.query_vectors(INDEX, np.ones(D, np.float32), 3)
        assert [h.key for h in hits] == ["k0"]
        assert live.corrupt is not None and live.corrupt.key == key
        with pytest.raises(Unavailable, match="corrupt"):
            await eng.put_vectors(CTX, INDEX, ["k9"], np.ones((1, D), np.float32), [None])
