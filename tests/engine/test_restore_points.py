"""Restore points: the kept Lance versions are thinned, the rest removed by Lance's cleanup, and
restores stay exact to any seq; a reader's snapshot, a running restore and a replay check keep the
versions they use."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import anyio
import numpy as np

from engine import Engine, IndexRef, keys
from engine.clock import ManualClock
from engine.dataset import HOLD, POINT, tags, version_times
from engine.materialize.restore_points import Point, to_keep
from tests.backends import Backend
from tests.helpers import ACCOUNT, BUCKET, CTX, INDEX, make_index

D = 4
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def test_the_policy_keeps_recent_points_then_one_per_tier() -> None:
    now = 10 * DAY + 1800.0  # so that the ages below fall inside one slot each, not across a boundary
    ages = [0.0, 1.0, 2.0, 30.0, 400.0, 700.0, 3 * HOUR, 3 * HOUR + 5, 3 * HOUR + 10, 2 * DAY, 2 * DAY + 1, 9 * DAY]
    points = [Point(seq, seq + 1, now - age) for seq, age in enumerate(sorted(ages, reverse=True))]
    by_age = {now - p.time: p.seq for p in points}
    kept = to_keep(points, now, grace=5.0, window=7 * DAY)
    assert {by_age[0.0], by_age[1.0], by_age[2.0]} <= kept  # inside the grace: all
    assert by_age[9 * DAY] not in kept  # beyond the window
    # One per slot: of the three points 3 hours ago (one hour slot) and the two 2 days ago (one day slot).
    assert len(kept & {by_age[3 * HOUR], by_age[3 * HOUR + 5], by_age[3 * HOUR + 10]}) == 1
    assert len(kept & {by_age[2 * DAY], by_age[2 * DAY + 1]}) == 1
    assert {by_age[30.0], by_age[400.0], by_age[700.0]} <= kept  # three 5-minute slots
    assert to_keep([Point(7, 3, 0.0)], now, 5.0, DAY) == {7}  # the newest point always stays


async def state(eng: Engine, ref: IndexRef) -> dict[str, bytes]:
    page = await eng.list_vectors(ref, limit=1000, return_data=True)
    return {r.key: r.vector.tobytes() for r in page.vectors if r.vector is not None}


async def churn(eng: Engine, clock: ManualClock, folds: int, rng: np.random.Generator) -> list[tuple[int, Any]]:
    """Overwrite and delete keys, one fold per step, the clock 20 minutes on each time; the log
    seq and the state after each step."""
    out = []
    for step in range(folds):
        keys_ = [f"k{int(i)}" for i in rng.choice(40, size=10, replace=False)]
        await eng.put_vectors(CTX, INDEX, keys_, rng.standard_normal((10, D)).astype(np.float32), [None] * 10)
        if step % 3 == 2:
            await eng.delete_vectors(CTX, INDEX, keys_[:2])
        await eng.materialize(INDEX)
        out.append(((await eng.index_status(INDEX)).log_seq, await state(eng, INDEX)))
        clock.advance(20 * MINUTE)
    return out


async def test_pruning_bounds_versions_and_restores_stay_exact(backend: Backend) -> None:
    clock = ManualClock(start=time.time())
    settings = backend.with_settings(run_materializers=False, version_grace=1.0, prune_interval=1e9)
    rng = np.random.default_rng(5)
    async with settings.engine(clock=clock) as eng:
        await make_index(eng, dimension=D)
        history = await churn(eng, clock, 12, rng)  # four hours of points
        live = await eng.live(INDEX)
        location = live.materializer.dataset.location
        before = len(await anyio.to_thread.run_sync(version_times, location))
        await anyio.sleep(1.2)  # every version so far is past the grace
        history += await churn(eng, clock, 1, rng)
        reader = live.reader  # a snapshot a query holds while the prune runs
        query = np.ones(D, np.float32)
        expected = [h.key for h in await eng.query_vectors(INDEX, query, 5)]

        # A restore (to a seq whose point the prune thins away) and a prune at the same time.
        into = IndexRef(ACCOUNT, BUCKET.name, "during")
        seq, want = history[4]
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(eng.restore_index, CTX, INDEX, into, to_seq=seq))
            pruned = await live.materializer.prune()
        assert pruned is not None and pruned.points_dropped > 0 and pruned.cleanup.versions > 0
        assert await state(eng, into) == want

        after = await anyio.to_thread.run_sync(version_times, location)
        listing = eng.store.list(keys.index_versions(live.index.bucket_id, live.index.id))
        kept = {keys.seq_of(i.key) async for i in listing}
        pinned = await anyio.to_thread.run_sync(tags, location, POINT)
        assert set(pinned) == {f"{POINT}{keys.seq_name(s)}" for s in kept}
        assert not await anyio.to_thread.run_sync(tags, location, HOLD)  # the restore let go of its hold
        assert len(after) < before and len(after) <= len(kept) + 3
        # The reader taken before the prune still answers (its version is inside the grace).
        from engine.dataset import search

        assert [h.key for h in search(reader, query, 5, "euclidean", None, eng.settings.tuning)] == expected

        # Restores to three seqs inside the churn, whose points may have been thinned: exact.
        for n, (seq, want) in enumerate([history[1], history[6], history[10]]):
            ref = IndexRef(ACCOUNT, BUCKET.name, f"back-{n}")
            await eng.restore_index(CTX, INDEX, ref, to_seq=seq)
            assert await state(eng, ref) == want, f"restore to seq {seq}"
        report = await eng.replay_check(INDEX)
        assert report.ok, report.mismatches
