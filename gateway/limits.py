"""Throttles and circuit breakers, deterministic given a clock (every call takes ``now``).

- :class:`Throttle`: the TPS cap the engine uses: asyncio callers queue, first come first
  served, and are let through as slots free up in real time (robust to event-loop stalls).
- :class:`TokenBucket`: the arithmetic under it, a TPS cap with a burst allowance.
  :meth:`~TokenBucket.reserve` books the next free slot and says how long to wait for it (or
  refuses when the wait would exceed what the caller can afford), so over any interval of T
  seconds at most ``burst + rate * T`` reservations fall due, however the callers bunch up.
  Partner HLRs and SS7 firewalls throttle; this keeps us under their limits.
- :class:`CircuitBreaker`: after ``threshold`` failures in a row the method is skipped for
  ``cooldown`` seconds (OPEN); then one trial is let through (HALF_OPEN): success closes the
  breaker, failure opens it for another cool-down.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass

__all__ = ["BreakerState", "CircuitBreaker", "Throttle", "TokenBucket"]


class TokenBucket:
    """A TPS cap: ``rate`` per second, ``burst`` at once (see the module docstring)."""

    __slots__ = ("rate", "burst", "_tokens", "_at", "granted", "refused")

    def __init__(self, rate: float, burst: int = 1, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, not {burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._tokens = float(burst)  # may go negative: slots booked ahead
        self._at = now
        self.granted = 0
        self.refused = 0

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now

    def reserve(self, now: float, max_wait: float = 0.0) -> float | None:
        """Book one slot: the seconds to wait before using it (0.0: now), or None (nothing
        booked) when that would be more than ``max_wait``."""
        self._refill(now)
        tokens = self._tokens - 1.0
        wait = 0.0 if tokens >= 0 else -tokens / self.rate
        if wait > max_wait + 1e-12:
            self.refused += 1
            return None
        self._tokens = tokens
        self.granted += 1
        return wait

    def try_acquire(self, now: float) -> bool:
        """Take a slot only if it is free now."""
        return self.reserve(now, 0.0) is not None

    def take(self, now: float) -> bool:
        """Take a slot if one is free now (not counted in :attr:`granted`/:attr:`refused`)."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def give_back(self) -> None:
        """Return a slot taken by :meth:`take` and not used."""
        self._tokens = min(float(self.burst), self._tokens + 1.0)

    def available(self, now: float) -> float:
        """Slots free now (negative: booked ahead)."""
        self._refill(now)
        return self._tokens

    def reconfigure(self, rate: float, burst: int, now: float) -> None:
        """New cap (on reload), keeping what is booked."""
        self._refill(now)
        self.rate = float(rate)
        self.burst = int(burst)
        self._tokens = min(self._tokens, float(burst))


class Throttle:
    """A TPS cap for asyncio callers, first come first served: :meth:`admit` returns at
    once while a slot is free, else queues the caller until one is, and refuses (False)
    when the queue ahead would take more than ``max_wait``.

    Slots are taken when the caller is released, at the loop's actual time, never booked
    ahead: so even across an event-loop stall (tokens then pile up to ``burst`` at most),
    over any T seconds at most ``burst + rate * T`` callers are let through.
    """

    __slots__ = ("bucket", "_waiters", "_timer", "granted", "refused")

    def __init__(self, rate: float, burst: int = 1) -> None:
        self.bucket = TokenBucket(rate, burst, _loop_time())
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.granted = 0
        self.refused = 0

    @property
    def rate(self) -> float:
        return self.bucket.rate

    @property
    def burst(self) -> int:
        return self.bucket.burst

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def reconfigure(self, rate: float, burst: int) -> None:
        self.bucket.reconfigure(rate, burst, _loop_time())

    async def admit(self, max_wait: float) -> bool:
        """Wait for a slot (at most about ``max_wait`` seconds); False when refused."""
        now = _loop_time()
        bucket = self.bucket
        if not self._waiters and bucket.take(now):
            self.granted += 1
            return True
        ahead = len(self._waiters) + 1 - max(0.0, bucket.available(now))
        if ahead / bucket.rate > max_wait + 1e-9:
            self.refused += 1
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._arm(now)
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            else:  # released just as we were cancelled: give the slot to the next one
                self.bucket.give_back()
                self._release()
            raise
        self.granted += 1
        return True

    def _arm(self, now: float) -> None:
        if self._timer is not None or not self._waiters:
            return
        need = 1.0 - self.bucket.available(now)
        delay = max(0.0, need / self.bucket.rate)
        self._timer = asyncio.get_running_loop().call_later(delay, self._release)

    def _release(self) -> None:
        self._timer = None
        now = _loop_time()
        while self._waiters:
            fut = self._waiters[0]
            if fut.done():  # cancelled meanwhile
                self._waiters.popleft()
                continue
            if not self.bucket.take(now):
                break
            self._waiters.popleft()
            fut.set_result(None)
        self._arm(now)


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # traffic flows
    OPEN = "open"  # skipped until the cool-down ends
    HALF_OPEN = "half_open"  # one trial in flight


@dataclass(slots=True)
class CircuitBreaker:
    """Skip a failing method for a cool-down (see the module docstring)."""

    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0  # in a row
    opened_at: float | None = None
    trial: bool = False  # a HALF_OPEN trial is in flight
    trips: int = 0

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now < self.opened_at + self.cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allow(self, now: float) -> bool:
        """Whether a call may go through now; in HALF_OPEN only one trial at a time."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self.trial:
            return False
        self.trial = True
        return True

    def success(self, now: float) -> None:
        self.failures = 0
        self.opened_at = None
        self.trial = False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.trial or (self.opened_at is None and self.failures >= self.threshold):
            self.opened_at = now
            self.trips += 1
        self.trial = False

    def release(self) -> None:
        """A trial ended without a verdict (e.g. throttled): let another one try."""
        self.trial = False

    def reopens_at(self) -> float | None:
        return None if self.opened_at is None else self.opened_at + self.cooldown
