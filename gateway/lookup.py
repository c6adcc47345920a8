"""The lookup service: what the HTTP API (and a batch job) asks, answered from the engine, the
cache, the range data and the store.

Four services, each a method returning the JSON document the API answers with:

- :meth:`LookupService.hlr`: a live MAP query through :meth:`Engine.lookup` (SRI-SM, or ATI
  where the route says so), normalised by :func:`normalise` into one answer: the number, a
  ``status`` with the MAP detail behind it, the IMSI (masked unless the customer may see it),
  home network, serving MSC and country, roaming and ported flags, the original network
  (range holder), and lookup metadata;
- :meth:`LookupService.mnp`: current network, original network, ported flag and routing
  number: from the configured MNP files when they hold the number, else HLR-derived (the
  home network of the IMSI against the range holder);
- :meth:`LookupService.ranges`: the range holding the number (configured range tables, else
  phonenumbers' carrier data), its country, number type and holder; no network query;
- :meth:`LookupService.port_history`: the ports the gateway has observed (each live HLR
  answer records the home network it names) within a window.

**Status mapping.** A MAP result is ``connected`` (``absent`` when ATI says
net_det_not_reachable); absentSubscriberSM and absentSubscriber: ``absent``;
unknownSubscriber: ``not_found``; callBarred: ``barred``; any other MAP error, or an answer
from local data or SIP number portability only: ``unknown``, with the detail (a SIP
``not_found``, 404/604 from the NP server, is ``not_found``). No answer at all is no status but an
error: upstream-timeout (timer m ran out on the last try) or upstream-failure (abort,
P-abort, link down, undecodable answer, ...); a route that refuses is no-route; a route over
its TPS cap is unavailable.

**Caching.** An answer is cached under the number and the operation asked for (shared by
HLR and MNP lookups and by every customer) for ``[cache] ttl`` seconds; a request takes it
when it is at most ``max_age`` seconds old (the request's, else the customer's default age,
else the ttl); ``max_age=0`` forces a live query. Negative answers (not_found) are cached like
any answer; numbers outside the numbering plan are refused before any query, and that
verdict is memoised (:mod:`gateway.numbers`). Concurrent lookups of one number share one
network query (:class:`~gateway.cache.SingleFlight`).

**Audit.** Every lookup through the API is recorded with :meth:`Store.record_lookup` (the
customer, the service, the number, the outcome, the route); a live HLR answer also records
the home network it names, which is what the port history reads: each time it differs from
the last one recorded for the number, and otherwise at most once an hour
(:data:`OBSERVE_EVERY`: the observation's ``last_seen`` is kept to that precision). Batch lookups
(:meth:`LookupService.lookup`) are recorded by the batch manager with its results (see
:func:`describe`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import os
import re
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.cache import Cache, SingleFlight
from gateway.config import Config
from gateway.engine import Engine, LookupOutcome, LookupStatus, Operation
from gateway.http.problems import ProblemError, ProblemType, invalid_number
from gateway.localdata import MnpTable, PortedNumber, read_mnp_csv, read_range_csv
from gateway.methods import LocalAnswer, MethodOutcome, MethodStatus
from gateway.networks import NetworkDirectory, NetworkInfo, country_name, country_of_gt
from gateway.numbers import InvalidNumber, Number, mask_imsi, parse_number
from gateway.sigtran.map_client import FailureKind, MapFailure, MapResult, MapUserError
from gateway.sip.np_client import NpOutcome
from protocols.map import Opcode

__all__ = ["HLR_STATUSES", "LookupService", "describe", "isotime", "normalise",
           "parse_window"]

log = logging.getLogger(__name__)

#: the statuses of an HLR answer
HLR_STATUSES = ("connected", "absent", "not_found", "barred", "unknown")

_ABSENT = frozenset({"absent_subscriber_sm", "absent_subscriber"})
_OPERATION = {Opcode.SEND_ROUTING_INFO_FOR_SM: "sri_sm", Opcode.ANY_TIME_INTERROGATION: "ati",
              Opcode.SEND_ROUTING_INFO: "sri"}
_METHOD = {"map_sri_sm": "map_sri_sm", "map_ati": "map_ati", "local": "local",
           "reject": "reject", "sip": "sip"}
DEFAULT_WINDOW = "P2Y"
#: a number seen again on the network last recorded for it is recorded again (its
#: observation's last_seen extended) at most this often, in seconds
OBSERVE_EVERY = 3600.0
#: numbers whose last recorded network the service remembers
OBSERVED_MAX = 200_000


_SECOND: list[Any] = [None, ""]  # the last whole second formatted, and its text


def isotime(t: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2025-11-23T15:04:05.123Z``."""
    whole = int(t // 1)
    us = round((t - whole) * 1_000_000)  # as datetime does: to the microsecond, then cut
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    ms = us // 1000
    if _SECOND[0] != whole:
        _SECOND[0] = whole
        _SECOND[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_SECOND[1]}.{ms:03d}Z"


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def new_id() -> str:
    """A lookup id: 32 hex digits, unique (a random per-process prefix and a counter),
    without a system call."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


def _digits(value: object) -> str | None:
    return getattr(value, "digits", None)


def _lower_name(value: object) -> str | None:
    if value is None:
        return None
    name = getattr(value, "name", None)
    return name.lower() if isinstance(name, str) else str(value)


# --------------------------------------------------------------------------- normalising


def _status_of(m: object) -> str:
    if isinstance(m, MapResult):
        info = getattr(m.value, "subscriber_info", None)
        state = getattr(info, "subscriber_state", None)
        if state is not None and _lower_name(state) == "net_det_not_reachable":
            return "absent"
        return "connected"
    if isinstance(m, MapUserError):
        if m.name in _ABSENT:
            return "absent"
        if m.name == "unknown_subscriber":
            return "not_found"
        if m.name == "call_barred":
            return "barred"
    return "unknown"


def _serving(m: MapResult, directory: NetworkDirectory) -> dict[str, Any] | None:
    """The serving MSC/VLR, its country, and (ATI) the serving cell's network."""
    v = m.value
    msc = vlr = None
    location = None
    network = None
    loc = getattr(v, "location_info_with_lmsi", None)
    if loc is not None:
        msc = _digits(loc.network_node_number)
    info = getattr(v, "subscriber_info", None)
    li = getattr(info, "location_information", None) if info is not None else None
    if li is not None:
        vlr = _digits(li.vlr_number)
        msc = _digits(li.msc_number) or msc
        cgi = li.cell_global_id_or_service_area_id_or_lai
        location = {"mcc": None, "mnc": None, "lac": None, "cell_id": None,
                    "age_minutes": li.age_of_location_information}
        if cgi is not None:
            location.update(mcc=cgi.mcc, mnc=cgi.mnc, lac=cgi.lac, cell_id=cgi.ci)
            network = directory.by_mccmnc(cgi.mcc, cgi.mnc)
    gt = msc or vlr
    if gt is None and location is None:
        return None
    country = country_of_gt(gt) if gt else (network.country if network else None)
    if network is not None and network.country:
        country = network.country
    return {"msc": msc, "vlr": vlr, "country": country,
            "country_name": country_name(country),
            "network": network.as_dict() if network is not None else None,
            "location": location}


def _range_doc(number: Number, directory: NetworkDirectory) -> tuple[dict[str, Any] | None,
                                                                      NetworkInfo | None]:
    match = directory.range_holder(number.e164, number.region)
    if match is None or match.holder is None:
        return None, None
    return {**match.holder.as_dict(), "prefix": match.prefix, "source": match.source}, \
        match.holder


def normalise(outcome: LookupOutcome, number: Number, directory: NetworkDirectory, *,
              now: float, linkset: str | None = None, latency: float | None = None
              ) -> dict[str, Any]:
    """The HLR answer (unmasked, shared by every customer) of an answered lookup; raises
    :class:`ProblemError` for a lookup that got no answer (see the module docstring)."""
    final = outcome.final
    if outcome.status is not LookupStatus.ANSWERED or final is None:
        raise failure_problem(outcome, number)
    original, holder = _range_doc(number, directory)
    home: NetworkInfo | None = None
    imsi: str | None = None
    serving = None
    map_doc = None
    routing_number = None
    ported: bool | None = None
    source = "map"
    m = final.map
    version = None
    if final.local is not None:
        local: LocalAnswer = final.local
        status = "unknown"
        source = local.source
        routing_number = local.routing_number
        if local.mccmnc:
            home = directory.from_mccmnc(local.mccmnc)
            if home.name is None:
                home = NetworkInfo(local.network, home.country, home.mcc, home.mnc, home.key)
        elif local.network is None:  # a SIP "not ported": still with the range holder
            home = holder
        else:
            home = NetworkInfo(local.network, number.region)
        ported = local.ported
    elif final.sip is not None:  # a SIP NP answer without a network: not_found, invalid
        status = "not_found" if final.sip.outcome is NpOutcome.NOT_FOUND else "unknown"
        source = f"sip:{final.sip.target}" if final.sip.target else "sip"
    else:
        status = _status_of(m)
        version = getattr(m, "version", None)
        op = _OPERATION.get(getattr(m, "operation", None), None)
        map_doc = {"operation": op, "error": None, "subscriber_state": None,
                   "not_reachable_reason": None}
        if isinstance(m, MapUserError):
            map_doc["error"] = {"name": m.name, "code": m.code, "diagnostic": m.diagnostic}
        elif isinstance(m, MapResult):
            v = m.value
            imsi = _digits(getattr(v, "imsi", None))
            info = getattr(v, "subscriber_info", None)
            if info is not None:
                map_doc["subscriber_state"] = _lower_name(info.subscriber_state)
                map_doc["not_reachable_reason"] = _lower_name(info.not_reachable_reason)
                mnp = info.mnp_info_res
                if mnp is not None:
                    imsi = imsi or _digits(mnp.imsi)
                    routing_number = mnp.routeing_number
            serving = _serving(m, directory)
        if imsi:
            home = directory.from_imsi(imsi)
        if home is not None and holder is not None:
            same = home.same_network(holder)
            ported = None if same is None else not same
    home_country = home.country if home is not None and home.country else number.region
    roaming = None
    if serving is not None and serving.get("country") and home_country:
        roaming = serving["country"] != home_country
    return {
        "number": number.e164,
        "status": status,
        "source": source,
        "map": map_doc,
        "imsi": imsi,
        "home_network": home.as_dict() if home is not None else None,
        "serving": serving,
        "roaming": roaming,
        "ported": ported,
        "routing_number": routing_number,
        "original_network": original,
        "lookup": {
            "route": outcome.route,
            "method": _METHOD.get(final.kind._value_, final.kind._value_),
            "via": linkset,
            "map_version": version,
            "attempts": len(outcome.attempts),
            "latency_ms": round((outcome.latency if latency is None else latency) * 1000, 3),
            "time": isotime(now),
        },
    }


def _failure_doc(m: MapFailure) -> dict[str, Any]:
    return {"operation": _OPERATION.get(m.operation), "failure": m.kind.value,
            "detail": m.detail, "cause": m.cause}


def failure_problem(outcome: LookupOutcome, number: Number) -> ProblemError:
    """The problem of a lookup that got no answer (see the module docstring)."""
    st = outcome.status
    where = {"number": number.e164, "route": outcome.route}
    if st is LookupStatus.NO_ROUTE:
        return ProblemError(422, ProblemType.NO_ROUTE, outcome.detail or "no route",
                            **where)
    if st is LookupStatus.REJECTED:
        return ProblemError(422, ProblemType.NO_ROUTE, f"route {outcome.route} refuses this "
                            f"number: {outcome.detail}", **where)
    if st is LookupStatus.THROTTLED:
        return ProblemError(503, ProblemType.UNAVAILABLE, outcome.detail or "the route is "
                            "at its TPS cap", headers={"Retry-After": "1"}, retry_after=1,
                            **where)
    if st is LookupStatus.INVALID_NUMBER:  # pragma: no cover - numbers are parsed first
        return invalid_number(number.e164, "not-a-number", outcome.detail)
    final: MethodOutcome | None = outcome.final
    m = final.map if final is not None else None
    attempts = len(outcome.attempts)
    # the route's own deadline ran out (the engine's attempt says so, with no MAP outcome)
    deadline = (final is not None and m is None and final.status is MethodStatus.FAILED
                and final.timed_out)
    if deadline:
        m = next((a.map for a in reversed(outcome.attempts) if isinstance(a.map, MapFailure)),
                 None)
        return ProblemError(504, ProblemType.UPSTREAM_TIMEOUT,
                            f"no HLR answered within the route's deadline ({attempts} "
                            f"attempt(s); {final.detail})",
                            map=_failure_doc(m) if m is not None else None, **where)
    if isinstance(m, MapFailure):
        doc = _failure_doc(m)
        if m.kind is FailureKind.TIMEOUT:
            return ProblemError(504, ProblemType.UPSTREAM_TIMEOUT,
                                f"no HLR answered in time ({attempts} attempt(s); last: "
                                f"{m.detail})", map=doc, **where)
        return ProblemError(502, ProblemType.UPSTREAM_FAILURE,
                            f"no HLR answered ({attempts} attempt(s); last: {m.kind.value}: "
                            f"{m.detail})", map=doc, **where)
    if final is not None and final.status in (MethodStatus.THROTTLED, MethodStatus.SKIPPED):
        # a TPS cap, or every method's circuit breaker open: try again later
        wait = 1
        m_wait = re.search(r"open for ([0-9.]+) s", final.detail or "")
        if m_wait:
            wait = max(1, math.ceil(float(m_wait.group(1))))
        return ProblemError(503, ProblemType.UNAVAILABLE, f"route {outcome.route}: "
                            f"{final.detail}", headers={"Retry-After": str(wait)},
                            retry_after=wait, **where)
    detail = final.detail if final is not None else (outcome.detail or "no method could run")
    return ProblemError(502, ProblemType.UPSTREAM_FAILURE, f"no answer: {detail}", **where)


# --------------------------------------------------------------------------- windows

_WINDOW = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                     r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
MAX_WINDOW_YEARS = 100


def parse_window(text: str, now: float) -> float:
    """The start (epoch seconds) of an ISO 8601 duration window ending ``now``: ``P2Y``,
    ``P18M``, ``P1Y6M``, ``P90D``, ``P2W``, ``PT12H``. Years and months are calendar ones.
    ValueError for anything else."""
    m = _WINDOW.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    if m is None or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P2Y, P6M or P30D")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    if y + (mo + 11) // 12 > MAX_WINDOW_YEARS or w > 5300 or d > 36600 or h > 900000 \
            or mi > 54000000 or s > 3200000000:
        raise ValueError(f"{text!r}: a window is at most {MAX_WINDOW_YEARS} years")
    end = dt.datetime.fromtimestamp(now, dt.UTC)
    months = end.year * 12 + (end.month - 1) - (y * 12 + mo)
    year, month = divmod(months, 12)
    month += 1
    import calendar

    day = min(end.day, calendar.monthrange(year, month)[1])
    start = end.replace(year=year, month=month, day=day)
    start -= dt.timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)
    return start.timestamp()


# --------------------------------------------------------------------------- metrics


#: the latency buckets of hlrgw_api_lookup_duration_seconds (upper bounds, seconds)
API_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                       10.0, 30.0)


class _Histogram:
    """One label set of a histogram: per-bucket counts (not cumulative; the last one is
    +Inf), the sum, and when it was made."""

    __slots__ = ("counts", "sum", "created")

    def __init__(self, n: int) -> None:
        self.counts = [0] * (n + 1)
        self.sum = 0.0
        self.created = time.time()


class LookupMetrics:
    """Prometheus metrics of the lookup API (one set per service instance).

    The request path counts in plain Python (ints in dicts, a histogram's buckets in a
    list found with :func:`bisect.bisect_left`): everything runs on one event loop, so none
    of prometheus_client's per-update locks is needed, and six locked updates a request
    were a measurable part of its cost. :class:`_LookupCollector` turns them into the
    same metric families at scrape time (names, labels, types, ``_created`` samples)
    that prometheus_client's Counter, Histogram and Gauge would show."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        #: (service, status, route) -> [count, created]
        self.lookups: dict[tuple[str, str, str], list[float]] = {}
        #: (service, "true"/"false") -> histogram
        self.latency: dict[tuple[str, str], _Histogram] = {}
        #: service -> lookups being answered
        self.in_flight = {s: 0 for s in ("hlr", "mnp", "ranges", "port_history")}
        #: result -> [count, created]
        self.cache: dict[str, list[float]] = {}
        now = time.time()
        for r in ("hit", "miss", "joined", "bypass"):
            self.cache[r] = [0, now]
        #: HTTP status code -> [count, created]
        self.requests: dict[int, list[float]] = {}
        self._collector = _LookupCollector(self)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self._collector)

    def collectors(self) -> list[Any]:
        return [self._collector]

    def cache_count(self, result: str) -> None:
        self.cache[result][0] += 1

    def response(self, status: int) -> None:
        c = self.requests.get(status)
        if c is None:
            c = self.requests[status] = [0, time.time()]
        c[0] += 1

    def count(self, service: str, status: str, route: str | None, seconds: float,
              cached: bool) -> None:
        key = (service, status, route or "")
        c = self.lookups.get(key)
        if c is None:
            c = self.lookups[key] = [0, time.time()]
        c[0] += 1
        lk = (service, "true" if cached else "false")
        h = self.latency.get(lk)
        if h is None:
            h = self.latency[lk] = _Histogram(len(API_LATENCY_BUCKETS))
        h.counts[bisect_left(API_LATENCY_BUCKETS, seconds)] += 1
        h.sum += seconds


class _LookupCollector:
    """The metric families of a :class:`LookupMetrics`, read at each scrape."""

    def __init__(self, metrics: LookupMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return self._families(empty=True)

    def collect(self) -> list[Any]:
        return self._families(empty=False)

    def _families(self, empty: bool) -> list[Any]:
        from prometheus_client import metrics as pm
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )
        from prometheus_client.samples import Sample
        from prometheus_client.utils import floatToGoString

        created = getattr(pm, "_use_created", True)
        m = self.metrics
        lookups = CounterMetricFamily("hlrgw_api_lookups", "lookups by service, outcome (an "
                                      "HLR status, ok, or a problem type) and route",
                                      labels=["service", "status", "route"])
        latency = HistogramMetricFamily("hlrgw_api_lookup_duration_seconds", "lookup latency "
                                        "as the API answers it (cache included)",
                                        labels=["service", "cached"])
        in_flight = GaugeMetricFamily("hlrgw_api_lookups_in_flight", "lookups being answered",
                                      labels=["service"])
        cache = CounterMetricFamily("hlrgw_api_cache", "answer cache: hit, miss, joined "
                                    "(shared a query in flight), bypass (max_age 0 or "
                                    "caching off)", labels=["result"])
        requests = CounterMetricFamily("hlrgw_api_http_responses", "HTTP responses of the "
                                       "lookup API by status code", labels=["code"])
        families = [lookups, latency, in_flight, cache, requests]
        if empty:
            return families
        for key, (n, t) in list(m.lookups.items()):
            lookups.add_metric(list(key), n, created=t if created else None)
        bounds = [floatToGoString(b) for b in API_LATENCY_BUCKETS] + ["+Inf"]
        for key, h in list(m.latency.items()):
            cumulative, buckets = 0, []
            for bound, n in zip(bounds, h.counts):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric(list(key), buckets, h.sum)
            if created:
                latency.samples.append(Sample(
                    "hlrgw_api_lookup_duration_seconds_created",
                    {"service": key[0], "cached": key[1]}, h.created))
        for service, n in m.in_flight.items():
            in_flight.add_metric([service], n)
        for result, (n, t) in m.cache.items():
            cache.add_metric([result], n, created=t if created else None)
        for code, (n, t) in list(m.requests.items()):
            requests.add_metric([str(code)], n, created=t if created else None)
        return families


# --------------------------------------------------------------------------- the service


@dataclass(frozen=True, slots=True)
class _Local:
    """What the configuration's data files say, reloaded with it."""

    mnp: tuple[MnpTable, ...]


def _read_tables(config: Config) -> tuple[list[tuple[str, list[tuple[str, str, str | None]]]],
                                           _Local]:
    ranges = []
    for t in config.range_tables:
        rows = []
        if t.file is not None:
            found, _problems = read_range_csv(t.file)  # the check has read it already
            rows.extend((r.prefix, r.network, r.mccmnc) for r in found)
        rows.extend((r.prefix, r.network, r.mccmnc) for r in t.ranges)
        ranges.append((t.name, rows))
    mnp = []
    for s in config.mnp_sources:
        if s.file is not None:
            found, _problems = read_mnp_csv(s.file)
            mnp.append(MnpTable(s.name, found))
    return ranges, _Local(tuple(mnp))


class LookupService:
    """See the module docstring. ``store`` may be None (nothing is recorded), as may
    ``cache`` (nothing is cached)."""

    def __init__(self, engine: Engine, store: Any = None, cache: Cache | None = None, *,
                 ttl: float = 300.0, directory: NetworkDirectory | None = None,
                 metrics: LookupMetrics | None = None, audit_wait: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.store = store
        self.cache = cache
        self.ttl = ttl
        self.directory = directory or NetworkDirectory()
        self.metrics = metrics or LookupMetrics()
        self.audit_wait = audit_wait
        self.clock = clock
        self.flights: SingleFlight[dict[str, Any]] = SingleFlight()
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()  # see _record
        self._local = _Local(())
        # each route's methods' link sets, by route name, for the configuration it was read
        # from (see _linkset_of)
        self._linksets: tuple[Any, dict[str, tuple[str | None, ...]]] = (None, {})
        self.reconfigure(engine.config)

    def reconfigure(self, config: Config) -> None:
        """Read the configuration's range tables and MNP files (at start and on reload)."""
        ranges, local = _read_tables(config)
        self.directory.learn(ranges)
        self._local = local

    # ---- numbers

    def number(self, text: str) -> Number:
        """The E.164 number of ``text``; ProblemError invalid-number (400) with the reason,
        for text that is no possible number, or a number in no range of its country's plan
        (phonenumbers' metadata): no network query is made for those."""
        try:
            number = parse_number(text)
        except InvalidNumber as exc:
            raise invalid_number(_shown(text), exc.reason, exc.detail) from None
        if not number.valid:
            exc = InvalidNumber.not_in_plan(number, _shown(text))
            raise invalid_number(_shown(text), exc.reason, exc.detail)
        return number

    # ---- the four services

    async def hlr(self, text: str, customer: Any, *, max_age: float | None = None,
                  operation: str | None = None, record: bool = True) -> dict[str, Any]:
        # what _serve does, inline: the API's busiest path, with one coroutine less
        # between the handler and the engine
        t0 = time.perf_counter()
        metrics = self.metrics
        in_flight = metrics.in_flight
        in_flight["hlr"] += 1
        outcome = "error"
        route = None
        network = None
        shown = text
        cached = False
        try:
            try:
                number = self.number(text)
                shown = number.e164
                doc, cached, age, leader = await self._answer(number, customer, max_age,
                                                              operation)
                outcome = doc["status"]
                route = doc["lookup"]["route"]
                if leader:
                    network = _observed(doc)
                return self._for_customer(doc, customer, cached, age)
            except ProblemError as exc:
                outcome = str(exc.type).rsplit("/", 1)[-1]
                route = exc.ext.get("route")
                raise
        finally:
            in_flight["hlr"] -= 1
            metrics.count("hlr", outcome, route, time.perf_counter() - t0, cached)
            if record and self.store is not None and customer is not None:
                written = self._queue_record(customer, "hlr", shown, outcome, route, network)
                if written is not None:
                    try:
                        await written
                    except Exception as exc:  # the answer is given all the same
                        _audit_failed(customer, exc)

    async def mnp(self, text: str, customer: Any, *, max_age: float | None = None,
                  record: bool = True) -> dict[str, Any]:
        return await self._serve("mnp", text, customer, record,
                                 lambda n: self._mnp(n, customer, max_age))

    async def ranges(self, text: str, customer: Any, *, record: bool = True
                     ) -> dict[str, Any]:
        async def run(n: Number) -> tuple[dict[str, Any], str, str | None, str | None]:
            doc = self._ranges(n)
            return doc, "ok" if doc["range"] is not None else "no_range", None, None
        return await self._serve("ranges", text, customer, record, run)

    async def port_history(self, text: str, customer: Any, *, window: str = DEFAULT_WINDOW,
                           record: bool = True) -> dict[str, Any]:
        now = self.clock()
        try:
            since = parse_window(window, now)
        except ValueError as exc:
            raise ProblemError(400, ProblemType.BAD_REQUEST, str(exc),
                               field="window") from None

        async def run(n: Number) -> tuple[dict[str, Any], str, str | None, str | None]:
            return await self._port_history(n, window, since, now), "ok", None, None
        return await self._serve("port_history", text, customer, record, run)

    async def lookup(self, service: str, number: str, customer: Any) -> dict[str, Any]:
        """One lookup of a batch job (``service`` in hlr, mnp, ranges, port_history), not
        recorded here: the batch manager records it with its result (:func:`describe`)."""
        if service == "hlr":
            return await self.hlr(number, customer, record=False)
        if service == "mnp":
            return await self.mnp(number, customer, record=False)
        if service == "ranges":
            return await self.ranges(number, customer, record=False)
        if service == "port_history":
            window = DEFAULT_WINDOW
            return await self.port_history(number, customer, window=window, record=False)
        raise ProblemError(400, ProblemType.BAD_REQUEST, f"unknown service {service!r}")

    # ---- the common path: parse, run, count, record

    async def _serve(self, service: str, text: str, customer: Any, record: bool, run
                     ) -> dict[str, Any]:
        t0 = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight[service] += 1
        outcome = "error"
        route = None
        network = None
        shown = text
        cached = False
        try:
            try:
                number = self.number(text)
                shown = number.e164
                doc, outcome, route, network = await run(number)
                cached = bool(doc.get("lookup", {}).get("cached"))
                return doc
            except ProblemError as exc:
                outcome = str(exc.type).rsplit("/", 1)[-1]
                route = exc.ext.get("route")
                raise
        finally:
            metrics.in_flight[service] -= 1
            metrics.count(service, outcome, route, time.perf_counter() - t0, cached)
            if record and self.store is not None and customer is not None:
                written = self._queue_record(customer, service, shown, outcome, route,
                                             network)
                if written is not None:
                    try:
                        await written
                    except Exception as exc:  # the answer is given all the same
                        _audit_failed(customer, exc)

    def _worth_observing(self, number: str, network: str | None) -> str | None:
        """``network`` when this sighting tells the port history something: the number's
        first here, another network than the last one recorded, or the same one again
        after :data:`OBSERVE_EVERY` seconds (which keeps its ``last_seen`` current to that
        precision); else None, and only the audit row is written."""
        if network is None:
            return None
        now = self.clock()
        seen = self._seen
        last = seen.get(number)
        if last is not None and last[0] == network and now - last[1] < OBSERVE_EVERY:
            return None
        seen[number] = (network, now)
        seen.move_to_end(number)
        if len(seen) > OBSERVED_MAX:
            seen.popitem(last=False)
        return network

    def _queue_record(self, customer: Any, service: str, number: str, outcome: str,
                      route: str | None, network: str | None) -> Any:
        """Queue the audit row (and port observation): what to await for its commit (with
        ``audit_wait``), else None. A store that cannot take it is logged, not raised."""
        network = self._worth_observing(number, network)
        store = self.store
        try:
            queue = getattr(store, "queue_lookup", None)
            if queue is None:  # a store without the plain method: its coroutine
                return store.record_lookup(customer.id, service, number[:64], outcome, route,
                                           network=network, at=self.clock(),
                                           wait=self.audit_wait)
            return queue(customer.id, service, number[:64], outcome, route, network=network,
                         at=self.clock(), wait=self.audit_wait)
        except Exception as exc:  # the answer is given all the same; the store logs it
            _audit_failed(customer, exc)
            return None

    # ---- HLR

    def _max_age(self, customer: Any, max_age: float | None) -> float:
        if max_age is not None:
            return max_age
        age = getattr(customer, "cache_age", None)
        return self.ttl if age is None else age

    async def _answer(self, number: Number, customer: Any, max_age: float | None,
                      operation: str | None) -> tuple[dict[str, Any], bool, float, bool]:
        """(the shared answer, cached?, its age, live query made by this call?)."""
        op = Operation(operation) if operation else None
        key = f"hlr:{op.value if op else '-'}:{number.e164}"
        age_limit = self._max_age(customer, max_age)
        cache = self.cache
        metrics = self.metrics
        use_cache = cache is not None and self.ttl > 0
        if use_cache and age_limit > 0:
            entry = await cache.get(key, age_limit)  # type: ignore[union-attr]
            if entry is not None:
                metrics.cache_count("hit")
                return entry.value, True, entry.age(self.clock()), False
            metrics.cache_count("miss")
        else:
            metrics.cache_count("bypass")
        flights = self.flights
        if not flights.lead(key):  # a query of this key is running: share its answer
            doc = await flights.follow(key)
            metrics.cache_count("joined")
            return doc, False, 0.0, False
        try:  # the leader: the query in this coroutine (no closure, no extra await)
            t0 = time.perf_counter()
            outcome = await self.engine.lookup(number.e164, op)
            latency = time.perf_counter() - t0
            now = self.clock()
            doc = normalise(outcome, number, self.directory, now=now,
                            linkset=self._linkset_of(outcome), latency=latency)
            if use_cache:
                await cache.set(key, doc, self.ttl, now)  # type: ignore[union-attr]
        except BaseException as exc:
            flights.fail(key, exc)
            raise
        flights.finish(key, doc)
        return doc, False, 0.0, True

    def _linkset_of(self, outcome: LookupOutcome) -> str | None:
        final = outcome.final
        if final is None or outcome.route is None:
            return None
        config = self.engine.config
        if self._linksets[0] is not config:  # (a reload gives a new configuration)
            sets: dict[str, tuple[str | None, ...]] = {}
            for r in config.routes:  # the first route of a name, as Config.route
                sets.setdefault(r.name, tuple(m.linkset for m in r.methods))
            self._linksets = (config, sets)
        methods = self._linksets[1].get(outcome.route)
        if methods is None or final.index >= len(methods):
            return None
        return methods[final.index]

    def _for_customer(self, doc: dict[str, Any], customer: Any, cached: bool, age: float
                      ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        imsi = doc.get("imsi")
        see = bool(getattr(customer, "see_imsi", False))
        for k, v in doc.items():
            out[k] = v
            if k == "imsi":
                if imsi and not see:
                    home = doc.get("home_network") or {}
                    out["imsi"] = mask_imsi(imsi, len(home.get("mnc") or "00"))
                out["imsi_masked"] = bool(imsi) and not see
        meta = {"id": new_id(), **doc["lookup"]}
        meta["cached"] = cached
        meta["cache_age"] = round(age, 3) if cached else 0.0
        out["lookup"] = meta
        return out

    # ---- MNP

    async def _mnp(self, number: Number, customer: Any, max_age: float | None):
        original, holder = _range_doc(number, self.directory)
        for table in self._local.mnp:
            ported = table.lookup(number.e164)
            if ported is not None:
                return (self._mnp_from_table(number, ported, table.name, original, holder),
                        "ported", None, None)
        doc, cached, age, leader = await self._answer(number, customer, max_age, None)
        meta = self._for_customer(doc, customer, cached, age)["lookup"]
        out = {
            "number": number.e164,
            "ported": doc["ported"],
            "current_network": doc["home_network"],
            "original_network": doc["original_network"],
            "routing_number": doc.get("routing_number"),
            "source": "hlr" if doc["source"] == "map" else doc["source"],
            "hlr_status": doc["status"],
            "lookup": meta,
        }
        network = _observed(doc) if leader else None
        outcome = "unknown" if doc["ported"] is None else ("ported" if doc["ported"]
                                                           else "not_ported")
        return out, outcome, doc["lookup"]["route"], network

    def _mnp_from_table(self, number: Number, p: PortedNumber, table: str,
                        original: dict[str, Any] | None, holder: NetworkInfo | None
                        ) -> dict[str, Any]:
        if p.mccmnc:
            current = self.directory.from_mccmnc(p.mccmnc)
            if current.name is None:
                current = NetworkInfo(p.network, current.country, current.mcc, current.mnc,
                                      current.key)
        else:
            current = NetworkInfo(p.network, number.region)
        same = current.same_network(holder) if holder is not None else None
        return {
            "number": number.e164,
            "ported": True if same is None else not same,
            "current_network": current.as_dict(),
            "original_network": original,
            "routing_number": p.routing_number,
            "source": f"mnp:{table}",
            "hlr_status": None,
            "lookup": {"id": new_id(), "route": None, "method": "mnp_table",
                       "via": table, "map_version": None, "attempts": 0, "latency_ms": 0.0,
                       "cached": False, "cache_age": 0.0, "time": isotime(self.clock())},
        }

    # ---- ranges

    def _ranges(self, number: Number) -> dict[str, Any]:
        match = self.directory.range_holder(number.e164, number.region)
        rng = None
        holder = None
        if match is not None:
            start, end = _range_bounds(number, match.prefix)
            rng = {"prefix": match.prefix, "start": start, "end": end,
                   "source": match.source}
            holder = match.holder.as_dict() if match.holder is not None else None
        return {
            "number": number.e164,
            "country": {"code": number.region, "name": country_name(number.region),
                        "calling_code": number.country_code},
            "number_type": number.type,
            "valid": number.valid,
            "range": rng,
            "range_holder": holder,
            "lookup": {"id": new_id(), "time": isotime(self.clock())},
        }

    # ---- port history

    async def _port_history(self, number: Number, window: str, since: float, now: float
                            ) -> dict[str, Any]:
        observations = await self.store.port_history(number.e164) if self.store else []
        nets = [self._network_of(o.network) for o in observations]
        events = []
        for prev, cur, obs in zip(nets, nets[1:], observations[1:]):
            if obs.first_seen >= since:
                events.append({"at": isotime(obs.first_seen), "from": prev, "to": cur})
        _, holder = _range_doc(number, self.directory)
        return {
            "number": number.e164,
            "window": window.strip().upper(),
            "since": isotime(since),
            "ports": len(events),
            "events": events,
            "current_network": nets[-1] if nets else None,
            "original_network": holder.as_dict() if holder is not None else None,
            "observed_since": isotime(observations[0].first_seen) if observations else None,
            "last_observed": isotime(observations[-1].last_seen) if observations else None,
            "observations": [{"network": n, "first_seen": isotime(o.first_seen),
                              "last_seen": isotime(o.last_seen)}
                             for n, o in zip(nets, observations)],
            "lookup": {"id": new_id(), "time": isotime(now)},
        }

    def _network_of(self, stored: str) -> dict[str, Any]:
        if stored.isdigit() and len(stored) in (5, 6):
            return self.directory.from_mccmnc(stored).as_dict()
        return NetworkInfo(stored, None).as_dict()


def _audit_failed(customer: Any, exc: BaseException) -> None:
    log.error("lookup audit failed for customer %s: %s", customer.id, type(exc).__name__)


def _observed(doc: dict[str, Any]) -> str | None:
    """The network a live answer saw the number on, for the port history: the home
    network's MCC/MNC (from the IMSI, or the MNP data's), else its name."""
    home = doc.get("home_network")
    if not home:
        return None
    if home.get("mcc") and home.get("mnc"):
        return home["mcc"] + home["mnc"]
    return home.get("name")


def _shown(text: str) -> str:
    return text if len(text) <= 64 else text[:64]


def _range_bounds(number: Number, prefix: str) -> tuple[str, str]:
    """First and last number of the range ``prefix`` for the lengths the national plan
    gives numbers of this type (the number's own length when the plan does not say)."""
    import phonenumbers

    cc = str(number.country_code)
    lengths = [len(number.e164)]
    meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        number.country_code, number.region or "001")
    if meta is not None:
        desc = {"mobile": meta.mobile, "fixed_line": meta.fixed_line,
                "fixed_line_or_mobile": meta.fixed_line, "toll_free": meta.toll_free,
                "premium_rate": meta.premium_rate, "shared_cost": meta.shared_cost,
                "voip": meta.voip, "personal_number": meta.personal_number,
                "pager": meta.pager, "uan": meta.uan,
                "voicemail": meta.voicemail}.get(number.type)
        possible = [n for n in (getattr(desc, "possible_length", None) or ()) if n > 0]
        if not possible:
            possible = [n for n in (meta.general_desc.possible_length or ()) if n > 0]
        if possible:
            lengths = [len(cc) + n for n in possible]
    lengths = [n for n in lengths if n >= len(prefix)] or [len(number.e164)]
    lo, hi = min(lengths), max(lengths)
    return prefix + "0" * (lo - len(prefix)), prefix + "9" * (hi - len(prefix))


def describe(service: str, result: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The audit fields of a batch item's answer (the batch manager's ``describe``):
    outcome, route, and the network to record for the port history (live answers only)."""
    meta = result.get("lookup") or {}
    route = meta.get("route")
    if service == "hlr":
        outcome = result.get("status", "ok")
    elif service == "mnp":
        p = result.get("ported")
        outcome = "unknown" if p is None else ("ported" if p else "not_ported")
    elif service == "ranges":
        outcome = "ok" if result.get("range") is not None else "no_range"
    else:
        outcome = "ok"
    network = None
    if service in ("hlr", "mnp") and not meta.get("cached") and meta.get("method") not in (
            None, "mnp_table"):
        home = result.get("home_network") or result.get("current_network")
        if isinstance(home, dict):
            if home.get("mcc") and home.get("mnc"):
                network = home["mcc"] + home["mnc"]
            else:
                network = home.get("name")
    return str(outcome), route if isinstance(route, str) else None, network

