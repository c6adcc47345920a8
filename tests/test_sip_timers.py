"""TimerQueue: many deadlines on one loop timer (heap with lazy deletion)."""

from __future__ import annotations

import asyncio

from gateway.sip.timers import TimerQueue


class Owner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.timer_at: float | None = None


async def test_fires_in_order_once_and_follows_moves() -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    q = TimerQueue(loop, lambda o: fired.append(o.name))
    now = loop.time()
    a, b, c, d = Owner("a"), Owner("b"), Owner("c"), Owner("d")
    q.schedule(a, now + 0.06)
    q.schedule(b, now + 0.02)
    q.schedule(c, now + 0.04)
    q.schedule(d, now + 0.03)
    q.schedule(c, now + 0.01)  # moved earlier: fires first, once
    q.schedule(b, now + 0.08)  # moved later
    q.schedule(d, None)  # cleared: never fires
    q.schedule(a, now + 0.05)
    q.schedule(a, now + 0.06)  # back to an old time: still once
    await asyncio.sleep(0.12)
    assert fired == ["c", "a", "b"]
    assert all(o.timer_at is None for o in (a, b, c, d))
    assert len(q) == 0  # stale entries are swept as their time comes


async def test_rescheduling_from_the_callback() -> None:
    loop = asyncio.get_running_loop()
    times: list[float] = []
    owner = Owner("x")

    def fire(o: Owner) -> None:
        times.append(loop.time())
        if len(times) < 3:
            q.schedule(o, loop.time() + 0.01)

    q = TimerQueue(loop, fire)
    q.schedule(owner, loop.time() + 0.01)
    other = Owner("y")
    q.schedule(other, loop.time() + 0.5)
    await asyncio.sleep(0.1)
    assert len(times) == 3
    q.close()
    await asyncio.sleep(0.01)
    assert len(times) == 3
