"""Load: ingest from several client processes, queries from one client and from eight threads."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tools.bench.data import Dataset
from tools.bench.server import Server, server_ms

BATCH = 500


def _boto3_worker(url: str, bucket: str, index: str, base: Any, buckets: Any, rows: list[int], out: Any) -> None:
    """One boto3 client putting its rows in 500-vector batches."""
    client = Server.client_for(url, retries=10)
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        vectors = [
            {"key": f"v{i}", "data": {"float32": base[i].tolist()}, "metadata": {"b": int(buckets[i])}} for i in chunk
        ]
        client.put_vectors(vectorBucketName=bucket, indexName=index, vectors=vectors)
    out.put(len(rows))


def ingest(
    server: Server, data: Dataset, bucket: str, index: str, rows: range, clients: int, *, lean: bool = False
) -> float:
    """Put ``rows`` in 500-vector batches from ``clients`` processes, boto3 or (``lean``)
    ``_lean_worker``; returns vectors per second."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    parts = [list(rows)[i::clients] for i in range(clients)]
    worker = _lean_worker if lean else _boto3_worker
    procs = [
        ctx.Process(target=worker, args=(server.url, bucket, index, data.base, data.buckets, part, out))
        for part in parts
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    done = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return done / (time.perf_counter() - started)


def query_latency(
    server: Server,
    data: Dataset,
    bucket: str,
    index: str,
    k: int,
    flt: dict[str, Any] | None,
    count: int,
    peer: Callable[[np.ndarray], object] | None = None,
) -> tuple[list[list[int]], list[float], list[float], list[float]]:
    """One client, one query at a time: (results, client ms, server ms, peer ms). A ``peer`` (raw
    pylance) answers each query right after the server does, both warmed first: on a noisy
    machine the two then share every slow moment, and their ratio holds."""
    client = server.client()
    kw: dict[str, Any] = {"filter": flt} if flt else {}

    def ask(q: np.ndarray) -> Any:
        return client.query_vectors(
            vectorBucketName=bucket, indexName=index, topK=k, queryVector={"float32": q.tolist()}, **kw
        )

    # Warm: every query once first (both), as a server that has been answering traffic is.
    for q in data.queries[:count]:
        ask(q)
        if peer is not None:
            peer(q)
    results, client_ms, inside_ms, peer_ms = [], [], [], []
    for q in data.queries[:count]:
        started = time.perf_counter()
        r = ask(q)
        client_ms.append((time.perf_counter() - started) * 1000)
        inside_ms.append(server_ms(r))
        results.append([int(v["key"][1:]) for v in r["vectors"]])
        if peer is not None:
            started = time.perf_counter()
            peer(q)
            peer_ms.append((time.perf_counter() - started) * 1000)
    return results, client_ms, inside_ms, peer_ms


def lookup_latency(server: Server, data: Dataset, bucket: str, index: str, count: int) -> dict[str, float]:
    """One client: p50 of a one-key GetVectors (with data and metadata; client and server ms) and
    of GetIndex (what a request costs apart from its work), each request warmed once first."""
    client = server.client()
    rng = np.random.default_rng(11)
    picks = [int(i) for i in rng.integers(0, data.n, count)]

    def get(i: int) -> Any:
        return client.get_vectors(
            vectorBucketName=bucket, indexName=index, keys=[f"v{i}"], returnData=True, returnMetadata=True
        )

    def describe(_: int) -> Any:
        return client.get_index(vectorBucketName=bucket, indexName=index)

    out: dict[str, float] = {}
    for name, call in (("get_one", get), ("get_index", describe)):
        for i in picks:
            call(i)
        client_ms, inside_ms = [], []
        for i in picks:
            started = time.perf_counter()
            r = call(i)
            client_ms.append((time.perf_counter() - started) * 1000)
            inside_ms.append(server_ms(r))
            if name == "get_one" and [v["key"] for v in r["vectors"]] != [f"v{i}"]:
                raise AssertionError(f"GetVectors of v{i} answered {r['vectors']}")
        out[f"{name}_p50_ms"] = float(np.median(client_ms))
        out[f"server_{name}_p50_ms"] = float(np.median(inside_ms))
    return out


def query_throughput(server: Server, data: Dataset, bucket: str, index: str, threads: int, seconds: float) -> float:
    """Queries per second from ``threads`` concurrent clients."""
    deadline = time.perf_counter() + seconds
    queries = [q.tolist() for q in data.queries]

    def worker(n: int) -> int:
        client, done = server.client(), 0
        while time.perf_counter() < deadline:
            client.query_vectors(
                vectorBucketName=bucket,
                indexName=index,
                topK=10,
                queryVector={"float32": queries[(n + done * threads) % len(queries)]},
            )
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(worker, range(threads)))
    return total / (time.perf_counter() - started)


def read_your_writes(server: Server, data: Dataset, bucket: str, index: str, trials: int) -> list[int]:
    """Put a fresh vector, then query for it at once: how many retries until it shows (must be 0)."""
    client = server.client()
    retries = []
    for t in range(trials):
        v = (data.queries[t % len(data.queries)] + np.float32(1e-3 * (t + 1))).tolist()
        key = f"ryw-{t}"
        client.put_vectors(vectorBucketName=bucket, indexName=index, vectors=[{"key": key, "data": {"float32": v}}])
        n = 0
        while key not in [
            h["key"]
            for h in client.query_vectors(vectorBucketName=bucket, indexName=index, topK=3, queryVector={"float32": v})[
                "vectors"
            ]
        ]:
            n += 1
            if n > 100:
                break
        retries.append(n)
    return retries


def _lean_worker(url: str, bucket: str, index: str, base: Any, buckets: Any, rows: list[int], out: Any) -> None:
    """One lean client: bodies by orjson straight from numpy, SigV4 signed by botocore, sent over
    one keep-alive connection — a client whose own cost does not hide the server's, unlike
    boto3's per-float validation and JSON encoding (~100 ms of client CPU a put)."""
    import http.client
    from urllib.parse import urlsplit

    import orjson
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from api.config import DEV_ACCESS_KEY, DEV_SECRET_KEY

    signer = SigV4Auth(Credentials(DEV_ACCESS_KEY, DEV_SECRET_KEY), "s3vectors", "us-east-1")
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=120)
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        vectors = [{"key": f"v{i}", "data": {"float32": base[i]}, "metadata": {"b": int(buckets[i])}} for i in chunk]
        payload = orjson.dumps(
            {"vectorBucketName": bucket, "indexName": index, "vectors": vectors}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        for _attempt in range(10):
            headers = {"Content-Type": "application/json"}
            req = AWSRequest(method="POST", url=f"{url}/PutVectors", data=payload, headers=headers)
            signer.add_auth(req)
            conn.request("POST", "/PutVectors", body=payload, headers=dict(req.headers.items()))
            reply = conn.getresponse()
            reply.read()
            if reply.status == 200:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"PutVectors kept failing: HTTP {reply.status}")
    out.put(len(rows))


def signed_post(server: Server, operation: str, body: dict[str, object]) -> dict[str, object]:
    """One signed JSON call (an S3 Vectors operation, or an admin action ``_vecledger/...``) for
    what the installed boto3 model lacks: ``queryTexts``, index modes, vecledger's own endpoints.
    A refusal raises (urllib's HTTPError)."""
    import urllib.request

    import orjson
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from api.config import DEV_ACCESS_KEY, DEV_SECRET_KEY

    payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    req = AWSRequest(
        method="POST", url=f"{server.url}/{operation}", data=payload, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(DEV_ACCESS_KEY, DEV_SECRET_KEY), "s3vectors", "us-east-1").add_auth(req)
    http = urllib.request.Request(req.url, data=payload, headers=dict(req.headers.items()), method="POST")
    with urllib.request.urlopen(http, timeout=120) as r:
        raw = r.read()
    return dict(orjson.loads(raw)) if raw else {}


WORDS = [
    "vector",
    "bucket",
    "index",
    "query",
    "search",
    "storage",
    "object",
    "log",
    "event",
    "replay",
    "restore",
    "audit",
    "lance",
    "cluster",
    "partition",
    "recall",
    "latency",
    "memory",
    "shard",
    "lease",
    "fence",
    "commit",
    "fold",
    "snapshot",
    "metadata",
    "filter",
    "token",
    "text",
    "hybrid",
    "fusion",
    "rank",
    "score",
    "engine",
    "server",
    "client",
    "batch",
    "stream",
    "durable",
    "crash",
    "fault",
    "signal",
]


def hybrid_latency(server: Server, data: Dataset, rows: int, queries: int) -> dict[str, float]:
    """Text-only and hybrid (text + vector, RRF) QueryVectors latency on an ENHANCED index of
    ``rows`` vectors with a short synthetic text each; p50 in ms, measured around the HTTP call."""
    rng = np.random.default_rng(5)
    bucket, index = "bench-text", "docs"
    signed_post(server, "CreateVectorBucket", {"vectorBucketName": bucket})
    signed_post(server, "PutVectorBucketDefaultIndexMode", {"vectorBucketName": bucket, "defaultIndexMode": "ENHANCED"})
    signed_post(
        server,
        "CreateIndex",
        {
            "vectorBucketName": bucket,
            "indexName": index,
            "dataType": "float32",
            "dimension": data.d,
            "distanceMetric": "euclidean",
            "metadataConfiguration": {"textSearchConfigurations": [{"metadataKey": "text", "language": "en"}]},
        },
    )
    for start in range(0, rows, BATCH):
        vectors = [
            {
                "key": f"d{i}",
                "data": {"float32": data.base[i % data.n]},
                "metadata": {"text": " ".join(rng.choice(WORDS, size=12))},
            }
            for i in range(start, min(rows, start + BATCH))
        ]
        signed_post(server, "PutVectors", {"vectorBucketName": bucket, "indexName": index, "vectors": vectors})
    out: dict[str, float] = {}
    for mode in ("text", "hybrid"):
        ms = []
        for i in range(queries):
            body: dict[str, object] = {
                "vectorBucketName": bucket,
                "indexName": index,
                "topK": 10,
                "queryTexts": [{"metadataKey": "text", "text": " ".join(rng.choice(WORDS, size=3))}],
            }
            if mode == "hybrid":
                body["queryVector"] = {"float32": data.queries[i % len(data.queries)]}
            started = time.perf_counter()
            signed_post(server, "QueryVectors", body)
            ms.append((time.perf_counter() - started) * 1000)
        out[f"{mode}_query_p50_ms"] = float(np.percentile(ms, 50))
    return out
