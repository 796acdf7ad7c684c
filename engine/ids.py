"""The lengths ids are cut to, in one place: ids are minted whole (32 hex digits) by an ``IdSource``.

Buckets and indexes carry 16 digits (they appear in every object key of theirs), request ids
16 upper-case ones (as the clouds' are), scratch datasets 12 and lease holders 8 (names for logs).
"""

from __future__ import annotations

from engine.clock import IdSource

RESOURCE_ID = 16
REQUEST_ID = 16
SCRATCH_ID = 12
HOLDER_ID = 8


def short_id(ids: IdSource, length: int = RESOURCE_ID) -> str:
    return ids.new_id()[:length]
