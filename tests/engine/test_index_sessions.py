"""Each served index's Lance session lasts as long as its index files: a fold that changes them
moves the published handles to a new session, so the old one goes with its last reader."""

from __future__ import annotations

import numpy as np

from engine import IndexRef
from engine.dataset import search
from tests.backends import Backend
from tests.helpers import ACCOUNT, BUCKET, CTX, INDEX, make_index


async def test_a_new_index_segment_renews_the_session_and_old_readers_keep_answering(backend: Backend) -> None:
    tuned = backend.with_tuning(build_threshold=200, optimize_unindexed_rows=100)
    async with tuned.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng, dimension=8)
        rng = np.random.default_rng(9)
        first = rng.standard_normal((300, 8))
        await eng.put_vectors(CTX, INDEX, [f"a{i}" for i in range(300)], first, [None] * 300)
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        mat, tuning = live.materializer, eng.settings.tuning
        assert mat.session is not None and mat.dataset.has_vector_index()
        built, old = mat.session.renewals, live.reader
        assert mat.session.size_bytes() > 0  # the published handle was warmed in it

        # Rows below the optimize threshold change no index file: the same session.
        await eng.put_vectors(CTX, INDEX, [f"b{i}" for i in range(50)], rng.standard_normal((50, 8)), [None] * 50)
        await eng.materialize(INDEX)
        assert mat.session.renewals == built
        assert "optimize" not in mat.last_maintenance

        # A delta segment is new index files: a new session for the handles from now on.
        await eng.put_vectors(CTX, INDEX, [f"c{i}" for i in range(150)], rng.standard_normal((150, 8)), [None] * 150)
        await eng.materialize(INDEX)
        assert mat.session.renewals > built
        assert live.reader is not old and live.reader.version > old.version

        # The old handle answers from its own version, the new one sees every row.
        for i in (0, 150, 299):
            assert search(old, first[i], 1, "euclidean", None, tuning)[0].key == f"a{i}"
        assert old.count_rows() == 300 and live.reader.count_rows() == 500
        assert (await eng.query_vectors(INDEX, first[7], 1))[0].key == "a7"


async def test_idle_indexes_close_past_the_cache_budget_and_answer_when_opened_again(backend: Backend) -> None:
    """The open indexes' Lance caches are bounded: an index opened while they hold more than
    ``open_cache_bytes`` first closes idle ones, least recently used first; they answer as before
    when next used. Under the budget they stay open."""
    rng = np.random.default_rng(10)
    vectors = rng.standard_normal((300, 8))
    refs = [IndexRef(ACCOUNT, BUCKET.name, f"tenant-{n}") for n in range(3)]
    # No materializers, no polls: only opening an index closes others.
    tuned = backend.with_tuning(build_threshold=200).with_settings(run_materializers=False)
    tuned = tuned.with_settings(materialize_idle_interval=3600.0)
    async with tuned.engine() as eng:
        await eng.create_bucket(CTX, BUCKET)
        for r in refs:
            await eng.create_index(CTX, r, dimension=8, metric="euclidean")
            await eng.put_vectors(CTX, r, [f"k{i}" for i in range(300)], vectors, [None] * 300)
            await eng.materialize(r)
        assert min([(await eng.live(r)).cache_bytes() for r in refs]) > 0
        assert len(eng.indexes.runtime.open_indexes()) == 3

    async with tuned.with_settings(open_cache_bytes=1).engine() as eng:
        ids = [(await eng.get_index(r)).id for r in refs]
        for n, r in enumerate(refs):
            assert (await eng.query_vectors(r, vectors[5], 1))[0].key == "k5"
            assert list(eng.indexes.runtime.open_indexes()) == [ids[n]]
        assert (await eng.query_vectors(refs[0], vectors[9], 1))[0].key == "k9"  # opened again
        assert list(eng.indexes.runtime.open_indexes()) == [ids[0]]
