"""python -m tools.bench.prefix: ``$startsWith`` queries with and without the prefix index.

An in-process engine on a local folder takes ``--rows`` vectors whose metadata ``path`` is
``docs/<category>/<n>.md``, a category being a random word of 4-12 letters (``--categories`` of
them). It folds them and times QueryVectors with three ``$startsWith`` filters: one category
(``word``: 1 / categories of the rows), the files of one category whose number starts with 7
(``digit``: the NGRAM index, of trigrams of letters and digits, learns little from ``7``), and a
broad one (``docs/`` and a letter: ~1/26 of the rows). Then it lets the first query ask for the
NGRAM index, builds it and times the same queries again; raw pylance with the same filters on the
same dataset (a scan of the ``strings`` column) is the peer, query by query. Every answer is
checked against the rows written. Prints one table; nothing is asserted (targets: docs/performance.md).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from engine import BucketRef, Engine, IndexRef
from engine.context import RequestContext
from engine.settings import Settings

ACCOUNT = "111122223333"
REF = IndexRef(ACCOUNT, "prefix", "docs")


def _p50(samples: list[float]) -> float:
    return round(statistics.median(samples), 2)


async def _timed(eng: Engine, vectors: np.ndarray, flt: dict[str, Any], want: set[str], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        hits = await eng.query_vectors(REF, vectors[i], 10, filter=flt)
        out.append((time.perf_counter() - t0) * 1000)
        if not {h.key for h in hits} <= want or len(hits) != min(10, len(want)):
            raise SystemExit(f"wrong answer for {flt}")
    return out


def _raw(ds: Any, vectors: np.ndarray, prefix: str, n: int) -> list[float]:
    sql = f"starts_with(json_get_string(strings, 'path'), '{prefix}')"
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        ds.to_table(nearest={"column": "vector", "q": vectors[i], "k": 10}, columns=["key"], filter=sql, prefilter=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def run(a: argparse.Namespace, root: Path) -> dict[str, float]:
    rng, pick = np.random.default_rng(1), random.Random(1)
    vectors = rng.standard_normal((a.rows, a.dim)).astype(np.float32)
    words = [
        "".join(pick.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(pick.randint(4, 12)))
        for _ in range(a.categories)
    ]
    cats = [words[pick.randrange(a.categories)] for _ in range(a.rows)]
    ctx = RequestContext.system(ACCOUNT)
    settings = Settings(run_materializers=False)
    fig: dict[str, float] = {"rows": a.rows}
    async with Engine.open(str(root), settings) as eng:
        await eng.create_bucket(ctx, BucketRef(ACCOUNT, "prefix"))
        await eng.create_index(ctx, REF, dimension=a.dim, metric="euclidean")
        for s in range(0, a.rows, 500):
            metas = [{"path": f"docs/{cats[i]}/{i}.md"} for i in range(s, min(a.rows, s + 500))]
            await eng.put_vectors(ctx, REF, [f"k{i}" for i in range(s, s + len(metas))], vectors[s : s + 500], metas)
        while await eng.materialize(REF):
            pass
        live = await eng.live(REF)
        paths = [f"docs/{cats[i]}/{i}.md" for i in range(a.rows)]
        prefixes = {"word": f"docs/{cats[0]}/", "digit": f"docs/{cats[0]}/7", "broad": f"docs/{cats[0][0]}"}
        want = {p: {f"k{i}" for i, path in enumerate(paths) if path.startswith(p)} for p in prefixes.values()}
        for name, p in prefixes.items():
            fig[f"{name} share_pct"] = round(100 * len(want[p]) / a.rows, 3)
        for label in ("no_index", "prefix_index"):
            for name, p in prefixes.items():
                ms = await _timed(eng, vectors, {"path": {"$startsWith": p}}, want[p], a.queries)
                fig[f"{label} {name} p50_ms"] = _p50(ms)
                fig[f"{label} {name} raw_scan_p50_ms"] = _p50(_raw(live.reader, vectors, p, a.queries))
                fig[f"{label} {name} vs raw_scan"] = round(
                    fig[f"{label} {name} p50_ms"] / fig[f"{label} {name} raw_scan_p50_ms"], 2
                )
            if label == "no_index":
                t0 = time.perf_counter()
                await live.materializer.run_once()  # the queries asked for the index: built now
                fig["prefix_index_build_s"] = round(time.perf_counter() - t0, 2)
                if "prefix_index" not in live.materializer.last_maintenance:
                    raise SystemExit("the prefix index was not built")
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench.prefix", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--categories", type=int, default=2_000)
    ap.add_argument("--queries", type=int, default=50)
    a = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="vecledger-prefix-"))
    try:
        fig = anyio.run(run, a, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| measure | value |\n|---|---|")
    for k, v in fig.items():
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
