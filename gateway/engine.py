"""The lookup engine: associations, link sets and the MAP client built from a
:class:`~gateway.config.Config`, routes that try their methods in order, and live reloads.

``await engine.lookup(number)`` routes the number (longest prefix, else the default route),
takes a slot under the route's TPS cap, then tries the route's methods in order: a method
whose circuit breaker is open is skipped, and the next method is tried while the outcome is
retryable (:class:`~gateway.methods.MethodOutcome`). The answer is one
:class:`LookupOutcome`: route, methods tried, the final MAP outcome or local answer, latency.

``await engine.reload(config)`` applies a new configuration without dropping a lookup in
flight: new associations come up first (make before break), routes swap atomically (a lookup
keeps the routes it started with), associations no longer listed drain (no new dialogues;
those in flight finish) and then close. Settings that only a restart can change make the
reload fail with :class:`~gateway.config.ConfigInvalid` and change nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.config import (
    Config,
    ConfigInvalid,
    ConfigProblem,
    MethodKind,
    read_document,
)
from gateway.config.schema import (
    AssociationSection,
    LinkSetSection,
    MethodSection,
    RouteSection,
    SipTargetSection,
)
from gateway.frozen import quick_init
from gateway.limits import BreakerState, CircuitBreaker, Throttle
from gateway.links import DrainableLinkSet
from gateway.localdata import MnpTable, RangeHolder, RangeTable, read_mnp_csv, read_range_csv
from gateway.methods import (
    LocalAnswer,
    LocalMethod,
    MapMethod,
    Method,
    MethodOutcome,
    MethodStatus,
    NpClientHandle,
    RejectMethod,
    SipMethod,
)
from gateway.routing import InvalidNumber, RouteMatch, Router, normalize_number
from gateway.sigtran.association import Association, AssociationConfig
from gateway.sigtran.linkset import LinkSetMode
from gateway.sigtran.map_client import (
    MapClient,
    MapFailure,
    MapOutcome,
    MapResult,
    MapRoute,
    MapUserError,
)
from gateway.sigtran.transport import TransportKind
from gateway.sip.np_client import NpTarget, SipNpClient
from gateway.sip.settings import rn_table
from protocols.m3ua import TrafficModeType
from protocols.m3ua_asp import AspConfig, AspState, Role
from protocols.map import Opcode

__all__ = ["AssociationStatus", "Engine", "LookupOutcome", "LookupStatus", "Operation",
           "ReloadReport", "RouteStats", "LATENCY_BUCKETS"]

log = logging.getLogger(__name__)

#: upper bounds (seconds) of the lookup latency histogram
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Operation(enum.StrEnum):
    """A lookup may ask for one MAP operation only."""

    SRI_SM = "sri_sm"
    ATI = "ati"


_OPERATION_KIND = {Operation.SRI_SM: MethodKind.MAP_SRI_SM, Operation.ATI: MethodKind.MAP_ATI}


class LookupStatus(enum.StrEnum):
    ANSWERED = "answered"  # a method answered (a MAP result or error, or local data)
    FAILED = "failed"  # every method tried failed to get an answer
    REJECTED = "rejected"  # a reject method refused
    THROTTLED = "throttled"  # the route's TPS cap had no slot in time
    INVALID_NUMBER = "invalid_number"
    NO_ROUTE = "no_route"  # no route, or no method of the operation asked for


@quick_init  # (the frozen dataclass's __init__, quicker: see gateway.frozen)
@dataclass(frozen=True, slots=True)
class LookupOutcome:
    """What one lookup gave: see the module docstring."""

    number: str
    status: LookupStatus
    route: str | None
    prefix: str | None  # the prefix that chose the route; None for the default route
    operation: Operation | None
    attempts: tuple[MethodOutcome, ...]
    latency: float
    detail: str = ""

    @property
    def final(self) -> MethodOutcome | None:
        """The attempt that decided the answer (see :func:`_final`)."""
        return _final(self.attempts)

    @property
    def map(self) -> MapOutcome | None:
        """The final MAP outcome (:mod:`gateway.sigtran.map_client` types), if any."""
        f = self.final
        return f.map if f is not None else None

    @property
    def local(self) -> LocalAnswer | None:
        f = self.final
        return f.local if f is not None else None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (the admin API's test lookup, ``hlrgw route test``)."""
        return {"number": self.number, "status": self.status.value, "route": self.route,
                "prefix": self.prefix,
                "operation": self.operation.value if self.operation else None,
                "latency_ms": round(self.latency * 1000, 3), "detail": self.detail,
                "attempts": [{"method": a.index, "label": a.label, "status": a.status.value,
                              "retryable": a.retryable, "detail": a.detail,
                              "latency_ms": round(a.latency * 1000, 3)}
                             for a in self.attempts],
                "answer": _answer(self.final)}


def _digits(value: object) -> str | None:
    return getattr(value, "digits", None)


def _answer(final: MethodOutcome | None) -> dict[str, object] | None:
    """What the deciding method found, in plain values."""
    if final is None:
        return None
    if final.local is not None:
        return {"source": final.local.source, "network": final.local.network,
                "mccmnc": final.local.mccmnc, "ported": final.local.ported,
                "routing_number": final.local.routing_number,
                "range_holder": final.local.range_holder}
    m = final.map
    if isinstance(m, MapResult):
        v = m.value
        out: dict[str, object] = {"map": "result", "operation": int(m.operation),
                                  "version": m.version}
        imsi = _digits(getattr(v, "imsi", None))
        if imsi:
            out["imsi"] = imsi
        loc = getattr(v, "location_info_with_lmsi", None)
        if loc is not None:
            out["msc"] = _digits(loc.network_node_number)
        info = getattr(v, "subscriber_info", None)
        if info is not None:
            state = info.subscriber_state
            out["subscriber_state"] = getattr(state, "name", state)
            li = info.location_information
            if li is not None:
                out["vlr"] = _digits(li.vlr_number)
                out["age_minutes"] = li.age_of_location_information
            nrr = info.not_reachable_reason
            if nrr is not None:
                out["not_reachable_reason"] = getattr(nrr, "name", nrr)
        return out
    if isinstance(m, MapUserError):
        return {"map": "error", "operation": int(m.operation), "error": m.name,
                "code": m.code, "diagnostic": m.diagnostic, "version": m.version}
    if isinstance(m, MapFailure):
        return {"map": "failure", "operation": int(m.operation), "kind": m.kind.value,
                "cause": m.cause}
    return None


_LOOKUP_STATUS = {MethodStatus.ANSWERED: LookupStatus.ANSWERED,
                  MethodStatus.REJECTED: LookupStatus.REJECTED}

_RANK = {MethodStatus.ANSWERED: 4, MethodStatus.REJECTED: 3, MethodStatus.FAILED: 2,
         MethodStatus.THROTTLED: 1, MethodStatus.SKIPPED: 0}


def _final(attempts: tuple[MethodOutcome, ...]) -> MethodOutcome | None:
    """The last attempt if it was final (not retryable); else the most telling one (an
    answer over a rejection over a failure over throttling over a skip), the latest of them."""
    if not attempts:
        return None
    if not attempts[-1].retryable:
        return attempts[-1]
    best = attempts[0]
    for a in attempts[1:]:
        if _RANK[a.status] >= _RANK[best.status]:
            best = a
    return best


@dataclass(slots=True)
class MethodStats:
    label: str
    kind: str
    attempts: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class RouteStats:
    """Counters of one route (kept across reloads while the route keeps its name)."""

    lookups: int = 0
    in_flight: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    methods: list[MethodStats] = field(default_factory=list)

    def record(self, outcome: LookupOutcome) -> None:
        # ``_value_``: the member's value without Enum.value's two Python-level calls
        status = outcome.status._value_
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.latency_sum += outcome.latency
        i = bisect_left(LATENCY_BUCKETS, outcome.latency)  # the first bound >= latency
        if i < len(LATENCY_BUCKETS):
            self.latency_buckets[i] += 1
        for a in outcome.attempts:
            if a.index < len(self.methods):
                m = self.methods[a.index]
                m.attempts += 1
                status = a.status._value_
                m.by_status[status] = m.by_status.get(status, 0) + 1


@dataclass(slots=True)
class _Route:
    section: RouteSection
    methods: tuple[Method, ...]
    breakers: tuple[CircuitBreaker, ...]
    bucket: Throttle | None
    stats: RouteStats
    #: (method, its breaker) in order, as a lookup walks them
    pairs: tuple[tuple[Method, CircuitBreaker], ...] = ()

    def __post_init__(self) -> None:
        self.pairs = tuple(zip(self.methods, self.breakers))


@dataclass(frozen=True, slots=True)
class _State:
    """What a lookup needs, swapped as one reference on reload."""

    config: Config
    router: Router
    routes: dict[str, _Route]
    generation: int


@dataclass(slots=True, eq=False)
class _Assoc:
    section: AssociationSection
    assoc: Association
    linkset: str
    ls: DrainableLinkSet | None
    draining: bool = False
    retiring: bool = False  # removed or replaced by a reload: closes once drained


@dataclass(frozen=True, slots=True)
class AssociationStatus:
    """An association as the admin API shows it."""

    name: str
    linkset: str
    transport: str
    remote: str
    local: str | None
    routing_context: int | None
    asp_state: str
    as_state: str | None
    uptime: float
    rtt: float | None
    in_flight: int
    draining: bool
    retiring: bool
    next_attempt_in: float | None
    counters: dict[str, int]


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload changed."""

    generation: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    replaced: tuple[str, ...]
    linksets_added: tuple[str, ...]
    linksets_removed: tuple[str, ...]
    routes_added: tuple[str, ...]
    routes_removed: tuple[str, ...]
    not_up: tuple[str, ...]  # new associations not ASP-ACTIVE when the routes swapped

    def summary(self) -> str:
        """One line: ``generation 3: associations +hub -old; routes +uk-ee``."""
        parts = []
        for what, plus, minus, tilde in (
                ("associations", self.added, self.removed, self.replaced),
                ("link sets", self.linksets_added, self.linksets_removed, ()),
                ("routes", self.routes_added, self.routes_removed, ())):
            changes = [f"+{n}" for n in plus] + [f"-{n}" for n in minus] + \
                [f"~{n}" for n in tilde]
            if changes:
                parts.append(f"{what} {' '.join(changes)}")
        text = f"generation {self.generation}: " + ("; ".join(parts) or "no structural change")
        if self.not_up:
            text += f" (not up yet: {', '.join(self.not_up)})"
        return text


def _assoc_config(a: AssociationSection) -> AssociationConfig:
    asp = AspConfig(routing_context=a.routing_context,
                    traffic_mode=TrafficModeType[a.traffic_mode.name],
                    asp_identifier=a.asp_identifier, heartbeat_interval=a.heartbeat,
                    t_ack=a.t_ack)
    local = (a.local_address, a.local_port) if a.local_address is not None else None
    return AssociationConfig(host=a.remote_addresses[0], port=a.remote_port,
                             transport=TransportKind(a.transport.value), asp=asp,
                             role=Role(a.role.value), name=a.name, local_addr=local,
                             reconnect_initial=min(0.5, a.reconnect_max),
                             reconnect_max=a.reconnect_max)


def _restart_only(old: Config, new: Config) -> list[tuple[tuple[str, ...], str]]:
    """Settings that a running engine cannot take over."""
    out = []
    for key in ("ssn", "ati_ssn"):
        if getattr(old.sccp, key) != getattr(new.sccp, key):
            out.append((("sccp", key), "the calling SSN is fixed while running"))
    if old.map.max_dialogues != new.map.max_dialogues:
        out.append((("map", "max_dialogues"), "the dialogue bound is fixed while running"))
    return out


def restart_problems(config: Config, keys: Iterable[tuple[tuple[str, ...], str]]
                     ) -> list[ConfigProblem]:
    """Problems for settings that need a restart, located in ``config``'s files."""
    doc = read_document(config.path) if config.path else None
    out = []
    for path, why in keys:
        file, line, key = doc.where(path) if doc is not None else (config.path, None,
                                                                    ".".join(path))
        out.append(ConfigProblem(file, line, key, f"{why}: restart the gateway to change it "
                                 "(the running configuration stays)"))
    return out


class Engine:
    """See the module docstring. ``settle`` bounds how long a reload waits for new
    associations to come up before swapping the routes; ``drain_timeout`` how long a retired
    association's dialogues may take (default: timer m plus one second)."""

    def __init__(self, config: Config, *, settle: float = 5.0,
                 drain_timeout: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.settle = settle
        self.drain_timeout = drain_timeout
        self._clock = clock
        self.client = MapClient(smsc_address=config.map.smsc_address,
                                gsmscf_address=config.map.gsmscf_address,
                                timer_m=config.map.timer_m,
                                max_dialogues=config.map.max_dialogues,
                                sri_sm_ssn=config.sccp.ssn, ati_ssn=config.sccp.ati_ssn)
        self._assocs: dict[str, _Assoc] = {}
        self._retiring: list[_Assoc] = []
        self._linksets: dict[str, DrainableLinkSet] = {}
        self._ls_buckets: dict[str, Throttle] = {}
        self._stats: dict[str, RouteStats] = {}
        self._breakers: dict[tuple[str, int, MethodSection], CircuitBreaker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reload_lock = asyncio.Lock()
        # SIP NP clients by (local address, targets): shared by the sip methods asking them
        self._sip: dict[tuple[str, tuple[NpTarget, ...]], NpClientHandle] = {}
        self._sip_used: set[tuple[str, tuple[NpTarget, ...]]] = set()
        self._state: _State | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop lookups run on
        self._pending = config
        self.started_at: float | None = None
        self.loaded_at = time.time()
        self.reloads = {"ok": 0, "failed": 0}
        self.association_listeners: list[Callable[[Association], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def _now(self) -> float:
        """Loop time: deadlines and latencies."""
        return asyncio.get_running_loop().time()

    def _lnow(self) -> float:
        """The clock of the circuit breakers (injectable for tests; the TPS caps run on the
        loop's clock, since they release callers in real time)."""
        return self._clock() if self._clock is not None else \
            asyncio.get_running_loop().time()

    @property
    def config(self) -> Config:
        return self._state.config if self._state is not None else self._pending

    @property
    def generation(self) -> int:
        return self._state.generation if self._state is not None else 0

    async def start(self, wait_up: float = 0.0) -> None:
        """Build everything and start connecting; wait up to ``wait_up`` seconds for every
        association to be ASP-ACTIVE."""
        if self._state is not None:
            return
        config = self._pending
        tables = _load_tables(config)
        self._apply_links(config)
        self._state = self._build_state(config, 1, tables)
        self.started_at = time.time()
        if wait_up > 0:
            await self.wait_up(wait_up)

    async def wait_up(self, timeout: float) -> bool:
        """Wait until every association is ASP-ACTIVE; False on timeout."""
        assocs = [a.assoc for a in self._assocs.values()]
        results = await asyncio.gather(*(a.wait_active(timeout) for a in assocs))
        return all(results)

    async def close(self) -> None:
        """Close every association gracefully."""
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assocs = [a.assoc for a in [*self._assocs.values(), *self._retiring]]
        await asyncio.gather(*(a.close() for a in assocs), return_exceptions=True)
        handles = list(self._sip.values())
        self._sip.clear()
        await asyncio.gather(*(h.close() for h in handles), return_exceptions=True)

    # ------------------------------------------------------------------ lookups

    async def lookup(self, number: str, operation: Operation | str | None = None
                     ) -> LookupOutcome:
        """Look ``number`` up (see the module docstring).

        One coroutine from the route match to the outcome (the route's methods run inline:
        every suspension of the MAP dialogue resumes through as few frames as possible)."""
        state = self._state
        if state is None:
            raise RuntimeError("the engine is not started")
        loop = self._loop  # (get_running_loop costs a getpid call on CPython 3.11)
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        loop_time = loop.time
        t0 = loop_time()
        op = Operation(operation) if operation is not None else None
        try:
            digits = normalize_number(number)
        except InvalidNumber as exc:
            return LookupOutcome(number, LookupStatus.INVALID_NUMBER, None, None, op, (),
                                 loop_time() - t0, str(exc))
        prefix, name = state.router.match(digits)
        route = state.routes.get(name) if name is not None else None
        if route is None:
            return LookupOutcome(digits, LookupStatus.NO_ROUTE, None, None, op, (),
                                 loop_time() - t0, state.router.route_for(digits).reason())
        stats = route.stats
        stats.lookups += 1
        stats.in_flight += 1
        sec = route.section
        try:
            methods = route.pairs
            if op is not None:
                methods = tuple((m, b) for m, b in methods if m.kind is _OPERATION_KIND[op])
                if not methods:
                    outcome = LookupOutcome(
                        digits, LookupStatus.NO_ROUTE, sec.name, prefix, op, (),
                        loop_time() - t0, f"route {sec.name} has no "
                        f"{_OPERATION_KIND[op].value} method")
                    stats.record(outcome)
                    return outcome
            if route.bucket is not None and not await route.bucket.admit(
                    min(sec.queue_wait, sec.timeout)):
                outcome = LookupOutcome(digits, LookupStatus.THROTTLED, sec.name, prefix, op,
                                        (), loop_time() - t0, f"route {sec.name}: TPS cap "
                                        f"{route.bucket.rate:g}/s reached")
                stats.record(outcome)
                return outcome
            deadline = t0 + sec.timeout
            attempts: list[MethodOutcome] = []
            clock = self._clock
            for method, breaker in methods:
                if loop_time() >= deadline:
                    attempts.append(MethodOutcome(method.index, method.kind, method.label,
                                                  MethodStatus.FAILED, True,
                                                  f"route timeout {sec.timeout:g} s reached",
                                                  timed_out=True))
                    break
                now = clock() if clock is not None else loop_time()
                if not breaker.allow(now):
                    attempts.append(MethodOutcome(
                        method.index, method.kind, method.label, MethodStatus.SKIPPED, True,
                        f"circuit breaker open for {breaker.reopens_at() - now:.1f} s more"))
                    continue
                verdict = False
                try:
                    out = await method.run(digits, deadline)
                    verdict = True
                finally:
                    if not verdict:  # cancelled: let another trial through
                        breaker.release()
                st = out.status
                if st is MethodStatus.FAILED:
                    breaker.failure(clock() if clock is not None else loop_time())
                elif st is MethodStatus.ANSWERED or st is MethodStatus.REJECTED:
                    breaker.success(clock() if clock is not None else loop_time())
                else:
                    breaker.release()
                attempts.append(out)
                if not out.retryable:
                    break
        finally:
            stats.in_flight -= 1
        done = tuple(attempts)
        final = _final(done)
        if final is None:
            status, detail = LookupStatus.FAILED, "no method could run"
        else:
            status, detail = _LOOKUP_STATUS.get(final.status, LookupStatus.FAILED), \
                final.detail
        outcome = LookupOutcome(digits, status, sec.name, prefix, op, done, loop_time() - t0,
                                detail)
        stats.record(outcome)
        return outcome

    # ------------------------------------------------------------------ explain

    def explain(self, number: str) -> tuple[RouteMatch, list[tuple[str, str]]]:
        """The route of ``number`` and, for each of its methods, (label, state now)."""
        state = self._state
        config = self.config
        digits = normalize_number(number)
        router = state.router if state is not None else _router(config)
        match = router.route_for(digits)
        rows: list[tuple[str, str]] = []
        route = state.routes.get(match.route) if state and match.route else None
        sec = config.route(match.route) if match.route else None
        if sec is None:
            return match, rows
        now = self._lnow()
        for i, m in enumerate(sec.methods):
            label = route.methods[i].label if route is not None else _method_label(m)
            parts = []
            if m.linkset is not None:
                parts.append(self.linkset_state(m.linkset))
            if route is not None:
                b = route.breakers[i]
                bs = b.state(now)
                parts.append(f"breaker {bs.value}" + (
                    f" ({b.reopens_at() - now:.1f} s left)" if bs is BreakerState.OPEN else ""))
            rows.append((label, "; ".join(parts)))
        return match, rows

    def route_of(self, number: str) -> str | None:
        """The name of the route ``number`` takes now (raises InvalidNumber)."""
        state = self._state
        router = state.router if state is not None else _router(self.config)
        return router.route_for(normalize_number(number)).route

    def linkset_state(self, name: str) -> str:
        ls = self._linksets.get(name)
        if ls is None:
            return "not running"
        members = ", ".join(
            f"{m.name} {m.state.name}" + (" draining" if ls.is_draining(m) else "")
            for m in ls.members)
        up = len(ls.serving)
        return f"link set {name} {'UP' if ls.is_up else 'DOWN'} ({up}/{len(ls.members)} " \
               f"serving: {members})"

    # ------------------------------------------------------------------ status

    def associations(self) -> list[AssociationStatus]:
        out = []
        now_loop = asyncio.get_running_loop().time()
        for a in [*self._assocs.values(), *self._retiring]:
            assoc = a.assoc
            asp = assoc.asp
            as_state = getattr(asp, "as_state", None) if asp is not None else None
            nxt = assoc.next_attempt_at
            tr = assoc.transport
            local = None
            if tr is not None and tr.sockname:
                local = f"{tr.sockname[0]}:{tr.sockname[1]}"
            out.append(AssociationStatus(
                name=assoc.name, linkset=a.linkset, transport=a.section.transport.value,
                remote=f"{assoc.config.host}:{assoc.config.port}", local=local,
                routing_context=a.section.routing_context, asp_state=assoc.state.name,
                as_state=getattr(as_state, "name", None if as_state is None else str(as_state)),
                uptime=assoc.uptime, rtt=assoc.rtt, in_flight=self.client.dialogues_on(assoc),
                draining=a.draining, retiring=a.retiring,
                next_attempt_in=(max(0.0, nxt - now_loop)
                                 if nxt is not None and assoc.state is AspState.DOWN else None),
                counters=dataclasses.asdict(assoc.stats)))
        return out

    def routes(self) -> list[dict[str, object]]:
        """Every route with its prefixes, methods, breakers and counters."""
        state = self._state
        if state is None:
            return []
        now = self._lnow()
        out = []
        for r in state.config.routes:
            route = state.routes[r.name]
            out.append({
                "name": r.name, "prefixes": list(r.prefixes), "default": r.default,
                "timeout": r.timeout, "tps": r.tps,
                "methods": [{
                    "index": m.index, "kind": m.kind.value, "label": m.label,
                    "linkset": r.methods[m.index].linkset,
                    "link_state": (self.linkset_state(r.methods[m.index].linkset)
                                   if r.methods[m.index].linkset else None),
                    "breaker": b.state(now).value, "breaker_trips": b.trips,
                } for m, b in zip(route.methods, route.breakers)],
                "in_flight": route.stats.in_flight, "lookups": route.stats.lookups,
            })
        return out

    def route_stats(self, name: str) -> RouteStats | None:
        state = self._state
        route = state.routes.get(name) if state is not None else None
        return route.stats if route is not None else None

    def route_bucket(self, name: str) -> Throttle | None:
        state = self._state
        route = state.routes.get(name) if state is not None else None
        return route.bucket if route is not None else None

    @property
    def linksets(self) -> dict[str, DrainableLinkSet]:
        return dict(self._linksets)

    def linkset_bucket(self, name: str) -> Throttle | None:
        return self._ls_buckets.get(name)

    def all_associations(self) -> list[Association]:
        return [a.assoc for a in [*self._assocs.values(), *self._retiring]]

    def find_link(self, name: str) -> list[Association]:
        """The associations a link name means: a link set's members, or one association."""
        ls = self._linksets.get(name)
        if ls is not None:
            return [m for m in ls.members if isinstance(m, Association)]
        a = self._assocs.get(name)
        return [a.assoc] if a is not None else []

    def linksets_of_route(self, name: str) -> list[str]:
        r = self.config.route(name)
        return [m.linkset for m in r.methods if m.linkset] if r is not None else []

    # ------------------------------------------------------------------ drain

    async def drain(self, name: str, *, close: bool = False) -> list[str]:
        """Take an association (or every association of a link set) out of new traffic; with
        ``close``, close each once its dialogues are done. Returns the names drained."""
        entries = self._link_entries(name)
        if not entries:
            raise KeyError(name)
        for e in entries:
            e.draining = True
            if e.ls is not None:
                e.ls.drain(e.assoc)
            log.info("association %s draining", e.assoc.name)
        if close:
            await asyncio.gather(*(self._drain_then_close(e, remove=False) for e in entries))
        return [e.assoc.name for e in entries]

    async def restore(self, name: str) -> list[str]:
        """Undo :meth:`drain`: the association takes new dialogues again (a closed one is
        rebuilt from the configuration and reconnects)."""
        entries = self._link_entries(name)
        if not entries:
            raise KeyError(name)
        for e in entries:
            ls = e.ls
            if e.assoc.closed:
                if ls is not None:
                    ls.remove(e.assoc)
                e.assoc = self._new_association(e.section)
                if ls is not None:
                    ls.add(e.assoc)
                e.assoc.start()
            if ls is not None:
                ls.undrain(e.assoc)
            e.draining = False
        return [e.assoc.name for e in entries]

    def _link_entries(self, name: str) -> list[_Assoc]:
        if name in self._linksets:
            return [a for a in self._assocs.values() if a.linkset == name]
        a = self._assocs.get(name)
        return [a] if a is not None else []

    async def _drain_then_close(self, entry: _Assoc, remove: bool) -> None:
        assoc = entry.assoc
        timeout = self.drain_timeout if self.drain_timeout is not None else \
            self.client.timer_m + 1.0
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.client.dialogues_on(assoc) and loop.time() < end:
            await asyncio.sleep(0.01)
        left = self.client.dialogues_on(assoc)
        if left:
            log.warning("association %s: %d dialogues still open after %.1f s of draining; "
                        "closing", assoc.name, left, timeout)
        await assoc.close()
        if remove:
            if entry.ls is not None:
                entry.ls.remove(assoc)
            if entry in self._retiring:
                self._retiring.remove(entry)
        log.info("association %s drained and closed", assoc.name)

    # ------------------------------------------------------------------ reload

    async def reload(self, config: Config) -> ReloadReport:
        """Apply ``config`` (see the module docstring); raises :class:`ConfigInvalid` when a
        setting needs a restart, leaving everything as it was."""
        async with self._reload_lock:
            old = self.config
            problems = _restart_only(old, config)
            if problems:
                self.reloads["failed"] += 1
                raise ConfigInvalid(restart_problems(config, problems))
            try:
                tables = _load_tables(config)  # data files may have changed since the check
            except ConfigInvalid:
                self.reloads["failed"] += 1
                raise
            before = {n: a.section for n, a in self._assocs.items()}
            ls_before = set(self._linksets)
            new_entries, retire = self._apply_links(config)
            not_up: list[str] = []
            if new_entries and self.settle > 0:
                results = await asyncio.gather(*(e.assoc.wait_active(self.settle)
                                                 for e in new_entries))
                not_up = [e.assoc.name for e, ok in zip(new_entries, results) if not ok]
            client = self.client
            client.smsc = _isdn(config.map.smsc_address)
            client.gsmscf = _isdn(config.map.gsmscf_address or config.map.smsc_address)
            client.timer_m = config.map.timer_m
            old_routes = {r.name for r in old.routes}
            self._state = self._build_state(config, self.generation + 1, tables)
            self.loaded_at = time.time()
            for e in retire:
                self._retire(e)
            self.reloads["ok"] += 1
            new_names = {a.name for a in config.associations}
            replaced = tuple(sorted(n for n in new_names & set(before)
                                    if before[n] != config.association(n)))
            report = ReloadReport(
                generation=self.generation,
                added=tuple(sorted(new_names - set(before))),
                removed=tuple(sorted(set(before) - new_names)),
                replaced=replaced,
                linksets_added=tuple(sorted(set(self._linksets) - ls_before)),
                linksets_removed=tuple(sorted(ls_before - {s.name for s in config.linksets})),
                routes_added=tuple(sorted({r.name for r in config.routes} - old_routes)),
                routes_removed=tuple(sorted(old_routes - {r.name for r in config.routes})),
                not_up=tuple(not_up))
            log.info("configuration applied: %s", report.summary())
            return report

    def _retire(self, entry: _Assoc) -> None:
        entry.retiring = True
        entry.draining = True
        if entry.ls is not None:
            entry.ls.drain(entry.assoc)
        self._retiring.append(entry)
        task = asyncio.get_running_loop().create_task(self._drain_then_close(entry, True))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_association(self, a: AssociationSection) -> Association:
        assoc = Association(_assoc_config(a))
        assoc.on_payload = self.client.on_payload
        for cb in self.association_listeners:
            cb(assoc)
        return assoc

    def _apply_links(self, config: Config) -> tuple[list[_Assoc], list[_Assoc]]:
        """Bring associations and link sets in line with ``config``: returns the entries
        started and the entries to retire."""
        owner = {name: ls.name for ls in config.linksets for name in ls.associations}
        started: list[_Assoc] = []
        retire: list[_Assoc] = []
        wanted = {a.name: a for a in config.associations}
        for name, entry in list(self._assocs.items()):
            sec = wanted.get(name)
            if sec is None or sec != entry.section or owner.get(name) != entry.linkset:
                retire.append(self._assocs.pop(name))
        for ls_sec in config.linksets:
            ls = self._linksets.get(ls_sec.name)
            mode = LinkSetMode(ls_sec.mode.value)
            if ls is None:
                ls = DrainableLinkSet(ls_sec.name, (), mode)
                self._linksets[ls_sec.name] = ls
                self.client.attach(ls)
            ls.mode = mode
            self._set_bucket(ls_sec)
        for ls_sec in config.linksets:
            ls = self._linksets[ls_sec.name]
            for name in ls_sec.associations:
                if name in self._assocs:
                    continue
                entry = _Assoc(wanted[name], self._new_association(wanted[name]), ls_sec.name,
                               ls)
                self._assocs[name] = entry
                ls.add(entry.assoc)
                entry.assoc.start()
                started.append(entry)
        for name, a in wanted.items():  # in no link set: brought up all the same
            if name not in self._assocs and name not in owner:
                entry = _Assoc(a, self._new_association(a), "", None)
                self._assocs[name] = entry
                entry.assoc.start()
                started.append(entry)
        for name in set(self._linksets) - {s.name for s in config.linksets}:
            self._ls_buckets.pop(name, None)
            del self._linksets[name]  # the object lives on for the lookups still using it
        return started, retire

    def _set_bucket(self, ls: LinkSetSection) -> None:
        if ls.tps is None:
            self._ls_buckets.pop(ls.name, None)
            return
        bucket = self._ls_buckets.get(ls.name)
        if bucket is None:
            self._ls_buckets[ls.name] = Throttle(ls.tps, ls.burst)
        else:
            bucket.reconfigure(ls.tps, ls.burst)

    def _build_state(self, config: Config, generation: int,
                     tables: tuple[dict[str, RangeTable], dict[str, MnpTable]]) -> _State:
        ranges, mnp = tables
        old = self._state
        routes: dict[str, _Route] = {}
        self._sip_used = set()
        for r in config.routes:
            methods: list[Method] = []
            breakers: list[CircuitBreaker] = []
            for i, m in enumerate(r.methods):
                methods.append(self._method(config, r, i, m, ranges, mnp))
                key = (r.name, i, m)
                b = self._breakers.get(key)
                if b is None or (b.threshold, b.cooldown) != (r.breaker_failures,
                                                               r.breaker_cooldown):
                    b = CircuitBreaker(r.breaker_failures, r.breaker_cooldown)
                    self._breakers[key] = b
                breakers.append(b)
            stats = self._stats.get(r.name)
            labels = [(m.label, m.kind.value) for m in methods]
            if stats is None or [(s.label, s.kind) for s in stats.methods] != labels:
                prev = stats
                stats = RouteStats(methods=[_method_stats(lbl, k) for lbl, k in labels])
                if prev is not None:  # the route's own counters carry on
                    stats.lookups, stats.by_status = prev.lookups, prev.by_status
                    stats.latency_sum = prev.latency_sum
                    stats.latency_buckets = prev.latency_buckets
                    stats.in_flight = prev.in_flight
                self._stats[r.name] = stats
            bucket = None
            if r.tps is not None:
                prev_route = old.routes.get(r.name) if old is not None else None
                bucket = prev_route.bucket if prev_route is not None else None
                if bucket is None:
                    bucket = Throttle(r.tps, r.burst)
                else:
                    bucket.reconfigure(r.tps, r.burst)
            routes[r.name] = _Route(r, tuple(methods), tuple(breakers), bucket, stats)
        live = {(r.name, i, m) for r in config.routes for i, m in enumerate(r.methods)}
        for key in set(self._breakers) - live:
            del self._breakers[key]
        for key in set(self._sip) - self._sip_used:  # no sip method asks these any more
            handle = self._sip.pop(key)
            task = asyncio.get_running_loop().create_task(handle.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for name in set(self._stats) - set(routes):
            # kept while lookups of the old generation may still record into it
            if self._stats[name].in_flight == 0:
                del self._stats[name]
        return _State(config, _router(config), routes, generation)

    def _method(self, config: Config, r: RouteSection, i: int, m: MethodSection,
                ranges: dict[str, RangeTable], mnp: dict[str, MnpTable]) -> Method:
        if m.kind in (MethodKind.MAP_SRI_SM, MethodKind.MAP_ATI):
            assert m.linkset is not None
            ls = self._linksets[m.linkset]
            ls_sec = config.linkset(m.linkset)
            first = config.association(ls_sec.associations[0]) if ls_sec else None
            route = MapRoute(f"{r.name}#{i}", ls, opc=first.opc if first else 0,
                             dpc=first.dpc if first else 0, calling_gt=config.sccp.global_title,
                             ni=first.ni if first else 2,
                             hlr_gt=None if m.called_gt == "msisdn" else m.called_gt,
                             hlr_ssn=config.sccp.hlr_ssn)
            op = (Opcode.SEND_ROUTING_INFO_FOR_SM if m.kind is MethodKind.MAP_SRI_SM
                  else Opcode.ANY_TIME_INTERROGATION)
            version = m.version or (config.map.versions.sri_sm
                                    if m.kind is MethodKind.MAP_SRI_SM else config.map.versions.ati)
            self.client.set_version(route, op, version)  # negotiation starts over here
            return MapMethod(i, m.kind, self.client, route, ls,
                             throttle=self._ls_buckets.get(m.linkset),
                             queue_wait=ls_sec.queue_wait if ls_sec else 1.0,
                             timeout=m.timeout)
        if m.kind is MethodKind.LOCAL:
            return LocalMethod(i, ranges.get(m.range_table) if m.range_table else None,
                               mnp.get(m.mnp_source) if m.mnp_source else None)
        if m.kind is MethodKind.REJECT:
            return RejectMethod(i, m.reason)
        if m.kind is MethodKind.SIP:
            targets = tuple(_np_target(config.sip_target(n)) for n in m.targets)
            key = (config.sip.listen, targets)
            handle = self._sip.get(key)
            if handle is None:
                # an ephemeral local port: answers come back to it (Via rport)
                handle = self._sip[key] = NpClientHandle(SipNpClient(
                    targets, local_host=config.sip.listen, local_port=0))
            handle.client.rn_table = rn_table(config)  # [[routing_numbers]], also on reload
            self._sip_used.add(key)
            return SipMethod(i, handle, targets=m.targets, timeout=m.timeout)
        raise ValueError(f"method kind {m.kind.value} is not known")


def _method_stats(label: str, kind: str) -> MethodStats:
    return MethodStats(label, kind)


def _method_label(m: MethodSection) -> str:
    if m.kind in (MethodKind.MAP_SRI_SM, MethodKind.MAP_ATI):
        gt = "GT = MSISDN" if m.called_gt == "msisdn" else f"GT {m.called_gt}"
        return f"{m.kind.value} via {m.linkset} ({gt})"
    if m.kind is MethodKind.LOCAL:
        parts = [f"range table {m.range_table}" if m.range_table else "",
                 f"MNP {m.mnp_source}" if m.mnp_source else ""]
        return "local (" + ", ".join(p for p in parts if p) + ")"
    if m.kind is MethodKind.REJECT:
        return f"reject ({m.reason})"
    return f"{m.kind.value} via {', '.join(m.targets)}"


def _router(config: Config) -> Router:
    return Router([(r.name, r.prefixes, r.default) for r in config.routes])


def explain_config(config: Config, number: str) -> tuple[RouteMatch, list[str]]:
    """The route of ``number`` and its methods' labels, from the configuration alone."""
    match = _router(config).route_for(normalize_number(number))
    sec = config.route(match.route) if match.route else None
    return match, [_method_label(m) for m in sec.methods] if sec else []


def _load_tables(config: Config) -> tuple[dict[str, RangeTable], dict[str, MnpTable]]:
    """Range tables and MNP tables read afresh from their files."""
    return ({t.name: _range_table(t) for t in config.range_tables},
            {s.name: _mnp_table(s) for s in config.mnp_sources if s.file is not None})


def _range_table(t) -> RangeTable:
    entries = [RangeHolder(r.prefix, r.network, r.mccmnc) for r in t.ranges]
    if t.file is not None:
        from_file, problems = read_range_csv(t.file)
        if problems:
            raise ConfigInvalid(problems)
        entries = from_file + entries  # the configuration's own ranges win
    return RangeTable(t.name, entries)


def _mnp_table(s) -> MnpTable:
    numbers, problems = read_mnp_csv(s.file)
    if problems:
        raise ConfigInvalid(problems)
    return MnpTable(s.name, numbers)


def _np_target(t: SipTargetSection | None) -> NpTarget:
    """The client's view of a ``[[sip_targets]]`` entry (checked by the configuration)."""
    if t is None:
        raise ValueError("unknown SIP target")
    from protocols.sip.uri import SipUri, parse_uri
    uri = parse_uri(t.uri)
    if not isinstance(uri, SipUri):
        raise ValueError(f"{t.uri!r} is not a SIP URI")
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    return NpTarget(host, uri.port or 5060, t.transport.value, timeout=t.timeout, name=t.name,
                    rate=t.tps, burst=t.burst)


def _isdn(digits: str):
    from protocols.tbcd import isdn
    return isdn(digits)
