"""Customers of the lookup API, their API keys and their limits.

A **customer** is entitled to a set of services (:data:`SERVICES`), has a rate limit (a token
bucket: ``rate`` requests a second, ``burst`` at once), a cap on requests in progress
(``inflight``), a default cache age, may or may not see IMSIs unmasked, and a secret that
signs its batch callbacks.

**API keys** look like ``hlrgw_3f9a0c2b71d4_Jq0...`` (:func:`new_key`): a fixed prefix, a key
id of 12 hex digits, and a secret of 32 random bytes (256 bits, URL-safe base64). The key is
shown once, when issued; the store keeps the key id (public, the primary key: finding a key
is one indexed read) and the SHA-256 of the whole key, compared in constant time. A fast hash
is enough because the secret is random and 256 bits long: there is no dictionary to try and
no brute force within reach, which is what a slow password hash (scrypt, argon2) guards
against; a slow hash would also cost tens of milliseconds of CPU on every request.

**Rotation** (:meth:`Customers.rotate`) issues a new key; the old keys stay valid for a grace
period (24 h by default, so clients can switch without an outage), then stop working.
``grace=0`` ends them at once. **Revocation** (:meth:`Customers.revoke`) ends one key, or
every key of a customer, at once. A gateway caches what it reads about a key for
``cache_ttl`` seconds (5 by default), so a revocation made by ``hlrgw customers`` (another
process) takes effect within that time on every gateway sharing the store.

**Limits** (:class:`Limiter`): an HTTP request takes a token (none: 429 with Retry-After) and
an in-flight slot (none free: 429) and gives the slot back when answered; a batch item waits
for both instead (:meth:`Limiter.acquire`), taking at most half the customer's rate and
half its in-flight cap, so a customer's batches and interactive calls share its limits and
the batches cannot starve the calls.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway.limits import TokenBucket
from gateway.store import ApiKey, Conflict, Customer, Store

__all__ = [
    "DEFAULT_GRACE", "KEY_PREFIX", "SERVICES", "Admission", "Customers", "CustomerError",
    "IssuedKey", "Limiter", "hash_key", "new_key", "parse_key", "parse_services",
]

#: the services a customer may be entitled to
SERVICES = ("hlr", "mnp", "ranges", "port_history")
KEY_PREFIX = "hlrgw_"
DEFAULT_GRACE = 86400.0  # seconds the old keys stay valid after a rotation
_KEY = re.compile(r"hlrgw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CustomerError(ValueError):
    """A customer operation was refused (unknown name, bad service, name taken...)."""


def parse_services(text: str | Iterable[str]) -> frozenset[str]:
    """``"hlr,mnp"`` (or a list) to a set of known services; CustomerError otherwise."""
    items = text.split(",") if isinstance(text, str) else list(text)
    services = frozenset(s.strip() for s in items if s.strip())
    unknown = services - set(SERVICES)
    if unknown:
        raise CustomerError(f"unknown service(s) {', '.join(sorted(unknown))}: the services "
                            f"are {', '.join(SERVICES)}")
    if not services:
        raise CustomerError(f"at least one service is needed ({', '.join(SERVICES)})")
    return services


# --------------------------------------------------------------------------- keys


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256 of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key id, key)."""
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key(key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    m = _KEY.fullmatch(key.strip())
    return m.group(1) if m else None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: ``key`` is shown this once and never stored."""

    customer: Customer
    key_id: str
    key: str
    old_keys_expire_at: float | None = None  # a rotation: when the previous keys stop


# --------------------------------------------------------------------------- registry


@dataclass(slots=True)
class _Cached:
    entry: tuple[ApiKey, Customer] | None
    at: float
    #: the key text whose hash matched the entry's (its hash is not computed again while
    #: the entry is cached; compared in constant time)
    verified: str | None = None


#: what :meth:`Customers.authenticate_cached` answers when the store must be read
MISS: Any = object()


class Customers:
    """Customers and keys over a :class:`~gateway.store.Store` (see the module docstring).

    ``authenticate`` is the request path: a cached read by key id, then a constant-time
    comparison of hashes (of the key text, once per cached entry: then of the text)."""

    def __init__(self, store: Store, *, cache_ttl: float = 5.0, cache_size: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    # ---- the request path

    async def authenticate(self, key: str) -> Customer | None:
        """The active customer holding this valid key, else None."""
        found = self.authenticate_cached(key)
        if found is not MISS:
            return found
        key_id = parse_key(key)
        if key_id is None:  # pragma: no cover - authenticate_cached answered None
            return None
        now = self.clock()
        cached = _Cached(await self.store.api_key(key_id), now)
        self._cache[key_id] = cached
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return self._check(cached, key, now)

    def authenticate_cached(self, key: str) -> Customer | None:
        """:meth:`authenticate` without a coroutine when the key's entry is cached and
        fresh; :data:`MISS` when the store must be read (then await
        :meth:`authenticate`)."""
        key_id = parse_key(key)
        if key_id is None:
            return None
        cached = self._cache.get(key_id)
        if cached is None:
            return MISS
        now = self.clock()
        if now - cached.at >= self.cache_ttl:
            return MISS
        self._cache.move_to_end(key_id)
        return self._check(cached, key, now)

    @staticmethod
    def _check(cached: _Cached, key: str, now: float) -> Customer | None:
        if cached.entry is None:
            return None
        stored, customer = cached.entry
        verified = cached.verified
        if verified is None or not hmac.compare_digest(verified.encode(), key.encode()):
            if not hmac.compare_digest(stored.key_hash, hash_key(key.strip())):
                return None
            cached.verified = key
        if not stored.valid_at(now) or not customer.active:
            return None
        return customer

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached keys (all, or one): the next request reads the store."""
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    # ---- administration (``hlrgw customers``)

    async def add(self, name: str, services: str | Iterable[str], *, rate: float = 50.0,
                  burst: int | None = None, inflight: int = 20, see_imsi: bool = False,
                  cache_age: float | None = None) -> IssuedKey:
        """A new customer and its first key."""
        if not _NAME.fullmatch(name):
            raise CustomerError(f"{name!r}: a name is 1 to 64 letters, digits, '.', '_' or "
                                "'-', starting with a letter or digit")
        if rate <= 0:
            raise CustomerError("--rate must be > 0")
        if inflight < 1:
            raise CustomerError("--inflight must be at least 1")
        if cache_age is not None and cache_age < 0:
            raise CustomerError("--cache-age must be >= 0")
        burst = max(1, math.ceil(rate)) if burst is None else burst
        if burst < 1:
            raise CustomerError("--burst must be at least 1")
        try:
            customer = await self.store.create_customer(
                name=name, services=parse_services(services), rate=rate, burst=burst,
                inflight=inflight, see_imsi=see_imsi, cache_age=cache_age,
                callback_secret=new_secret(), at=self.clock())
        except Conflict:
            raise CustomerError(f"a customer named {name!r} exists already") from None
        return await self._issue(customer)

    async def _issue(self, customer: Customer, expire_others_at: float | None = None
                     ) -> IssuedKey:
        for _ in range(5):
            key_id, key = new_key()
            try:
                await self.store.add_api_key(
                    ApiKey(key_id, customer.id, hash_key(key), self.clock()),
                    expire_others_at=expire_others_at)
            except Conflict:  # 48-bit key id taken: draw again
                continue
            return IssuedKey(customer, key_id, key, expire_others_at)
        raise CustomerError("could not draw a free key id")  # pragma: no cover

    async def get(self, name_or_id: str | int) -> Customer:
        """The customer by name (or numeric id); CustomerError when unknown."""
        customer = None
        if isinstance(name_or_id, int):
            customer = await self.store.get_customer(name_or_id)
        else:
            customer = await self.store.customer_by_name(name_or_id)
        if customer is None:
            raise CustomerError(f"no customer {name_or_id!r}")
        return customer

    async def list(self) -> list[tuple[Customer, list[ApiKey]]]:
        return [(c, await self.store.api_keys(c.id)) for c in await self.store.list_customers()]

    async def rotate(self, name: str, grace: float = DEFAULT_GRACE) -> IssuedKey:
        """A new key for the customer; its other keys stop being valid ``grace`` seconds
        from now (0: at once)."""
        if grace < 0:
            raise CustomerError("the grace period must be >= 0")
        customer = await self.get(name)
        issued = await self._issue(customer, expire_others_at=self.clock() + grace)
        self.forget()
        return issued

    async def revoke(self, name_or_key_id: str) -> tuple[Customer, list[str]]:
        """Revoke a key by its id, or every key of a customer by name; the customer and the
        key ids revoked now."""
        target = name_or_key_id.strip()
        key_id = parse_key(target) or (target if re.fullmatch(r"[0-9a-f]{12}", target)
                                       else None)
        now = self.clock()
        if key_id is not None:
            found = await self.store.api_key(key_id)
            if found is not None:
                await self.store.revoke_api_key(key_id, now)
                self.forget(key_id)
                return found[1], [key_id]
        customer = await self.store.customer_by_name(target)
        if customer is None:
            raise CustomerError(f"no customer or key id {target!r}")
        keys = [k.key_id for k in await self.store.api_keys(customer.id) if k.valid_at(now)]
        await self.store.revoke_customer_keys(customer.id, now)
        self.forget()
        return customer, keys

    async def rotate_callback_secret(self, name: str) -> tuple[Customer, str]:
        """A new secret for signing the customer's batch callbacks (shown once here)."""
        customer = await self.get(name)
        secret = new_secret()
        updated = await self.store.update_customer(customer.id, callback_secret=secret)
        assert updated is not None
        return updated, secret

    async def update(self, name: str, **changes: object) -> Customer:
        """Change a customer's settings (services, rate, burst, inflight, see_imsi,
        cache_age, disabled_at)."""
        customer = await self.get(name)
        if "services" in changes:
            changes["services"] = parse_services(changes["services"])  # type: ignore[arg-type]
        updated = await self.store.update_customer(customer.id, **changes)
        assert updated is not None
        self.forget()
        return updated


def new_secret() -> str:
    """A callback signing secret: 32 random bytes, URL-safe base64, prefixed ``whsec_``."""
    return "whsec_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class Admission:
    """The limiter's answer to an HTTP request: admitted, or refused with the limit hit
    (``"rate"`` or ``"inflight"``) and the seconds to wait before trying again."""

    admitted: bool
    limit: str | None = None
    retry_after: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """Retry-After in whole seconds (at least 1)."""
        return str(max(1, math.ceil(self.retry_after)))


_ADMITTED = Admission(True)


class _State:
    __slots__ = ("bucket", "inflight", "cap", "batch_bucket", "batch_inflight", "batch_cap",
                 "waiters")

    def __init__(self, customer: Customer, now: float, share: float) -> None:
        self.bucket = TokenBucket(customer.rate, customer.burst, now)
        self.inflight = 0  # every request in progress, batch items included
        self.cap = customer.inflight
        self.batch_bucket = TokenBucket(customer.rate * share, 1, now)  # the batch's pace
        self.batch_inflight = 0
        self.batch_cap = max(1, int(customer.inflight * share))
        self.waiters: deque[asyncio.Future[None]] = deque()  # batch items waiting for a slot

    def batch_may_start(self) -> bool:
        return self.inflight < self.cap and self.batch_inflight < self.batch_cap


class Limiter:
    """Per-customer rate (token bucket) and in-flight cap (see the module docstring).

    Batch items (:meth:`acquire`) take their tokens and slots from the same limits as the
    customer's HTTP requests, but at most ``batch_share`` of them: at most that share of the
    in-flight cap (at least one) and that share of the rate, so a customer's batch never
    starves its own interactive calls (or its polling of the batch)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 batch_share: float = 0.5) -> None:
        if not 0 < batch_share <= 1:
            raise ValueError("batch_share must be in (0, 1]")
        self.clock = clock
        self.batch_share = batch_share
        self._states: dict[int, _State] = {}

    def _state(self, customer: Customer, now: float | None = None) -> _State:
        if now is None:
            now = self.clock()
        st = self._states.get(customer.id)
        if st is None:
            st = self._states[customer.id] = _State(customer, now, self.batch_share)
        elif st.bucket.rate != customer.rate or st.bucket.burst != customer.burst:
            st.bucket.reconfigure(customer.rate, customer.burst, now)
            st.batch_bucket.reconfigure(customer.rate * self.batch_share, 1, now)
        if st.cap != customer.inflight:
            st.cap = customer.inflight
            st.batch_cap = max(1, int(customer.inflight * self.batch_share))
            self._wake(st)
        return st

    def admit(self, customer: Customer) -> Admission:
        """Take a token and an in-flight slot now, or say which limit refused and for how
        long. An admitted request must call :meth:`release` when answered."""
        now = self.clock()
        st = self._state(customer, now)
        if st.inflight >= st.cap:
            return Admission(False, "inflight", 1.0)
        if not st.bucket.try_acquire(now):
            # the time until one whole token is back
            wait = (1.0 - st.bucket.available(now)) / st.bucket.rate
            return Admission(False, "rate", wait)
        st.inflight += 1
        return _ADMITTED  # (one frozen answer: building one costs a dataclass __init__)

    def release(self, customer: Customer, *, batch: bool = False) -> None:
        """Give back an in-flight slot taken by :meth:`admit` (or, with ``batch``, by
        :meth:`acquire`)."""
        st = self._states.get(customer.id)
        if st is None:
            return
        if st.inflight > 0:
            st.inflight -= 1
        if batch and st.batch_inflight > 0:
            st.batch_inflight -= 1
        self._wake(st)

    def in_flight(self, customer: Customer, *, batch: bool = False) -> int:
        st = self._states.get(customer.id)
        if st is None:
            return 0
        return st.batch_inflight if batch else st.inflight

    @staticmethod
    def _wake(st: _State) -> None:
        while st.waiters and st.batch_may_start():
            fut = st.waiters.popleft()
            if not fut.done():
                st.inflight += 1  # handed over: the waiter owns the slot
                st.batch_inflight += 1
                fut.set_result(None)

    async def acquire(self, customer: Customer) -> None:
        """For a batch item: wait for an in-flight slot (within the batch share), then for
        the batch's pace, then for a token of the customer's bucket. Call
        ``release(customer, batch=True)`` when done. Cancellation leaves nothing taken."""
        st = self._state(customer)
        if st.batch_may_start() and not st.waiters:
            st.inflight += 1
            st.batch_inflight += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            st.waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    self.release(customer, batch=True)  # handed over as we were cancelled
                raise
        try:
            wait = st.batch_bucket.reserve(self.clock(), max_wait=math.inf)
            if wait:
                await asyncio.sleep(wait)
            while not st.bucket.try_acquire(self.clock()):  # interactive calls took them
                await asyncio.sleep(max(0.001, (1.0 - st.bucket.available(self.clock()))
                                        / st.bucket.rate))
        except BaseException:
            self.release(customer, batch=True)
            raise

    @asynccontextmanager
    async def slot(self, customer: Customer) -> AsyncIterator[None]:
        """``async with limiter.slot(customer):`` :meth:`acquire`, then release."""
        await self.acquire(customer)
        try:
            yield
        finally:
            self.release(customer, batch=True)
