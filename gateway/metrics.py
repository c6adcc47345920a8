"""Prometheus metrics of the engine: the facts the admin API shows, read at scrape time.

A collector (no global registry: each engine gets its own :class:`CollectorRegistry`)
turns :meth:`Engine.associations`, the link sets, the route counters and the MAP client's
counters into metric families. docs/operations.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .engine import LATENCY_BUCKETS, Engine

__all__ = ["EngineCollector", "CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ASP = {"DOWN": 0, "INACTIVE": 1, "ACTIVE": 2}
_AS = {"AS_INACTIVE": 2, "AS_ACTIVE": 3, "AS_PENDING": 4}


class EngineCollector(Collector):
    """Reads an :class:`Engine` (and optionally a trace manager) at each scrape."""

    def __init__(self, engine: Engine, traces: Any = None) -> None:
        self.engine = engine
        self.traces = traces

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        node = e.config.node.name
        labels = ["association", "linkset"]
        up = GaugeMetricFamily("hlrgw_association_up", "1 when the association is "
                               "ASP-ACTIVE", labels=labels)
        asp = GaugeMetricFamily("hlrgw_association_asp_state", "ASP state: 0 down, "
                                "1 inactive, 2 active (RFC 4666 §4.3.1)", labels=labels)
        as_state = GaugeMetricFamily("hlrgw_association_as_state", "AS state from the last "
                                     "NTFY: 2 inactive, 3 active, 4 pending; 0 unknown",
                                     labels=labels)
        uptime = GaugeMetricFamily("hlrgw_association_uptime_seconds", "seconds since the "
                                   "association became ASP-ACTIVE", labels=labels)
        rtt = GaugeMetricFamily("hlrgw_association_rtt_seconds", "heartbeat round-trip time",
                                labels=labels)
        inflight = GaugeMetricFamily("hlrgw_association_dialogues_in_flight", "MAP dialogues "
                                     "open on the association", labels=labels)
        draining = GaugeMetricFamily("hlrgw_association_draining", "1 while the association "
                                     "takes no new dialogues", labels=labels)
        msgs = CounterMetricFamily("hlrgw_association_messages", "M3UA messages",
                                   labels=[*labels, "direction"])
        octets = CounterMetricFamily("hlrgw_association_bytes", "bytes on the transport",
                                     labels=[*labels, "direction"])
        events = CounterMetricFamily("hlrgw_association_events", "connects, connect "
                                     "failures, disconnects, peers lost, protocol violations",
                                     labels=[*labels, "event"])
        for a in e.associations():
            lv = [a.name, a.linkset]
            up.add_metric(lv, 1.0 if a.asp_state == "ACTIVE" else 0.0)
            asp.add_metric(lv, _ASP.get(a.asp_state, 0))
            as_state.add_metric(lv, _AS.get(a.as_state or "", 0))
            uptime.add_metric(lv, a.uptime)
            if a.rtt is not None:
                rtt.add_metric(lv, a.rtt)
            inflight.add_metric(lv, a.in_flight)
            draining.add_metric(lv, 1.0 if a.draining else 0.0)
            c = a.counters
            for d in ("in", "out"):
                msgs.add_metric([*lv, d], c[f"messages_{d}"])
                octets.add_metric([*lv, d], c[f"bytes_{d}"])
            for ev in ("connects", "connect_failures", "disconnects", "peer_lost",
                       "protocol_violations"):
                events.add_metric([*lv, ev], c[ev])
        yield from (up, asp, as_state, uptime, rtt, inflight, draining, msgs, octets, events)

        ls_up = GaugeMetricFamily("hlrgw_linkset_up", "1 when the link set has an "
                                  "association taking new dialogues", labels=["linkset"])
        ls_serving = GaugeMetricFamily("hlrgw_linkset_serving_associations", "associations "
                                       "taking new dialogues", labels=["linkset"])
        ls_throttled = CounterMetricFamily("hlrgw_linkset_throttled", "dialogues refused by "
                                           "the link set's TPS cap", labels=["linkset"])
        ls_granted = CounterMetricFamily("hlrgw_linkset_admitted", "dialogues admitted by the "
                                         "link set's TPS cap", labels=["linkset"])
        for name, ls in e.linksets.items():
            ls_up.add_metric([name], 1.0 if ls.is_up else 0.0)
            ls_serving.add_metric([name], len(ls.serving))
            b = e.linkset_bucket(name)
            if b is not None:
                ls_throttled.add_metric([name], b.refused)
                ls_granted.add_metric([name], b.granted)
        yield from (ls_up, ls_serving, ls_throttled, ls_granted)

        lookups = CounterMetricFamily("hlrgw_lookups", "lookups by route and final status",
                                      labels=["route", "status"])
        in_flight = GaugeMetricFamily("hlrgw_lookups_in_flight", "lookups running",
                                      labels=["route"])
        latency = HistogramMetricFamily("hlrgw_lookup_duration_seconds", "lookup latency",
                                        labels=["route"])
        attempts = CounterMetricFamily("hlrgw_method_attempts", "method tries by outcome",
                                       labels=["route", "method", "kind", "status"])
        breaker = GaugeMetricFamily("hlrgw_method_breaker_open", "1 while the method's "
                                    "circuit breaker skips it", labels=["route", "method"])
        trips = CounterMetricFamily("hlrgw_method_breaker_trips", "times the breaker opened",
                                    labels=["route", "method"])
        for r in e.routes():
            name = str(r["name"])
            stats = e.route_stats(name)
            if stats is None:
                continue
            for status, n in stats.by_status.items():
                lookups.add_metric([name, status], n)
            in_flight.add_metric([name], stats.in_flight)
            cumulative, buckets = 0, []
            for bound, n in zip(LATENCY_BUCKETS, stats.latency_buckets):
                cumulative += n
                buckets.append((repr(float(bound)), cumulative))
            total = sum(stats.by_status.values())
            buckets.append(("+Inf", total))
            latency.add_metric([name], buckets, stats.latency_sum)
            for i, m in enumerate(stats.methods):
                mid = str(i)
                for status, n in m.by_status.items():
                    attempts.add_metric([name, mid, m.kind, status], n)
            for meth in r["methods"]:  # type: ignore[union-attr]
                mid = str(meth["index"])
                breaker.add_metric([name, mid], 1.0 if meth["breaker"] == "open" else 0.0)
                trips.add_metric([name, mid], meth["breaker_trips"])
        yield from (lookups, in_flight, latency, attempts, breaker, trips)

        client = e.client
        dialogues = GaugeMetricFamily("hlrgw_map_dialogues_open", "MAP dialogues open")
        dialogues.add_metric([], client.open_dialogues)
        failures = CounterMetricFamily("hlrgw_map_failures", "MAP dialogues without an "
                                       "answer, by kind", labels=["kind"])
        for kind, n in client.stats.failures.items():
            failures.add_metric([kind], n)
        results = CounterMetricFamily("hlrgw_map_answers", "MAP answers by type",
                                      labels=["type"])
        results.add_metric(["result"], client.stats.results)
        results.add_metric(["user_error"], client.stats.user_errors)
        fallbacks = CounterMetricFamily("hlrgw_map_context_fallbacks", "application-context "
                                        "fallbacks (TS 29.002 §15.2.4)")
        fallbacks.add_metric([], client.stats.fallbacks)
        yield from (dialogues, failures, results, fallbacks)

        reloads = CounterMetricFamily("hlrgw_config_reloads", "configuration reloads",
                                      labels=["result"])
        for result, n in e.reloads.items():
            reloads.add_metric([result], n)
        generation = GaugeMetricFamily("hlrgw_config_generation", "configuration generation "
                                       "in force", labels=["node"])
        generation.add_metric([node], e.generation)
        loaded = GaugeMetricFamily("hlrgw_config_loaded_timestamp_seconds", "when the "
                                   "configuration in force was applied")
        loaded.add_metric([], e.loaded_at)
        yield from (reloads, generation, loaded)
        if self.traces is not None:
            traces = GaugeMetricFamily("hlrgw_traces_running", "signalling traces running")
            traces.add_metric([], self.traces.running)
            yield traces


def registry_for(engine: Engine, traces: Any = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine, traces))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
