"""The soak instrument runs end to end (``--quick``, on a folder and on S3 through moto): samples
over time, a plot, exact restores to three moments of the churn, and pruning visible in the Lance
versions; no timing asserts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.system.tool_run import run_tool

FIELDS = {"t", "phase", "disk_mb", "files", "log_mb", "lance_versions", "rss_mb", "query_p50_ms"}


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_quick_soak_samples_prunes_and_restores_exactly(tmp_path: Path, backend: str) -> None:
    out, png = tmp_path / "soak.json", tmp_path / "soak.png"
    run = run_tool("soak", tmp_path, "--quick", "--backend", backend, "--json", str(out), "--png", str(png))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| lance_versions |" in run.stdout  # the markdown table
    doc = json.loads(out.read_text())
    samples = doc["samples"]
    assert samples[0]["phase"] == "loaded" and samples[-1]["phase"] == "settled"
    assert all(set(s) == FIELDS for s in samples)
    assert len([s for s in samples if s["phase"] == "churn"]) >= 2
    assert [r["exact"] for r in doc["restores"]] == [True, True, True]
    # Once the writes stop, pruning leaves fewer versions than the churn had piled up.
    assert samples[-1]["lance_versions"] < max(s["lance_versions"] for s in samples)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("vecledger-soak-*"))  # its work folder is gone
