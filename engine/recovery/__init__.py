"""Recovery: point-in-time restores into new indexes, and replay checks of a live one.

Both are replays of the log (``restore``: a new index as another stood at a seq; ``replay``: the
same index folded again and compared row by row).
"""

from engine.recovery.replay import CheckReport, replay_check
from engine.recovery.restore import (
    Progress,
    build_restored,
    check_chain,
    check_restorable,
    check_upto,
    last_seq,
    seq_at_time,
)

__all__ = [
    "CheckReport",
    "Progress",
    "build_restored",
    "check_chain",
    "check_restorable",
    "check_upto",
    "last_seq",
    "replay_check",
    "seq_at_time",
]
