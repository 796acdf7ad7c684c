"""The event object: the on-disk unit of every log (see docs/format.md).

One object per sequence number. It holds one or more events (group commit packs concurrent
requests into one object), each with its own header and payload. Layout::

    b"VLEV" | u16 format version | u32 header length | u32 crc32(header) | header JSON | payloads

The header JSON names every event with its id, type, time, who asked (principal, account, source
address, request id, dialect) and the offset, length, crc32 and sha256 of its payload. A reader that
finds a bad checksum, a truncated object, a seq that does not match its key, or an unknown format
version raises ``CorruptEvent``: the log is the truth, so nothing is ever skipped.

Every log is a hash chain: the header's ``prev`` is the ``digest`` (sha256) of the previous
object's prefix and header, and a header covers its payloads through their sha256. An edited,
deleted or reordered object breaks the chain at the object after it (``engine/log/chain.py``).
CRC32 stays for what it is good at, telling a torn write from a good one, cheaply, on every read.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from engine.context import RequestContext
from engine.errors import CorruptEvent

FORMAT_VERSION = 1
MAGIC = b"VLEV"
_PREFIX = struct.Struct(">4sHII")
PREFIX_SIZE = _PREFIX.size

JSON = "json"
ARROW = "arrow"

# Catalog log
BUCKET_CREATED = "bucket.created"
BUCKET_DELETED = "bucket.deleted"
BUCKET_POLICY_PUT = "bucket.policy_put"
BUCKET_POLICY_DELETED = "bucket.policy_deleted"
BUCKET_DEFAULT_INDEX_MODE = "bucket.default_index_mode"
INDEX_CREATED = "index.created"
INDEX_DELETED = "index.deleted"
INDEX_MODE_CHANGED = "index.mode_changed"
INDEX_METADATA_CONFIGURATION = "index.metadata_configuration"
INDEX_QUOTA = "index.quota"
INDEX_RETENTION = "index.retention"
TAGS_CHANGED = "tags.changed"
# Audit log (requests refused before they could change anything)
REQUEST_DENIED = "request.denied"
REQUEST_FAILED = "request.failed"  # e.g. a batch that landed only in part
REQUEST_THROTTLED = "request.throttled"
# Index data logs
VECTORS_PUT = "vectors.put"
VECTORS_DELETED = "vectors.deleted"
# First event of a restored index: "the state of <bucket_id>/<index_id> at <upto_seq>".
VECTORS_RESTORED = "vectors.restored"
# "The text search configuration changed": folding it backfills the indexed text (no rows change).
TEXT_SEARCH_CHANGED = "vectors.text_search"
# "This index's catalog record changed" (deleted, its mode changed): written after the catalog
# event and before the acknowledgement, so a reader that trusted a recent catalog state (the
# catalog's ``tolerate``) looks again. No rows change.
INDEX_CHANGED = "vectors.index_changed"
# The marks that void a recent catalog state (the text configuration is part of the record too).
RECORD_MARKS = frozenset({INDEX_CHANGED, TEXT_SEARCH_CHANGED})


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    time: float
    principal: str
    account: str
    source: str
    request_id: str
    dialect: str
    payload: bytes
    format: str = JSON
    attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        ctx: RequestContext,
        *,
        id: str,
        type: str,
        time: float,
        payload: bytes,
        format: str = JSON,
        attrs: dict[str, Any] | None = None,
    ) -> Event:
        return cls(
            id=id,
            type=type,
            time=time,
            principal=ctx.principal,
            account=ctx.account,
            source=ctx.source,
            request_id=ctx.request_id,
            dialect=ctx.dialect,
            payload=payload,
            format=format,
            attrs=attrs or {},
        )

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class EventObject:
    """The decoded content of one log entry."""

    seq: int
    time: float
    events: tuple[Event, ...]


def json_payload(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def encode(seq: int, time: float, events: list[Event] | tuple[Event, ...], prev: str | None = None) -> bytes:
    """The object for ``seq``; ``prev`` is the previous object's ``digest`` ("" at a log's first
    object or when the previous one is gone, None for none at all: an object outside any chain)."""
    entries = []
    offset = 0
    for e in events:
        entries.append(
            {
                "id": e.id,
                "type": e.type,
                "time": e.time,
                "principal": e.principal,
                "account": e.account,
                "source": e.source,
                "request_id": e.request_id,
                "dialect": e.dialect,
                "format": e.format,
                "attrs": e.attrs,
                "offset": offset,
                "length": len(e.payload),
                "crc32": zlib.crc32(e.payload),
                "sha256": hashlib.sha256(e.payload).hexdigest(),
            }
        )
        offset += len(e.payload)
    doc: dict[str, Any] = {"seq": seq, "time": time, "events": entries}
    if prev is not None:
        doc["prev"] = prev
    header = json.dumps(doc, separators=(",", ":")).encode()
    parts = [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header), zlib.crc32(header)), header]
    parts.extend(e.payload for e in events)
    return b"".join(parts)


def digest(data: bytes) -> str:
    """The chain's link to an object: the sha256 of its prefix and header (which hold its payloads'
    sha256). ``data`` may be just a prefix of the object, as long as it holds the header."""
    if len(data) < PREFIX_SIZE:
        raise CorruptEvent("", "truncated before header")
    _, _, header_len, _ = _PREFIX.unpack_from(data)
    if len(data) < PREFIX_SIZE + header_len:
        raise CorruptEvent("", "truncated header")
    return hashlib.sha256(data[: PREFIX_SIZE + header_len]).hexdigest()


def decode_header(key: str, data: bytes) -> tuple[dict[str, Any], int]:
    """Parse and verify the header; returns it and the offset where payloads start.

    ``data`` may be just a prefix of the object (the audit reads headers alone).
    """
    if len(data) < PREFIX_SIZE:
        raise CorruptEvent(key, "truncated before header")
    magic, version, header_len, header_crc = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CorruptEvent(key, "not an event object")
    if version != FORMAT_VERSION:
        raise CorruptEvent(key, f"unknown format version {version}")
    start = PREFIX_SIZE
    header = data[start : start + header_len]
    if len(header) != header_len:
        raise CorruptEvent(key, "truncated header")
    if zlib.crc32(header) != header_crc:
        raise CorruptEvent(key, "header checksum mismatch")
    try:
        parsed = json.loads(header)
    except ValueError:
        raise CorruptEvent(key, "header is not JSON") from None
    return parsed, start + header_len


def decode(key: str, seq: int, data: bytes) -> EventObject:
    header, base = decode_header(key, data)
    if header.get("seq") != seq:
        raise CorruptEvent(key, f"header seq {header.get('seq')} does not match key seq {seq}")
    events = []
    end = base
    for h in header["events"]:
        start = base + h["offset"]
        end = start + h["length"]
        payload = data[start:end]
        if len(payload) != h["length"]:
            raise CorruptEvent(key, "truncated payload")
        if zlib.crc32(payload) != h["crc32"]:
            raise CorruptEvent(key, f"payload checksum mismatch in event {h['id']}")
        events.append(
            Event(
                id=h["id"],
                type=h["type"],
                time=h["time"],
                principal=h["principal"],
                account=h["account"],
                source=h["source"],
                request_id=h["request_id"],
                dialect=h["dialect"],
                payload=payload,
                format=h["format"],
                attrs=h.get("attrs") or {},
            )
        )
    if end != len(data):
        raise CorruptEvent(key, "trailing bytes after the last payload")
    return EventObject(seq=seq, time=header["time"], events=tuple(events))
