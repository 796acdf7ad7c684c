"""Restore points: which folded Lance versions an index keeps, so that storage stays bounded.

Every fold writes ``versions/<seq>`` (``{"seq", "lance_version", "time"}``): the dataset as of
that seq. Kept are every point of the last ``version_grace`` seconds, then the newest point of
each 5 minutes for an hour, of each hour for a day, and of each day inside the index's PITR
window; and always the newest. Each kept point's version is pinned with a Lance tag; the other
points' ``versions/`` objects and tags are removed, and then Lance's cleanup removes every
version no tag pins (past the grace). A restore to any seq starts from the newest kept point at
or before it and replays the log from there (``engine/recovery/restore.py``), so it stays
exact; the thinning only bounds how much log it replays.

Order for crash safety: a point's ``versions/`` object goes first (a restore no longer picks it),
then its tag, then the cleanup; a crash in between leaves a tag without a point (removed by the
next prune) or a point whose version is pinned, never a point whose version is gone. Under a log
retention the point a truncated log starts from is kept whatever its age (``log_retention.py``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import anyio

from engine import failpoints, keys
from engine.catalog import Index
from engine.dataset import POINT, Cleanup, clean, pin, tags, unpin, version_times
from engine.errors import ObjectNotFound
from engine.settings import Settings
from engine.store import LanceLocation, ObjectStore

# (age up to, spacing): past the grace, one point per spacing at each age.
TIERS = ((3600.0, 300.0), (86400.0, 3600.0))
DAY = 86400.0


@dataclass(frozen=True)
class Point:
    seq: int
    lance_version: int
    time: float  # when it was folded (epoch seconds)


def tag_of(seq: int) -> str:
    return f"{POINT}{keys.seq_name(seq)}"


def to_keep(points: list[Point], now: float, grace: float, window: float, base: int = -1) -> set[int]:
    """The seqs of the points to keep (pure: the policy in the module docstring). ``base`` is the
    point a truncated log starts from (``log_retention.py``): always kept, and nothing older."""
    points = [p for p in points if p.seq >= base]
    if not points:
        return set()
    keep = {max(points, key=lambda p: p.seq).seq} | ({base} if base >= 0 else set())
    newest: dict[tuple[float, int], Point] = {}
    for p in points:
        age = now - p.time
        if age <= grace:
            keep.add(p.seq)
            continue
        if age > window:
            continue
        spacing = next((s for limit, s in TIERS if age <= limit), DAY)
        slot = (spacing, int(p.time // spacing))
        if slot not in newest or p.seq > newest[slot].seq:
            newest[slot] = p
    return keep | {p.seq for p in newest.values()}


def point_document(seq: int, lance_version: int, time: float) -> bytes:
    return json.dumps({"seq": seq, "lance_version": lance_version, "time": time}).encode()


async def load(store: ObjectStore, index: Index, location: LanceLocation) -> dict[int, Point]:
    """Every point in ``versions/`` (points written before they carried a time take their Lance
    version's commit time)."""
    docs = []
    async for info in store.list(keys.index_versions(index.bucket_id, index.id)):
        with contextlib.suppress(ObjectNotFound):
            docs.append(json.loads((await store.get(info.key)).data))
    times: dict[int, float] | None = None
    out: dict[int, Point] = {}
    for d in docs:
        when = d.get("time")
        if when is None:
            times = times if times is not None else await anyio.to_thread.run_sync(version_times, location)
            when = times.get(int(d["lance_version"]), 0.0)
        out[int(d["seq"])] = Point(int(d["seq"]), int(d["lance_version"]), float(when))
    return out


@dataclass(frozen=True)
class Pruned:
    points_kept: int
    points_dropped: int
    cleanup: Cleanup


async def prune(
    store: ObjectStore,
    index: Index,
    location: LanceLocation,
    points: dict[int, Point],
    settings: Settings,
    base: int = -1,
) -> Pruned:
    """Thin ``points`` (updated in place) and clean the dataset's versions accordingly."""
    window = float((index.retention or {}).get("pitr_window") or settings.pitr_window)
    keep = to_keep(list(points.values()), store.clock.now(), settings.version_grace, window, base)
    dropped = sorted(set(points) - keep)
    for seq in dropped:
        with contextlib.suppress(ObjectNotFound):
            await store.delete(keys.index_version(index.bucket_id, index.id, seq))
        del points[seq]
    failpoints.hit("materializer.prune_points")
    pinned = await anyio.to_thread.run_sync(tags, location, POINT)
    for name in sorted(set(pinned) - {tag_of(s) for s in keep}):
        await anyio.to_thread.run_sync(unpin, location, name)
    for seq in sorted(keep):
        p = points[seq]
        if pinned.get(tag_of(seq)) == p.lance_version or p.lance_version == 0:
            continue  # pinned already, or nothing folded yet
        if not await anyio.to_thread.run_sync(pin, location, tag_of(seq), p.lance_version):
            # Its version is gone (removed before points were thinned this way): not a point.
            with contextlib.suppress(ObjectNotFound):
                await store.delete(keys.index_version(index.bucket_id, index.id, seq))
            del points[seq]
    failpoints.hit("materializer.prune_cleanup")
    cleanup = await anyio.to_thread.run_sync(clean, location, settings.version_grace)
    return Pruned(len(points), len(dropped), cleanup)
