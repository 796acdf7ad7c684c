"""The un-materialized tail of one index, in memory: every put and delete after the checkpoint.

Reads merge it with the Lance dataset so that a write is visible to the very next read, whatever the
materializer's lag. The same structure folds events for the materializer (``final_rows``), so the
tail and the dataset cannot disagree about what a sequence of puts and deletes means: last write
by seq wins, a delete removes the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from engine.errors import CorruptEvent
from engine.log.event import VECTORS_DELETED, VECTORS_PUT, EventObject
from engine.log.payload import VectorBatch, Vectors, decode_vectors
from engine.query.distance import distances
from engine.query.filters import Predicate
from engine.query.text import field_text


@dataclass
class _Chunk:
    seq: int
    batch: VectorBatch
    live: np.ndarray  # bool per row: is this row the latest write of its key?
    parsed: list[dict[str, Any]] | None = None

    def metadata_dicts(self) -> list[dict[str, Any]]:
        if self.parsed is None:
            self.parsed = [json.loads(m) if m else {} for m in self.batch.metadata]
        return self.parsed


@dataclass(frozen=True)
class TailRow:
    key: str
    vector: Vectors
    metadata: str | None


@dataclass
class Tail:
    """Events with ``base_seq < seq <= seq`` folded in memory."""

    metric: str
    base_seq: int = -1
    seq: int = -1
    _chunks: list[_Chunk] = field(default_factory=list)
    _deletes: list[tuple[int, list[str]]] = field(default_factory=list)
    # key -> (chunk, row) of its latest put, or None if its latest op is a delete
    _latest: dict[str, tuple[_Chunk, int] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seq = max(self.seq, self.base_seq)

    def __len__(self) -> int:
        return len(self._latest)

    def apply(self, obj: EventObject, known: Mapping[str, VectorBatch] | None = None) -> None:
        """Fold one event object. ``known``: batches by event id that this process encoded into
        those events itself (its own appends), so they need not be decoded back."""
        if obj.seq <= self.seq:
            return  # already folded: applying twice is a no-op
        for ev in obj.events:
            if ev.type == VECTORS_PUT:
                batch = known.get(ev.id) if known else None
                self._put(obj.seq, batch if batch is not None else decode_vectors(f"seq {obj.seq}", ev.payload))
            elif ev.type == VECTORS_DELETED:
                try:
                    keys = list(ev.json()["keys"])
                except (ValueError, KeyError, TypeError):
                    raise CorruptEvent(f"seq {obj.seq}", "bad delete payload") from None
                self._delete(obj.seq, keys)
        self.seq = obj.seq

    def _supersede(self, key: str) -> None:
        prev = self._latest.get(key)
        if prev is not None:
            prev[0].live[prev[1]] = False

    def _put(self, seq: int, batch: VectorBatch) -> None:
        chunk = _Chunk(seq, batch, np.ones(len(batch), dtype=bool))
        keys = batch.keys
        # Most puts bring keys the tail has not seen: find the others with one set operation, and
        # index the batch with one dict.update (a Python loop per row held the event loop).
        distinct = set(keys)
        if len(distinct) != len(keys) or not self._latest.keys().isdisjoint(distinct):
            for row, key in enumerate(keys):
                self._supersede(key)
                self._latest[key] = (chunk, row)
        else:
            self._latest.update(zip(keys, zip(repeat(chunk), range(len(keys)), strict=False), strict=True))
        self._chunks.append(chunk)

    def _delete(self, seq: int, keys: list[str]) -> None:
        for key in keys:
            self._supersede(key)
            self._latest[key] = None
        self._deletes.append((seq, keys))

    def trim(self, upto: int) -> None:
        """Forget events with seq <= ``upto`` (they are in the dataset now)."""
        if upto <= self.base_seq:
            return
        chunks = [c for c in self._chunks if c.seq > upto]
        deletes = [d for d in self._deletes if d[0] > upto]
        self._chunks, self._deletes, self._latest = [], [], {}
        self.base_seq = upto
        self.seq = max(self.seq, upto)
        ops: list[tuple[int, int, Any]] = [(c.seq, 0, c.batch) for c in chunks]
        ops += [(s, 1, keys) for s, keys in deletes]
        for seq, kind, arg in sorted(ops, key=lambda o: (o[0], o[1])):
            if kind == 0:
                self._put(seq, arg)
            else:
                self._delete(seq, arg)

    # --- reads ----------------------------------------------------------------------------

    def touched(self) -> set[str]:
        return set(self._latest)

    def __contains__(self, key: object) -> bool:
        """Whether the tail decides this key (a put or a delete after the checkpoint)."""
        return key in self._latest

    def lookup(self, key: str) -> TailRow | None:
        """The key's latest row in the tail; None if deleted there or never seen (see ``in``)."""
        loc = self._latest.get(key)
        if loc is None:
            return None
        chunk, row = loc
        return TailRow(key, chunk.batch.vectors[row], chunk.batch.metadata[row])

    def live_rows(self) -> Iterator[TailRow]:
        for chunk in self._chunks:
            for row in np.flatnonzero(chunk.live):
                b = chunk.batch
                yield TailRow(b.keys[row], b.vectors[row], b.metadata[row])

    def live_batch(self, dimension: int) -> VectorBatch:
        """Every live row at once, as columns (the materializer's upsert)."""
        keys: list[str] = []
        metadata: list[str | None] = []
        parts = []
        for chunk in self._chunks:
            rows = np.flatnonzero(chunk.live)
            if len(rows) == len(chunk.batch):
                keys += chunk.batch.keys
                metadata += chunk.batch.metadata
                parts.append(chunk.batch.vectors)
            elif len(rows):
                keys += [chunk.batch.keys[r] for r in rows]
                metadata += [chunk.batch.metadata[r] for r in rows]
                parts.append(chunk.batch.vectors[rows])
        vectors = np.concatenate(parts) if parts else np.zeros((0, dimension), np.float32)
        return VectorBatch(keys, vectors, metadata)

    def deleted_keys(self) -> list[str]:
        return [k for k, v in self._latest.items() if v is None]

    def search(self, query: Vectors, k: int, predicate: Predicate | None) -> list[tuple[str, float, str | None]]:
        """Exact top-``k`` over the live rows, with distances on the API's scale."""
        if k <= 0:
            return []
        found: list[tuple[np.ndarray, _Chunk, np.ndarray]] = []
        for chunk in self._chunks:
            rows = np.flatnonzero(chunk.live)
            if predicate is not None and len(rows):
                metas = chunk.metadata_dicts()
                rows = rows[[predicate(metas[r]) for r in rows]]
            if len(rows):
                found.append((distances(chunk.batch.vectors[rows], query, self.metric), chunk, rows))
        if not found:
            return []
        dist = np.concatenate([f[0] for f in found])
        owners = [(c, r) for _, c, rows in found for r in rows]
        top = np.argsort(dist, kind="stable")[:k] if len(dist) <= k else np.argpartition(dist, k - 1)[:k]
        top = top[np.argsort(dist[top], kind="stable")]
        out = []
        for i in top:
            chunk, row = owners[i]
            out.append((chunk.batch.keys[row], float(dist[i]), chunk.batch.metadata[row]))
        return out

    def text_rows(self, metadata_key: str) -> Iterator[tuple[str, str, dict[str, Any], str | None]]:
        """(key, searchable text, metadata, metadata JSON) of every live row holding text there."""
        for chunk in self._chunks:
            rows = np.flatnonzero(chunk.live)
            if not len(rows):
                continue
            metas = chunk.metadata_dicts()
            for r in rows:
                text = field_text(metas[r].get(metadata_key))
                if text is not None:
                    yield chunk.batch.keys[r], text, metas[r], chunk.batch.metadata[r]
