"""A link set: the M3UA associations toward one destination (one SGP pair, one HLR network).

:meth:`LinkSet.pick` chooses the association a message goes on:

- **loadshare** (RFC 4666 §1.4.2.4 / §4.3.4.3 Loadshare traffic mode, here at the ASP): among the
  ASP-ACTIVE associations, by rendezvous (highest-random-weight) hashing of the key, the TCAP
  dialogue id. Every message of a dialogue takes the same association, and when an association
  comes or goes only the dialogues mapped to it move;
- **override** (Override traffic mode): the first ASP-ACTIVE association in priority order
  (the order they were added), the others standing by for fail-over.

When none is ASP-ACTIVE, :meth:`LinkSet.pick` raises :class:`LinkSetDown`. When an association
leaves ASP-ACTIVE, the loss listeners hear it at once, so the TCAP layer can fail the dialogues
in flight on it instead of letting them time out.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import zlib
from collections.abc import Callable, Iterable
from typing import Protocol

from protocols.m3ua import ProtocolData
from protocols.m3ua_asp import AspNotActive, AspState

__all__ = ["LinkSetMode", "LinkSetDown", "LinkSet", "LinkMember"]

log = logging.getLogger(__name__)

_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class LinkSetMode(enum.Enum):
    """How a link set spreads traffic (cf. RFC 4666 §3.7.1 Traffic Mode Type)."""

    LOADSHARE = "loadshare"
    OVERRIDE = "override"


class LinkSetDown(AspNotActive):
    """No association of the link set is ASP-ACTIVE."""


class LinkMember(Protocol):
    """What a link set needs of an association (:class:`.association.Association` fits)."""

    name: str

    @property
    def state(self) -> AspState: ...

    def send(self, protocol_data: ProtocolData) -> None: ...

    def add_state_listener(self, cb: Callable[[LinkMember, AspState], None]) -> None: ...

    def remove_state_listener(self, cb: Callable[[LinkMember, AspState], None]) -> None: ...


LossListener = Callable[["LinkSet", LinkMember], None]
UpDownListener = Callable[["LinkSet", bool], None]


class LinkSet:
    """Several associations toward one destination; see the module docstring."""

    def __init__(self, name: str, associations: Iterable[LinkMember] = (),
                 mode: LinkSetMode = LinkSetMode.LOADSHARE, *,
                 on_lost: LossListener | None = None,
                 on_up_down: UpDownListener | None = None) -> None:
        self.name = name
        self.mode = LinkSetMode(mode)
        self._members: list[LinkMember] = []
        self._seeds: dict[int, int] = {}  # id(member) -> rendezvous seed
        self._active: tuple[LinkMember, ...] = ()
        self._active_seeds: tuple[int, ...] = ()
        self._counter = 0
        self._loss_listeners: list[LossListener] = [on_lost] if on_lost else []
        self._updown_listeners: list[UpDownListener] = [on_up_down] if on_up_down else []
        for a in associations:
            self.add(a)

    def __repr__(self) -> str:
        return (f"<LinkSet {self.name} {self.mode.value} "
                f"{len(self._active)}/{len(self._members)} active>")

    # ------------------------------------------------------------------ membership

    @property
    def members(self) -> tuple[LinkMember, ...]:
        """Every association, in priority order."""
        return tuple(self._members)

    @property
    def active(self) -> tuple[LinkMember, ...]:
        """The ASP-ACTIVE associations, in priority order."""
        return self._active

    @property
    def is_up(self) -> bool:
        return bool(self._active)

    def add(self, assoc: LinkMember) -> None:
        """Add ``assoc`` with the lowest priority so far."""
        if any(m is assoc for m in self._members):
            return
        self._counter += 1
        key = f"{self._counter}:{getattr(assoc, 'name', '')}".encode()
        self._seeds[id(assoc)] = _mix(zlib.crc32(key))
        self._members.append(assoc)
        assoc.add_state_listener(self._on_member_state)
        self._refresh()

    def remove(self, assoc: LinkMember) -> None:
        """Take ``assoc`` out (its dialogues are reported lost if it was active)."""
        if not any(m is assoc for m in self._members):
            return
        assoc.remove_state_listener(self._on_member_state)
        self._members = [m for m in self._members if m is not assoc]
        self._refresh()
        self._seeds.pop(id(assoc), None)

    def add_loss_listener(self, cb: LossListener) -> None:
        """``cb(linkset, assoc)`` when ``assoc`` leaves ASP-ACTIVE (or is removed)."""
        self._loss_listeners.append(cb)

    def add_up_down_listener(self, cb: UpDownListener) -> None:
        """``cb(linkset, up)`` when the first association becomes active or the last is lost."""
        self._updown_listeners.append(cb)

    # ------------------------------------------------------------------ selection

    def pick(self, key: int) -> LinkMember:
        """The ASP-ACTIVE association for ``key`` (a dialogue id); raises :class:`LinkSetDown`."""
        active = self._active
        n = len(active)
        if n == 1:
            return active[0]
        if n == 0:
            raise LinkSetDown(self._down_reason())
        if self.mode is LinkSetMode.OVERRIDE:
            return active[0]
        seeds = self._active_seeds
        best = 0
        best_score = -1
        for i in range(n):
            score = _mix(key ^ seeds[i])
            if score > best_score:
                best, best_score = i, score
        return active[best]

    def send(self, key: int, protocol_data: ProtocolData) -> LinkMember:
        """Send on :meth:`pick` ``(key)``; returns the association used. Raises
        :class:`LinkSetDown` when no association can carry it."""
        for _ in range(len(self._members) + 1):
            assoc = self.pick(key)
            try:
                assoc.send(protocol_data)
                return assoc
            except AspNotActive:
                self._refresh()  # it went down under us: choose again
        raise LinkSetDown(self._down_reason())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every member that can start (client associations)."""
        for m in self._members:
            start = getattr(m, "start", None)
            if start is not None:
                start()

    async def wait_up(self, count: int = 1, timeout: float | None = None) -> bool:
        """Wait until ``count`` members are ASP-ACTIVE; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while len(self._active) < count:
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def close(self) -> None:
        """Close every member gracefully."""
        closers = [c() for m in self._members if (c := getattr(m, "close", None)) is not None]
        await asyncio.gather(*closers, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    def _down_reason(self) -> str:
        states = ", ".join(f"{getattr(m, 'name', '?')}={m.state.name}" for m in self._members)
        return f"link set {self.name}: no ASP-ACTIVE association ({states or 'none'})"

    def _on_member_state(self, assoc: LinkMember, state: AspState) -> None:
        self._refresh()

    def _refresh(self) -> None:
        before = self._active
        active = tuple(m for m in self._members if m.state is AspState.ACTIVE)
        self._active = active
        self._active_seeds = tuple(self._seeds[id(m)] for m in active)
        lost = [m for m in before if not any(m is a for a in active)]
        for m in lost:
            log.warning("link set %s: association %s lost", self.name, getattr(m, "name", m))
            for cb in list(self._loss_listeners):
                try:
                    cb(self, m)
                except Exception:
                    log.exception("link set %s: loss listener failed", self.name)
        if bool(before) != bool(active):
            log.info("link set %s is %s", self.name, "UP" if active else "DOWN")
            for cb in list(self._updown_listeners):
                try:
                    cb(self, bool(active))
                except Exception:
                    log.exception("link set %s: up/down listener failed", self.name)
