"""Small builders shared by the engine tests."""

from __future__ import annotations

import numpy as np

from engine import BucketRef, Engine, IndexRef
from engine.context import RequestContext

ACCOUNT = "111122223333"
CTX = RequestContext(principal="arn:aws:iam::111122223333:root", account=ACCOUNT, source="127.0.0.1", dialect="test")
BUCKET = BucketRef(ACCOUNT, "bucket-one")
INDEX = IndexRef(ACCOUNT, "bucket-one", "index-one")


def clustered(n: int, d: int, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Embedding-like data: Gaussian clusters with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    scale = np.arange(1, d + 1, dtype=np.float64) ** -0.5
    scale /= np.sqrt((scale**2).mean())
    centers = rng.standard_normal((clusters, d)) * scale
    labels = rng.integers(clusters, size=n)
    return (centers[labels] + rng.standard_normal((n, d)) * scale * 0.5).astype(np.float32)


async def make_index(engine: Engine, dimension: int = 4, metric: str = "euclidean", **kw: object) -> IndexRef:
    await engine.create_bucket(CTX, BUCKET)
    await engine.create_index(CTX, INDEX, dimension=dimension, metric=metric, **kw)  # type: ignore[arg-type]
    return INDEX


def exact_top(vectors: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    d = ((vectors - q) ** 2).sum(axis=1)
    return [int(i) for i in np.argsort(d, kind="stable")[:k]]
