"""The control plane: buckets, indexes, policies and tags, as a fold of the catalog log.

``state``: the deterministic fold (``CatalogState``); ``follower``: following the log and
submitting events to it (``Catalog``).
"""

from engine.catalog.follower import Catalog
from engine.catalog.state import Bucket, CatalogState, Index

__all__ = ["Bucket", "Catalog", "CatalogState", "Index"]
