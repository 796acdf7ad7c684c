"""python -m tools.tenants: many small indexes, one per tenant: what they cost idle, at a restart, and
on a cold first query.

A server on a fresh root (a folder, or S3 through an in-process moto) takes ``--indexes`` indexes in
one bucket, ``--vectors`` vectors each (metadata ``n`` = 0, 1, ...), from four clients at once.
Once every index is folded and its materializer parked, it measures for ``--idle`` seconds the
server's CPU (% of one core), its RSS and its store requests per second (``/metrics``), and the
files and bytes each index keeps under ``data/`` (its log, checkpoint, lease, restore points and
Lance dataset); then it restarts the server and times the restart up to the first answered
request, and the first query of ``--cold`` indexes no request had touched since (filtered, ``n <
half``, checked against an exact search of what was written), and pages through every index with
ListIndexes. Then the same idle measurement once more. Prints one table; nothing is asserted here
(the targets are in docs/performance.md; ``--quick`` is the CI smoke run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from engine import keys
from tools.bench.server import Server
from tools.crash.procs import moto_server
from tools.soak.measure import RootView

BUCKET = "tenants"


def metric(server: Server, name: str) -> float:
    """The sum of a metric's samples on the server's /metrics."""
    with urllib.request.urlopen(f"{server.url}/metrics") as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def cpu_seconds(server: Server) -> float:
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(server: Server) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle(server: Server, seconds: float) -> dict[str, float]:
    cpu, requests, t0 = cpu_seconds(server), metric(server, "vecledger_store_requests_total"), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {
        "idle_cpu_pct": round(100 * (cpu_seconds(server) - cpu) / elapsed, 2),
        "rss_mb": round(rss_mb(server), 1),
        "store_requests_per_s": round((metric(server, "vecledger_store_requests_total") - requests) / elapsed, 2),
    }


def vectors_of(n: int, count: int, dim: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((count, dim)).astype(np.float32)


def fill(client: Any, n: int, count: int, dim: int) -> None:
    name = f"t{n:05d}"
    client.create_index(
        vectorBucketName=BUCKET, indexName=name, dataType="float32", dimension=dim, distanceMetric="euclidean"
    )
    rows = [
        {"key": f"k{i}", "data": {"float32": v.tolist()}, "metadata": {"n": i}}
        for i, v in enumerate(vectors_of(n, count, dim))
    ]
    client.put_vectors(vectorBucketName=BUCKET, indexName=name, vectors=rows)


def cold_query(client: Any, n: int, count: int, dim: int) -> tuple[float, bool]:
    """(ms, whether the answer is the exact filtered top 5) of index ``n``'s first query."""
    vectors, q = vectors_of(n, count, dim), np.full(dim, 0.1, np.float32)
    half = count // 2
    t0 = time.perf_counter()
    out = client.query_vectors(
        vectorBucketName=BUCKET,
        indexName=f"t{n:05d}",
        queryVector={"float32": q.tolist()},
        topK=5,
        filter={"n": {"$lt": half}},
    )
    ms = (time.perf_counter() - t0) * 1000
    order = np.argsort(((vectors[:half] - q) ** 2).sum(axis=1), kind="stable")[:5]
    return ms, [v["key"] for v in out["vectors"]] == [f"k{i}" for i in order]


def list_all(client: Any, indexes: int) -> tuple[float, float]:
    """(seconds to page through every index with ListIndexes, p50 ms of a page of 500)."""
    pages, names, token, t0 = [], 0, None, time.monotonic()
    while True:
        p0 = time.perf_counter()
        page = client.list_indexes(vectorBucketName=BUCKET, maxResults=500, **({"nextToken": token} if token else {}))
        pages.append((time.perf_counter() - p0) * 1000)
        names += len(page["indexes"])
        token = page.get("nextToken")
        if not token:
            break
    if names != indexes:
        raise SystemExit(f"ListIndexes listed {names} indexes of {indexes}")
    return round(time.monotonic() - t0, 3), round(float(np.percentile(pages, 50)), 2)


def settle(server: Server, timeout: float) -> float:
    """Seconds until the materializer of every open index is parked (folded, nothing left to do),
    three polls in a row. Only parked indexes are closed (past ``VECLEDGER_MAX_OPEN_INDEXES``), so
    then every index is folded."""
    t0, settled = time.monotonic(), 0
    while settled < 3 and time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        parked, open_ = metric(server, "vecledger_materializers_parked"), metric(server, "vecledger_indexes_open")
        settled = settled + 1 if parked >= open_ else 0
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.tenants", description=__doc__.split("\n")[0])
    ap.add_argument("--indexes", type=int, default=1000)
    ap.add_argument("--vectors", type=int, default=20)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of each idle measurement")
    ap.add_argument("--cold", type=int, default=50, help="indexes whose first query after the restart is timed")
    ap.add_argument("--park-after", type=float, default=10.0, help="VECLEDGER_MATERIALIZE_IDLE_EXIT for the run")
    ap.add_argument("--backend", choices=("local", "s3"), default="local", help="s3: an in-process moto server")
    ap.add_argument("--quick", action="store_true", help="the CI smoke run: 24 indexes, short measurements")
    ap.add_argument("--json", type=Path, default=Path("tenants-results.json"))
    a = ap.parse_args(argv)
    if a.quick:
        a.indexes, a.idle, a.cold, a.park_after = 24, 2.0, 8, 2.0
    with contextlib.ExitStack() as stack:
        view = RootView.s3(stack.enter_context(moto_server()), "tenants", "root") if a.backend == "s3" else None
        return run(a, view)


def run(a: argparse.Namespace, view: RootView | None) -> int:
    work = Path(tempfile.mkdtemp(prefix="vecledger-tenants-"))
    env = {"VECLEDGER_MATERIALIZE_IDLE_EXIT": str(a.park_after)}

    def start() -> Server:
        if view is None:
            return Server(work / "root", env=env)
        return Server(work / "root", env=env, s3_root=view.root, s3_endpoint=view.endpoint)

    server = start()
    try:
        client = server.client()
        client.create_vector_bucket(vectorBucketName=BUCKET)
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            clients = [server.client() for _ in range(4)]
            list(pool.map(lambda n: fill(clients[n % 4], n, a.vectors, a.dim), range(a.indexes)))
        result: dict[str, Any] = {"backend": a.backend, "indexes": a.indexes, "vectors_each": a.vectors}
        result["create_and_fill_s"] = round(time.monotonic() - t0, 1)
        result["settle_s"] = round(settle(server, timeout=600 + a.indexes), 1)
        data_bytes, data_files = (view or RootView(local=work / "root")).sizes(keys.DATA)
        result["files_per_index"] = round(data_files / a.indexes, 2)
        result["kb_per_index"] = round(data_bytes / a.indexes / 1024, 2)
        result["before_restart"] = idle(server, a.idle)
        server.stop()
        t0 = time.monotonic()
        server = start()  # returns once the server answers a request
        result["restart_s"] = round(time.monotonic() - t0, 2)
        client = server.client()
        step = max(1, a.indexes // a.cold)
        cold = [cold_query(client, n, a.vectors, a.dim) for n in range(0, a.indexes, step)][: a.cold]
        ms = [c[0] for c in cold]
        result["cold_query_p50_ms"] = round(float(np.percentile(ms, 50)), 2)
        result["cold_query_p99_ms"] = round(float(np.percentile(ms, 99)), 2)
        result["cold_queries_exact"] = f"{sum(c[1] for c in cold)}/{len(cold)}"
        result["list_all_s"], result["list_page_p50_ms"] = list_all(client, a.indexes)
        result["park_again_s"] = round(settle(server, timeout=120 + a.park_after), 1)
        result["after_restart"] = idle(server, a.idle)
        a.json.write_text(json.dumps(result, indent=2))
        flat = {k: v for k, v in result.items() if not isinstance(v, dict)}
        for phase in ("before_restart", "after_restart"):
            flat |= {f"{phase}: {k}": v for k, v in result[phase].items()}
        print("| measure | value |\n|---|---|")
        for k, v in flat.items():
            print(f"| {k} | {v} |")
        return 0 if all(c[1] for c in cold) else 1
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        print(f"work folder {work} removed", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
