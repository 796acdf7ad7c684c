"""python -m tools.soak: load an index, edit it for a long time, and watch what it costs.

A server on a fresh local root takes ``--vectors`` rows, then one client overwrites ``--batch``
random existing keys per PutVectors (and deletes a few every ``--delete-every`` calls) for
``--minutes``. Every ``--sample`` seconds it records the root's bytes and files, the index's Lance
versions, the server's RSS and the query p50 (boto3, 30 queries); at three moments inside the
churn it keeps the exact state the client wrote, and at the end restores the index to those
times and compares every key and vector. Prints the samples as a markdown table and writes them
as JSON and as a PNG plot (matplotlib, from the bench extra). Nothing is asserted here: the
targets are in docs/performance.md; ``--quick`` is the CI smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import keys
from engine.dataset import version_times
from tools.bench.clients import signed_post
from tools.bench.server import Server
from tools.crash.procs import moto_server
from tools.soak.measure import RootView

BUCKET, INDEX = "soak", "edited"


def rss(server: Server) -> int:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def lag(server: Server) -> int:
    status = signed_post(server, "_vecledger/index-status", {"vectorBucketName": BUCKET, "indexName": INDEX})
    return int(status["lag"])  # type: ignore[call-overload]


def settle(server: Server, quiet: float, timeout: float = 600) -> None:
    """Until everything is folded, then ``quiet`` seconds more (quiet maintenance and pruning)."""
    deadline = time.monotonic() + timeout
    while lag(server) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(quiet)


def query_p50(client: Any, d: int, rng: np.random.Generator, n: int = 30) -> float:
    ms = []
    for _ in range(n):
        q = rng.standard_normal(d).astype(np.float32).tolist()
        started = time.perf_counter()
        client.query_vectors(vectorBucketName=BUCKET, indexName=INDEX, queryVector={"float32": q}, topK=10)
        ms.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(ms, 50))


def sample(
    server: Server, view: RootView, client: Any, d: int, rng: np.random.Generator, started: float, phase: str
) -> dict[str, Any]:
    root_bytes, files = view.sizes()
    ids = view.index_ids()
    return {
        "t": round(time.monotonic() - started, 1),
        "phase": phase,
        "disk_mb": round(root_bytes / 1e6, 1),
        "files": files,
        "log_mb": round(view.sizes(keys.index_log(*ids))[0] / 1e6, 1),
        "lance_versions": len(version_times(view.lance(*ids))),
        "rss_mb": round(rss(server) / 1e6, 1),
        "query_p50_ms": round(query_p50(client, d, rng), 2),
    }


def put(client: Any, model: dict[str, np.ndarray], keys_: list[str], vectors: np.ndarray) -> None:
    client.put_vectors(
        vectorBucketName=BUCKET,
        indexName=INDEX,
        vectors=[{"key": k, "data": {"float32": v.tolist()}} for k, v in zip(keys_, vectors, strict=True)],
    )
    model.update(zip(keys_, vectors, strict=True))


def keep(kept: list[tuple[float, dict[str, bytes]]], model: dict[str, np.ndarray]) -> None:
    """Remember the state the client wrote, and when (a restore by that time must give it back)."""
    time.sleep(0.05)
    kept.append((time.time(), {k: v.tobytes() for k, v in model.items()}))
    time.sleep(0.05)


def restored_state(client: Any, index: str) -> dict[str, bytes]:
    out, token = {}, None
    while True:
        page = client.list_vectors(
            vectorBucketName=BUCKET,
            indexName=index,
            returnData=True,
            maxResults=1000,
            **({"nextToken": token} if token else {}),
        )
        out |= {v["key"]: np.asarray(v["data"]["float32"], np.float32).tobytes() for v in page["vectors"]}
        token = page.get("nextToken")
        if not token:
            return out


def plot(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(5, 1, figsize=(8, 11), sharex=True)
    for ax, (field, label) in zip(
        axes,
        [
            ("disk_mb", "root (MB)"),
            ("files", "files"),
            ("lance_versions", "Lance versions"),
            ("rss_mb", "RSS (MB)"),
            ("query_p50_ms", "query p50 (ms)"),
        ],
        strict=True,
    ):
        ax.plot(t, [s[field] for s in samples], marker=".")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    fig.suptitle("vecledger soak: an index edited continuously")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n")[0])
    ap.add_argument("--vectors", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=100, help="existing keys overwritten per PutVectors")
    ap.add_argument("--delete-every", type=int, default=10, help="a small DeleteVectors every N puts")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--quick", action="store_true", help="the CI smoke run: 1,500 x 16, 20 s")
    ap.add_argument("--json", type=Path, default=Path("soak-results.json"))
    ap.add_argument("--png", type=Path, default=Path("soak.png"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE", help="a server setting (repeatable)"
    )
    ap.add_argument("--backend", choices=("local", "s3"), default="local", help="s3: an in-process moto server")
    ap.add_argument("--s3-endpoint", help="with --backend s3: this endpoint instead of moto")
    a = ap.parse_args(argv)
    if a.quick:
        a.vectors, a.dim, a.minutes, a.sample, a.batch = 1_500, 16, 20 / 60, 5.0, 50
    with contextlib.ExitStack() as stack:
        if a.backend == "s3":
            endpoint = a.s3_endpoint or stack.enter_context(moto_server())
            return soak(a, RootView.s3(endpoint, "soak", "root"))
        return soak(a, None)


def soak(a: argparse.Namespace, view: RootView | None) -> int:
    work = Path(tempfile.mkdtemp(prefix="vecledger-soak-"))
    rng = np.random.default_rng(7)
    pick = random.Random(7)
    env = {"VECLEDGER_BUILD_THRESHOLD": "1000"} if a.quick else {}
    env |= dict(item.split("=", 1) for item in a.server_env)
    if view is None:
        view = RootView(local=work / "root")
        server = Server(work / "root", env=env)
    else:
        server = Server(work / "root", env=env, s3_root=view.root, s3_endpoint=view.endpoint)
    samples: list[dict[str, Any]] = []
    try:
        client = server.client()
        client.create_vector_bucket(vectorBucketName=BUCKET)
        client.create_index(
            vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=a.dim, distanceMetric="euclidean"
        )
        model: dict[str, np.ndarray] = {}
        names = [f"doc-{i:07d}" for i in range(a.vectors)]
        for i in range(0, a.vectors, 500):
            put(
                client,
                model,
                names[i : i + 500],
                rng.standard_normal((len(names[i : i + 500]), a.dim)).astype(np.float32),
            )
        started = time.monotonic()
        settle(server, quiet=5)
        samples.append(sample(server, view, client, a.dim, rng, started, "loaded"))
        print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
        end = time.monotonic() + a.minutes * 60
        marks = [started + (end - started) * f for f in (0.3, 0.6, 0.9)]
        kept: list[tuple[float, dict[str, bytes]]] = []
        next_sample, calls = time.monotonic() + a.sample, 0
        while time.monotonic() < end:
            chosen = pick.sample(names, a.batch)
            put(client, model, chosen, rng.standard_normal((a.batch, a.dim)).astype(np.float32))
            calls += 1
            if calls % a.delete_every == 0:
                gone = pick.sample(sorted(model), 3)
                client.delete_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=gone)
                for k in gone:
                    model.pop(k, None)
            if marks and time.monotonic() >= marks[0]:
                marks.pop(0)
                keep(kept, model)
            if time.monotonic() >= next_sample:
                samples.append(sample(server, view, client, a.dim, rng, started, "churn"))
                print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                next_sample = time.monotonic() + a.sample
        for _ in marks:  # a slow store (S3) can end the churn past a mark: keep it now
            keep(kept, model)
        settle(server, quiet=8)
        samples.append(sample(server, view, client, a.dim, rng, started, "settled"))
        restores = []
        for n, (when, want) in enumerate(kept):
            into = f"back-{n}"
            iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when * 1000) % 1000:03d}Z"
            t0 = time.perf_counter()
            signed_post(
                server,
                "_vecledger/restore",
                {"vectorBucketName": BUCKET, "indexName": INDEX, "toTime": iso, "intoIndexName": into},
            )
            seconds = time.perf_counter() - t0
            got = restored_state(client, into)
            restores.append({"at": iso, "exact": got == want, "keys": len(want), "seconds": round(seconds, 2)})
        result = {
            "args": vars(a) | {"json": str(a.json), "png": str(a.png)},
            "puts": calls,
            "samples": samples,
            "restores": restores,
        }
        a.json.write_text(json.dumps(result, indent=2))
        plot(samples, a.png)
        cols = list(samples[0])
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for s in samples:
            print("| " + " | ".join(str(s[c]) for c in cols) + " |")
        print(
            f"\n{calls} PutVectors of {a.batch} keys; restores: "
            + ", ".join(
                f"{r['at']} {'exact' if r['exact'] else 'DIFFERENT'} ({r['keys']} keys, {r['seconds']} s)"
                for r in restores
            )
        )
        return 0 if all(r["exact"] for r in restores) else 1
    finally:
        server.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
