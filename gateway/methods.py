"""The ways a route answers a lookup: the :class:`Method` protocol and its implementations.

- :class:`MapMethod`: MAP SRI-SM or ATI through a link set, with a called-GT rule (the MSISDN,
  or a fixed HLR GT) and the link set's TPS cap;
- :class:`LocalMethod`: local data only (an MNP table, then a range table);
- :class:`SipMethod`: SIP number portability (RFC 4694 redirect model) through a
  :class:`~gateway.sip.np_client.SipNpClient` asking the method's named targets in order;
- :class:`RejectMethod`: refuse, with a reason.

Each :meth:`Method.run` returns one :class:`MethodOutcome` and never raises for what the
network or the data does. :attr:`MethodOutcome.retryable` tells the engine whether the next
method of the route should be tried (:meth:`Method.retryable` decides it).

A SIP answer about the number is final: ``ported`` and ``not_ported`` give a
:class:`LocalAnswer` (source ``sip:TARGET``; the network is the one the rn prefix names, else
the routing number itself; None when not ported, since the NP server does not say who holds
the range), ``not_found`` and ``invalid`` an answer without one (:attr:`MethodOutcome.sip`
says which). The network of a routing number comes from ``[[routing_numbers]]`` (with its
MCC+MNC when the entry gives one). Every other outcome (timeout, transport error, 5xx, other
4xx/6xx, protocol error) is a retryable failure, and every target at its rate cap
(``[[sip_targets]] tps``) is THROTTLED: the next method is tried. The query is bounded by
the route's deadline (and the method's ``timeout``, when set).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gateway.config.schema import MAP_METHODS, MethodKind
from gateway.frozen import quick_init
from gateway.limits import Throttle
from gateway.links import DrainableLinkSet
from gateway.localdata import MnpTable, RangeTable
from gateway.sigtran.map_client import (
    MapClient,
    MapFailure,
    MapOutcome,
    MapResult,
    MapRoute,
    MapUserError,
)
from gateway.sip.np_client import NpOutcome, NpResult, SipNpClient
from protocols.map import ErrorCode

__all__ = ["LocalAnswer", "LocalMethod", "MapMethod", "Method", "MethodOutcome", "MethodStatus",
           "NpClientHandle", "RejectMethod", "RETRYABLE_MAP_ERRORS", "SipMethod"]


class MethodStatus(enum.StrEnum):
    """What came of one method."""

    ANSWERED = "answered"  # the network (or the local data) answered: a result or a MAP error
    FAILED = "failed"  # no answer: timeout, link down, abort, no local data, ...
    THROTTLED = "throttled"  # a TPS cap had no slot in time
    SKIPPED = "skipped"  # its circuit breaker is open
    REJECTED = "rejected"  # a reject method


#: MAP errors that say "not from here" rather than something about the subscriber: the next
#: method (another operation, another path) may still answer (TS 29.002 §17.6).
RETRYABLE_MAP_ERRORS = frozenset({
    ErrorCode.SYSTEM_FAILURE, ErrorCode.FACILITY_NOT_SUPPORTED, ErrorCode.ATI_NOT_ALLOWED,
    ErrorCode.RESOURCE_LIMITATION, ErrorCode.DATA_MISSING, ErrorCode.UNEXPECTED_DATA_VALUE,
})


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    """What local data (or a SIP NP server) says of a number."""

    number: str
    network: str | None  # None: not said (a SIP "not ported": the range holder's)
    mccmnc: str | None
    ported: bool
    routing_number: str | None
    source: str  # "mnp:NAME", "range_table:NAME" or "sip:TARGET"
    range_holder: str | None = None


@quick_init  # (the frozen dataclass's __init__, quicker: see gateway.frozen)
@dataclass(frozen=True, slots=True)
class MethodOutcome:
    """One method's try: its status, whether the next method should be tried, the detail,
    how long it took, and the MAP outcome or local answer it produced."""

    index: int
    kind: MethodKind
    label: str
    status: MethodStatus
    retryable: bool
    detail: str
    latency: float = 0.0
    map: MapOutcome | None = None
    local: LocalAnswer | None = None
    sip: NpResult | None = None
    timed_out: bool = False  # no answer in time: the route's deadline or the method's timeout


@runtime_checkable
class Method(Protocol):
    """One way of answering a lookup (see the module docstring)."""

    index: int
    kind: MethodKind
    label: str

    async def run(self, number: str, deadline: float) -> MethodOutcome:
        """Answer for E.164 digits ``number`` before loop time ``deadline``."""
        ...

    def retryable(self, outcome: MethodOutcome) -> bool:
        """Whether the next method should be tried after ``outcome``."""
        ...


def _now() -> float:
    return asyncio.get_running_loop().time()


class MapMethod:
    """MAP SRI-SM or ATI toward an HLR over a link set."""

    __slots__ = ("index", "kind", "label", "client", "route", "linkset", "throttle",
                 "queue_wait", "timeout", "_loop")

    def __init__(self, index: int, kind: MethodKind, client: MapClient, route: MapRoute,
                 linkset: DrainableLinkSet, *, throttle: Throttle | None = None,
                 queue_wait: float = 1.0, timeout: float | None = None) -> None:
        if kind not in MAP_METHODS:
            raise ValueError(f"not a MAP method: {kind}")
        self.index = index
        self.kind = kind
        gt = f"GT {route.hlr_gt}" if route.hlr_gt else "GT = MSISDN"
        self.label = f"{kind.value} via {linkset.name} ({gt})"
        self.client = client
        self.route = route
        self.linkset = linkset
        self.throttle = throttle
        self.queue_wait = queue_wait
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None

    def _outcome(self, status: MethodStatus, detail: str, latency: float,
                 out: MapOutcome | None = None, retryable: bool | None = None,
                 timed_out: bool = False) -> MethodOutcome:
        if retryable is None:  # a result is final; else as retryable() says
            retryable = False if type(out) is MapResult else self.retryable(
                MethodOutcome(self.index, self.kind, self.label, status, True, detail,
                              latency, out, timed_out=timed_out))
        return MethodOutcome(self.index, self.kind, self.label, status, retryable, detail,
                             latency, out, timed_out=timed_out)

    async def run(self, number: str, deadline: float) -> MethodOutcome:
        loop = self._loop  # (get_running_loop costs a getpid call on CPython 3.11)
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        started = loop.time()
        throttle = self.throttle
        if throttle is not None and not await throttle.admit(
                max(0.0, min(self.queue_wait, deadline - started))):
            return self._outcome(MethodStatus.THROTTLED, f"link set {self.linkset.name}: "
                                 f"TPS cap {throttle.rate:g}/s reached",
                                 loop.time() - started)
        remaining = deadline - (loop.time() if throttle is not None else started)
        if remaining <= 0:
            return self._outcome(MethodStatus.FAILED, "the route's deadline passed before "
                                 "this method could start", loop.time() - started,
                                 timed_out=True)
        timeout = round(min(self.timeout or self.client.timer_m, remaining), 3)
        if self.kind is MethodKind.MAP_SRI_SM:
            out = await self.client.sri_sm(number, self.route, timeout=timeout)
        else:
            out = await self.client.ati(number, self.route, timeout=timeout)
        latency = loop.time() - started
        t = type(out)
        if t is MapResult:  # final: no retryable() to ask
            return MethodOutcome(self.index, self.kind, self.label, MethodStatus.ANSWERED,
                                 False, "result", latency, out)
        if isinstance(out, MapResult):
            return self._outcome(MethodStatus.ANSWERED, "result", latency, out)
        if isinstance(out, MapUserError):
            return self._outcome(MethodStatus.ANSWERED, f"MAP error {out.name}"
                                 + (f" ({out.diagnostic})" if out.diagnostic else ""),
                                 latency, out)
        return self._outcome(MethodStatus.FAILED, f"{out.kind.value}: {out.detail}", latency,
                             out)

    def retryable(self, outcome: MethodOutcome) -> bool:
        m = outcome.map
        if isinstance(m, MapResult):
            return False
        if isinstance(m, MapUserError):
            return m.code in RETRYABLE_MAP_ERRORS
        if isinstance(m, MapFailure):
            return True  # no answer at all: another path or operation may still answer
        return outcome.status in (MethodStatus.FAILED, MethodStatus.THROTTLED,
                                  MethodStatus.SKIPPED)


class LocalMethod:
    """Answer from local data: the MNP table first (ported numbers), then the range table."""

    __slots__ = ("index", "kind", "label", "ranges", "mnp")

    def __init__(self, index: int, ranges: RangeTable | None, mnp: MnpTable | None) -> None:
        self.index = index
        self.kind = MethodKind.LOCAL
        parts = [f"range table {ranges.name}" if ranges else "",
                 f"MNP {mnp.name}" if mnp else ""]
        self.label = "local (" + ", ".join(p for p in parts if p) + ")"
        self.ranges = ranges
        self.mnp = mnp

    async def run(self, number: str, deadline: float) -> MethodOutcome:
        started = _now()
        holder = self.ranges.lookup(number) if self.ranges is not None else None
        ported = self.mnp.lookup(number) if self.mnp is not None else None
        if ported is not None:
            answer = LocalAnswer(number, ported.network, ported.mccmnc,
                                 holder is None or holder.network != ported.network,
                                 ported.routing_number, f"mnp:{self.mnp.name}",
                                 holder.network if holder else None)
        elif holder is not None:
            answer = LocalAnswer(number, holder.network, holder.mccmnc, False, None,
                                 f"range_table:{self.ranges.name}", holder.network)
        else:
            return MethodOutcome(self.index, self.kind, self.label, MethodStatus.FAILED, True,
                                 "no local data for this number", _now() - started)
        detail = f"{answer.network} ({answer.source})"
        return MethodOutcome(self.index, self.kind, self.label, MethodStatus.ANSWERED, False,
                             detail, _now() - started, local=answer)

    def retryable(self, outcome: MethodOutcome) -> bool:
        return outcome.status is not MethodStatus.ANSWERED


class NpClientHandle:
    """A :class:`SipNpClient` shared by the sip methods with the same targets: started on
    first use (again after a failed start), closed by the engine."""

    __slots__ = ("client", "_starting")

    def __init__(self, client: SipNpClient) -> None:
        self.client = client
        self._starting: asyncio.Future[None] | None = None

    async def ready(self) -> SipNpClient:
        starting = self._starting
        if starting is None or (starting.done() and (starting.cancelled()
                                                     or starting.exception() is not None)):
            starting = self._starting = asyncio.ensure_future(self.client.start())
        await asyncio.shield(starting)
        return self.client

    async def close(self) -> None:
        starting = self._starting
        if starting is not None:
            try:
                await starting
            except (Exception, asyncio.CancelledError):  # noqa: BLE001 - nothing to close
                pass
        await self.client.close()


#: SIP outcomes that are answers about the number
_SIP_ANSWERS = frozenset({NpOutcome.PORTED, NpOutcome.NOT_PORTED, NpOutcome.NOT_FOUND,
                          NpOutcome.INVALID})


class SipMethod:
    """SIP number portability toward the method's targets (see the module docstring)."""

    __slots__ = ("index", "kind", "label", "handle", "timeout")

    def __init__(self, index: int, handle: NpClientHandle, *, targets: tuple[str, ...] = (),
                 timeout: float | None = None) -> None:
        self.index = index
        self.kind = MethodKind.SIP
        names = targets or tuple(t.config.name for t in handle.client.targets)
        self.label = f"sip via {', '.join(names)}"
        self.handle = handle
        self.timeout = timeout

    def _outcome(self, status: MethodStatus, detail: str, started: float,
                 result: NpResult | None = None, local: LocalAnswer | None = None,
                 timed_out: bool = False) -> MethodOutcome:
        o = MethodOutcome(self.index, self.kind, self.label, status, True, detail,
                          _now() - started, local=local, sip=result, timed_out=timed_out)
        return o if self.retryable(o) else dataclasses.replace(o, retryable=False)

    async def run(self, number: str, deadline: float) -> MethodOutcome:
        started = _now()
        remaining = deadline - started
        if self.timeout is not None:
            remaining = min(remaining, self.timeout)
        if remaining <= 0:
            return self._outcome(MethodStatus.FAILED, "the route's deadline passed before "
                                 "this method could start", started, timed_out=True)
        try:
            client = await asyncio.wait_for(self.handle.ready(), remaining)
            remaining = deadline - _now()
            if self.timeout is not None:
                remaining = min(remaining, self.timeout - (_now() - started))
            result = await asyncio.wait_for(client.query(number), max(0.0, remaining))
        except TimeoutError:
            bound = "the route's deadline" if self.timeout is None else \
                f"the method's timeout {self.timeout:g} s or the route's deadline"
            return self._outcome(MethodStatus.FAILED, f"timeout: no SIP NP answer within "
                                 f"{bound}", started, timed_out=True)
        except OSError as exc:  # the client could not start (bind, resolution)
            return self._outcome(MethodStatus.FAILED, f"transport_error: SIP NP client: "
                                 f"{exc or type(exc).__name__}", started)
        return self._from_result(number, result, started)

    def _from_result(self, number: str, r: NpResult, started: float) -> MethodOutcome:
        where = f"sip:{r.target}" if r.target else "sip"
        status_line = f"{r.status} {r.reason}".strip() if r.status is not None else r.reason
        if r.outcome in (NpOutcome.PORTED, NpOutcome.NOT_PORTED):
            ported = r.outcome is NpOutcome.PORTED
            network = (r.network or r.routing_number) if ported else None
            answer = LocalAnswer(number, network, r.mccmnc if ported else None, ported,
                                 r.routing_number, where)
            detail = (f"ported to {network} (rn {r.routing_number}, {where})" if ported
                      else f"not ported ({where})")
            return self._outcome(MethodStatus.ANSWERED, detail, started, r, answer)
        if r.outcome in _SIP_ANSWERS:  # not_found, invalid: about the number, no network
            what = "number does not exist" if r.outcome is NpOutcome.NOT_FOUND \
                else "number is invalid"
            return self._outcome(MethodStatus.ANSWERED, f"{r.outcome.value}: {what} "
                                 f"({status_line}, {where})", started, r)
        status = MethodStatus.THROTTLED if r.outcome is NpOutcome.RATE_LIMITED \
            else MethodStatus.FAILED
        return self._outcome(status, f"{r.outcome.value}: {status_line}"
                             + (f" ({where})" if r.target else ""), started, r)

    def retryable(self, outcome: MethodOutcome) -> bool:
        r = outcome.sip
        if r is not None:
            return r.outcome not in _SIP_ANSWERS
        return outcome.status is not MethodStatus.ANSWERED


class RejectMethod:
    """Refuse the lookup with a reason (a route for numbers we must not query)."""

    __slots__ = ("index", "kind", "label", "reason")

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.kind = MethodKind.REJECT
        self.label = f"reject ({reason})"
        self.reason = reason

    async def run(self, number: str, deadline: float) -> MethodOutcome:
        return MethodOutcome(self.index, self.kind, self.label, MethodStatus.REJECTED, False,
                             self.reason)

    def retryable(self, outcome: MethodOutcome) -> bool:
        return False
