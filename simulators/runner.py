"""The simulator as one object: every HLR endpoint of a network file plus the control API,
started and stopped together, in-process (tests, the benchmark) or as ``hlrgw simulate``.

::

    sim = Simulator.from_file("config/network.example.toml", seed=7)
    async with sim:                      # listens on free loopback ports
        ep = sim.endpoint("uk-vodafone")  # host, port, GT, point code, routing context
        ...                              # point an M3UA client at ep.port, RC ep.routing_context
        sim.add_fault({"kind": "no_answer", "number": "447555100001"})
        print(sim.counters())

With ``use_file_ports=True`` the endpoints listen on the ports the file gives (the CLI does
this); by default every port is chosen by the kernel, so parallel runs never collide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import HUB, SimConfig, load_config, parse_fault, parse_number, parse_profile
from .faults import FaultSpec
from .hlr import SimulatedHlr
from .model import Profile, Subscriber
from .state import SimState

__all__ = ["HUB", "EndpointInfo", "Simulator", "SipEndpointInfo"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass(slots=True, frozen=True)
class EndpointInfo:
    """Where a running HLR endpoint listens and how to address it: what a gateway route or a
    test client needs."""

    name: str
    operator: str
    host: str
    port: int  # M3UA over TCP
    sctp_port: int | None  # M3UA over SCTP, when offered and the kernel has it
    gt: str
    point_code: int
    routing_context: int


@dataclass(slots=True, frozen=True)
class SipEndpointInfo:
    """Where the SIP NP server listens (``[sip]`` in the network file)."""

    host: str
    udp_port: int
    tcp_port: int


class Simulator:
    """Simulated operator networks (one HLR endpoint each, plus the hub when the file has
    one) and the control API. See the module docstring."""

    def __init__(self, config: SimConfig, *, seed: int | None = None, host: str = LOOPBACK,
                 control_port: int | None = 0, use_file_ports: bool = False) -> None:
        self.config = config
        self.host = host
        self.state = SimState(config, seed)
        self.use_file_ports = use_file_ports
        self._control_port = control_port
        self.hlrs: dict[str, SimulatedHlr] = {}
        self._control: Any = None  # control.ControlServer
        self.sip: Any = None  # sip_np.SimSipNpServer, when the file has [sip]
        self._started = False

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> Simulator:
        """A simulator for the network file at ``path`` (raises :class:`ConfigError`)."""
        return cls(load_config(path), **kw)

    @property
    def seed(self) -> int:
        return self.state.seed

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every endpoint, the SIP NP server (with ``[sip]``), then the control API
        (unless ``control_port`` is None)."""
        if self._started:
            return
        self._started = True
        try:
            for ep in self.config.endpoints:
                hlr = SimulatedHlr(ep, self.state, host=self.host,
                                   port=ep.port if self.use_file_ports else 0,
                                   heartbeat_interval=self.config.heartbeat_interval)
                self.hlrs[ep.name] = hlr
                await hlr.start()
            if self.config.sip is not None:
                from .sip_np import SimSipNpServer

                self.sip = SimSipNpServer(self.state, self.config.sip, host=self.host,
                                          use_config_ports=self.use_file_ports)
                await self.sip.start()
            if self._control_port is not None:
                from .control import ControlServer

                self._control = ControlServer(self, LOOPBACK, self._control_port)
                await self._control.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the control API and close every association and listener."""
        control, self._control = self._control, None
        if control is not None:
            await control.stop()
        sip, self.sip = self.sip, None
        if sip is not None:
            await sip.close()
        await asyncio.gather(*(h.close() for h in self.hlrs.values()), return_exceptions=True)
        self._started = False

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ where things are

    @property
    def control_url(self) -> str | None:
        """The control API's base URL (``http://127.0.0.1:PORT``), once started."""
        return self._control.url if self._control is not None else None

    def endpoint(self, name: str) -> EndpointInfo:
        """A running endpoint by network name (or ``hub``)."""
        hlr = self.hlr(name)
        e = hlr.endpoint
        return EndpointInfo(e.name, e.operator, hlr.host, hlr.port, hlr.sctp_port, e.gt,
                            e.point_code, e.routing_context)

    @property
    def sip_endpoint(self) -> SipEndpointInfo | None:
        """Where the SIP NP server listens, once started (None: no ``[sip]``)."""
        if self.sip is None:
            return None
        return SipEndpointInfo(self.sip.host, self.sip.udp_port, self.sip.tcp_port)

    @property
    def endpoints(self) -> dict[str, EndpointInfo]:
        return {name: self.endpoint(name) for name in self.hlrs}

    def hlr(self, name: str) -> SimulatedHlr:
        try:
            return self.hlrs[name]
        except KeyError:
            raise KeyError(f"no endpoint named {name!r} (endpoints: "
                           f"{', '.join(self.hlrs)})") from None

    # ------------------------------------------------------------------ subscribers

    def subscriber(self, number: str) -> Subscriber | None:
        """What the HLRs answer for ``number`` now (None: in no network's ranges)."""
        return self.state.subscriber(parse_number(number))

    def set_subscriber(self, number: str, settings: Mapping[str, Any] | Profile) -> Subscriber:
        """Replace ``number``'s per-number override (e.g. ``{"status": "absent"}``)."""
        number = parse_number(number)
        profile = (settings if isinstance(settings, Profile)
                   else parse_profile(settings, "body", self.state.model.networks))
        self.state.set_override(number, profile)
        return self._resolved(number)

    def patch_subscriber(self, number: str, patch: Mapping[str, Any]) -> Subscriber:
        """Merge ``patch`` into ``number``'s override (a None value drops that setting):
        ``{"ported_to": "uk-ee"}``, ``{"status": "absent"}``, ``{"roaming_in": "de-telekom"}``.
        """
        number = parse_number(number)
        self.state.patch_override(number, dict(patch))
        return self._resolved(number)

    def drop_subscriber(self, number: str) -> Subscriber | None:
        """Forget ``number``'s run-time override (the network file's applies again)."""
        number = parse_number(number)
        self.state.drop_override(number)
        return self.state.subscriber(number)

    def _resolved(self, number: str) -> Subscriber:
        sub = self.state.subscriber(number)
        assert sub is not None  # overrides are only accepted inside ranges
        return sub

    # ------------------------------------------------------------------ faults

    def add_fault(self, fault: Mapping[str, Any] | FaultSpec) -> FaultSpec:
        """Inject a fault (a :class:`FaultSpec`, or a mapping as in the file's ``[[faults]]``)."""
        if not isinstance(fault, FaultSpec):
            fault = parse_fault(fault, "body", networks=self.config.model.networks,
                                hub=self.config.hub is not None)
        return self.state.add_fault(fault)

    def remove_fault(self, fault_id: str) -> FaultSpec | None:
        return self.state.remove_fault(fault_id)

    def clear_faults(self) -> int:
        """Remove every fault (the file's too, until :meth:`reset`)."""
        return self.state.clear_faults()

    @property
    def faults(self) -> list[FaultSpec]:
        return list(self.state.faults)

    # ------------------------------------------------------------------ control

    def reset(self) -> None:
        """Back to the network file: run-time overrides and faults dropped, the file's faults
        back, counters at zero, random draws started over. Associations stay up."""
        self.state.reset()
        for hlr in self.hlrs.values():
            hlr.misrouted = 0
            hlr.resets = 0
            hlr.m3ua_errors.clear()

    def reset_associations(self, name: str) -> int:
        """Reset every association of endpoint ``name`` now; returns how many."""
        return self.hlr(name).reset_associations()

    def counters(self) -> dict[str, Any]:
        """Dialogues by endpoint, operation and outcome, and each endpoint's association
        counters; ``total`` sums the dialogues."""
        endpoints = {name: hlr.counters() for name, hlr in self.hlrs.items()}
        return {"endpoints": endpoints,
                "total": sum(e["total"] for e in endpoints.values())}

    def describe(self) -> list[dict[str, Any]]:
        """Every endpoint as the control API's ``GET /networks`` shows it."""
        out = []
        for name, hlr in self.hlrs.items():
            item = hlr.info()
            net = self.config.model.networks.get(name)
            if net is not None:
                item.update(country=net.country, country_code=net.country_code, mcc=net.mcc,
                            mnc=net.mnc, mscs=list(net.mscs),
                            max_versions={op.value: v for op, v in net.max_versions.items()},
                            ati_allowed=net.ati_allowed,
                            ranges=[r.prefix for r in self.config.model.ranges
                                    if r.network == name])
            out.append(item)
        return out

