"""What every part of the Lance adapter shares: the dataset schema, the vector index parameters, Lance's
sessions, and the ``text`` column's values."""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lance
import pyarrow as pa

from engine.log.payload import parse_metadata
from engine.query.text import text_column
from engine.settings import IndexTuning
from engine.store import LanceLocation

VECTOR_INDEX = "vector_idx"
TEXT_INDEX = "text_idx"
PREFIX_INDEX = "prefix_idx"  # NGRAM over ``prefixes``, for $startsWith (engine/dataset/scalar_indexes.py)
KEY_INDEX = "key_idx"  # BTREE over ``key``, for point lookups (the same)
PROBES = "vecledger.probes"  # table metadata: the calibrated probe count (engine/dataset/calibrate.py)
TEXT_CONFIG = "vecledger.text_search"  # table metadata: the [key, language] pairs ``text`` holds
Pairs = list[tuple[str, str | None]]
LANCE_METRIC = {"euclidean": "l2", "cosine": "cosine"}


# Lance's caches of opened indexes and file metadata live in a session. Each served index has one of
# its own (``IndexSession``), shared by the handles the materializer publishes fold after fold so that
# each does not load the vector index again; other handles (restores, cleanup, tools) share the
# process's. Lance's sessions only grow to their caps (LRU, no eviction by version), so a session
# shared past an index rebuild keeps the past index until the cap pushes it out: an edited 50k-row
# index took the process from 341 to 749 MB that way (docs/performance.md, long life).
_caps = (128 * 1024 * 1024, 32 * 1024 * 1024)
_session: Any = None


def configure_caches(index_bytes: int, metadata_bytes: int) -> None:
    """Size Lance's caches: each session created from now on holds up to these many bytes."""
    global _caps, _session
    if (index_bytes, metadata_bytes) != _caps:
        _caps, _session = (index_bytes, metadata_bytes), None


def _new_session() -> Any:
    return lance.Session(index_cache_size_bytes=_caps[0], metadata_cache_size_bytes=_caps[1])  # type: ignore[attr-defined]


class IndexSession:
    """The session of one index's served handles, renewed whenever its index files change (a
    build, a delta segment, a merge, a text index): the handles of the new files load them into a
    new session, and the old one, with the indexes of past versions, is freed with the last reader
    of those versions instead of lingering up to the caps."""

    def __init__(self) -> None:
        self._session: Any = None
        self._files: tuple[str, ...] = ()
        self.renewals = 0
        self._lock = threading.Lock()  # the writer's thread and a reader's may open at once

    def open(self, location: LanceLocation, version: int | None) -> Any:
        """A handle on one version (None: the newest); ``DatasetNotFound``."""
        with self._lock:
            if self._session is None:
                self._session = _new_session()
            ds = open_dataset(location, version, self._session)
            files = tuple(sorted(str(i.get("uuid", i["name"])) for i in ds.list_indices()))
            if files != self._files:
                if self._files:  # (a session that has held no index has nothing to let go)
                    self._session = _new_session()
                    self.renewals += 1
                    ds = open_dataset(location, version, self._session)
                self._files = files
            return ds

    def size_bytes(self) -> int:
        """What Lance counts in the session's caches (it undercounts: ~60% of the memory taken)."""
        return 0 if self._session is None else int(self._session.size_bytes())


class DatasetNotFound(Exception):
    """No dataset (or no such version of it) at a location."""


def _is_not_found(e: Exception) -> bool:
    """pylance (14) has no error type of its own for a missing dataset or version: it raises
    ``ValueError("Dataset at path ... was not found: ...")`` (``OSError`` from some object stores).
    This is the one place that reads its words."""
    return isinstance(e, FileNotFoundError) or "not found" in str(e).lower() or "does not exist" in str(e).lower()


def open_dataset(location: LanceLocation, version: int | None, session: Any = None) -> Any:
    """A handle on one version (None: the newest) in ``session`` (None: the process's);
    ``DatasetNotFound``."""
    try:
        return _open(location, version, session)
    except (ValueError, OSError) as e:
        if _is_not_found(e):
            raise DatasetNotFound(location.uri) from e
        raise


def _open(location: LanceLocation, version: int | None, session: Any) -> Any:
    global _session
    if session is None:
        session = _session = _session or _new_session()
    return lance.dataset(
        location.uri, version=version, storage_options=location.storage_options or None, session=session
    )


def text_values(metadata: pa.Array | pa.ChunkedArray, pairs: Pairs) -> pa.Array:
    """The ``text`` column for rows with this metadata (all null without a text configuration, which
    is most indexes: their folds parse no metadata for it)."""
    if not pairs:
        return pa.nulls(len(metadata), pa.string())
    return pa.array([text_column(parse_metadata(m), pairs) for m in metadata.to_pylist()], pa.string())


_per_version: dict[tuple[str, str, int, str], Any] = {}


def per_version(what: str, ds: Any, arg: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (what, dataset version, arg): a version never changes, so what reads
    derive from it (filter match counts, index shape, text statistics, fragment ids) is computed
    once."""
    key = (what, str(ds.uri), int(ds.version), arg)
    if key not in _per_version:
        if len(_per_version) > 4096:
            _per_version.clear()
        _per_version[key] = compute()
    return _per_version[key]


def key_hash(key: str) -> int:
    """Stable hash of a key; ``key_hash % segmentCount`` assigns ListVectors segments."""
    return zlib.crc32(key.encode())


def schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
            pa.field("metadata", pa.string()),
            pa.field("tokens", pa.list_(pa.string())),
            pa.field("numbers", pa.json_()),
            pa.field("key_hash", pa.uint32()),
            pa.field("text", pa.string()),
            pa.field("strings", pa.json_()),
            pa.field("prefixes", pa.string()),
        ]
    )


def ivf_partitions(rows: int) -> int:
    """IVF partitions for an index over ``rows`` vectors: ~sqrt(n), at least 64 rows each."""
    return max(1, min(4096, int(math.sqrt(rows)), rows // 64))


def stats_partitions(stats: dict[str, Any]) -> int:
    """IVF partitions of a vector index (0: unknown), from its ``index_stats``."""
    return int((stats.get("segments") or [{}])[0].get("num_partitions") or 0)


def index_params(tuning: IndexTuning, rows: int, dimension: int) -> dict[str, Any]:
    """``create_index`` arguments for a ``tuning.index_type`` index over ``rows`` vectors.

    IVF_SQ keeps 8 bits a dimension (Lance's default). IVF_PQ uses sub-vectors of 4 dimensions
    where the dimension allows: PQ error, not nprobes, limits recall on 8-dimension sub-vectors
    (measured; docs/notes/0004-index-type.md).
    """
    params: dict[str, Any] = {
        "index_type": tuning.index_type,
        "num_partitions": ivf_partitions(rows),
        "sample_rate": tuning.sample_rate,
        "max_iters": tuning.max_iters,
    }
    if tuning.index_type == "IVF_PQ":
        params["num_sub_vectors"] = next(m for m in range(max(1, dimension // 4), 0, -1) if dimension % m == 0)
    return params


@dataclass(frozen=True)
class Hit:
    key: str
    distance: float
    metadata: str | None


def sql_list(keys: list[str]) -> str:
    return ", ".join("'" + k.replace("'", "''") + "'" for k in keys)
