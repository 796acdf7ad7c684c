"""vecledger's storage engine: an event log on object storage, folded into Lance datasets.

What the API (and any other caller) uses is named here; everything else is the engine's own. The
``Engine`` is imported on first use, so that a caller needing only settings or names (the command
line's help, say) does not load Lance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.context import RequestContext
from engine.refs import BucketRef, IndexRef
from engine.settings import IndexTuning, S3Settings, Settings

if TYPE_CHECKING:
    from engine.facade.engine import Engine

__all__ = ["BucketRef", "Engine", "IndexRef", "IndexTuning", "RequestContext", "S3Settings", "Settings"]


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from engine.facade.engine import Engine

        return Engine
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
