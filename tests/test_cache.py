"""The answer cache, the same tests for both engines (in-process, and a real Redis), and
single-flight."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.cache import Cache, CacheError, MemoryCache, RedisCache, SingleFlight, open_cache
from tests.redisserver import redis_server  # noqa: F401  (a fixture)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def redis_url(redis_server) -> str:  # noqa: F811
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
async def cache_and_clock(request):
    clock = Clock()
    if request.param == "memory":
        cache: Cache = MemoryCache(clock=clock)
    else:
        url = request.getfixturevalue("redis_url")
        cache = RedisCache(url, namespace=f"test-{uuid.uuid4().hex}:", clock=clock)
    yield cache, clock
    await cache.clear()
    await cache.close()


async def test_set_get_and_max_age(cache_and_clock) -> None:
    cache, clock = cache_and_clock
    doc = {"status": "connected", "imsi": "234150555100001", "nested": {"a": [1, 2]}}
    assert await cache.get("k") is None
    await cache.set("k", doc, ttl=60)
    entry = await cache.get("k")
    assert entry is not None and entry.value == doc and entry.stored_at == clock.t
    clock.t += 10
    assert (await cache.get("k", max_age=10)).age(clock.t) == pytest.approx(10)
    assert await cache.get("k", max_age=9.5) is None  # too old for this reader
    assert (await cache.get("k", max_age=None)) is not None  # any age while it lives
    assert (cache.hits, cache.misses) == (3, 2)


async def test_entries_expire_with_their_ttl(cache_and_clock) -> None:
    cache, clock = cache_and_clock
    await cache.set("k", {"v": 1}, ttl=0.3)
    if isinstance(cache, MemoryCache):
        clock.t += 0.31
    else:
        await asyncio.sleep(0.45)  # Redis expires on its own clock (SET ... PX)
    assert await cache.get("k") is None


async def test_ttl_zero_keeps_nothing_and_delete_removes(cache_and_clock) -> None:
    cache, _ = cache_and_clock
    await cache.set("a", {"v": 1}, ttl=0)
    assert await cache.get("a") is None
    await cache.set("b", {"v": 2}, ttl=60)
    await cache.delete("b")
    assert await cache.get("b") is None


async def test_stored_at_given_by_the_writer(cache_and_clock) -> None:
    cache, clock = cache_and_clock
    await cache.set("k", {"v": 1}, ttl=60, stored_at=clock.t - 30)
    assert await cache.get("k", max_age=29) is None
    assert (await cache.get("k", max_age=31)).value == {"v": 1}


async def test_clear_drops_only_this_namespace(redis_url) -> None:
    a = RedisCache(redis_url, namespace="a-" + uuid.uuid4().hex + ":")
    b = RedisCache(redis_url, namespace="b-" + uuid.uuid4().hex + ":")
    try:
        await a.set("k", {"v": "a"}, 60)
        await b.set("k", {"v": "b"}, 60)
        await a.clear()
        assert await a.get("k") is None
        assert (await b.get("k")).value == {"v": "b"}
    finally:
        await b.clear()
        await a.close()
        await b.close()


async def test_memory_cache_is_bounded_lru() -> None:
    cache = MemoryCache(max_entries=3)
    for k in "abc":
        await cache.set(k, {"k": k}, 60)
    await cache.get("a")  # a is now the most recent
    await cache.set("d", {"k": "d"}, 60)
    assert len(cache) == 3
    assert await cache.get("b") is None
    assert (await cache.get("a")).value == {"k": "a"}


async def test_redis_down_is_a_miss_not_an_error(caplog) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        await cache.set("k", {"v": 1}, 60)
        assert await cache.get("k") is None
        assert cache.errors == 2
        assert not await cache.ping()
        assert "answering without the cache" in caplog.text
    finally:
        await cache.close()


def test_open_cache_by_scheme(redis_url) -> None:
    assert isinstance(open_cache("memory://"), MemoryCache)
    assert isinstance(open_cache(redis_url), RedisCache)
    with pytest.raises(CacheError, match="memory, redis or rediss"):
        open_cache("memcached://127.0.0.1")


# --------------------------------------------------------------------------- single-flight


async def test_concurrent_calls_share_one_run() -> None:
    sf: SingleFlight[dict] = SingleFlight()
    runs = 0
    gate = asyncio.Event()

    async def query() -> dict:
        nonlocal runs
        runs += 1
        await gate.wait()
        return {"answer": runs}

    tasks = [asyncio.create_task(sf.run("447555100001", query)) for _ in range(50)]
    await asyncio.sleep(0.01)
    assert len(sf) == 1
    gate.set()
    results = await asyncio.gather(*tasks)
    assert runs == 1
    assert [r for r, _ in results] == [{"answer": 1}] * 50
    assert sum(1 for _, leader in results if leader) == 1
    assert sf.joined == 49
    assert len(sf) == 0
    # the flight is over: the next call runs again
    gate.set()
    assert (await sf.run("447555100001", query)) == ({"answer": 2}, True)


async def test_different_keys_do_not_share() -> None:
    sf: SingleFlight[str] = SingleFlight()

    async def q(k: str) -> str:
        await asyncio.sleep(0.01)
        return k

    out = await asyncio.gather(sf.run("a", lambda: q("a")), sf.run("b", lambda: q("b")))
    assert out == [("a", True), ("b", True)]


async def test_an_error_reaches_every_caller_and_is_not_kept() -> None:
    sf: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def boom() -> int:
        await gate.wait()
        raise ValueError("no answer")

    tasks = [asyncio.create_task(sf.run("k", boom)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)

    async def ok() -> int:
        return 7

    assert await sf.run("k", ok) == (7, True)


async def test_a_cancelled_follower_leaves_the_flight_running() -> None:
    sf: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    leader = asyncio.create_task(sf.run("k", slow))
    await asyncio.sleep(0)
    follower = asyncio.create_task(sf.run("k", slow))
    await asyncio.sleep(0)
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower
    gate.set()
    assert await leader == (1, True)


async def test_a_cancelled_leader_fails_its_followers_instead_of_hanging() -> None:
    sf: SingleFlight[int] = SingleFlight()

    async def forever() -> int:
        await asyncio.Event().wait()
        return 0

    leader = asyncio.create_task(sf.run("k", forever))
    await asyncio.sleep(0)
    follower = asyncio.create_task(sf.run("k", forever))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        await asyncio.wait_for(follower, 1)
