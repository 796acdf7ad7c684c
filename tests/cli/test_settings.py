"""Engine settings from the environment: the index type brings its own refinement defaults."""

from __future__ import annotations

import pytest

from api.config import engine_settings


def test_the_index_type_comes_from_the_environment_with_its_own_defaults() -> None:
    sq = engine_settings(None, "us-east-1", {}).tuning
    assert (sq.index_type, sq.refine_factor, sq.refine_candidates) == ("IVF_SQ", 2, 20)
    pq = engine_settings(None, "us-east-1", {"VECLEDGER_INDEX_TYPE": "ivf_pq"}).tuning
    assert (pq.index_type, pq.refine_factor, pq.refine_candidates) == ("IVF_PQ", 5, 50)
    env = {"VECLEDGER_INDEX_TYPE": "IVF_PQ", "VECLEDGER_REFINE_FACTOR": "8", "VECLEDGER_NPROBES": "30"}
    tuned = engine_settings(None, "us-east-1", env).tuning
    assert (tuned.refine_factor, tuned.nprobes, tuned.refine_candidates) == (8, 30, 50)
    assert engine_settings(None, "us-east-1", {"VECLEDGER_BUILD_THRESHOLD": "300"}).tuning.build_threshold == 300
    with pytest.raises(ValueError, match="index type must be one of IVF_SQ, IVF_PQ, not 'HNSW'"):
        engine_settings(None, "us-east-1", {"VECLEDGER_INDEX_TYPE": "hnsw"})


def test_memory_settings_come_from_the_environment_in_megabytes() -> None:
    default = engine_settings(None, "us-east-1", {})
    assert (default.open_cache_bytes, default.index_cache_bytes) == (768 * 2**20, 128 * 2**20)
    env = {"VECLEDGER_OPEN_CACHE_MB": "64", "VECLEDGER_INDEX_CACHE_MB": "16", "VECLEDGER_MAX_OPEN_INDEXES": "10"}
    tuned = engine_settings(None, "us-east-1", env)
    assert (tuned.open_cache_bytes, tuned.index_cache_bytes, tuned.max_open_indexes) == (64 * 2**20, 16 * 2**20, 10)
