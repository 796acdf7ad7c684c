"""The engine end to end on both backends: catalog, writes, fresh reads, folding, replay."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from engine import BucketRef, IndexRef, keys
from engine.dataset import row_keys, search
from engine.errors import (
    BucketAlreadyExists,
    BucketNotEmpty,
    BucketNotFound,
    IndexAlreadyExists,
    IndexNotFound,
    PolicyNotFound,
    StoreUnavailable,
    ValidationError,
)
from engine.log import read_log
from engine.materialize.checkpoint import read_checkpoint
from engine.materialize.materializer import Materializer
from engine.settings import IndexTuning
from engine.store import FaultyStore
from engine.store.faulty import ERROR, Fault
from tests.backends import Backend
from tests.helpers import ACCOUNT, BUCKET, CTX, INDEX, make_index


def vec(*xs: float) -> list[float]:
    return list(xs)


async def test_bucket_and_index_lifecycle(backend: Backend) -> None:
    async with backend.engine(seed=1) as eng:
        b = await eng.create_bucket(CTX, BUCKET, tags={"team": "search"})
        assert (b.name, b.account, b.tags) == ("bucket-one", ACCOUNT, {"team": "search"})
        with pytest.raises(BucketAlreadyExists):
            await eng.create_bucket(CTX, BUCKET)
        other = BucketRef("999988887777", "bucket-one")
        await eng.create_bucket(CTX, other)  # names are per account
        assert [x.name for x in await eng.list_buckets(ACCOUNT)] == ["bucket-one"]

        idx = await eng.create_index(CTX, INDEX, dimension=3, metric="cosine", non_filterable_keys=["text"])
        assert (idx.dimension, idx.metric, idx.non_filterable_keys) == (3, "cosine", ("text",))
        with pytest.raises(IndexAlreadyExists):
            await eng.create_index(CTX, INDEX, dimension=3, metric="cosine")
        with pytest.raises(ValidationError):
            await eng.create_index(CTX, IndexRef(ACCOUNT, "bucket-one", "bad"), dimension=0, metric="cosine")
        with pytest.raises(ValidationError):
            await eng.create_index(CTX, IndexRef(ACCOUNT, "bucket-one", "bad"), dimension=3, metric="dot")
        with pytest.raises(BucketNotFound):
            await eng.create_index(CTX, IndexRef(ACCOUNT, "nope", "x"), dimension=3, metric="cosine")
        assert [i.name for i in await eng.list_indexes(BUCKET)] == ["index-one"]

        await eng.put_bucket_policy(CTX, BUCKET, '{"Version":"2012-10-17","Statement":[]}')
        assert "Statement" in await eng.get_bucket_policy(BUCKET)
        await eng.delete_bucket_policy(CTX, BUCKET)
        with pytest.raises(PolicyNotFound):
            await eng.get_bucket_policy(BUCKET)

        await eng.tag(CTX, BUCKET, "index-one", set={"a": "1", "b": "2"})
        await eng.tag(CTX, BUCKET, "index-one", remove=["a"])
        assert await eng.tags(BUCKET, "index-one") == {"b": "2"}

        with pytest.raises(BucketNotEmpty):
            await eng.delete_bucket(CTX, BUCKET)
        await eng.delete_index(CTX, INDEX)
        with pytest.raises(IndexNotFound):
            await eng.get_index(INDEX)
        await eng.delete_bucket(CTX, BUCKET)
        with pytest.raises(BucketNotFound):
            await eng.get_bucket(BUCKET)

    # Everything above is in the catalog log: a new engine folds it to the same state.
    async with backend.engine() as eng:
        assert [b.name for b in await eng.list_buckets("999988887777")] == ["bucket-one"]
        assert await eng.list_buckets(ACCOUNT) == []


async def test_read_your_writes_without_the_materializer(backend: Backend) -> None:
    async with backend.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng)
        await eng.put_vectors(CTX, INDEX, ["a", "b"], [vec(1, 0, 0, 0), vec(0, 1, 0, 0)], [{"c": "x"}, None])
        hits = await eng.query_vectors(INDEX, vec(1, 0, 0, 0), 5)
        assert [h.key for h in hits] == ["a", "b"]
        assert hits[0].distance == pytest.approx(0.0)
        assert hits[1].distance == pytest.approx(np.sqrt(2))
        got = await eng.get_vectors(INDEX, ["b", "a", "zz"], return_data=True, return_metadata=True)
        assert [(r.key, r.metadata) for r in got] == [("b", None), ("a", {"c": "x"})]
        assert got[1].vector is not None and got[1].vector.tolist() == [1, 0, 0, 0]
        page = await eng.list_vectors(INDEX, return_metadata=True)
        assert [r.key for r in page.vectors] == ["a", "b"] and page.next_token is None
        cp = await read_checkpoint(eng.store, await eng.get_index(INDEX))
        assert cp.seq == -1  # nothing was folded: all of the above came from the tail


async def test_delete_then_query_and_overwrite(backend: Backend) -> None:
    async with backend.engine() as eng:
        await make_index(eng)
        await eng.put_vectors(
            CTX, INDEX, ["a", "b", "c"], [vec(1, 0, 0, 0), vec(2, 0, 0, 0), vec(3, 0, 0, 0)], [{}] * 3
        )
        await eng.materialize(INDEX)
        await eng.delete_vectors(CTX, INDEX, ["a"])
        await eng.put_vectors(CTX, INDEX, ["b"], [vec(9, 0, 0, 0)], [{"v": 2}])
        hits = await eng.query_vectors(INDEX, vec(1, 0, 0, 0), 10)
        assert [(h.key, h.distance) for h in hits] == [("c", 2.0), ("b", 8.0)]
        assert await eng.get_vectors(INDEX, ["a"]) == []
        await eng.materialize(INDEX)
        hits = await eng.query_vectors(INDEX, vec(1, 0, 0, 0), 10)
        assert [(h.key, h.distance) for h in hits] == [("c", 2.0), ("b", 8.0)]
        assert [r.metadata for r in await eng.get_vectors(INDEX, ["b"], return_metadata=True)] == [{"v": 2}]


async def test_recreated_index_starts_empty(backend: Backend) -> None:
    async with backend.engine() as eng:
        await make_index(eng)
        await eng.put_vectors(CTX, INDEX, ["old"], [vec(1, 1, 1, 1)], [None])
        await eng.materialize(INDEX)
        first = await eng.get_index(INDEX)
        await eng.delete_index(CTX, INDEX)
        with pytest.raises(IndexNotFound):
            await eng.query_vectors(INDEX, vec(1, 1, 1, 1), 3)
        second = await eng.create_index(CTX, INDEX, dimension=4, metric="euclidean")
        assert second.id != first.id
        assert await eng.query_vectors(INDEX, vec(1, 1, 1, 1), 3) == []
        assert (await eng.list_vectors(INDEX)).vectors == []
        # The old index's log is still there, for audit and recovery, ending in the deletion's mark.
        old = [o async for o in read_log(eng.store, keys.index_log(first.bucket_id, first.id))]
        assert [[e.type for e in o.events] for o in old] == [["vectors.put"], ["vectors.index_changed"]]
        assert old[1].events[0].json() == {"change": "index.deleted"}


async def test_validation_keeps_bad_writes_out_of_the_log(backend: Backend) -> None:
    async with backend.engine() as eng:
        await make_index(eng, metric="cosine")
        bad = [
            (["a"], [vec(1, 2, 3)], [None]),  # wrong dimension
            (["a"], [vec(1, float("nan"), 0, 0)], [None]),
            (["a"], [vec(1, float("inf"), 0, 0)], [None]),
            (["a"], [vec(0, 0, 0, 0)], [None]),  # zero vector under cosine
            ([""], [vec(1, 0, 0, 0)], [None]),
            (["k" * 1025], [vec(1, 0, 0, 0)], [None]),
            (["a"], [vec(1, 0, 0, 0)], ["not an object"]),
            (["a"], [["x", 1, 2, 3]], [None]),
        ]
        for keys_, vectors, meta in bad:
            with pytest.raises(ValidationError):
                await eng.put_vectors(CTX, INDEX, keys_, vectors, meta)
        with pytest.raises(ValidationError):
            await eng.query_vectors(INDEX, vec(1, 0, 0), 3)
        with pytest.raises(ValidationError):
            await eng.query_vectors(INDEX, vec(1, 0, 0, 0), 0)
        with pytest.raises(ValidationError):
            await eng.query_vectors(INDEX, vec(1, 0, 0, 0), 3, filter={"$bad": 1})
        idx = await eng.get_index(INDEX)
        assert [o async for o in read_log(eng.store, keys.index_log(idx.bucket_id, idx.id))] == []


async def test_filtered_query_returns_min_k_matches(backend: Backend) -> None:
    async with backend.engine() as eng:
        await make_index(eng)
        rng = np.random.default_rng(3)
        n = 300
        vectors = rng.standard_normal((n, 4)).astype(np.float32)
        meta = [{"group": i % 10, "name": f"n{i}"} for i in range(n)]
        await eng.put_vectors(CTX, INDEX, [f"k{i}" for i in range(150)], vectors[:150], meta[:150])
        await eng.materialize(INDEX)
        await eng.put_vectors(CTX, INDEX, [f"k{i}" for i in range(150, n)], vectors[150:], meta[150:])
        hits = await eng.query_vectors(INDEX, vectors[0], 50, filter={"group": 3})
        assert len(hits) == 30  # 15 materialized + 15 in the tail, fewer than k
        assert all(int(h.key[1:]) % 10 == 3 for h in hits)
        hits = await eng.query_vectors(INDEX, vectors[0], 5, filter={"group": {"$in": [1, 2]}})
        expected = sorted(
            (float(np.linalg.norm(vectors[i] - vectors[0])), f"k{i}") for i in range(n) if i % 10 in (1, 2)
        )
        assert [h.key for h in hits] == [k for _, k in expected[:5]]


async def test_list_pages_and_segments_merge_the_tail(backend: Backend) -> None:
    async with backend.engine() as eng:
        await make_index(eng)
        keys_ = [f"key-{i:03d}" for i in range(60)]
        vectors = np.arange(240, dtype=np.float32).reshape(60, 4)
        await eng.put_vectors(CTX, INDEX, keys_[:40], vectors[:40], [None] * 40)
        await eng.materialize(INDEX)
        await eng.put_vectors(CTX, INDEX, keys_[40:], vectors[40:], [None] * 20)
        await eng.delete_vectors(CTX, INDEX, ["key-005", "key-045"])
        live = [k for k in keys_ if k not in ("key-005", "key-045")]

        async def collect(**kw: object) -> list[str]:
            out, token = [], None
            while True:
                page = await eng.list_vectors(INDEX, limit=7, token=token, **kw)  # type: ignore[arg-type]
                out += [r.key for r in page.vectors]
                assert len(page.vectors) <= 7
                if page.next_token is None:
                    return out
                token = page.next_token

        assert await collect() == live
        segments = [await collect(segment_count=3, segment_index=i) for i in range(3)]
        assert sorted(k for s in segments for k in s) == live
        assert all(segments)
        with pytest.raises(ValidationError):
            await eng.list_vectors(INDEX, token="garbage")
        with pytest.raises(ValidationError):
            await eng.list_vectors(INDEX, segment_count=2, segment_index=2)


async def test_folding_twice_is_a_no_op(backend: Backend) -> None:
    """Crash between the Lance commit and the checkpoint: the next fold repeats it harmlessly."""
    async with backend.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng)
        vectors = np.eye(4, dtype=np.float32)
        await eng.put_vectors(CTX, INDEX, ["a", "b", "c", "d"], vectors, [{"i": i} for i in range(4)])
        await eng.delete_vectors(CTX, INDEX, ["c"])
        await eng.put_vectors(CTX, INDEX, ["a"], [vec(5, 5, 5, 5)], [{"i": 9}])
        index = await eng.get_index(INDEX)

        checkpoint_key = keys.index_checkpoint(index.bucket_id, index.id)
        faulty = FaultyStore(
            eng.store, lambda verb, key: Fault(ERROR) if key == checkpoint_key and verb.startswith("put") else None
        )
        crashing = Materializer(faulty, index, eng.settings)
        with pytest.raises(StoreUnavailable):
            await crashing.run_once()
        assert crashing.dataset.count_rows() == 3  # Lance committed ...
        assert (await read_checkpoint(eng.store, index)).seq == -1  # ... the checkpoint did not

        again = Materializer(eng.store, index, eng.settings)
        assert await again.run_once() == 3  # the same three events, folded again
        assert again.dataset.count_rows() == 3
        rows = again.dataset.snapshot().to_table(columns=["key", "metadata"]).to_pylist()
        assert sorted((r["key"], r["metadata"]) for r in rows) == [("a", '{"i":9}'), ("b", '{"i":1}'), ("d", '{"i":3}')]
        assert (await read_checkpoint(eng.store, index)).seq == 2
        assert await again.run_once() == 0


async def test_a_fold_stops_at_its_byte_budget_and_halves_it_when_lance_runs_out_of_memory(
    backend: Backend,
) -> None:
    """Folds are bounded by their events' bytes as well as their rows (50,000 rows of 384-d once
    overflowed the pool of Lance's merge and the fold retried forever); a fold that overflows it
    anyway halves the budget, so the next, smaller fold goes through."""
    async with backend.with_settings(run_materializers=False, fold_max_bytes=3_000).engine() as eng:
        await make_index(eng)
        rng = np.random.default_rng(5)

        async def put_batches(tag: str) -> None:
            for batch in range(4):  # four event objects of 200 rows: ~6.5 KB each
                keys_ = [f"{tag}{batch}-{i}" for i in range(200)]
                vectors = rng.standard_normal((200, 4)).astype(np.float32)
                await eng.put_vectors(CTX, INDEX, keys_, vectors, [None] * 200)

        await put_batches("a")
        live = await eng.indexes.live(INDEX)  # the engine's own materializer, at 3,000 bytes
        assert [await live.materializer.run_once() for _ in range(5)] == [1, 1, 1, 1, 0]

        await put_batches("b")
        m = Materializer(eng.store, live.index, replace(eng.settings, fold_max_bytes=40_000))
        apply, calls = m.dataset.apply, []

        def overflowing_once(*args: Any) -> Any:
            calls.append(args[0].num_rows)
            if len(calls) == 1:
                raise OSError("Resources exhausted: Additional allocation failed for HashJoinInput")
            return apply(*args)

        m.dataset.apply = overflowing_once  # type: ignore[method-assign]
        with pytest.raises(OSError, match="Resources exhausted"):
            await m.run_once()
        assert [await m.run_once() for _ in range(3)] == [2, 2, 0]
        assert calls == [800, 400, 400] and m.dataset.count_rows() == 1600


async def test_replay_from_zero_matches_the_live_index(backend: Backend) -> None:
    # The live and the replayed dataset train their IVF indexes separately; their top 10 agree
    # row for row when 100 candidates are re-ranked exactly (the default re-ranks 20 for k=10).
    async with backend.with_tuning(build_threshold=1_000, refine_factor=10).engine() as eng:
        await make_index(eng, dimension=8)
        rng = np.random.default_rng(11)
        for round_ in range(6):
            ks = [f"k{int(i)}" for i in rng.integers(0, 1500, size=400)]
            ks = list(dict.fromkeys(ks))
            await eng.put_vectors(CTX, INDEX, ks, rng.standard_normal((len(ks), 8)), [{"r": round_}] * len(ks))
            await eng.delete_vectors(CTX, INDEX, [f"k{int(i)}" for i in rng.integers(0, 1500, size=30)])
        await eng.materialize(INDEX)
        index = await eng.get_index(INDEX)
        queries = rng.standard_normal((10, 8)).astype(np.float32)
        live = [[(h.key, round(h.distance, 4)) for h in await eng.query_vectors(INDEX, q, 10)] for q in queries]

        # A fresh materializer folds the whole log again, from seq 0, into a scratch dataset.
        replayed = Materializer(eng.store, index, eng.settings, target=keys.scratch_root("replay"))
        assert await replayed.run_to_end() == 12
        # A replay folds without index maintenance; whoever needs the index builds it once, at the end.
        assert not replayed.dataset.has_vector_index()
        import anyio

        assert await anyio.to_thread.run_sync(replayed.dataset.maintain) == ["build", "calibrate"]  # as a live build
        assert replayed.dataset.has_vector_index()
        for q, expected in zip(queries, live, strict=True):
            hits = search(replayed.dataset.snapshot(), q, 10, "euclidean", None, eng.settings.tuning)
            assert [(h.key, round(h.distance, 4)) for h in hits] == expected
        assert replayed.dataset.count_rows() == (await eng.live(INDEX)).materializer.dataset.count_rows()


async def test_two_engines_on_one_root_lose_no_event(backend: Backend) -> None:
    settings = backend.with_settings(run_materializers=False)
    async with settings.engine() as one:
        await make_index(one)
        async with settings.engine() as two:

            async def writer(eng: object, name: str) -> None:
                for i in range(20):
                    await eng.put_vectors(CTX, INDEX, [f"{name}-{i}"], [vec(i, 0, 0, 0)], [None])  # type: ignore[attr-defined]

            await asyncio.gather(writer(one, "one"), writer(two, "two"))
            expected = sorted(f"{n}-{i}" for n in ("one", "two") for i in range(20))
            for eng in (one, two):  # each sees the other's acknowledged writes at once
                page = await eng.list_vectors(INDEX, limit=1000)
                assert sorted(r.key for r in page.vectors) == expected
            index = await one.get_index(INDEX)
            seqs = [o.seq async for o in read_log(one.store, keys.index_log(index.bucket_id, index.id))]
            assert seqs == list(range(len(seqs)))


async def test_racing_bucket_creation_has_one_winner(backend: Backend) -> None:
    async with backend.engine() as one, backend.engine() as two:
        results = await asyncio.gather(
            one.create_bucket(CTX, BucketRef(ACCOUNT, "contested")),
            two.create_bucket(CTX, BucketRef(ACCOUNT, "contested")),
            return_exceptions=True,
        )
        assert sum(isinstance(r, BucketAlreadyExists) for r in results) == 1
        winner = next(r for r in results if not isinstance(r, BaseException))
        assert (await one.get_bucket(BucketRef(ACCOUNT, "contested"))).id == winner.id  # type: ignore[union-attr]
        assert (await two.get_bucket(BucketRef(ACCOUNT, "contested"))).id == winner.id  # type: ignore[union-attr]


async def test_integers_past_64_bits_in_metadata_come_back_and_filter_exactly(backend: Backend) -> None:
    big = 123456789012345678901234567890  # filters compare numbers as doubles (note 0001)
    async with backend.engine() as eng:
        await make_index(eng)
        await eng.put_vectors(CTX, INDEX, ["a", "b"], np.eye(2, 4, dtype=np.float32), [{"n": big}, {"n": 2 * big}])
        for _ in range(2):  # from the tail, then from the folded dataset
            got = await eng.get_vectors(INDEX, ["a"], return_metadata=True)
            assert got[0].metadata == {"n": big} and type(got[0].metadata["n"]) is int
            hits = await eng.query_vectors(INDEX, np.ones(4, np.float32), 5, {"n": big})
            assert [h.key for h in hits] == ["a"]
            await eng.materialize(INDEX)


async def test_busy_folds_defer_merges_and_retrains_until_the_writes_pause(backend: Backend) -> None:
    """While writers keep the materializer busy, new rows join the index as delta segments (no
    merge below ``max_index_segments``, no retrain below 64x); the first fold that finds nothing
    settles the index, and checkpoints the maintained version at the same seq."""
    tuned = backend.with_tuning(build_threshold=200, optimize_unindexed_rows=100, max_index_segments=6)
    async with tuned.with_settings(run_materializers=False, fold_max_events=1).engine() as eng:
        await make_index(eng, dimension=8)
        rng = np.random.default_rng(5)
        await eng.put_vectors(CTX, INDEX, [f"a{i}" for i in range(300)], rng.standard_normal((300, 8)), [None] * 300)
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        mat = live.materializer
        assert mat.dataset.index_state()["segments"] == 1  # built on 300 rows: 4 partitions

        for n in range(5):  # one object per fold, more already waiting: busy
            ks = [f"b{n}-{i}" for i in range(300)]
            await eng.put_vectors(CTX, INDEX, ks, rng.standard_normal((300, 8)), [None] * 300)
        actions = []
        for _ in range(5):
            assert await mat.run_once() == 1
            actions += mat.last_maintenance
        assert "merge" not in actions and "retrain" not in actions
        assert actions.count("optimize") == 5
        assert mat.dataset.index_state()["segments"] == 6
        folded = await read_checkpoint(eng.store, await eng.get_index(INDEX))

        assert await mat.run_once() == 0  # nothing to fold: the writes paused
        assert "retrain" in mat.last_maintenance  # 1,800 rows outgrew 4 partitions
        assert mat.dataset.index_state()["segments"] == 1
        settled = await read_checkpoint(eng.store, await eng.get_index(INDEX))
        assert settled.seq == folded.seq and settled.lance_version > folded.lance_version
        assert live.checkpoint.lance_version == settled.lance_version  # the reads moved to it
        hits = await eng.query_vectors(INDEX, rng.standard_normal(8), 5)
        assert len(hits) == 5
        assert await mat.run_once() == 0  # nothing left to do: no new Lance version
        assert (await read_checkpoint(eng.store, await eng.get_index(INDEX))) == settled
        assert mat.dataset.version == settled.lance_version


async def test_the_last_unindexed_rows_are_indexed_once_the_writes_stop(backend: Backend) -> None:
    """Rows below ``optimize_unindexed_rows`` wait unindexed while writes may still come (each
    query scans them beside the index); after ``quiet_runs`` polls that find nothing to fold, they
    are indexed, merged into one segment, and checkpointed at the same seq."""
    tuned = backend.with_tuning(build_threshold=200, optimize_unindexed_rows=1000)
    async with tuned.with_settings(run_materializers=False, quiet_runs=3).engine() as eng:
        await make_index(eng, dimension=8)
        rng = np.random.default_rng(6)
        await eng.put_vectors(CTX, INDEX, [f"a{i}" for i in range(300)], rng.standard_normal((300, 8)), [None] * 300)
        await eng.materialize(INDEX)
        late = rng.standard_normal((50, 8))
        await eng.put_vectors(CTX, INDEX, [f"b{i}" for i in range(50)], late, [None] * 50)
        assert await eng.materialize(INDEX) == 1  # the fold, then one poll that finds nothing
        live = await eng.live(INDEX)
        mat = live.materializer
        assert mat.dataset.index_state()["unindexed_rows"] == 50
        folded = await read_checkpoint(eng.store, await eng.get_index(INDEX))

        assert await mat.run_once() == 0  # the second quiet poll: still waiting
        assert mat.dataset.index_state()["unindexed_rows"] == 50
        assert await mat.run_once() == 0  # the third: the writes have stopped
        assert "optimize" in mat.last_maintenance
        state = mat.dataset.index_state()
        assert state["unindexed_rows"] == 0 and state["segments"] == 1 and state["indexed_rows"] == 350
        settled = await read_checkpoint(eng.store, await eng.get_index(INDEX))
        assert settled.seq == folded.seq and settled.lance_version > folded.lance_version
        assert live.checkpoint.lance_version == settled.lance_version
        for i in (0, 17, 49):
            assert (await eng.query_vectors(INDEX, late[i], 1))[0].key == f"b{i}"

        assert await mat.run_once() == 0  # done until the next fold: no new Lance version
        assert mat.dataset.version == settled.lance_version


async def test_an_index_of_another_type_is_rebuilt_once_the_writes_stop(backend: Backend) -> None:
    """An index built as IVF_PQ (before an upgrade, or before ``VECLEDGER_INDEX_TYPE`` changed) is
    rebuilt as the configured IVF_SQ when its writes pause, and answers the same rows."""
    pq = backend.with_settings(
        tuning=IndexTuning.for_index_type("IVF_PQ", build_threshold=200), run_materializers=False, quiet_runs=1
    )
    rng = np.random.default_rng(12)
    vectors = rng.standard_normal((400, 8))
    async with pq.engine() as eng:
        await make_index(eng, dimension=8)
        await eng.put_vectors(CTX, INDEX, [f"a{i}" for i in range(400)], vectors, [None] * 400)
        await eng.materialize(INDEX)
        assert (await eng.live(INDEX)).materializer.dataset.index_state()["type"] == "IVF_PQ"
        assert (await eng.index_status(INDEX)).index_type == "IVF_PQ"
    sq = pq.with_settings(tuning=replace(pq.settings.tuning, index_type="IVF_SQ"))
    async with sq.engine() as eng:
        await eng.put_vectors(CTX, INDEX, ["b0"], rng.standard_normal((1, 8)), [None])
        await eng.materialize(INDEX)
        state = (await eng.live(INDEX)).materializer.dataset.index_state()
        assert state["type"] == "IVF_SQ" and state["indexed_rows"] == 401
        assert (await eng.index_status(INDEX)).index_type == "IVF_SQ"
        for i in (0, 123, 399):
            assert (await eng.query_vectors(INDEX, vectors[i], 1))[0].key == f"a{i}"


async def test_queries_without_metadata_or_distances_name_the_right_rows(backend: Backend) -> None:
    """Such queries take their hits' keys from row addresses (``dataset.row_keys``): right
    across overwrites and deletes (deletion files, new fragments) and after compaction."""
    tuned = backend.with_tuning(build_threshold=200, optimize_unindexed_rows=100, settled_fragments=4)
    async with tuned.with_settings(run_materializers=False, quiet_runs=1).engine() as eng:
        await make_index(eng, dimension=8)
        rng = np.random.default_rng(9)
        vectors = {f"k{i}": rng.standard_normal(8) for i in range(600)}
        stored: set[str] = set()
        gone: set[str] = set()

        async def fold(ks: list[str]) -> list[Any]:
            if ks:
                await eng.put_vectors(CTX, INDEX, ks, np.array([vectors[k] for k in ks]), [None] * len(ks))
            stored.update(ks)
            if gone:
                await eng.delete_vectors(CTX, INDEX, sorted(gone))
                stored.difference_update(gone)
            await eng.materialize(INDEX)  # the fold, then a quiet run: every row indexed
            live = await eng.live(INDEX)
            assert live.materializer.dataset.index_state()["unindexed_rows"] == 0
            for k in sorted(stored)[::29]:
                lean = await eng.search(INDEX, vectors[k], [], 3, metadata=False, distances=False)
                full = await eng.search(INDEX, vectors[k], [], 3)
                assert lean[0].key == k
                assert [h.key for h in lean] == [h.key for h in full]
                assert not {h.key for h in lean} & gone
            return live.reader.get_fragments()

        await fold(list(vectors)[:300])
        await fold(list(vectors)[300:])
        overwritten = [f"k{i}" for i in range(0, 600, 7)]
        for k in overwritten:
            vectors[k] = rng.standard_normal(8)
        gone = {f"k{i}" for i in range(1, 600, 11)} - set(overwritten)
        for k in gone:
            del vectors[k]
        fragments = await fold(overwritten)
        assert len(fragments) == 3 and all(f.metadata.deletion_file for f in fragments[:2])
        row_keys._fragments.clear()  # as after a restart: fragments with deletions read afresh
        await fold([])
        vectors |= {f"n{i}": rng.standard_normal(8) for i in range(50)}
        fragments = await fold([f"n{i}" for i in range(50)])
        assert len(fragments) < 4  # compacted

        uri = str((await eng.live(INDEX)).reader.uri)
        assert {k for k in row_keys._fragments if k[0] == uri} == {(uri, f.fragment_id) for f in fragments}
        await eng.delete_index(CTX, INDEX)
        assert not [k for k in row_keys._fragments if k[0] == uri]  # a deleted index's keys are dropped


async def test_a_metadata_integer_past_a_doubles_range_never_reaches_the_log(backend: Backend) -> None:
    """Such an integer could not be read back: one put of it stopped the index's folding forever."""
    async with backend.engine() as eng:
        await make_index(eng, dimension=2)
        for meta in ({"n": 10**400}, {"n": [1, -(10**309)]}, {"deep": {"n": 10**309}}):
            with pytest.raises(ValidationError, match="past the range of a double"):
                await eng.put_vectors(CTX, INDEX, ["k"], np.ones((1, 2), np.float32), [meta])
        index = await eng.get_index(INDEX)
        assert [o async for o in read_log(eng.store, keys.index_log(index.bucket_id, index.id))] == []
        big = 2**1000  # large, but a double holds it: accepted, and comes back exactly
        await eng.put_vectors(CTX, INDEX, ["k"], np.ones((1, 2), np.float32), [{"n": big}])
        await eng.materialize(INDEX)
        (got,) = await eng.get_vectors(INDEX, ["k"], return_metadata=True)
        assert got.metadata == {"n": big}
