"""Lance versions as restore points: tags pin the ones kept, Lance's own cleanup removes the rest.

Nothing here deletes a file itself: ``cleanup_old_versions`` decides which files no kept version
references, and it never removes a tagged version, the newest version, or one younger than the
grace it is given (readers and queries in flight hold those). Tags are how everything that needs
an old version keeps it: restore points (``point:<seq>``), and a restore or a replay check while
it copies from or compares with one (``hold:<nonce>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine.dataset.schema import DatasetNotFound, open_dataset
from engine.store import LanceLocation

POINT = "point-"
HOLD = "hold-"


@dataclass(frozen=True)
class Cleanup:
    versions: int  # versions removed
    bytes: int  # bytes of files removed


def version_times(location: LanceLocation) -> dict[int, float]:
    """Every version on disk with its commit time (epoch seconds); empty if no dataset."""
    try:
        ds = open_dataset(location, None)
    except DatasetNotFound:
        return {}
    return {int(v["version"]): v["timestamp"].timestamp() for v in ds.versions()}


_ATTEMPTS = 5  # a tag listed by one process may be deleted by another before it is read


def _missing(e: ValueError) -> bool:
    """pylance (14) reports a missing tag, tag file or version only in its words (as for datasets:
    ``schema._is_not_found``)."""
    return "not found" in str(e).lower() or "does not exist" in str(e).lower()


def _tag_versions(ds: Any) -> dict[str, int]:
    """Every tag with its version. Lance lists the tag files and then reads each, so a tag that
    another process deletes in between fails the listing: list again."""
    for attempt in range(_ATTEMPTS):
        try:
            return {name: int(t["version"]) for name, t in ds.tags.list().items()}
        except ValueError as e:
            if not _missing(e) or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def tags(location: LanceLocation, prefix: str) -> dict[str, int]:
    """Tag name -> version, for the tags that start with ``prefix``."""
    try:
        ds = open_dataset(location, None)
    except DatasetNotFound:
        return {}
    return {name: v for name, v in _tag_versions(ds).items() if name.startswith(prefix)}


def pin(location: LanceLocation, name: str, version: int) -> bool:
    """Tag ``version`` as ``name`` (moving the tag if it exists); False if the version is gone."""
    ds = open_dataset(location, None)
    for attempt in range(_ATTEMPTS):
        existing = _tag_versions(ds).get(name)
        if existing == version:
            return True
        try:
            if existing is None:
                ds.tags.create(name, version)
            else:
                ds.tags.update(name, version)
            return True
        except ValueError as e:
            if "conflict" in str(e).lower() and attempt < _ATTEMPTS - 1:
                continue  # created meanwhile by another process (or deleted): look again
            if _missing(e) and "version" in str(e).lower():
                return False  # the version itself is gone
            if _missing(e) and attempt < _ATTEMPTS - 1:
                continue
            raise
    return False


def unpin(location: LanceLocation, name: str) -> None:
    try:
        ds = open_dataset(location, None)
    except DatasetNotFound:
        return
    if name not in _tag_versions(ds):
        return
    try:
        ds.tags.delete(name)
    except ValueError as e:
        if not _missing(e):  # deleted meanwhile by another process: what was asked
            raise


def clean(location: LanceLocation, grace: float) -> Cleanup:
    """Remove every version older than ``grace`` seconds that no tag pins (and the files only
    they referenced), with Lance's cleanup."""
    try:
        ds = open_dataset(location, None)
    except DatasetNotFound:
        return Cleanup(0, 0)
    for attempt in range(_ATTEMPTS):
        try:
            stats = ds.cleanup_old_versions(older_than=timedelta(seconds=grace), error_if_tagged_old_versions=False)
            return Cleanup(int(stats.old_versions), int(stats.bytes_removed))
        except ValueError as e:  # a tag deleted while the cleanup read the tags: read them again
            if not _missing(e) or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
