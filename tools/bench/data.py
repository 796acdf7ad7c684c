"""Benchmark data: synthetic embedding-like vectors (or a user's .npy files) and exact answers.

The synthetic data are Gaussian clusters with a decaying spectrum, randomly rotated (their
participation-ratio dimension is ~18 at d=128 and ~32 at d=768), so recall figures mean what they
mean for real embeddings rather than for uniform noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# Filters of known selectivity on a metadata field "b" in 0..999: uniform and independent of the
# clusters for synthetic data, the package's position for real embeddings (``minilm``).
FILTERS: dict[str, dict[str, object]] = {
    "none": {},
    "50%": {"b": {"$lt": 500}},
    "35%": {"b": {"$lt": 350}},
    "5%": {"b": {"$lt": 50}},
    "0.5%": {"b": {"$lt": 5}},
}


@dataclass
class Dataset:
    name: str
    base: F32
    queries: F32
    buckets: npt.NDArray[np.int64]  # the "b" metadata value of each base vector

    @property
    def n(self) -> int:
        return int(self.base.shape[0])

    @property
    def d(self) -> int:
        return int(self.base.shape[1])

    def mask(self, selectivity: str) -> npt.NDArray[np.bool_]:
        if selectivity == "none":
            return np.ones(self.n, bool)
        return self.buckets < {"50%": 500, "35%": 350, "5%": 50, "0.5%": 5}[selectivity]


def synthetic(n: int, d: int, nq: int, seed: int = 42) -> Dataset:
    rng = np.random.default_rng(seed)
    clusters = max(10, min(2000, n // 500))
    s = np.arange(1, d + 1, dtype=np.float64) ** -0.5
    s /= np.sqrt((s**2).mean())
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    rotation = rotation.astype(np.float32)
    centers = (rng.standard_normal((clusters, d)) * s).astype(np.float32)

    def draw(count: int) -> F32:
        out = np.empty((count, d), np.float32)
        for start in range(0, count, 100_000):
            m = min(100_000, count - start)
            labels = rng.integers(clusters, size=m)
            noise = rng.standard_normal((m, d)).astype(np.float32) * (s * 0.5).astype(np.float32)
            out[start : start + m] = (centers[labels] + noise) @ rotation
        return out

    return Dataset(f"synthetic {n}x{d}", draw(n), draw(nq), rng.integers(0, 1000, size=n))


def near_random(n: int, d: int, nq: int, seed: int = 42) -> Dataset:
    """Independent Gaussian vectors and queries: no cluster structure, as ANN benchmark suites'
    random sets. Every IVF partition holds some of a query's neighbours, so a fixed probe count
    that serves embeddings well misses many here (the hard case for the probe calibration)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d), dtype=np.float32)
    queries = rng.standard_normal((nq, d), dtype=np.float32)
    return Dataset(f"near-random {n}x{d}", base, queries, rng.integers(0, 1000, size=n))


def minilm(n: int, nq: int, seed: int = 42) -> Dataset:
    """Real sentence embeddings of documentation (``embeddings``), 384-d and normalized, the
    queries held out of the base; ``b`` codes the package, so the filters keep whole topics."""
    from tools.bench import embeddings

    vectors, packages = embeddings.load(n + nq)
    order = np.random.default_rng(seed).permutation(len(vectors))
    queries, base = order[:nq], order[nq:]
    codes = embeddings.package_codes([packages[i] for i in base], seed)
    return Dataset(f"MiniLM docstrings {len(base)}x{vectors.shape[1]}", vectors[base], vectors[queries], codes)


def from_files(base_path: str, query_path: str, seed: int = 42) -> Dataset:
    base = np.load(base_path).astype(np.float32)
    queries = np.load(query_path).astype(np.float32)
    rng = np.random.default_rng(seed)
    return Dataset(f"{base_path} {base.shape[0]}x{base.shape[1]}", base, queries, rng.integers(0, 1000, len(base)))


def exact_top(data: Dataset, k: int, selectivity: str) -> list[list[int]]:
    """Exact k nearest (euclidean) per query among the rows the filter keeps: the ground truth."""
    mask = data.mask(selectivity)
    rows = np.flatnonzero(mask)
    base = data.base[rows]
    norms = (base.astype(np.float64) ** 2).sum(axis=1)
    out = []
    for start in range(0, len(data.queries), 64):
        q = data.queries[start : start + 64].astype(np.float64)
        d2 = norms[None, :] - 2 * q @ base.T.astype(np.float64) + (q**2).sum(axis=1)[:, None]
        kk = min(k, len(rows))
        top = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        for i in range(len(q)):
            order = top[i][np.argsort(d2[i, top[i]])]
            out.append([int(rows[j]) for j in order])
    return out


def recall(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    hits = [len(set(f[:k]) & set(t[:k])) / max(1, min(k, len(t))) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) if hits else 0.0
