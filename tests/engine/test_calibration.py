"""Each vector index build calibrates how many partitions an unfiltered query probes, so recall
reaches the target on data with little cluster structure too (a fixed count gave 0.41 on
near-random 50k x 128); more probes never cost recall; a zero target keeps the configured count."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import numpy as np

from engine.dataset import PROBES, VECTOR_INDEX, search, shape
from engine.dataset.reads import default_probes
from tests.backends import Backend
from tests.helpers import CTX, INDEX, exact_top, make_index

N, D = 4_000, 48


def _recall(reader: object, base: np.ndarray, queries: np.ndarray, tuning: object, probes: int | None = None) -> float:
    found = 0
    for q in queries:
        hits = search(reader, q, 10, "euclidean", None, tuning, metadata=False, probes=probes)  # type: ignore[arg-type]
        found += len({int(h.key[1:]) for h in hits} & set(exact_top(base, q, 10)))
    return found / (10 * len(queries))


@contextlib.asynccontextmanager
async def _built(
    backend: Backend, recall_target: float
) -> AsyncIterator[tuple[object, np.ndarray, np.ndarray, object]]:
    """(reader, vectors, queries, tuning) of a freshly built index, while its engine is open (on
    S3 the reader reads the engine's local copy of the dataset, removed when it closes)."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((N, D)).astype(np.float32)  # near-random: the hard case for IVF
    queries = rng.standard_normal((40, D)).astype(np.float32)  # not rows of the index
    tuned = backend.with_tuning(build_threshold=1_000, recall_target=recall_target)
    async with tuned.with_settings(run_materializers=False).engine() as eng:
        await make_index(eng, dimension=D)
        await eng.put_vectors(CTX, INDEX, [f"v{i}" for i in range(N)], base, [{} for _ in range(N)])
        await eng.materialize(INDEX)
        reader = (await eng.live(INDEX)).reader
        assert VECTOR_INDEX in {i["name"] for i in reader.list_indices()}
        yield reader, base, queries, tuned.settings.tuning


async def test_a_build_calibrates_its_probe_count_to_the_recall_target(backend: Backend) -> None:
    async with _built(backend, recall_target=0.95) as (reader, base, queries, tuning):
        _check_calibrated(reader, base, queries, tuning)


def _check_calibrated(reader: object, base: np.ndarray, queries: np.ndarray, tuning: object) -> None:
    stored = json.loads(reader.metadata[PROBES])  # type: ignore[attr-defined]
    dims = shape(reader, tuning)  # type: ignore[arg-type]
    floor = default_probes(tuning, N, dims.partitions)  # type: ignore[arg-type]
    assert stored["partitions"] == dims.partitions and stored["recall"] >= 0.95
    assert dims.nprobes == stored["nprobes"] > floor, (stored, floor)  # the default was not enough
    # On queries that are not rows of the index: the default count misses, the calibrated one not.
    assert _recall(reader, base, queries, tuning, probes=floor) < 0.9
    assert _recall(reader, base, queries, tuning) >= 0.93


async def test_more_probes_never_lower_recall_and_a_zero_target_keeps_the_setting(backend: Backend) -> None:
    async with _built(backend, recall_target=0.0) as (reader, base, queries, tuning):
        _check_uncalibrated(reader, base, queries, tuning)


def _check_uncalibrated(reader: object, base: np.ndarray, queries: np.ndarray, tuning: object) -> None:
    assert PROBES not in reader.metadata  # type: ignore[attr-defined]
    dims = shape(reader, tuning)  # type: ignore[arg-type]
    assert dims.nprobes == default_probes(tuning, N, dims.partitions)  # type: ignore[arg-type]
    counts = sorted({1, 2, 4, 8, dims.nprobes, dims.partitions // 2, dims.partitions})
    recalls = [_recall(reader, base, queries, tuning, probes=p) for p in counts]
    assert recalls == sorted(recalls), list(zip(counts, recalls, strict=True))
    assert recalls[-1] >= 0.97 and recalls[0] < recalls[-1]  # all partitions: refined, near exact
