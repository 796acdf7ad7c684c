"""Row keys by row address, and row addresses by key, without asking Lance to plan a read.

A vector query that shows neither metadata nor distances needs only its hits' keys, and reading
them is one more random read per hit after the search (~0.5 ms of a ~4.5 ms query at 1M x 128).
A GetVectors of one key is the other way round: Lance's filter ``key IN (...)`` plans and scans
(~65 ms at 1M rows; ~2 ms with the BTREE on ``key``), while a take by row address is ~0.65 ms.

A fragment's files never change (deletions only add a deletion file, compaction writes new
fragments), so its keys by physical offset, and their hashes sorted, are read once per fragment
and kept: the key column plus ~16 bytes a row (~30 MB for 1M short keys). Rows deleted after that
read stay in the map; a take by address under a later version's deletion files drops them, and
keys never come back to life in a fragment. Without stable row ids, Lance's ``_rowid`` is the row
address, ``fragment_id << 32 | offset``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from engine.dataset.schema import key_hash, per_version


@dataclass(frozen=True)
class _Keys:
    """One fragment's live rows at the time it was read."""

    position: np.ndarray  # by physical offset: index into ``keys``, -1 if the row was deleted
    keys: pa.Array
    offsets: np.ndarray  # by position: the row's physical offset
    hashes: np.ndarray  # ``key_hash`` of every position, sorted
    order: np.ndarray  # by sorted hash: the position


_fragments: dict[tuple[str, int], _Keys] = {}


def _fragment(uri: str, ds: Any, fragment_id: int) -> _Keys:
    cached = _fragments.get((uri, fragment_id))
    if cached is None:
        fragment = ds.get_fragment(fragment_id)
        table = fragment.to_table(columns=["key", "key_hash"], with_row_address=True)
        offsets = (table.column("_rowaddr").to_numpy() & 0xFFFFFFFF).astype(np.uint32)
        position = np.full(fragment.physical_rows, -1, np.int32)
        position[offsets] = np.arange(len(table), dtype=np.int32)
        hashes = table.column("key_hash").to_numpy(zero_copy_only=False).astype(np.uint32)
        order = np.argsort(hashes, kind="stable").astype(np.int32)
        keys = table.column("key").combine_chunks()
        cached = _fragments[(uri, fragment_id)] = _Keys(position, keys, offsets, hashes[order], order)
    return cached


def _fragment_ids(ds: Any) -> tuple[int, ...]:
    ids: tuple[int, ...] = per_version("fragments", ds, "", lambda: tuple(f.fragment_id for f in ds.get_fragments()))
    return ids


def _drop(uri: str, keep: Collection[int] = ()) -> None:
    for stale in [k for k in _fragments if k[0] == uri and k[1] not in keep]:
        _fragments.pop(stale, None)


def keys_of(ds: Any, row_ids: pa.Array | pa.ChunkedArray) -> list[str]:
    """The keys of rows of ``ds`` by row address (rows a query of this snapshot returned)."""
    uri, out = str(ds.uri), []
    for rid in row_ids.to_pylist():
        rows = _fragment(uri, ds, rid >> 32)
        out.append(rows.keys[int(rows.position[rid & 0xFFFFFFFF])].as_py())
    return out


def addresses_of(ds: Any, keys: list[str]) -> list[int]:
    """The row addresses in ``ds`` that hold ``keys``: every live one, and perhaps rows deleted
    since their fragment was read (a take by address drops those)."""
    if "key_hash" not in ds.schema.names:  # not a vecledger dataset: no map
        raise LookupError("no key_hash column")
    uri = str(ds.uri)
    wanted = np.array([key_hash(k) for k in keys], np.uint32)
    out: list[int] = []
    for fragment_id in _fragment_ids(ds):
        rows = _fragment(uri, ds, fragment_id)
        starts = np.searchsorted(rows.hashes, wanted, "left")
        ends = np.searchsorted(rows.hashes, wanted, "right")
        for key, start, end in zip(keys, starts.tolist(), ends.tolist(), strict=True):
            for at in rows.order[start:end].tolist():  # equal hashes: compare the keys
                if rows.keys[at].as_py() == key:
                    out.append(fragment_id << 32 | int(rows.offsets[at]))
    return sorted(set(out))


def load(ds: Any) -> None:
    """Read the keys of the fragments of ``ds`` not read yet, and forget those of fragments it no
    longer has (an older snapshot still in use reads them again if it needs them)."""
    uri = str(ds.uri)
    live = _fragment_ids(ds)
    _drop(uri, keep=live)
    for fragment_id in live:
        _fragment(uri, ds, fragment_id)


def forget(ds: Any) -> None:
    """Drop the keys kept for the dataset of ``ds`` (its index was deleted)."""
    if ds is not None:
        _drop(str(ds.uri))
