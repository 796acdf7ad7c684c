"""Hybrid search: how BM25 rankings and the vector ranking become one answer.

The analyzer and the BM25 arithmetic live in ``engine/query/text.py`` (the tail and the Lance
adapter both need them); this module, beside the engine facade, only fuses: ``queryTexts`` alone
rank by the sum of their BM25 scores (one score per text key, like a multi-field BM25 query), and
with a ``queryVector`` the two rankings (vector, text) are fused with Reciprocal Rank Fusion, each
list cut at ``topK`` first (docs/notes/0002-hybrid-search.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

RRF_K = 60  # Reciprocal Rank Fusion constant (Cormack et al. 2009); AWS documents none


@dataclass
class Scored:
    """One result row with every score the API can return."""

    key: str
    metadata: str | None
    fused: float | None = None
    distance: float | None = None
    bm25: dict[str, float] = field(default_factory=dict)  # metadataKey -> score


def rank(scores: Mapping[str, float]) -> list[str]:
    """Keys by score, best first; ties by key so that pages and tests are deterministic."""
    return sorted(scores, key=lambda k: (-scores[k], k))


def rrf(lists: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal Rank Fusion: each list adds 1/(k + rank) (rank from 1) to the keys it holds."""
    fused: dict[str, float] = {}
    for keys in lists:
        for r, key in enumerate(keys, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + r)
    return fused


def text_ranking(per_key: Mapping[str, Mapping[str, tuple[float, str | None]]], top_k: int) -> list[Scored]:
    """``queryTexts`` alone: rows by the sum of their per-key BM25 scores, best ``top_k``.

    ``per_key`` maps each queried metadata key to {row key: (score, metadata)} for the rows that
    pass the filter and hold at least one query term.
    """
    rows: dict[str, Scored] = {}
    for mkey, hits in per_key.items():
        for key, (score, meta) in hits.items():
            row = rows.setdefault(key, Scored(key, meta))
            row.bm25[mkey] = score
    total = {k: sum(r.bm25.values()) for k, r in rows.items()}
    out = []
    for key in rank(total)[:top_k]:
        rows[key].fused = total[key]
        out.append(rows[key])
    return out


def hybrid(vector_hits: list[Scored], text_hits: list[Scored], top_k: int, k: int = RRF_K) -> list[Scored]:
    """Fuse the vector ranking (nearest first) and the text ranking (best first) with RRF.

    Each input is already cut at its depth, and the best ``top_k`` fused rows are kept (the same
    number unless OSS's rrf retriever asks otherwise); a row found by one side only keeps the other side's
    score unset (its distance or BM25 is not computed: it was not retrieved there).
    """
    fused = rrf([[h.key for h in vector_hits], [h.key for h in text_hits]], k)
    rows: dict[str, Scored] = {}
    for h in vector_hits:
        rows[h.key] = Scored(h.key, h.metadata, distance=h.distance)
    for h in text_hits:
        row = rows.setdefault(h.key, Scored(h.key, h.metadata))
        row.bm25 = dict(h.bm25)
    out = []
    for key in rank(fused)[:top_k]:
        rows[key].fused = fused[key]
        out.append(rows[key])
    return out
