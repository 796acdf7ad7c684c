"""The many-indexes instrument runs end to end (``--quick``, on a folder and on S3 through moto):
indexes created, folded and parked, idle and restart figures, and every cold first query exact;
no timing asserts beyond "idle costs no store requests per index"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.system.tool_run import run_tool


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_quick_tenants_run_parks_restarts_and_answers_exactly(tmp_path: Path, backend: str) -> None:
    out = tmp_path / "tenants.json"
    run = run_tool("tenants", tmp_path, "--quick", "--backend", backend, "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["indexes"] == 24 and doc["cold_queries_exact"] == "8/8"
    for phase in ("before_restart", "after_restart"):
        # Parked: a catalog probe and a listing of the marks per poll (5 s), nothing per index.
        assert doc[phase]["store_requests_per_s"] <= 1.0, doc
    # Log, checkpoint, lease, restore point (map entry and Lance tag), Lance manifest, transaction,
    # data file and version hint: nothing per index beyond what its history needs.
    assert doc["files_per_index"] <= 9, doc
    assert doc["list_all_s"] > 0 and doc["list_page_p50_ms"] > 0
    assert "| restart_s |" in run.stdout
