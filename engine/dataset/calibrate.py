"""How many IVF partitions an unfiltered query probes: calibrated per vector index, at its build,
against exact search, to a recall target.

A fixed probe count means different recall on different data: 20 of 223 partitions give recall@10
0.99 on clustered 1M x 128 vectors but 0.41 on near-random 50k x 128 (measured, IVF_SQ), where
every partition holds some of a query's neighbours. So each build samples rows as queries, finds
their true neighbours in one pass over the vectors, and searches with more and more probes until
the sample's recall@10 reaches ``tuning.recall_target`` plus a margin for the sample's noise. The
count is stored in the dataset's table metadata with the partition count it was measured on, so
every process reads the same figure with the version; delta segments keep the partitioning (and
the figure); a re-training calibrates again. Sampled rows are their own nearest neighbour, so each
is left out of its own truth and results.

The cost is paid once per build: ~48 queries at up to ~10 probe counts, plus one read of the
vectors (~2 s at 1M x 128), against a build of tens of seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.dataset.reads import search
from engine.log.payload import vector_matrix
from engine.settings import IndexTuning

K = 10
QUERIES = 48
MARGIN = 0.02  # the sample's recall has a standard error of ~0.01 at 0.97 over 480 neighbours


def _truth(ds: Any, queries: np.ndarray, own: list[str], metric: str) -> list[set[str]]:
    """The true ``K`` nearest keys of each query (its own row left out), in one pass over the
    vectors with one matrix product a batch (float32 ranks as well as float64 here)."""
    q = queries.astype(np.float32)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    best: list[list[tuple[float, str]]] = [[] for _ in own]
    for batch in ds.to_batches(columns=["key", "vector"], batch_size=65_536):
        x = vector_matrix(batch.column("vector"))
        keys = batch.column("key").to_pylist()
        if metric == "cosine":
            dist = -(q @ (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)).T)
        else:
            dist = (x * x).sum(axis=1)[None, :] - 2 * (q @ x.T)  # |q|^2 ranks nothing
        take = min(K + 1, dist.shape[1])
        near = np.argpartition(dist, take - 1, axis=1)[:, :take]
        for i, row in enumerate(near):
            mine = [(float(dist[i, j]), keys[j]) for j in row.tolist() if keys[j] != own[i]]
            best[i] = sorted(best[i] + mine)[:K]
    return [{k for _, k in b} for b in best]


def calibrate(ds: Any, metric: str, tuning: IndexTuning, partitions: int, floor: int, seed: int) -> dict[str, Any]:
    """The probe count to store for a vector index of ``partitions`` (at least ``floor``): the
    smallest that reaches the recall target on a sample, found by doubling then bisecting."""
    rows = int(ds.count_rows())
    rng = np.random.default_rng(seed)
    offsets = sorted(rng.choice(rows, size=min(QUERIES, rows), replace=False).tolist())
    picked = ds.take(offsets, columns=["key", "vector"])
    queries, own = vector_matrix(picked.column("vector")), picked.column("key").to_pylist()
    truth = _truth(ds, queries, own, metric)

    def recall(probes: int) -> float:
        found = 0
        for q, me, t in zip(queries, own, truth, strict=True):
            hits = search(ds, q, K + 1, metric, None, tuning, metadata=False, probes=probes)
            found += len({h.key for h in hits if h.key != me}.intersection(t))
        return found / max(1, K * len(own))

    target = min(1.0, tuning.recall_target + MARGIN)
    measured: dict[int, float] = {}

    def reaches(probes: int) -> bool:
        if probes not in measured:
            measured[probes] = recall(probes)
        return measured[probes] >= target

    # Double from the floor while short of the target, then bisect between the last count that
    # missed it and the first that reached it, to within an eighth.
    low = high = max(1, min(floor, partitions))
    while not reaches(high) and high < partitions:
        low, high = high, min(partitions, high * 2)
    while high - low > max(1, math.ceil(high / 8)):
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    recall_at = round(measured[high], 4)
    return {"nprobes": high, "partitions": partitions, "recall": recall_at, "sample": len(own), "rows": rows}
