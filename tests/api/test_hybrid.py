"""Full-text and hybrid QueryVectors through boto3, checked against a brute-force BM25 + RRF here.

The installed botocore predates ``queryTexts``; the client loads botocore 1.44.8's s3vectors model
from ``.venv/botocore-models`` (``make install`` puts it there; this module fetches it once if not).
"""

from __future__ import annotations

import gzip
import math
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import snowballstemmer

from engine.context import RequestContext
from engine.refs import IndexRef
from tests.backends import Backend
from tests.server import RunningServer, running_server

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / ".venv" / "botocore-models"
BOTOCORE = "1.44.8"
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a fox is a small wild animal",
    "dogs and cats are common pets",
    "the lazy cat sleeps all day",
    "brown bears eat fish in the river",
    "rivers flow into the sea",
    "the sea is deep and blue",
    "blue whales are the largest animals",
    "a quick lunch before the meeting",
    "the meeting was long and boring",
    "boring movies make me sleep",
    "sleep is important for health",
    "health and fitness go together",
    "fitness trackers count steps",
    "steps lead up to the old castle",
    "the old castle has a ghost",
    "ghost stories scare small children",
    "children play in the park",
    "the park has a small pond with fish",
    "fish swim in the pond and the river",
    "quick brown foxes are rare",
    "a dog chased the fox across the park",
    "cats chase mice in the barn",
    "the barn is red and old",
    "red apples taste sweet",
    "sweet dreams after a long day",
    "day and night follow each other",
    "night owls hunt mice",
    "owls and foxes hunt at night",
    "the fox the fox the fox",
]
DIM = 4


def model_dir() -> Path:
    """The folder holding botocore 1.44.8's s3vectors model, fetched from PyPI if it is missing."""
    target = MODELS / "s3vectors" / "2025-07-15"
    if not (target / "service-2.json").exists():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", f"botocore=={BOTOCORE}", "--no-deps", "-q", "-d", tmp]
            if subprocess.run(cmd, capture_output=True, timeout=300).returncode != 0:
                pytest.skip(f"botocore {BOTOCORE} could not be downloaded for its s3vectors model")
            wheel = next(Path(tmp).glob("botocore-*.whl"))
            target.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheel) as z:
                for name in z.namelist():
                    if name.startswith("botocore/data/s3vectors/2025-07-15/"):
                        data = z.read(name)
                        base = name.rsplit("/", 1)[1]
                        if base.endswith(".gz"):
                            data, base = gzip.decompress(data), base[:-3]
                        (target / base).write_bytes(data)
    return MODELS


def client(server: RunningServer) -> Any:
    """boto3 with the s3vectors model that knows ``queryTexts`` and ``returnScores``."""
    import boto3

    session = boto3.Session()
    session._session.get_component("data_loader").search_paths.insert(0, str(model_dir()))
    return server.s3vectors(session=session)


def enhanced_text_index(s3v: Any, bucket: str) -> None:
    """Index "docs" in ``bucket`` (made ENHANCED first) with English full text on ``text``."""
    s3v.put_vector_bucket_default_index_mode(vectorBucketName=bucket, defaultIndexMode="ENHANCED")
    s3v.create_index(
        vectorBucketName=bucket,
        indexName="docs",
        dataType="float32",
        dimension=DIM,
        distanceMetric="euclidean",
        metadataConfiguration={"textSearchConfigurations": [{"metadataKey": "text", "language": "en"}]},
    )


# --- the brute force the server is checked against --------------------------------------------


def tokens(text: str) -> list[str]:
    """The analyzer's specification for "en": lowercase, letters and digits, English Snowball stems."""
    return list(snowballstemmer.stemmer("english").stemWords(re.findall(r"[^\W_]+", text.lower())))


def bm25(docs: dict[str, str], query: str) -> dict[str, float]:
    """Okapi BM25 (k1=1.2, b=0.75, Lucene's idf) over every document, scores of those matching."""
    toks = {k: tokens(v) for k, v in docs.items()}
    toks = {k: t for k, t in toks.items() if t}
    n, avgdl = len(toks), sum(len(t) for t in toks.values()) / len(toks)
    terms = list(dict.fromkeys(tokens(query)))
    df = {t: sum(1 for d in toks.values() if t in d) for t in terms}
    out = {}
    for k, d in toks.items():
        c, s = Counter(d), 0.0
        for t in terms:
            if c[t]:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * c[t] * 2.2 / (c[t] + 1.2 * (0.25 + 0.75 * len(d) / avgdl))
        if s > 0:
            out[k] = s
    return out


def ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda k: (-scores[k], k))


def nearest(vectors: dict[str, np.ndarray], q: np.ndarray, keep: set[str]) -> list[str]:
    d = {k: float(np.linalg.norm(v - q)) for k, v in vectors.items() if k in keep}
    return sorted(d, key=lambda k: (d[k], k))


def rrf(lists: list[list[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for lst in lists:
        for r, k in enumerate(lst, start=1):
            out[k] = out.get(k, 0.0) + 1 / (60 + r)
    return out


# --- the test ---------------------------------------------------------------------------------


def corpus() -> tuple[dict[str, str], dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    texts = {f"doc-{i:02d}": s for i, s in enumerate(SENTENCES)}
    vectors = {k: rng.normal(size=DIM).astype(np.float32) for k in texts}
    meta = {k: {"text": t, "genre": "odd" if i % 2 else "even", "n": i} for i, (k, t) in enumerate(texts.items())}
    return texts, vectors, meta


def put(s3v: Any, keys: list[str], vectors: dict[str, np.ndarray], meta: dict[str, dict[str, Any]]) -> None:
    body = [{"key": k, "data": {"float32": vectors[k].tolist()}, "metadata": meta[k]} for k in keys]
    s3v.put_vectors(vectorBucketName="hyb", indexName="docs", vectors=body)


def query(s3v: Any, top_k: int, **kw: Any) -> list[dict[str, Any]]:
    """Every page of a QueryVectors call."""
    out, token = [], None
    while True:
        page = s3v.query_vectors(
            vectorBucketName="hyb",
            indexName="docs",
            topK=top_k,
            returnScores=True,
            **kw,
            **({"nextToken": token} if token else {}),
        )
        out += page["vectors"]
        token = page.get("nextToken")
        if not token:
            return out


def check_all_modes(s3v: Any, texts: dict[str, str], vectors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    q = np.array([0.3, -0.2, 0.5, 0.1], np.float32)
    everyone = set(texts)
    for words in ("quick brown fox", "the fox", "castle ghost", "sleep", "nothing matches here"):
        expected = bm25(texts, words)
        got = query(s3v, 10, queryTexts=[{"metadataKey": "text", "text": words}])
        assert [v["key"] for v in got] == ranked(expected)[:10], words
        for v in got:
            assert v["scores"]["bm25Scores"][0]["score"] == pytest.approx(expected[v["key"]], rel=1e-5)
        # Hybrid: RRF of the top-10 vector list and the top-10 BM25 list.
        fused = rrf([nearest(vectors, q, everyone)[:10], ranked(expected)[:10]])
        got = query(s3v, 10, queryTexts=[{"metadataKey": "text", "text": words}], queryVector={"float32": q.tolist()})
        assert [v["key"] for v in got] == ranked(fused)[:10], words
        for v in got:
            assert v["scores"]["fused"] == pytest.approx(fused[v["key"]], rel=1e-5)
    got = query(s3v, 5, queryVector={"float32": q.tolist()}, returnDistance=True)
    assert [v["key"] for v in got] == nearest(vectors, q, everyone)[:5]
    # Filters apply to every mode; BM25 statistics still count every document.
    odd = {k for k in texts if meta[k]["genre"] == "odd"}
    expected = {k: s for k, s in bm25(texts, "the fox").items() if k in odd}
    flt = {"genre": "odd"}
    got = query(s3v, 10, queryTexts=[{"metadataKey": "text", "text": "the fox"}], filter=flt)
    assert [v["key"] for v in got] == ranked(expected)[:10]
    fused = rrf([nearest(vectors, q, odd)[:10], ranked(expected)[:10]])
    got = query(
        s3v,
        10,
        queryTexts=[{"metadataKey": "text", "text": "the fox"}],
        queryVector={"float32": q.tolist()},
        filter=flt,
    )
    assert [v["key"] for v in got] == ranked(fused)[:10]


def test_text_vector_and_hybrid_queries(backend: Backend) -> None:
    texts, vectors, meta = corpus()
    keys = list(texts)
    with running_server(backend.with_settings(run_materializers=False)) as server:
        s3v = client(server)
        s3v.create_vector_bucket(vectorBucketName="hyb")
        # (A CLASSIC bucket refusing full text is in tests/api/test_index_modes.py: since
        # 2026-09-30 a new bucket is ENHANCED, as on AWS.)
        enhanced_text_index(s3v, "hyb")
        # Nothing folds here: fresh writes are found by text at once, from the tail alone.
        put(s3v, keys, vectors, meta)
        check_all_modes(s3v, texts, vectors, meta)
        got = s3v.query_vectors(
            vectorBucketName="hyb", indexName="docs", topK=25, queryTexts=[{"metadataKey": "text", "text": "the"}]
        )
        assert "nextToken" not in got or len(got["vectors"]) <= 25
        with pytest.raises(s3v.exceptions.ValidationException):  # not a text search key
            s3v.query_vectors(
                vectorBucketName="hyb", indexName="docs", topK=3, queryTexts=[{"metadataKey": "genre", "text": "odd"}]
            )
    # Folded: the same answers from Lance's inverted index plus exact BM25 statistics; half the
    # corpus is then re-written so dataset and tail both hold rows.
    with running_server(backend) as server:
        s3v = client(server)
        _wait_folded(server, backend)
        status = s3v.get_index(vectorBucketName="hyb", indexName="docs")["index"]["metadataConfiguration"]
        assert status["textSearchConfigurations"] == [{"metadataKey": "text", "language": "en", "status": "ACTIVE"}]
        check_all_modes(s3v, texts, vectors, meta)
        # Paging: topK 25 over the 100-per-page limit is not reached; pages of one dialect page size.
        full = query(s3v, 25, queryTexts=[{"metadataKey": "text", "text": "the a fox"}])
        assert [v["key"] for v in full] == ranked(bm25(texts, "the a fox"))[:25]
        # Add and delete configurations.
        s3v.update_metadata_configuration(
            vectorBucketName="hyb", indexName="docs", add={"textSearchConfigurations": [{"metadataKey": "genre"}]}
        )
        got = query(s3v, 30, queryTexts=[{"metadataKey": "genre", "text": "odd"}])
        assert sorted(v["key"] for v in got) == sorted(k for k in texts if meta[k]["genre"] == "odd")
        _wait_active(s3v)
        with pytest.raises(s3v.exceptions.ConflictException):
            s3v.update_metadata_configuration(
                vectorBucketName="hyb", indexName="docs", add={"textSearchConfigurations": [{"metadataKey": "genre"}]}
            )
        s3v.update_metadata_configuration(
            vectorBucketName="hyb", indexName="docs", delete={"textSearchConfigurations": [{"metadataKey": "genre"}]}
        )
        with pytest.raises(s3v.exceptions.ValidationException):
            s3v.query_vectors(
                vectorBucketName="hyb", indexName="docs", topK=3, queryTexts=[{"metadataKey": "genre", "text": "odd"}]
            )
        check_all_modes(s3v, texts, vectors, meta)


def _wait_folded(server: RunningServer, backend: Backend) -> None:
    import time

    s3v = client(server)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cfg = s3v.get_index(vectorBucketName="hyb", indexName="docs")["index"]["metadataConfiguration"]
        if all(c["status"] == "ACTIVE" for c in cfg.get("textSearchConfigurations", [])):
            return
        time.sleep(0.1)
    raise AssertionError("the text index never became ACTIVE")


def _wait_active(s3v: Any) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cfg = s3v.get_index(vectorBucketName="hyb", indexName="docs")["index"]["metadataConfiguration"]
        if all(c["status"] == "ACTIVE" for c in cfg["textSearchConfigurations"]):
            return
        time.sleep(0.1)
    raise AssertionError("the text index never became ACTIVE")


CTX = RequestContext(principal="test", account="111122223333", source="test", request_id="r")


async def test_pitr_restore_keeps_text_search(backend: Backend) -> None:
    from engine.refs import BucketRef

    texts, vectors, meta = corpus()
    keys = list(texts)
    async with backend.engine() as eng:
        bucket = BucketRef("111122223333", "hyb")
        await eng.create_bucket(CTX, bucket)
        await eng.put_default_index_mode(CTX, bucket, "ENHANCED")
        src = IndexRef("111122223333", "hyb", "docs")
        await eng.create_index(CTX, src, dimension=DIM, metric="euclidean", text_search=[{"metadataKey": "text"}])
        seqs = await eng.put_vectors(
            CTX, src, keys[:20], np.stack([vectors[k] for k in keys[:20]]), [meta[k] for k in keys[:20]]
        )
        await eng.materialize(src)
        await eng.put_vectors(
            CTX, src, keys[20:], np.stack([vectors[k] for k in keys[20:]]), [meta[k] for k in keys[20:]]
        )
        await eng.materialize(src)
        back = IndexRef("111122223333", "hyb", "docs-back")
        restored = await eng.restore_index(CTX, src, back, to_seq=seqs[-1])
        assert restored.text_search == ({"metadataKey": "text"},)
        await eng.materialize(back)
        first = {k: texts[k] for k in keys[:20]}
        hits = await eng.search(back, None, [("text", "the fox")], 10)
        assert [h.key for h in hits] == ranked(bm25(first, "the fox"))[:10]
        live = await eng.live(back)
        assert set(live.text_status().values()) == {"ACTIVE"}


def test_text_results_page_with_next_token(backend: Backend) -> None:
    """150 matches of a text query come in two pages of the dialect's size (100), in BM25 order."""
    rng = np.random.default_rng(3)
    words = ["alpha", "beta", "gamma", "delta", "echo"]
    texts = {f"p{i:03d}": " ".join(["common", *rng.choice(words, size=int(rng.integers(1, 8)))]) for i in range(150)}
    with running_server(backend.with_settings(run_materializers=False)) as server:
        s3v = client(server)
        s3v.create_vector_bucket(vectorBucketName="pages")
        enhanced_text_index(s3v, "pages")
        s3v.put_vectors(
            vectorBucketName="pages",
            indexName="docs",
            vectors=[
                {"key": k, "data": {"float32": rng.standard_normal(DIM).tolist()}, "metadata": {"text": t}}
                for k, t in texts.items()
            ],
        )
        ask = {"vectorBucketName": "pages", "indexName": "docs", "topK": 150, "returnScores": True}
        texts_query = [{"metadataKey": "text", "text": "common alpha"}]
        first = s3v.query_vectors(**ask, queryTexts=texts_query)
        assert len(first["vectors"]) == 100 and first.get("nextToken")
        second = s3v.query_vectors(**ask, queryTexts=texts_query, nextToken=first["nextToken"])
        assert len(second["vectors"]) == 50 and not second.get("nextToken")
        keys = [v["key"] for v in first["vectors"] + second["vectors"]]
        assert keys == ranked(bm25(texts, "common alpha"))[:150]
        with pytest.raises(s3v.exceptions.ValidationException):  # a token binds its query
            s3v.query_vectors(**ask, queryTexts=[{"metadataKey": "text", "text": "beta"}], nextToken=first["nextToken"])


async def test_a_materializer_in_another_process_backfills_a_new_text_key(backend: Backend) -> None:
    """The API process adds a text key; the process that folds learns it from the log's marker
    (not from a request of its own) and backfills: the key turns ACTIVE on the folded dataset."""
    texts, vectors, meta = corpus()
    keys = list(texts)
    idle = backend.with_settings(run_materializers=False)
    async with idle.engine(seed=1) as api, idle.engine(seed=2) as folder:
        from engine.refs import BucketRef

        bucket = BucketRef("111122223333", "hyb")
        await api.create_bucket(CTX, bucket)
        await api.put_default_index_mode(CTX, bucket, "ENHANCED")
        ref = IndexRef("111122223333", "hyb", "docs")
        await api.create_index(CTX, ref, dimension=DIM, metric="euclidean")
        await api.put_vectors(CTX, ref, keys, np.stack([vectors[k] for k in keys]), [meta[k] for k in keys])
        await folder.materialize(ref)  # the folder opens the index before the change
        folding = folder.runtime.open_indexes()[(await folder.get_index(ref)).id]
        await api.update_text_search(CTX, ref, [{"metadataKey": "text", "language": "en"}])
        assert folding.index.text_search == ()  # it has not looked at the catalog since
        await folding.materializer.run_to_end()  # its background loop's fold: no catalog lookup
        from engine.dataset import text_config

        assert ("text", "en") in text_config(folding.materializer.dataset.snapshot())
        hits = await api.search(ref, None, [("text", "the fox")], 10)
        assert [h.key for h in hits] == ranked(bm25(texts, "the fox"))[:10]
