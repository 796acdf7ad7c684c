"""Recall of the vector index (IVF_SQ, the default, and IVF_PQ) at each type's default query
settings, against exact search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.settings import IndexTuning
from tests.backends import Backend
from tests.helpers import CTX, INDEX, clustered, exact_top, make_index


@pytest.mark.parametrize("index_type", ["IVF_SQ", "IVF_PQ"])
async def test_recall_at_10_on_20k_clustered_vectors(backend: Backend, index_type: str) -> None:
    n, d, nq = 20_000, 128, 100 if backend.name == "local" else 30
    data = clustered(n + nq, d, clusters=200, seed=5)
    base, queries = data[:n], data[n:]
    # The type's default query settings (nprobes, refine factor) and the default build threshold.
    tuned = backend.with_settings(
        tuning=IndexTuning.for_index_type(index_type),
        run_materializers=False,
    )
    async with tuned.engine() as eng:
        await make_index(eng, dimension=d)
        for i in range(0, n, 500):
            metas = [{"n": j} for j in range(i, i + 500)]
            await eng.put_vectors(CTX, INDEX, [f"v{j}" for j in range(i, i + 500)], base[i : i + 500], metas)
        await eng.materialize(INDEX)
        live = await eng.live(INDEX)
        assert live.materializer.dataset.index_state()["type"] == index_type
        assert len(live.tail) == 0  # every query below is answered by the index alone
        recalls = []
        for q in queries:
            hits = await eng.query_vectors(INDEX, q, 10)
            truth = {f"v{j}" for j in exact_top(base, q, 10)}
            recalls.append(len(truth & {h.key for h in hits}) / 10)
        recall = float(np.mean(recalls))
        print(f"recall@10 = {recall:.3f} over {nq} queries ({backend.name})")
        assert recall >= 0.95
        # A caller that shows neither metadata nor distances gets the same rows, ranked by Lance's
        # float32 distances (which agree with the exact float64 ones to float32 precision).
        for q in queries[:20]:
            full = await eng.search(INDEX, q, [], 10)
            lean = await eng.search(INDEX, q, [], 10, metadata=False, distances=False)
            assert {h.key for h in lean} == {h.key for h in full}
            assert all(h.metadata is None for h in lean)
            assert all(json.loads(h.metadata or "null") == {"n": int(h.key[1:])} for h in full)
            exact = {h.key: h.distance for h in full}
            assert [h.distance for h in lean] == pytest.approx([exact[h.key] for h in lean], rel=1e-5)
            # ... and they are Lance's own (the vectors were not read to recompute them).
            assert any(h.distance != exact[h.key] for h in lean)
