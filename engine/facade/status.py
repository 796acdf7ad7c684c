"""Index status on the engine facade: how many vectors an index holds and how far its materializer
has folded.

None of this is in the S3 Vectors API, but an operator importing data or watching a server wants to
know it (``vecledger ls``, ``POST /_vecledger/index-status``). The count is exact: the rows of the
Lance snapshot whose keys the tail does not touch, plus the keys the tail holds live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio

from engine.dataset import shape, take
from engine.facade.catalog_ops import CatalogOps
from engine.refs import IndexRef
from engine.settings import IndexTuning, Settings

_IN_LIST = 10_000  # keys per ``key IN (...)`` scan when counting the snapshot rows the tail shadows


@dataclass(frozen=True)
class IndexStatus:
    vectors: int  # live vectors, as a ListVectors over the whole index would count them
    materialized_seq: int  # the last log seq folded into the dataset (-1: none yet)
    log_seq: int  # the last seq in the index's log (-1: empty)
    dataset_rows: int  # rows in the Lance snapshot
    tail_keys: int  # keys put or deleted past the snapshot
    index_type: str  # "flat" (exact scan), or the vector index's: "IVF_SQ", "IVF_PQ"
    partitions: int  # IVF partitions (0 when flat)

    @property
    def lag(self) -> int:
        """Log entries written but not yet folded into the dataset."""
        return max(0, self.log_seq - self.materialized_seq)


def _snapshot_counts(reader: Any, touched: list[str], tuning: IndexTuning) -> tuple[int, int, str, int]:
    """(rows, IVF partitions, index type, rows whose key the tail touched) of one Lance snapshot."""
    if reader is None:
        return 0, 0, "flat", 0
    s = shape(reader, tuning)
    shadowed = sum(len(take(reader, touched[i : i + _IN_LIST], ["key"])) for i in range(0, len(touched), _IN_LIST))
    return s.rows, s.partitions, s.index_type, shadowed


class StatusOps:
    def __init__(self, indexes: CatalogOps, settings: Settings) -> None:
        self.indexes = indexes
        self.settings = settings

    async def index_status(self, ref: IndexRef) -> IndexStatus:
        """Vector count, materialized and log seqs, and index type, as of now (every acknowledged
        write included, from any process)."""
        live = await self.indexes.live(ref)
        await live.refresh()
        # Capture the snapshot, its checkpoint and the tail together (no await in between), so the
        # three describe the same moment even if the materializer publishes meanwhile.
        reader, checkpoint, tail = live.reader, live.checkpoint, live.tail
        touched = sorted(tail.touched())
        tail_live = len(touched) - len(tail.deleted_keys())
        log_seq = tail.seq
        rows, partitions, index_type, shadowed = await anyio.to_thread.run_sync(
            _snapshot_counts, reader, touched, self.settings.tuning
        )
        return IndexStatus(
            vectors=rows - shadowed + tail_live,
            materialized_seq=checkpoint.seq,
            log_seq=max(log_seq, checkpoint.seq),
            dataset_rows=rows,
            tail_keys=len(touched),
            index_type=index_type,
            partitions=partitions,
        )
