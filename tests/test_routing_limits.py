"""Routing (longest prefix, default route, hidden prefixes) and the limits (token bucket,
circuit breaker), exact given the clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.limits import BreakerState, CircuitBreaker, Throttle, TokenBucket
from gateway.routing import (
    InvalidNumber,
    PrefixTable,
    Router,
    hidden_prefixes,
    normalize_number,
)


def router() -> Router:
    return Router([("uk", ["44"], False), ("uk-mobile", ["447", "4475"], False),
                   ("de", ["49"], False), ("rest", [], True)])


@pytest.mark.parametrize(("number", "route", "prefix"), [
    ("447555100001", "uk-mobile", "4475"),
    ("447700900123", "uk-mobile", "447"),
    ("442079460000", "uk", "44"),
    ("4915110000002", "de", "49"),
    ("33612345678", "rest", None),
    ("4", "rest", None),
])
def test_longest_prefix_wins_else_default(number: str, route: str, prefix: str | None) -> None:
    m = router().route_for(number)
    assert (m.route, m.prefix) == (route, prefix)


def test_explain_names_every_matching_prefix() -> None:
    m = router().route_for("447555100001")
    assert m.candidates == (("4475", "uk-mobile"), ("447", "uk-mobile"), ("44", "uk"))
    assert m.reason() == ("longest matching prefix 4475; also matching: 447 (uk-mobile), "
                          "44 (uk)")
    assert router().route_for("33612345678").reason() == "no prefix matches: the default route"
    nowhere = Router([("uk", ["44"], False)]).route_for("33612345678")
    assert nowhere.route is None and "no default route" in nowhere.reason()


def test_normalize_number() -> None:
    assert normalize_number(" +44 (7555) 100-001 ") == "447555100001"
    for bad in ("", "+", "0447555", "44a", "1234567890123456"):
        with pytest.raises(InvalidNumber):
            normalize_number(bad)


def test_prefix_table_first_claim_wins() -> None:
    t = PrefixTable([("44", "a"), ("44", "b")], default="d")
    assert t.match("4412") == ("44", "a")
    assert t.match("33") == (None, "d")


def test_hidden_prefixes() -> None:
    assert hidden_prefixes(["44"] + [f"44{d}" for d in range(10)]) == {
        "44": [f"44{d}" for d in range(10)]}
    assert hidden_prefixes(["44"] + [f"44{d}" for d in range(9)]) == {}
    # covered two levels down: 449 itself is covered by 4490..4499
    deep = ["44"] + [f"44{d}" for d in range(9)] + [f"449{d}" for d in range(10)]
    found = hidden_prefixes(deep)
    assert set(found) == {"44"} and len(found["44"]) == 19
    assert hidden_prefixes(["4", "44"]) == {}
    assert hidden_prefixes(["123456789012345"]) == {}  # the longest E.164 number


# --------------------------------------------------------------------------- token bucket


def test_bucket_paces_after_the_burst() -> None:
    b = TokenBucket(rate=10, burst=3, now=0.0)
    waits = [b.reserve(0.0, max_wait=10.0) for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])
    assert b.reserve(0.0, max_wait=0.35) is None  # would wait 0.4 s
    assert b.refused == 1 and b.granted == 6
    assert b.reserve(0.4, max_wait=0.0) == pytest.approx(0.0)  # the 7th slot falls due at 0.4
    assert b.try_acquire(0.4) is False
    assert b.try_acquire(0.5) is True


def test_bucket_never_exceeds_burst_plus_rate_times_window() -> None:
    b = TokenBucket(rate=50, burst=5, now=0.0)
    due = []
    now = 0.0
    for i in range(2000):  # callers arrive in bunches every 7 ms
        now = (i // 20) * 0.007
        w = b.reserve(now, max_wait=1.0)
        if w is not None:
            due.append(now + w)
    due.sort()
    for i, t in enumerate(due):
        in_window = sum(1 for u in due[i:] if u < t + 1.0)
        assert in_window <= 5 + 50
    assert len(due) > 50


def test_bucket_refills_up_to_burst_only() -> None:
    b = TokenBucket(rate=1, burst=2, now=0.0)
    assert b.available(100.0) == 2.0
    b.reconfigure(rate=5, burst=1, now=100.0)
    assert b.available(100.0) == 1.0
    with pytest.raises(ValueError):
        TokenBucket(0)


# --------------------------------------------------------------------------- breaker


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    cb = CircuitBreaker(threshold=3, cooldown=10.0)
    for t in (0.0, 1.0):
        assert cb.allow(t)
        cb.failure(t)
    assert cb.state(1.5) is BreakerState.CLOSED
    assert cb.allow(2.0)
    cb.failure(2.0)
    assert cb.state(2.0) is BreakerState.OPEN and cb.trips == 1
    assert not cb.allow(11.9)
    assert cb.reopens_at() == 12.0
    assert cb.state(12.0) is BreakerState.HALF_OPEN
    assert cb.allow(12.0)  # the trial
    assert not cb.allow(12.1)  # only one at a time
    cb.failure(12.5)  # the trial failed: open for another cool-down
    assert cb.state(22.4) is BreakerState.OPEN and cb.trips == 2
    assert cb.allow(22.5)
    cb.success(22.6)
    assert cb.state(22.6) is BreakerState.CLOSED and cb.failures == 0


def test_breaker_success_resets_the_count_and_release_frees_the_trial() -> None:
    cb = CircuitBreaker(threshold=2, cooldown=1.0)
    cb.failure(0.0)
    cb.success(0.1)
    cb.failure(0.2)
    assert cb.state(0.2) is BreakerState.CLOSED
    cb.failure(0.3)
    assert cb.state(0.3) is BreakerState.OPEN
    assert cb.allow(1.3)
    cb.release()  # e.g. throttled: no verdict
    assert cb.allow(1.3)


# --------------------------------------------------------------------------- throttle


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))


async def test_throttle_releases_in_order_at_the_pace() -> None:
    loop = asyncio.get_running_loop()
    th = Throttle(rate=100, burst=5)
    released: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        assert await th.admit(max_wait=5.0)
        released.append((i, loop.time()))

    t0 = loop.time()
    await asyncio.gather(*(one(i) for i in range(45)))
    assert [i for i, _ in released] == list(range(45))  # first come, first served
    times = [t for _, t in released]
    assert times[-1] - t0 >= (45 - 5) / 100 - 0.005
    for window in (0.05, 0.1, 0.3):
        assert _max_in_window(times, window) <= 5 + 100 * window + 1
    assert (th.granted, th.refused, th.queued) == (45, 0, 0)


async def test_throttle_refuses_what_would_wait_too_long() -> None:
    th = Throttle(rate=10, burst=2)
    results = await asyncio.gather(*(th.admit(max_wait=0.25) for _ in range(8)))
    # 2 at once, then one every 0.1 s: the 3rd and 4th are within 0.25 s, the rest refused
    assert results == [True, True, True, True, False, False, False, False]
    assert (th.granted, th.refused) == (4, 4)


async def test_throttle_does_not_bunch_after_a_stalled_loop() -> None:
    """Callers queued while the event loop is stuck are not all let through at once when it
    comes back: slots are taken at release time, at most ``burst`` piled up."""
    loop = asyncio.get_running_loop()
    th = Throttle(rate=50, burst=3)
    times: list[float] = []

    async def one() -> None:
        assert await th.admit(max_wait=10.0)
        times.append(loop.time())

    tasks = [asyncio.ensure_future(one()) for _ in range(20)]
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # the loop stalls: 15 slots' worth of time passes
    await asyncio.gather(*tasks)
    for window in (0.02, 0.1, 0.2):
        assert _max_in_window(times, window) <= 3 + 50 * window + 1


async def test_throttle_cancelled_waiter_frees_its_place() -> None:
    th = Throttle(rate=20, burst=1)
    assert await th.admit(0.0)
    waiter = asyncio.ensure_future(th.admit(5.0))
    await asyncio.sleep(0)
    assert th.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await th.admit(1.0)
