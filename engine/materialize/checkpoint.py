"""An index's checkpoint: how far its log is folded, into which Lance version, by which lease holder.

``{"seq": N, "lance_version": V, "generation": G}`` at ``data/<bucket>/<index>/checkpoint``
(docs/format.md). It only moves forward: it is written by compare-and-swap on its ETag, and a
writer that finds a newer generation there has lost the lease (the materializer decides what to
do about a lost swap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine import keys
from engine.catalog.state import Index
from engine.errors import ObjectNotFound
from engine.store import ObjectStore


@dataclass(frozen=True)
class Checkpoint:
    seq: int = -1
    lance_version: int = 0
    etag: str | None = None
    generation: int | None = None  # the lease generation of the materializer that wrote it


async def read_checkpoint(store: ObjectStore, index: Index, key: str | None = None) -> Checkpoint:
    try:
        blob = await store.get(key or keys.index_checkpoint(index.bucket_id, index.id))
    except ObjectNotFound:
        return Checkpoint()
    doc = json.loads(blob.data)
    generation = doc.get("generation")
    return Checkpoint(int(doc["seq"]), int(doc["lance_version"]), blob.etag, generation)


def checkpoint_document(cp: Checkpoint) -> bytes:
    doc: dict[str, Any] = {"seq": cp.seq, "lance_version": cp.lance_version}
    if cp.generation is not None:
        doc["generation"] = cp.generation
    return json.dumps(doc).encode()


async def swap_checkpoint(store: ObjectStore, key: str, data: bytes, etag: str | None) -> str:
    """Write ``data`` where the checkpoint of ``etag`` is (none yet when None); its new ETag.

    Raises ``PreconditionFailed`` (or ``ObjectNotFound``) when another writer moved it first."""
    if etag is None:
        return await store.put_if_absent(key, data)
    return await store.put_if_match(key, data, etag)
