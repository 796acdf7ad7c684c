"""Every object key the engine uses is built (and parsed) here, and nowhere else.

Sequence numbers are zero-padded to 20 digits so that key order is sequence order, as in Delta's
``_delta_log`` and SlateDB's WAL. Paths hold ids, never names: a bucket or index deleted and
re-created under the same name gets a new id, so old data cannot leak into the new one.
"""

from __future__ import annotations

SEQ_DIGITS = 20
CATALOG_LOG = "catalog/log/"
# Requests that changed nothing (denied, failed): kept apart so they never enter the data path.
AUDIT_LOG = "audit/log/"
# Every index's objects, under data/<bucket id>/<index id>/.
DATA = "data/"
# One small object per index with writes to fold (engine/materialize/activity.py).
ACTIVITY = "activity/"


def seq_name(seq: int) -> str:
    if seq < 0:
        raise ValueError(f"negative seq {seq}")
    return f"{seq:0{SEQ_DIGITS}d}"


def seq_of(key: str) -> int:
    """The sequence number at the end of a log key."""
    return int(key.rsplit("/", 1)[1])


def log_entry(log_prefix: str, seq: int) -> str:
    return log_prefix + seq_name(seq)


def log_start(log_prefix: str) -> str:
    """Beside a log, never in it: where a log whose head was dropped (log retention) says where
    it now starts (``engine/log/start.py``)."""
    return log_prefix.rstrip("/") + "-start"


CATALOG_SNAPSHOTS = "catalog/snapshot-"


def catalog_snapshot(seq: int) -> str:
    """The folded catalog as of ``seq`` (docs/format.md), a shortcut past the log before it."""
    return CATALOG_SNAPSHOTS + seq_name(seq)


def catalog_snapshot_seq(key: str) -> int:
    return int(key[len(CATALOG_SNAPSHOTS) :])


def index_root(bucket_id: str, index_id: str) -> str:
    return f"{DATA}{bucket_id}/{index_id}/"


def index_log(bucket_id: str, index_id: str) -> str:
    """Prefix of an index's data log; entries are ``log_entry(index_log(...), seq)``."""
    return index_root(bucket_id, index_id) + "log/"


def index_log_of(key: str) -> str | None:
    """The index log a key under ``DATA`` belongs to (``data/<b>/<i>/log/<seq>``), or None."""
    parts = key.split("/")
    if len(parts) == 5 and key.startswith(DATA) and parts[3] == "log" and parts[4].isdigit():
        return index_log(parts[1], parts[2])
    return None


def lance_under(root: str) -> str:
    """The Lance dataset of a materialization root (an index root, or a scratch root)."""
    return root + "lance"


def checkpoint_under(root: str) -> str:
    return root + "checkpoint"


def index_lance(bucket_id: str, index_id: str) -> str:
    return lance_under(index_root(bucket_id, index_id))


def index_checkpoint(bucket_id: str, index_id: str) -> str:
    return checkpoint_under(index_root(bucket_id, index_id))


def index_versions(bucket_id: str, index_id: str) -> str:
    """Prefix of an index's fold history: one object per checkpoint, ``{"seq", "lance_version"}``.

    Point-in-time restores start from the newest Lance version folded up to their seq.
    """
    return index_root(bucket_id, index_id) + "versions/"


def index_version(bucket_id: str, index_id: str, seq: int) -> str:
    return index_versions(bucket_id, index_id) + seq_name(seq)


def restore_checkpoint(root: str, seq: int) -> str:
    """The checkpoint of the replay that a restore marker at ``seq`` starts."""
    return f"{root}restore-{seq_name(seq)}/checkpoint"


def scratch_root(name: str) -> str:
    """Where replays and consistency checks build throwaway datasets."""
    return f"scratch/{name}/"


def index_lease(bucket_id: str, index_id: str) -> str:
    return index_root(bucket_id, index_id) + "lease"


def activity(bucket_id: str, index_id: str) -> str:
    """The mark of an index that has (or recently had) writes to fold."""
    return f"{ACTIVITY}{bucket_id}/{index_id}"


def activity_ids(key: str) -> tuple[str, str]:
    """(bucket id, index id) of an activity mark."""
    bucket_id, index_id = key[len(ACTIVITY) :].split("/", 1)
    return bucket_id, index_id
