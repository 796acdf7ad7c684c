"""python -m tools.bench.s3: one index served from S3 (moto behind a proxy that adds a round trip
to every request and counts them) and from a local folder, beside raw pylance on the same S3
dataset, in one run: p50 and S3 requests per operation, with and without the injected delay, and
the first query after a restart. No figure is asserted; docs/performance.md keeps them.

moto answers in ~1-3 ms where S3 takes 10-30 ms; ``--delays 0,15`` models both. The requests are
counted at the proxy, so they include Lance's own reads, not only the engine's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lance
import numpy as np

from engine.dataset import refine_for, shape
from engine.settings import IndexTuning
from tools.bench import clients, data
from tools.bench.s3proxy import DelayProxy
from tools.bench.server import Server
from tools.crash.procs import moto_server
from tools.soak.measure import RootView
from tools.tenants.__main__ import settle

BUCKET, INDEX, S3_BUCKET, PREFIX = "bench", "vectors", "vecledger-bench", "root"
FILTER = {"b": {"$lt": 500}}


def _p50(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def timed(op: Callable[[int], Any], count: int, proxy: DelayProxy | None) -> tuple[float, float]:
    """(p50 ms, S3 requests per call) of ``count`` calls, each warmed once first."""
    for i in range(count):
        op(i)
    before, ms = proxy.count() if proxy else 0, []
    for i in range(count):
        started = time.perf_counter()
        op(i)
        ms.append((time.perf_counter() - started) * 1000)
    return _p50(ms), ((proxy.count() - before) / count if proxy else 0.0)


def operations(server: Server, ds: data.Dataset) -> dict[str, Callable[[int], Any]]:
    c = server.client()
    q = ds.queries

    def query(i: int, flt: dict[str, Any] | None = None) -> Any:
        kw: dict[str, Any] = {"filter": flt} if flt else {}
        v = {"float32": q[i % len(q)].tolist()}
        return c.query_vectors(vectorBucketName=BUCKET, indexName=INDEX, topK=10, queryVector=v, **kw)

    return {
        "query": query,
        "query_filtered_50%": lambda i: query(i, FILTER),
        "get_one": lambda i: c.get_vectors(
            vectorBucketName=BUCKET, indexName=INDEX, keys=[f"v{i * 7919 % ds.n}"], returnData=True, returnMetadata=True
        ),
        "get_index": lambda i: c.get_index(vectorBucketName=BUCKET, indexName=INDEX),
    }


def fill(server: Server, ds: data.Dataset) -> None:
    c = server.client()
    c.create_vector_bucket(vectorBucketName=BUCKET)
    c.create_index(
        vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=ds.d, distanceMetric="euclidean"
    )
    clients.ingest(server, ds, BUCKET, INDEX, range(ds.n), 2, lean=True)
    settle(server, timeout=1800)


def raw_lance(view: RootView, proxy: DelayProxy, ds: data.Dataset, count: int) -> tuple[float, float]:
    """Raw pylance on the server's own S3 dataset, through the proxy, with the server's probe
    count and refine factor: (p50 ms, requests per query)."""
    location = view.lance(*view.index_ids())
    dataset = lance.dataset(location.uri, storage_options=location.storage_options | {"aws_endpoint": proxy.url})
    tuning = IndexTuning()
    probes = shape(dataset, tuning).nprobes  # the server's: calibrated, or the default

    def query(i: int) -> Any:
        nearest = {"column": "vector", "q": ds.queries[i % len(ds.queries)], "k": 10, "nprobes": probes}
        nearest["refine_factor"] = refine_for(10, tuning)
        return dataset.to_table(nearest=nearest, columns=["key"], disable_scoring_autoprojection=True)

    return timed(query, count, proxy)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.s3", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=30_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--count", type=int, default=50, help="calls per operation")
    ap.add_argument("--delays", default="0,15", help="ms added to each S3 request, comma-separated")
    ap.add_argument("--json", default="bench-s3.json")
    a = ap.parse_args(argv)
    ds = data.synthetic(a.rows, a.dim, 200)
    work = Path(tempfile.mkdtemp(prefix="vecledger-bench-s3-"))
    rows: dict[str, dict[str, float]] = {}
    try:
        local = Server(work / "local" / "root")
        fill(local, ds)
        for name, op in operations(local, ds).items():
            rows.setdefault(name, {})["local p50 ms"] = timed(op, a.count, None)[0]
        local.stop()
        with moto_server() as endpoint, DelayProxy(endpoint) as proxy:
            view = RootView.s3(endpoint, S3_BUCKET, PREFIX)  # creates the bucket
            root, s3root = work / "s3" / "root", view.root
            server = Server(root, s3_root=s3root, s3_endpoint=proxy.url)
            fill(server, ds)
            for delay in [float(d) for d in a.delays.split(",")]:
                proxy.delay = delay / 1000
                col = f"s3 +{delay:g} ms"

                def record(name: str, p50: float, per: float, col: str = col) -> None:
                    rows.setdefault(name, {}).update({f"{col} p50 ms": p50, f"{col} requests": per})

                for name, op in operations(server, ds).items():
                    record(name, *timed(op, a.count, proxy))
                record("raw pylance query", *raw_lance(view, proxy, ds, a.count))
                # A restart: the first query of the index, from a new process.
                server.stop()
                before = proxy.count()
                server = Server(root, s3_root=s3root, s3_endpoint=proxy.url)
                started_requests, started = proxy.count(), time.perf_counter()
                operations(server, ds)["query"](0)
                elapsed = (time.perf_counter() - started) * 1000
                record("first query after a restart", elapsed, proxy.count() - started_requests)
                rows.setdefault("server start", {})[f"{col} requests"] = started_requests - before
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    columns = sorted({c for r in rows.values() for c in r}, key=lambda c: (c != "local p50 ms", c))
    print(f"### {ds.name}, {a.count} calls per operation\n")
    print("| operation | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[c]:.3g}" if c in r else "" for c in columns) + " |")
    Path(a.json).write_text(json.dumps({"dataset": ds.name, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
