"""Copies of a dataset: a version cloned for a restore, a read-only handle on any version, and the
per-row digests a consistency check compares."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from engine.dataset.schema import DatasetNotFound, open_dataset
from engine.log.payload import vector_matrix
from engine.store import LanceLocation


def copy_version(source: LanceLocation, version: int, target: LanceLocation) -> int:
    """Copy one version of a dataset, with its vector index, into a new one; returns the new version.

    A deep clone copies the files that version references (data, deletions, indexes), so a
    restore costs a file copy rather than a rewrite and an index build, and the copy does not
    depend on the source's files staying around.
    """
    src = open_dataset(source, version)
    ds = src.deep_clone(target.uri, version, storage_options=target.storage_options or None)
    return int(ds.version)


_DIGEST_WEIGHTS = np.random.default_rng(20261125).integers(1, 2**63, size=65536, dtype=np.uint64) | np.uint64(1)


def row_digests(ds: Any) -> pa.Table:
    """Every row as (key, vector digest, metadata digest), sorted by key: what a consistency check
    compares, streamed batch by batch so that a million rows cost ~30 MB rather than their vectors.

    The vector digest is a weighted sum of the float32 bit patterns (mod 2**64), so one flipped bit
    changes it; the metadata digest hashes the stored text. Both are only compared within one process.
    """
    keys, vec_digests, meta_digests = [], [], []
    if ds is not None:
        for batch in ds.to_batches(columns=["key", "vector", "metadata"]):
            if batch.num_rows == 0:
                continue
            bits = vector_matrix(batch.column("vector")).view(np.uint32).astype(np.uint64)
            with np.errstate(over="ignore"):
                vec_digests.append((bits * _DIGEST_WEIGHTS[: bits.shape[1]]).sum(axis=1, dtype=np.uint64))
            meta_digests.append(np.array([hash(m) for m in batch.column("metadata").to_pylist()], dtype=np.int64))
            keys.append(batch.column("key"))
    table = pa.table(
        {
            "key": pa.chunked_array(keys, pa.string()),
            "vector": pa.array(np.concatenate(vec_digests) if vec_digests else np.zeros(0, np.uint64)),
            "metadata": pa.array(np.concatenate(meta_digests) if meta_digests else np.zeros(0, np.int64)),
        }
    )
    return table.sort_by("key")


def open_version(location: LanceLocation, version: int | None) -> Any:
    """A read-only handle on one version (None: the newest); None if the dataset does not exist."""
    try:
        return open_dataset(location, version)
    except DatasetNotFound:
        return None
