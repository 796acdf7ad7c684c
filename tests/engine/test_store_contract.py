"""One contract for every ObjectStore backend, run on a local folder and on S3 (moto over HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import ObjectNotFound, PreconditionFailed, StoreUnavailable
from engine.store import FaultyStore, ObjectStore
from engine.store.faulty import ERROR, LOST_REPLY, Fault


async def test_put_get_head_delete(store: ObjectStore) -> None:
    etag = await store.put("a/b/c", b"hello")
    blob = await store.get("a/b/c")
    assert blob.data == b"hello"
    assert blob.etag == etag
    info = await store.head("a/b/c")
    assert (info.key, info.size, info.etag) == ("a/b/c", 5, etag)
    assert await store.get_range("a/b/c", 1, 4) == b"ell"
    assert await store.get_range("a/b/c", 3, 100) == b"lo"
    await store.delete("a/b/c")
    await store.delete("a/b/c")  # deleting a missing key is not an error
    with pytest.raises(ObjectNotFound):
        await store.get("a/b/c")
    with pytest.raises(ObjectNotFound):
        await store.head("a/b/c")
    with pytest.raises(ObjectNotFound):
        await store.get_range("a/b/c", 0, 1)


async def test_put_if_absent_is_create_only(store: ObjectStore) -> None:
    await store.put_if_absent("log/0", b"first")
    with pytest.raises(PreconditionFailed):
        await store.put_if_absent("log/0", b"second")
    assert (await store.get("log/0")).data == b"first"


async def test_put_if_match_compares_and_swaps(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.put_if_match("cp", b"x", "nope")
    e1 = await store.put_if_absent("cp", b"v1")
    e2 = await store.put_if_match("cp", b"v2", e1)
    assert e2 != e1
    with pytest.raises(PreconditionFailed):
        await store.put_if_match("cp", b"v3", e1)  # stale etag
    assert (await store.get("cp")).data == b"v2"
    assert (await store.get("cp")).etag == e2


async def test_list_in_key_order_with_start_after(store: ObjectStore) -> None:
    for name in ["p/00003", "p/00001", "p/00002", "q/00001", "p/sub/x", "pp/1"]:
        await store.put(name, name.encode())
    listed = [o.key async for o in store.list("p/")]
    assert listed == ["p/00001", "p/00002", "p/00003", "p/sub/x"]
    after = [o.key async for o in store.list("p/", start_after="p/00001")]
    assert after == ["p/00002", "p/00003", "p/sub/x"]
    assert [o.key async for o in store.list("nothing/")] == []
    sizes = {o.key: o.size async for o in store.list("q/")}
    assert sizes == {"q/00001": 7}


async def test_list_pages_past_a_thousand_keys(store: ObjectStore) -> None:
    await asyncio.gather(*(store.put(f"many/{i:05d}", b"") for i in range(1100)))
    keys = [o.key async for o in store.list("many/")]
    assert keys == [f"many/{i:05d}" for i in range(1100)]


async def test_concurrent_put_if_absent_has_exactly_one_winner(store: ObjectStore) -> None:
    """N writers race for one key, 200 times over: every round has exactly one winner."""
    writers = 4

    async def attempt(key: str, n: int) -> bool:
        try:
            await store.put_if_absent(key, f"writer {n}".encode())
            return True
        except PreconditionFailed:
            return False

    for round_ in range(200):
        key = f"race/{round_:05d}"
        wins = await asyncio.gather(*(attempt(key, n) for n in range(writers)))
        assert sum(wins) == 1, f"round {round_}: {sum(wins)} winners"
        winner = wins.index(True)
        assert (await store.get(key)).data == f"writer {winner}".encode()


async def test_faulty_store_injects_errors_and_lost_replies(store: ObjectStore) -> None:
    faults = {("put_if_absent", "f/1"): Fault(ERROR), ("put_if_absent", "f/2"): Fault(LOST_REPLY)}
    faulty = FaultyStore(store, lambda verb, key: faults.pop((verb, key), None))
    with pytest.raises(StoreUnavailable):
        await faulty.put_if_absent("f/1", b"x")
    with pytest.raises(ObjectNotFound):
        await store.get("f/1")  # an error fault never reaches the store
    with pytest.raises(StoreUnavailable):
        await faulty.put_if_absent("f/2", b"y")
    assert (await store.get("f/2")).data == b"y"  # the lost reply's write did happen
    assert faulty.injected == [("put_if_absent", "f/1", ERROR), ("put_if_absent", "f/2", LOST_REPLY)]
