"""Engine settings from the environment and ``serve``'s flags: the index type brings its own
refinement defaults."""

from __future__ import annotations

import pytest

from api.cli.serve import server_config
from api.config import engine_settings, parse_size


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
    assert (default.open_cache_bytes, default.index_cache_bytes) == (2048 * 2**20, 1024 * 2**20)
    env = {"VECLEDGER_OPEN_CACHE_MB": "64", "VECLEDGER_INDEX_CACHE_MB": "16", "VECLEDGER_MAX_OPEN_INDEXES": "10"}
    tuned = engine_settings(None, "us-east-1", env)
    assert (tuned.open_cache_bytes, tuned.index_cache_bytes, tuned.max_open_indexes) == (64 * 2**20, 16 * 2**20, 10)


def test_recall_target_and_the_s3_cache_come_from_the_environment_and_the_serve_flags() -> None:
    default = engine_settings(None, "us-east-1", {})
    assert (default.tuning.recall_target, default.cache_dir, default.cache_bytes) == (0.95, None, 8 * 2**30)
    env = {"VECLEDGER_RECALL_TARGET": "0.99", "VECLEDGER_CACHE_DIR": "/var/cache/v", "VECLEDGER_CACHE_SIZE": "512M"}
    tuned = engine_settings(None, "us-east-1", env)
    assert (tuned.tuning.recall_target, tuned.cache_dir, tuned.cache_bytes) == (0.99, "/var/cache/v", 512 * 2**20)
    assert [parse_size(s) for s in ("0", "1024", "64KiB", "1.5G", "2TB")] == [0, 1024, 64 << 10, 3 << 29, 2 << 40]
    for bad in ("lots", "-1G"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
    config = server_config(**{**_serve_args(), "cache_dir": "/tmp/c", "cache_size": "2G"})
    assert (config.engine.cache_dir, config.engine.cache_bytes) == ("/tmp/c", 2 << 30)
    with pytest.raises(SystemExit, match="--cache-size"):
        server_config(**{**_serve_args(), "cache_size": "big"})


def _serve_args() -> dict[str, object]:
    return {
        "root": "./data",
        "s3_endpoint": None,
        "host": "127.0.0.1",
        "port": 8000,
        "base_host": None,
        "region": "us-east-1",
        "keys_file": None,
        "no_auth": True,
        "dev": False,
        "write_requests_per_second": None,
        "write_vectors_per_second": None,
        "no_materialize": False,
    }


def test_how_stale_a_catalog_data_reads_may_use_comes_from_the_environment() -> None:
    assert engine_settings(None, "us-east-1", {}).catalog_staleness == 1.0
    assert engine_settings(None, "us-east-1", {"VECLEDGER_CATALOG_STALENESS": "0"}).catalog_staleness == 0.0
