"""Catalog snapshots: the folded catalog at a seq, so that a start need not fold the log from 0.

``catalog/snapshot-<seq>`` holds one line of header JSON (``{"format": 1, "seq": N, "crc32": C}``)
and then the state as JSON; ``C`` is the crc32 of that JSON. A start lists the snapshots (one
LIST), loads the newest one that decodes and checks, and folds the log after its seq; a snapshot
that does not decode is skipped (logged), down to folding the whole log, which is always there:
a snapshot is a shortcut, never the truth. A snapshot is written with a create-only PUT, so a
crash mid-write leaves either a whole object or none, and two processes writing the same seq
write the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zlib
from dataclasses import asdict, fields
from typing import Any

from engine import failpoints, keys
from engine.catalog.state import Bucket, CatalogState, Index
from engine.errors import ObjectNotFound, PreconditionFailed
from engine.store import ObjectStore

log = logging.getLogger("vecledger.catalog")

FORMAT = 1
KEEP = 2  # snapshots kept; older ones are deleted once a newer one is written
_TUPLES = {f.name for f in fields(Index) if f.name in ("non_filterable_keys", "text_search")}


class BadSnapshot(Exception):
    """A snapshot object that does not decode or does not match its checksum."""


def encode(state: CatalogState) -> bytes:
    body = json.dumps(
        {
            "seq": state.seq,
            "buckets": [asdict(b) for b in state.buckets.values()],
            "indexes": [asdict(i) for i in state.indexes.values()],
            "deleted_buckets": [asdict(b) for b in state.deleted_buckets.values()],
            "deleted_indexes": [asdict(i) for i in state.deleted_indexes.values()],
            "bucket_names": [[a, n, i] for (a, n), i in state.bucket_names.items()],
            "index_names": [[b, n, i] for (b, n), i in state.index_names.items()],
            "deleted_at": state.deleted_at,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    header = json.dumps({"format": FORMAT, "seq": state.seq, "crc32": zlib.crc32(body)}).encode()
    return header + b"\n" + body


def _index(d: dict[str, Any]) -> Index:
    fixed: dict[str, Any] = {k: tuple(v) if k in _TUPLES else v for k, v in d.items()}
    return Index(**fixed)


def decode(data: bytes) -> CatalogState:
    try:
        head, _, body = data.partition(b"\n")
        header = json.loads(head)
        if header.get("format") != FORMAT or zlib.crc32(body) != header.get("crc32"):
            raise BadSnapshot("unknown format or checksum mismatch")
        doc = json.loads(body)
        return CatalogState(
            seq=int(doc["seq"]),
            buckets={b["id"]: Bucket(**b) for b in doc["buckets"]},
            indexes={i["id"]: _index(i) for i in doc["indexes"]},
            deleted_buckets={b["id"]: Bucket(**b) for b in doc["deleted_buckets"]},
            deleted_indexes={i["id"]: _index(i) for i in doc["deleted_indexes"]},
            bucket_names={(a, n): i for a, n, i in doc["bucket_names"]},
            index_names={(b, n): i for b, n, i in doc["index_names"]},
            deleted_at={k: float(v) for k, v in doc["deleted_at"].items()},
        )
    except BadSnapshot:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise BadSnapshot(str(e)) from None


async def snapshot_seqs(store: ObjectStore) -> list[int]:
    """The seqs of the snapshots present, oldest first."""
    return sorted([keys.catalog_snapshot_seq(info.key) async for info in store.list(keys.CATALOG_SNAPSHOTS)])


async def load_newest(store: ObjectStore) -> CatalogState | None:
    """The newest snapshot that decodes, or None (fold the log from seq 0)."""
    for seq in reversed(await snapshot_seqs(store)):
        key = keys.catalog_snapshot(seq)
        try:
            state = decode((await store.get(key)).data)
        except ObjectNotFound:
            continue  # deleted since the listing: an older one, or the log, will do
        except BadSnapshot as e:
            log.warning("catalog snapshot %s is unreadable (%s); using an older one or the log", key, e)
            continue
        if state.seq == seq:
            return state
        log.warning("catalog snapshot %s holds seq %d; skipped", key, state.seq)
    return None


async def write(store: ObjectStore, seq: int, data: bytes) -> bool:
    """Write ``data`` (``encode`` of the state at ``seq``) and drop all but the newest ``KEEP``
    snapshots; False if one of that seq existed already."""
    failpoints.hit("catalog.snapshot")  # the crash harness kills here, or just after (a delay)
    try:
        await store.put_if_absent(keys.catalog_snapshot(seq), data)
    except PreconditionFailed:
        return False
    for seq in (await snapshot_seqs(store))[:-KEEP]:
        with contextlib.suppress(ObjectNotFound):  # another process deleted it first
            await store.delete(keys.catalog_snapshot(seq))
    return True
