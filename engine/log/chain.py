"""Checking a log's hash chain: what ``vecledger audit --verify`` reports and a restore refuses.

Each object's header holds its payloads' sha256 and the digest of the object before it
(``event.py``). Walking a log in seq order, the chain tells apart:
- **deleted**: a seq missing while a later one exists (the listing shows the gap);
- **reordered**: an object whose header names another seq than its key (moved, or swapped);
- **edited**: an object whose checksums or payload hashes fail, or whose digest no longer matches
  the link the next object holds (an edit that fixed up the object's own checksums).

What a chain cannot show by itself: the newest object edited or deleted, or the whole chain
rewritten from some point on, by someone with write access to the store. For that the report
gives the digest of the newest object, the *head*: kept anywhere else (a ticket, another system's
log), a later verify that finds a different head at that seq shows the rewrite, as CloudTrail's
digest files do. Objects written before the chain existed carry no link and are only checksummed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from engine import keys
from engine.errors import CorruptEvent, ObjectNotFound
from engine.log.event import decode, decode_header, digest
from engine.log.start import read_start
from engine.store import ObjectStore


@dataclass(frozen=True)
class Finding:
    kind: str  # "deleted", "reordered" or "edited"
    key: str
    seq: int
    detail: str


@dataclass
class ChainReport:
    prefix: str
    first: int  # the first seq checked
    last: int  # the newest seq present (-1: none)
    objects: int = 0
    head: str = ""  # digest of the newest object: keep it elsewhere to detect a rewritten tail
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _payload_problem(header: dict[str, Any], base: int, data: bytes) -> str | None:
    """What is wrong with the payloads' sha256 (None: nothing), the header already verified."""
    for h in header["events"]:
        want = h.get("sha256")
        payload = data[base + h["offset"] : base + h["offset"] + h["length"]]
        if want is not None and hashlib.sha256(payload).hexdigest() != want:
            return f"the payload of event {h['id']} does not match its sha256"
    return None


async def verify_chain(store: ObjectStore, prefix: str, *, until: int | None = None) -> ChainReport:
    """Check the objects from the log's start up to ``until`` (the whole log by default): every
    object's own checksums and hashes, and each one's link to the one before it."""
    start = await read_start(store, prefix)
    first = start.seq if start is not None else 0
    present: list[int] = []
    begin = keys.log_entry(prefix, first - 1) if first > 0 else None
    async for info in store.list(prefix, start_after=begin):  # in key order: seqs are zero-padded
        seq = _seq(info.key)
        if seq is None or seq < first:
            continue
        if until is not None and seq > until:
            break
        present.append(seq)
    report = ChainReport(prefix, first, present[-1] if present else -1)
    # The digest the next object must name; None: nothing to check (so not at the log's start,
    # whose predecessor, if any, log retention dropped).
    link: str | None = None
    have = set(present)
    for seq in range(first, report.last + 1):
        key = keys.log_entry(prefix, seq)
        if seq not in have:
            report.findings.append(Finding("deleted", key, seq, "missing, while later objects exist"))
            link = None
            continue
        try:
            data = (await store.get(key)).data
        except ObjectNotFound:  # deleted since the listing
            report.findings.append(Finding("deleted", key, seq, "missing, while later objects exist"))
            link = None
            continue
        report.objects += 1
        try:
            decode(key, seq, data)  # checksums, lengths and the seq its key names
            header, base = decode_header(key, data)
        except CorruptEvent as e:
            kind = "reordered" if "does not match key seq" in e.reason else "edited"
            report.findings.append(Finding(kind, key, seq, e.reason))
            link = None
            continue
        if (problem := _payload_problem(header, base, data)) is not None:
            report.findings.append(Finding("edited", key, seq, problem))
        prev = header.get("prev")
        if prev is not None and link is not None and prev != link:
            before = keys.log_entry(prefix, seq - 1)
            report.findings.append(
                Finding("edited", before, seq - 1, f"its digest no longer matches the link {key} holds")
            )
        link = digest(data)
        report.head = link
    return report


def _seq(key: str) -> int | None:
    try:
        return keys.seq_of(key)
    except ValueError:
        return None
