"""The peers measured in the same run: raw pylance with vecledger's own index parameters, and faiss."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pyarrow as pa

from engine.dataset import calibrated_probes, index_params, refine_for, stats_partitions
from engine.settings import IndexTuning
from tools.bench.data import Dataset


def _table(data: Dataset) -> pa.Table:
    flat = pa.array(data.base.reshape(-1), type=pa.float32())
    return pa.table(
        {
            "key": pa.array([f"v{i}" for i in range(data.n)]),
            "vector": pa.FixedSizeListArray.from_arrays(flat, data.d),
            "b": pa.array(data.buckets, pa.int64()),
        }
    )


def index_shape(lance_dir: Path) -> dict[str, Any] | None:
    """Partitions, segments and unindexed rows of the vector index the materializer built (None:
    no vector index yet)."""
    ds = lance.dataset(str(lance_dir))
    if not any(i["name"] == "vector_idx" for i in ds.list_indices()):
        return None
    stats = ds.stats.index_stats("vector_idx")
    partitions = stats_partitions(stats)
    return {
        "index_partitions": partitions,
        "index_probes": calibrated_probes(ds, partitions) or 0,  # 0: not calibrated
        "index_segments": int(stats.get("num_segments", 1)),
        "index_unindexed_rows": int(stats.get("num_unindexed_rows", 0)),
    }


class RawLance:
    """The same data and index parameters as vecledger's materializer, queried directly."""

    def __init__(self, data: Dataset, workdir: Path, tuning: IndexTuning, share: float | None = None) -> None:
        """``share``: the share of its partitions the server probes (its calibrated count over
        its partitions), probed here too, so both scan alike; None: ``tuning.nprobes``."""
        self.tuning = tuning
        path = workdir / "raw.lance"
        shutil.rmtree(path, ignore_errors=True)
        started = time.perf_counter()
        ds = lance.write_dataset(_table(data), str(path))
        ds.create_index("vector", metric="l2", **index_params(tuning, data.n, data.d))
        self.build_seconds = time.perf_counter() - started
        self.ds = lance.dataset(str(path))
        partitions = index_params(tuning, data.n, data.d)["num_partitions"]
        self.nprobes = tuning.nprobes if share is None else max(1, min(partitions, round(share * partitions)))

    def query(self, q: np.ndarray, k: int, sql: str | None = None) -> list[int]:
        t = self.ds.to_table(
            nearest={
                "column": "vector",
                "q": q,
                "k": k,
                "nprobes": self.nprobes,
                "refine_factor": refine_for(k, self.tuning),
            },
            columns=["key"],  # what the server reads for a query without distances or metadata
            filter=sql,
            prefilter=True,
            disable_scoring_autoprojection=True,
        )
        return [int(key[1:]) for key in t.column("key").to_pylist()]


class Faiss:
    """faiss IVF-PQ with the parameters and refinement vecledger would use for an IVF_PQ index."""

    def __init__(self, data: Dataset, tuning: IndexTuning) -> None:
        import faiss

        started = time.perf_counter()
        tuning = IndexTuning.for_index_type("IVF_PQ", nprobes=tuning.nprobes)
        params = index_params(tuning, data.n, data.d)
        partitions, sub = params["num_partitions"], params["num_sub_vectors"]
        quantizer = faiss.IndexFlatL2(data.d)
        ivfpq = faiss.IndexIVFPQ(quantizer, data.d, partitions, sub, 8)
        sample = data.base[np.random.default_rng(0).choice(data.n, min(data.n, partitions * 256), replace=False)]
        ivfpq.train(sample)
        ivfpq.nprobe = tuning.nprobes
        self.index: Any = faiss.IndexRefineFlat(ivfpq)  # keeps the exact vectors to re-rank with
        self.tuning = tuning  # the refine factor is set per query (refine_for)
        self.index.add(data.base)
        self.build_seconds = time.perf_counter() - started

    def query(self, q: np.ndarray, k: int) -> list[int]:
        self.index.k_factor = refine_for(k, self.tuning)
        _, ids = self.index.search(q[None, :], k)
        return [int(i) for i in ids[0] if i >= 0]


def timed(fn: Any, queries: np.ndarray, count: int) -> tuple[list[list[int]], list[float]]:
    results, ms = [], []
    for q in queries[:count]:
        started = time.perf_counter()
        results.append(fn(q))
        ms.append((time.perf_counter() - started) * 1000)
    return results, ms
