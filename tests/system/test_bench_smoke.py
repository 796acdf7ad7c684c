"""The benchmark instrument runs end to end (small sizes) and reports every figure; no timing asserts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.system.tool_run import run_tool

FIGURES = [
    "ingest_1_client_vps",
    "ingest_4_clients_vps",
    "fold_and_index_seconds",
    "query_p50_ms",
    "query_p95_ms",
    "query_p99_ms",
    "server_query_p50_ms",
    "qps_8_clients",
    "recall@10 none",
    "recall@100 none",
    "recall@10 50%",
    "recall@10 5%",
    "recall@10 0.5%",
    "filtered k results 0.5%",
    "read_your_writes_retries",
    "materializer_lag_p99_s",
    "restore_vps",
    "replay_from_zero_vps",
    "server_peak_rss_bytes",
    "log_bytes_per_vector",
    "lance_p50_ms",
    "server_over_lance_p50",
    "lance_nprobes",
    "get_one_p50_ms",
    "server_get_one_p50_ms",
    "get_index_p50_ms",
    "query_minus_get_index_over_lance_p50",
    "faiss_p50_ms",
    "numpy_exact_ms_per_query",
]


def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = run_tool("bench", tmp_path, "--quick", "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| recall@10 none |" in run.stdout  # the markdown table
    doc = json.loads(out.read_text())
    assert doc["machine"]["cpus"] and doc["command"].startswith("python -m tools.bench")
    (figs,) = doc["results"]
    missing = [f for f in FIGURES if f not in figs or figs[f] is None]
    assert missing == []
    # Correctness, not speed: these hold on any machine.
    assert figs["read_your_writes_retries"] == 0
    assert figs["filtered k results 0.5%"] is True
    assert figs["recall@10 none"] >= 0.9
    assert not list(tmp_path.glob("vecledger-bench-*"))  # its work folder is gone
