"""The event log: format, corruption, appends under races, group commit, lost replies."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest

from engine import keys
from engine.clock import ManualClock, RandomIds
from engine.context import RequestContext
from engine.errors import CorruptEvent
from engine.log import Appender, Event, decode, encode, read_log, tail_seq
from engine.log.event import ARROW, FORMAT_VERSION, VECTORS_PUT, json_payload
from engine.log.payload import VectorBatch, decode_vectors, encode_vectors
from engine.store import FaultyStore, ObjectStore
from engine.store.faulty import LOST_REPLY, Fault

CTX = RequestContext(principal="alice", account="111122223333", source="127.0.0.1", request_id="r1", dialect="s3")
ids = RandomIds(7)


def event(n: int, type: str = "test.event") -> Event:
    return Event.new(CTX, id=ids.new_id(), type=type, time=1.5, payload=json_payload({"n": n}))


def test_encode_decode_round_trip() -> None:
    batch = VectorBatch(["a", "b"], np.array([[1.0, 2.0], [3.5, -1e-30]], np.float32), ['{"x":1}', None])
    put = Event.new(CTX, id="e2", type=VECTORS_PUT, time=2.0, payload=encode_vectors(batch), format=ARROW)
    obj = decode("k", 5, encode(5, 9.0, [event(1), put]))
    assert obj.seq == 5 and obj.time == 9.0 and len(obj.events) == 2
    first, second = obj.events
    assert (first.principal, first.account, first.source, first.request_id, first.dialect) == (
        "alice",
        "111122223333",
        "127.0.0.1",
        "r1",
        "s3",
    )
    assert first.json() == {"n": 1}
    back = decode_vectors("k", second.payload)
    assert back.keys == ["a", "b"] and back.metadata == ['{"x":1}', None]
    assert back.vectors.tobytes() == batch.vectors.tobytes()  # bit-exact float32


@pytest.mark.parametrize("where", [0, 5, 14, 40, -1])
def test_any_flipped_bit_is_reported(where: int) -> None:
    data = bytearray(encode(3, 1.0, [event(1), event(2)]))
    data[where] ^= 0x01
    with pytest.raises(CorruptEvent) as err:
        decode("data/x/log/3", 3, bytes(data))
    assert err.value.key == "data/x/log/3"


def test_truncation_unknown_version_and_wrong_seq_are_reported() -> None:
    data = encode(3, 1.0, [event(1)])
    with pytest.raises(CorruptEvent, match="truncated"):
        decode("k", 3, data[:-1])
    with pytest.raises(CorruptEvent, match="version"):
        decode("k", 3, data[:4] + struct.pack(">H", FORMAT_VERSION + 1) + data[6:])
    with pytest.raises(CorruptEvent, match="seq"):
        decode("k", 4, data)
    with pytest.raises(CorruptEvent, match="trailing"):
        decode("k", 3, data + b"x")


async def _read_all(store: ObjectStore, prefix: str) -> list[int]:
    return [e.json()["n"] async for obj in read_log(store, prefix) for e in obj.events]


async def test_append_and_read_in_order(store: ObjectStore) -> None:
    app = Appender(store, "log/a/", ManualClock())
    seqs = [await app.append([event(i)]) for i in range(5)]
    assert seqs == [0, 1, 2, 3, 4]
    assert await _read_all(store, "log/a/") == [0, 1, 2, 3, 4]
    assert [o.seq async for o in read_log(store, "log/a/", after=2)] == [3, 4]
    assert [o.seq async for o in read_log(store, "log/a/", after=0, until=2)] == [1, 2]
    assert await tail_seq(store, "log/a/") == 4
    assert await tail_seq(store, "log/empty/") == -1


async def test_reader_stops_at_the_first_gap(store: ObjectStore) -> None:
    for seq in (0, 1, 3):
        await store.put_if_absent(keys.log_entry("log/g/", seq), encode(seq, 0.0, [event(seq)]))
    assert [o.seq async for o in read_log(store, "log/g/")] == [0, 1]


async def test_concurrent_appenders_on_one_log_lose_nothing(store: ObjectStore) -> None:
    """Four appenders (as four processes would have) race on one log: seqs stay contiguous."""
    appenders = [Appender(store, "log/race/", ManualClock()) for _ in range(4)]

    async def writer(w: int) -> None:
        for i in range(15):
            await appenders[w].append([event(w * 100 + i)])

    await asyncio.gather(*(writer(w) for w in range(4)))
    seen = [o.seq async for o in read_log(store, "log/race/")]
    assert seen == list(range(len(seen)))
    values = await _read_all(store, "log/race/")
    assert sorted(values) == sorted(w * 100 + i for w in range(4) for i in range(15))
    for w in range(4):  # each writer's own appends keep their order
        mine = [v for v in values if v // 100 == w]
        assert mine == sorted(mine)


async def test_group_commit_packs_concurrent_requests(store: ObjectStore) -> None:
    app = Appender(store, "log/gc/", ManualClock())
    seqs = await asyncio.gather(*(app.append([event(i)]) for i in range(50)))
    objects = [o async for o in read_log(store, "log/gc/")]
    assert len(objects) < 50  # requests shared objects
    assert sorted(await _read_all(store, "log/gc/")) == list(range(50))
    by_seq = {o.seq: {e.json()["n"] for e in o.events} for o in objects}
    for i, seq in enumerate(seqs):  # each request was told the seq of the object holding it
        assert i in by_seq[seq]


async def test_lost_reply_is_recognised_not_duplicated(store: ObjectStore) -> None:
    """The write lands, its reply is lost, the retry gets 412: it is our own write, not a lost race."""
    pending = {keys.log_entry("log/lost/", 1): Fault(LOST_REPLY)}
    faulty = FaultyStore(store, lambda verb, key: pending.pop(key, None) if verb == "put_if_absent" else None)
    app = Appender(faulty, "log/lost/", ManualClock())
    assert [await app.append([event(i)]) for i in range(3)] == [0, 1, 2]
    assert faulty.injected == [("put_if_absent", keys.log_entry("log/lost/", 1), LOST_REPLY)]
    assert await _read_all(store, "log/lost/") == [0, 1, 2]
