"""One asyncio timer for the deadlines of many SIP transactions.

A SIP server holds thousands of transactions at once (each waits out Timer I or D), and every
one has a deadline that moves a few times (100 Trying, G, H, I). One ``loop.call_at`` per
transaction means an asyncio handle, a context copy and a libuv timer per deadline, all of
which the garbage collector walks. :class:`TimerQueue` keeps the deadlines in a heap with
lazy deletion (as :mod:`protocols.tcap_dialogue` does) and arms one loop timer for the
earliest.

An owner is any object with a ``timer_at`` attribute; :meth:`TimerQueue.schedule` sets it and
pushes the deadline; a heap entry whose time no longer equals the owner's ``timer_at`` is
stale and skipped when it comes up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["TimerQueue", "TimerOwner"]


class TimerOwner(Protocol):
    timer_at: float | None


class TimerQueue:
    """Deadlines of many owners on one loop timer; ``fire(owner)`` runs at each."""

    __slots__ = ("_loop", "_fire", "_heap", "_seq", "_handle", "_handle_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[Any], None]) -> None:
        self._loop = loop
        self._fire = fire
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None

    def __len__(self) -> int:
        """Heap entries, stale ones included."""
        return len(self._heap)

    def schedule(self, owner: TimerOwner, at: float | None) -> None:
        """Set ``owner``'s deadline to ``at`` (None: no deadline)."""
        if owner.timer_at == at:
            return
        owner.timer_at = at
        if at is None:
            return
        heapq.heappush(self._heap, (at, next(self._seq), owner))
        if self._handle_at is None or at < self._handle_at:
            self._arm(at)

    def _arm(self, at: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle_at = at
        self._handle = self._loop.call_at(at, self._run)

    def _run(self) -> None:
        self._handle = self._handle_at = None
        heap = self._heap
        now = self._loop.time()
        while heap and heap[0][0] <= now:
            at, _, owner = heapq.heappop(heap)
            if owner.timer_at != at:
                continue  # moved or cleared since: stale
            owner.timer_at = None
            self._fire(owner)
        while heap and heap[0][2].timer_at != heap[0][0]:
            heapq.heappop(heap)  # drop stale entries at the top before arming
        if heap and (self._handle_at is None or heap[0][0] < self._handle_at):
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._handle_at = None
        self._heap.clear()
