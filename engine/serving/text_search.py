"""Full-text search over one index: BM25 over the dataset (through its inverted index, or by a
scan while a key is being backfilled) and the tail, with statistics over every row.

The ranking itself (BM25 scores into a top k, RRF with vector hits) is ``engine/query/fusion.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from engine.dataset import scan_metadata, take, text_candidates, text_config, text_stats
from engine.log.payload import parse_metadata
from engine.query.filters import Filter
from engine.query.tail import Tail
from engine.query.text import Corpus, analyze, field_text, tag

TextHits = dict[str, tuple[float, str | None]]  # row key -> (BM25 score, metadata JSON)


@dataclass(frozen=True)
class TextQuery:
    """One ``queryTexts`` entry, analyzed: the key, its configured language, the distinct terms."""

    metadata_key: str
    language: str | None
    terms: list[str]


async def text_hits(
    snapshot: Callable[[], tuple[Any, Tail]], queries: list[TextQuery], flt: Filter | None
) -> dict[str, TextHits]:
    """BM25 per queried key: {metadataKey: {row key: (score, metadata)}} for the rows that pass
    the filter and hold a query term. Statistics count every row (dataset and tail, filter or
    not), so a score does not depend on the filter or on what is folded yet. ``snapshot`` gives
    the index's dataset snapshot and tail, taken together (no await in between) for each key."""
    out: dict[str, TextHits] = {}
    for q in queries:
        reader, tail = snapshot()
        touched, corpus = tail.touched(), Corpus(q.terms)
        passes: dict[str, bool] = {}
        for key, text, meta, raw in tail.text_rows(q.metadata_key):
            doc = analyze(text, q.language)
            if doc:
                corpus.add_stats(1, len(doc))
                corpus.add_candidate(key, doc, raw)
                passes[key] = flt is None or flt.predicate(meta)
        if q.terms:
            await anyio.to_thread.run_sync(_dataset_corpus, reader, q, touched, corpus)
        hits: TextHits = {}
        for key, (tf, length, raw) in corpus.candidates.items():
            ok = passes.get(key)
            if ok is None:
                ok = flt is None or flt.predicate(parse_metadata(raw) or {})
            if ok:
                hits[key] = (corpus.score(tf, length), raw)
        out[q.metadata_key] = hits
    return out


def _dataset_corpus(reader: Any, q: TextQuery, touched: set[str], corpus: Corpus) -> None:
    """Add the dataset's rows (those the tail does not decide) to a query's statistics and
    candidates: through the inverted index when the ``text`` column holds this key, else by
    analyzing every row's metadata (a key still being backfilled)."""
    if reader is None:
        return
    t = tag(q.metadata_key, q.language)
    if (q.metadata_key, q.language) in text_config(reader):
        docs, total = text_stats(reader, t)
        prefix = t + "_"
        if touched:
            for text in take(reader, sorted(touched), ["key", "text"]).column("text").to_pylist():
                n = sum(1 for tok in (text or "").split() if tok.startswith(prefix))
                docs, total = docs - (n > 0), total - n
        corpus.add_stats(docs, total)
        table = text_candidates(reader, [prefix + term for term in q.terms])
        columns = [table.column(c).to_pylist() for c in ("key", "text", "metadata")]
        for key, text, raw in zip(*columns, strict=True):
            if key not in touched:
                corpus.add_candidate(key, [tok[len(prefix) :] for tok in text.split() if tok.startswith(prefix)], raw)
        return
    table = scan_metadata(reader)
    for key, raw in zip(table.column("key").to_pylist(), table.column("metadata").to_pylist(), strict=True):
        if key in touched or not raw:
            continue
        text = field_text((parse_metadata(raw) or {}).get(q.metadata_key))
        doc = analyze(text, q.language) if text is not None else []
        if doc:
            corpus.add_stats(1, len(doc))
            corpus.add_candidate(key, doc, raw)
