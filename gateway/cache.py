"""The answer cache and single-flight.

Two engines behind one interface (:class:`Cache`), chosen by ``[cache] url``:

- ``memory://`` (the default, :class:`MemoryCache`): in-process, bounded (least recently
  used entries go first), each entry dropped when its time to live runs out;
- ``redis://HOST:PORT/DB`` or ``rediss://...`` (:class:`RedisCache`, redis-py's asyncio
  client): the scale-out engine, shared by every gateway pointed at the same Redis. Entries
  are JSON under ``hlrgw:`` keys with Redis' own expiry (``SET ... PX``). When Redis cannot
  be reached a read is a miss and a write is dropped (logged, at most once a minute): the
  lookup goes to the network instead of failing.

An entry is a JSON-ready ``dict`` and the wall-clock time it was stored: the reader decides
how old an answer it takes (:meth:`Cache.get` with ``max_age``), so one entry serves
customers with different default ages and a request's ``max_age``.

:class:`SingleFlight` makes concurrent lookups of one key share one network query: the first
caller (the leader) runs it, the others wait for its outcome, success or exception alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

__all__ = ["Cache", "CacheEntry", "CacheError", "MemoryCache", "RedisCache", "SingleFlight",
           "open_cache"]

log = logging.getLogger(__name__)

T = TypeVar("T")
KEY_PREFIX = "hlrgw:"


class CacheError(RuntimeError):
    """The cache URL is unusable."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    value: dict[str, Any]
    stored_at: float  # time.time() when it was stored

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)


class Cache(ABC):
    """See the module docstring."""

    kind = "cache"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def get(self, key: str, max_age: float | None = None) -> CacheEntry | None:
        """The entry for ``key`` if it is at most ``max_age`` seconds old (any age while it
        lives when None); else None."""
        entry = await self._get(key)
        if entry is not None and (max_age is None or entry.age(self.clock()) <= max_age):
            self.hits += 1
            return entry
        self.misses += 1
        return None

    async def set(self, key: str, value: dict[str, Any], ttl: float,
                  stored_at: float | None = None) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds (nothing when ttl <= 0)."""
        if ttl <= 0:
            return
        await self._set(key, CacheEntry(value, self.clock() if stored_at is None
                                        else stored_at), ttl)

    @abstractmethod
    async def _get(self, key: str) -> CacheEntry | None: ...

    @abstractmethod
    async def _set(self, key: str, entry: CacheEntry, ttl: float) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def clear(self) -> None:
        """Drop every entry of this gateway's namespace."""

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class MemoryCache(Cache):
    """In-process: at most ``max_entries`` entries, least recently used first out."""

    kind = "memory"

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time
                 ) -> None:
        super().__init__(clock)
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[CacheEntry, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def _get(self, key: str) -> CacheEntry | None:
        item = self._data.get(key)
        if item is None:
            return None
        entry, expires = item
        if self.clock() >= expires:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry

    async def _set(self, key: str, entry: CacheEntry, ttl: float) -> None:
        self._data[key] = (entry, entry.stored_at + ttl)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def clear(self) -> None:
        self._data.clear()


class RedisCache(Cache):
    """Redis through redis-py's asyncio client (see the module docstring)."""

    kind = "redis"

    def __init__(self, url: str, *, namespace: str = KEY_PREFIX, timeout: float = 0.5,
                 clock: Callable[[], float] = time.time, max_connections: int = 64) -> None:
        super().__init__(clock)
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise CacheError("the redis package is needed for a redis:// cache") from exc
        self.url = url
        self.namespace = namespace
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            max_connections=max_connections, decode_responses=False,
            health_check_interval=30)
        self._warned_at = -1e9

    def _warn(self, what: str, exc: Exception) -> None:
        self.errors += 1
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("redis cache: %s failed (%s: %s); answering without the cache",
                        what, type(exc).__name__, exc)

    async def _get(self, key: str) -> CacheEntry | None:
        try:
            raw = await self._redis.get(self.namespace + key)
        except Exception as exc:  # any redis or connection error: a miss
            self._warn("a read", exc)
            return None
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            return CacheEntry(doc["v"], float(doc["t"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def _set(self, key: str, entry: CacheEntry, ttl: float) -> None:
        body = json.dumps({"v": entry.value, "t": entry.stored_at}, separators=(",", ":"))
        try:
            await self._redis.set(self.namespace + key, body, px=max(1, int(ttl * 1000)))
        except Exception as exc:
            self._warn("a write", exc)

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(self.namespace + key)
        except Exception as exc:
            self._warn("a delete", exc)

    async def clear(self) -> None:
        try:
            keys = [k async for k in self._redis.scan_iter(match=self.namespace + "*",
                                                           count=1000)]
            if keys:
                await self._redis.delete(*keys)
        except Exception as exc:
            self._warn("clear", exc)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def open_cache(url: str, *, clock: Callable[[], float] = time.time) -> Cache:
    """The cache for ``[cache] url``: ``memory://`` or ``redis://`` / ``rediss://``."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryCache(clock=clock)
    if scheme in ("redis", "rediss"):
        return RedisCache(url, clock=clock)
    raise CacheError(f"{url!r}: the cache URL scheme must be memory, redis or rediss")


class SingleFlight(Generic[T]):
    """Concurrent calls with one key share one run (see the module docstring)."""

    def __init__(self) -> None:
        # key -> the future followers wait on; None while the leader runs alone (the usual
        # case: the future is made when a first follower comes)
        self._flights: dict[str, asyncio.Future[T] | None] = {}
        self.joined = 0

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``fn()``'s outcome and whether this call ran it (the leader). A follower that is
        cancelled leaves the flight running for the others; a cancelled leader passes its
        cancellation on to the followers as an error, never leaving them waiting."""
        if not self.lead(key):
            return await self.follow(key), False
        try:
            result = await fn()
        except BaseException as exc:
            self.fail(key, exc)
            raise
        self.finish(key, result)
        return result, True

    # the same in steps, for a leader that runs the work in its own coroutine (no
    # coroutine for ``fn`` to wrap it): ``if sf.lead(key): try: r = await work() except
    # BaseException as e: sf.fail(key, e); raise; sf.finish(key, r)`` else
    # ``r = await sf.follow(key)``

    def lead(self, key: str) -> bool:
        """True, and the caller is the leader of ``key`` (it must :meth:`finish` or
        :meth:`fail`); False when a flight of ``key`` is running (:meth:`follow` it)."""
        flights = self._flights
        if key in flights:
            return False
        flights[key] = None
        return True

    def follow(self, key: str) -> Awaitable[T]:
        """What to await for the outcome of the flight of ``key`` running now."""
        flights = self._flights
        flight = flights[key]
        if flight is None:
            flight = flights[key] = asyncio.get_running_loop().create_future()
        self.joined += 1
        return asyncio.shield(flight)

    def finish(self, key: str, result: T) -> None:
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.set_result(result)

    def fail(self, key: str, exc: BaseException) -> None:
        flight = self._flights.pop(key, None)
        if flight is not None and not flight.done():
            if isinstance(exc, asyncio.CancelledError):
                flight.set_exception(RuntimeError("the shared lookup was cancelled"))
            else:
                flight.set_exception(exc)
            flight.exception()  # retrieved: no "never retrieved" warning
