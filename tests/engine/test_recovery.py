"""Point-in-time recovery by replay, partial batches, quotas: the log is the truth."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from engine import BucketRef, Engine, IndexRef, RequestContext, keys
from engine.clock import ManualClock
from engine.errors import BucketNotFound, IndexNotFound, PartialBatch, Throttled, ValidationError
from engine.log import read_log
from engine.store import FaultyStore
from engine.store.faulty import ERROR, LOST_REPLY, Fault
from tests.backends import Backend
from tests.helpers import ACCOUNT, BUCKET, CTX, INDEX

D = 4
QUERY = np.array([0.3, -0.2, 0.5, 0.1], np.float32)


async def snapshot(eng: Engine, ref: IndexRef) -> dict[str, Any]:
    hits = await eng.query_vectors(ref, QUERY, 10)
    listed = (await eng.list_vectors(ref, limit=1000, return_metadata=True)).vectors
    got = await eng.get_vectors(ref, [f"k{i}" for i in range(0, 60, 7)], return_data=True, return_metadata=True)
    return {
        "query": [(h.key, round(h.distance, 5)) for h in hits],
        "list": [(r.key, r.metadata) for r in listed],
        "get": [(r.key, r.vector.tobytes() if r.vector is not None else None, r.metadata) for r in got],
    }


async def test_restore_reproduces_twenty_points_of_a_random_history(backend: Backend) -> None:
    rng = random.Random(7)
    clock = ManualClock()
    points: list[tuple[int, float, str, dict[str, Any]]] = []  # (seq, time, index id, snapshot)
    async with backend.with_settings(materialize_interval=0.01).engine(seed=3, clock=clock) as eng:
        await eng.create_bucket(CTX, BUCKET)
        await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean", non_filterable_keys=["note"])
        for step in range(90):
            clock.advance(1.0)
            op = rng.random()
            if op < 0.6:
                ks = [f"k{rng.randrange(60)}" for _ in range(rng.randrange(1, 12))]
                vecs = np.array([[rng.gauss(0, 1) for _ in range(D)] for _ in ks], np.float32)
                await eng.put_vectors(CTX, INDEX, ks, vecs, [{"step": step, "note": "n"} for _ in ks])
            elif op < 0.85:
                await eng.delete_vectors(CTX, INDEX, [f"k{rng.randrange(60)}" for _ in range(3)])
            elif op < 0.95:
                await eng.put_bucket_policy(CTX, BUCKET, json.dumps({"Version": "2012-10-17", "Statement": []}))
            elif step > 10:
                await eng.delete_index(CTX, INDEX)  # and re-create it under the same name
                clock.advance(1.0)
                await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean", non_filterable_keys=["note"])
            if step % 3 == 2 and len(points) < 20:
                index = await eng.get_index(INDEX)
                seq = await eng.live(INDEX)
                if seq.tail.seq >= 0:
                    points.append((seq.tail.seq, clock.now(), index.id, await snapshot(eng, INDEX)))
            if step % 10 == 0:
                await eng.materialize(INDEX)
        assert len(points) == 20

        for n, (seq, when, index_id, expected) in enumerate(points):
            by_seq = IndexRef(ACCOUNT, BUCKET.name, f"by-seq-{n}")
            restored = await eng.restore_index(CTX, INDEX, by_seq, to_seq=seq, source_id=index_id)
            assert restored.restored_from is not None and restored.restored_from["seq"] == seq
            assert await snapshot(eng, by_seq) == expected, f"point {n} (seq {seq})"
            if n % 4 == 0:  # by time: the index that bore the name then, even if since deleted
                by_time = IndexRef(ACCOUNT, BUCKET.name, f"by-time-{n}")
                await eng.restore_index(CTX, INDEX, by_time, to_time=when)
                assert await snapshot(eng, by_time) == expected, f"point {n} by time"

        # A restored index rebuilds from logs alone: its log starts with the marker naming its source.
        one = await eng.get_index(IndexRef(ACCOUNT, BUCKET.name, "by-seq-5"))
        objects = [o async for o in read_log(eng.store, keys.index_log(one.bucket_id, one.id))]
        assert objects[0].events[0].type == "vectors.restored"
        report = await eng.replay_check(IndexRef(ACCOUNT, BUCKET.name, "by-seq-5"))
        assert report.ok, report.mismatches

        with pytest.raises(ValidationError):
            await eng.restore_index(CTX, INDEX, IndexRef(ACCOUNT, BUCKET.name, "too-far"), to_seq=10**6)
        with pytest.raises(IndexNotFound, match="at that time"):
            await eng.restore_index(CTX, INDEX, IndexRef(ACCOUNT, BUCKET.name, "too-early"), to_time=0.0)
        with pytest.raises(IndexNotFound):
            await eng.restore_index(
                CTX, IndexRef(ACCOUNT, BUCKET.name, "nope"), IndexRef(ACCOUNT, BUCKET.name, "x"), to_seq=0
            )


async def test_replay_check_finds_a_tampered_dataset(backend: Backend) -> None:
    async with backend.engine() as eng:
        await eng.create_bucket(CTX, BUCKET)
        await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean")
        await eng.put_vectors(CTX, INDEX, ["a", "b"], np.eye(2, D, dtype=np.float32), [{"x": 1}, None])
        report = await eng.replay_check(INDEX)
        assert report.ok and report.rows == 2
        live = await eng.live(INDEX)
        await live.materializer.run_to_end()
        import anyio

        # Change the dataset behind the log's back: the check must notice.
        await anyio.to_thread.run_sync(live.materializer.dataset.apply, None, ["a"])
        index = await eng.get_index(INDEX)
        cp = json.dumps(
            {
                "seq": live.materializer.checkpoint.seq,  # type: ignore[union-attr]
                "lance_version": live.materializer.dataset.version,
            }
        ).encode()
        await eng.store.put(keys.index_checkpoint(index.bucket_id, index.id), cp)
        report = await eng.replay_check(INDEX)
        assert not report.ok and report.mismatches == ["a: only in the replay"]


def _chunk_fault(store: Any, index_prefix: list[str], fail_seq: int, kind: str) -> FaultyStore:
    """Fail the append at ``fail_seq`` of the index whose log prefix the test puts in the list:
    a lost reply once; an error every time (past the appender's retries) until the list is emptied."""

    def rule(verb: str, key: str) -> Fault | None:
        if index_prefix and verb == "put_if_absent" and key == keys.log_entry(index_prefix[0], fail_seq):
            if kind == LOST_REPLY:
                index_prefix.clear()
            return Fault(kind)
        return None

    return FaultyStore(store, rule)


async def test_partial_batch_keeps_landed_chunks_and_a_retry_converges(backend: Backend) -> None:
    small = backend.with_settings(max_event_bytes=500, run_materializers=False)
    inner = await small.store()
    prefix: list[str] = []
    faulty = _chunk_fault(inner, prefix, fail_seq=2, kind=ERROR)
    async with Engine.open(small.root, small.settings, store=faulty) as eng:
        await eng.create_bucket(CTX, BUCKET)
        index = await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean")
        prefix.append(keys.index_log(index.bucket_id, index.id))
        ks = [f"v{i:03d}" for i in range(100)]
        vecs = np.random.default_rng(0).standard_normal((100, D)).astype(np.float32)
        with pytest.raises(PartialBatch) as err:
            await eng.put_vectors(CTX, INDEX, ks, vecs, [None] * 100)
        assert err.value.landed == [0, 1] and err.value.failed_chunk == 3 and err.value.chunks > 3
        objs = [o async for o in read_log(inner, keys.index_log(index.bucket_id, index.id))]
        assert [o.events[0].attrs["chunk"][0] for o in objs] == [1, 2]
        landed = sum(o.events[0].attrs["count"] for o in objs)
        visible = [r.key for r in (await eng.list_vectors(INDEX, limit=1000)).vectors]
        assert visible == ks[:landed] and 0 < landed < 100
        audit = [ev.json() async for obj in read_log(inner, keys.AUDIT_LOG) for ev in obj.events]
        assert audit[-1]["operation"] == "PutVectors" and audit[-1]["landed_seqs"] == [0, 1]
        assert audit[-1]["chunks"] == err.value.chunks
        await eng.materialize(INDEX)
        assert (await eng.replay_check(INDEX)).ok

        prefix.clear()  # the store recovers
        await eng.put_vectors(CTX, INDEX, ks, vecs, [None] * 100)  # the retry converges
        assert [r.key for r in (await eng.list_vectors(INDEX, limit=1000)).vectors] == ks


async def test_lost_replies_neither_duplicate_nor_lose(backend: Backend) -> None:
    small = backend.with_settings(max_event_bytes=500, run_materializers=False)
    inner = await small.store()
    prefix: list[str] = []
    faulty = _chunk_fault(inner, prefix, fail_seq=1, kind=LOST_REPLY)
    async with Engine.open(small.root, small.settings, store=faulty) as eng:
        await eng.create_bucket(CTX, BUCKET)
        index = await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean")
        prefix.append(keys.index_log(index.bucket_id, index.id))
        ks = [f"v{i:03d}" for i in range(60)]
        seqs = await eng.put_vectors(CTX, INDEX, ks, np.ones((60, D), np.float32), [None] * 60)
        assert seqs == list(range(len(seqs)))
        assert [r.key for r in (await eng.list_vectors(INDEX, limit=1000)).vectors] == ks
        objs = [o async for o in read_log(inner, keys.index_log(index.bucket_id, index.id))]
        assert sum(e.attrs["count"] for o in objs for e in o.events) == 60  # nothing written twice


async def test_write_quotas_throttle_and_recover(backend: Backend) -> None:
    clock = ManualClock()
    async with backend.with_settings(write_vectors_per_second=100).engine(clock=clock) as eng:
        await eng.create_bucket(CTX, BUCKET)
        await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean")
        one = np.ones((60, D), np.float32)
        await eng.put_vectors(CTX, INDEX, [f"a{i}" for i in range(60)], one, [None] * 60)
        with pytest.raises(Throttled):
            await eng.put_vectors(CTX, INDEX, [f"b{i}" for i in range(60)], one, [None] * 60)
        clock.advance(1.0)
        await eng.put_vectors(CTX, INDEX, [f"b{i}" for i in range(60)], one, [None] * 60)
        await eng.set_index_quota(CTX, INDEX, requests_per_second=2, vectors_per_second=None)
        clock.advance(1.0)
        await eng.delete_vectors(CTX, INDEX, ["a1"])
        await eng.delete_vectors(CTX, INDEX, ["a2"])
        with pytest.raises(Throttled):
            await eng.delete_vectors(CTX, INDEX, ["a3"])
        audit = [(e.type, e.json()["operation"]) async for o in read_log(eng.store, keys.AUDIT_LOG) for e in o.events]
        assert audit == [("request.throttled", "PutVectors"), ("request.throttled", "DeleteVectors")]
        assert (await eng.get_index(INDEX)).quota == {"requests_per_second": 2.0}
        with pytest.raises(ValidationError):
            await eng.set_index_quota(CTX, INDEX, requests_per_second=-1, vectors_per_second=None)


async def test_a_deleted_bucket_and_index_can_be_restored(backend: Backend) -> None:
    async with backend.engine() as eng:
        await eng.create_bucket(CTX, BUCKET)
        await eng.create_index(CTX, INDEX, dimension=D, metric="cosine", non_filterable_keys=["note"])
        await eng.put_vectors(CTX, INDEX, ["a", "b"], np.eye(2, D, dtype=np.float32), [{"note": "x"}, {"g": 1}])
        before = await snapshot(eng, INDEX)
        await eng.delete_index(CTX, INDEX)
        await eng.delete_bucket(CTX, BUCKET)
        with pytest.raises(BucketNotFound):
            await eng.get_bucket(BUCKET)
        await eng.create_bucket(CTX, BUCKET)  # a new bucket of the same name (a new id)
        back = IndexRef(ACCOUNT, BUCKET.name, "back")
        restored = await eng.restore_index(CTX, INDEX, back, to_seq=0)
        assert (restored.metric, restored.non_filterable_keys) == ("cosine", ("note",))
        assert await snapshot(eng, back) == before


async def test_replay_check_names_a_changed_vector_and_changed_metadata(backend: Backend) -> None:
    import anyio

    from engine.log.payload import VectorBatch
    from engine.materialize.rows import rows_table

    async with backend.engine() as eng:
        await eng.create_bucket(CTX, BUCKET)
        await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean")
        await eng.put_vectors(CTX, INDEX, ["a", "b"], np.eye(2, D, dtype=np.float32), [{"x": 1}, None])
        live = await eng.live(INDEX)
        await live.materializer.run_to_end()
        # One flipped bit in b's vector, and a's metadata rewritten, behind the log's back.
        vectors = np.eye(2, D, dtype=np.float32)
        vectors[1].view(np.uint32)[3] ^= 1
        forged = VectorBatch(["a", "b"], vectors, ['{"x":2}', None])
        await anyio.to_thread.run_sync(live.materializer.dataset.apply, rows_table(forged, ()), [])
        index = await eng.get_index(INDEX)
        cp = {"seq": live.materializer.checkpoint.seq, "lance_version": live.materializer.dataset.version}  # type: ignore[union-attr]
        await eng.store.put(keys.index_checkpoint(index.bucket_id, index.id), json.dumps(cp).encode())
        report = await eng.replay_check(INDEX)
        assert report.mismatches == ["a: metadata differs", "b: vectors differ"]


async def test_a_restore_by_id_reaches_no_other_accounts_index(backend: Backend) -> None:
    """Index ids are not secrets (they are in paths and logs): naming one of another account's
    indexes must not copy its data into the caller's bucket."""
    mallory = RequestContext(
        principal="arn:aws:iam::999988887777:root", account="999988887777", source="x", dialect="test"
    )
    async with backend.engine() as eng:
        await eng.create_bucket(CTX, BUCKET)
        await eng.create_index(CTX, INDEX, dimension=D, metric="euclidean")
        await eng.put_vectors(CTX, INDEX, ["secret"], np.ones((1, D), np.float32), [{"pin": "1234"}])
        victim = await eng.get_index(INDEX)
        theirs = BucketRef("999988887777", "loot")
        await eng.create_bucket(mallory, theirs)
        await eng.create_index(mallory, IndexRef(theirs.account, theirs.name, "decoy"), dimension=D, metric="euclidean")
        for source in (
            IndexRef(theirs.account, theirs.name, "decoy"),
            IndexRef(theirs.account, BUCKET.name, INDEX.name),
        ):
            with pytest.raises(IndexNotFound):
                await eng.restore_index(
                    mallory, source, IndexRef(theirs.account, theirs.name, "stolen"), to_seq=0, source_id=victim.id
                )
        assert [i.name for i in await eng.list_indexes(theirs)] == ["decoy"]
        # The owner still can.
        back = IndexRef(ACCOUNT, BUCKET.name, "back")
        await eng.restore_index(CTX, INDEX, back, to_seq=0, source_id=victim.id)
        assert [r.key for r in (await eng.list_vectors(back)).vectors] == ["secret"]
