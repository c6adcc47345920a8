"""A MAP client wired to a simulator's endpoints: what the tests, the benchmark and a tester's
script use to query simulated HLRs through :class:`gateway.sigtran.map_client.MapClient`.

::

    async with Simulator.from_file(path) as sim, SimulatorPeer(sim.endpoints.values()) as peer:
        outcome = await peer.client.sri_sm("447555100001", peer.route("uk-vodafone"))

Each endpoint gets a link set of ``associations`` M3UA client associations (ASP role, the
endpoint's routing context) and a :class:`MapRoute` with the endpoint's point code as DPC; the
called GT is the MSISDN (TS 29.002 §6.1.3), or the endpoint's GT with ``address_hlr_gt``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from gateway.sigtran.association import Association, AssociationConfig
from gateway.sigtran.linkset import LinkSet
from gateway.sigtran.map_client import (
    MapClient,
    MapFailure,
    MapOutcome,
    MapResult,
    MapRoute,
    MapUserError,
)
from gateway.sigtran.transport import TransportKind
from protocols import map as map_
from protocols.m3ua_asp import AspConfig

from .runner import EndpointInfo

__all__ = ["SimulatorPeer", "describe_outcome"]

GATEWAY_GT = "447700900000"  # the default calling GT: an SMS gateway's
GATEWAY_PC = 1


class SimulatorPeer:
    """A :class:`MapClient` with a link set and a route toward each given endpoint."""

    def __init__(self, endpoints: Iterable[EndpointInfo], *, gt: str = GATEWAY_GT,
                 opc: int = GATEWAY_PC, timer_m: float = 5.0, associations: int = 1,
                 transport: TransportKind = TransportKind.TCP,
                 asp: AspConfig | None = None, address_hlr_gt: bool = False,
                 client: MapClient | None = None, **association_kw: Any) -> None:
        self.client = client or MapClient(smsc_address=gt, timer_m=timer_m)
        self.linksets: dict[str, LinkSet] = {}
        self.routes: dict[str, MapRoute] = {}
        kw = dict(reconnect_initial=0.05, reconnect_max=0.5, connect_timeout=2.0)
        kw.update(association_kw)
        base = asp or AspConfig(heartbeat_interval=0)
        for ep in endpoints:
            port = ep.sctp_port if transport is TransportKind.SCTP else ep.port
            if port is None:
                raise ValueError(f"endpoint {ep.name} offers no M3UA over {transport.value}")
            members = [Association(AssociationConfig(
                host=ep.host, port=port, transport=transport,
                asp=replace(base, routing_context=ep.routing_context),
                name=f"{ep.name}#{i}", **kw)) for i in range(associations)]
            linkset = LinkSet(ep.name, members)
            self.client.attach(linkset)
            self.linksets[ep.name] = linkset
            self.routes[ep.name] = MapRoute(ep.name, linkset, opc=opc, dpc=ep.point_code,
                                            calling_gt=gt,
                                            hlr_gt=ep.gt if address_hlr_gt else None)

    def route(self, name: str) -> MapRoute:
        return self.routes[name]

    async def start(self, timeout: float = 5.0) -> None:
        """Connect every association; raises TimeoutError unless all are ASP-ACTIVE in time."""
        for linkset in self.linksets.values():
            linkset.start()
        for name, linkset in self.linksets.items():
            if not await linkset.wait_up(len(linkset.members), timeout):
                raise TimeoutError(f"link set {name} did not come up: {linkset!r}")

    async def close(self) -> None:
        for linkset in self.linksets.values():
            await linkset.close()

    async def __aenter__(self) -> SimulatorPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _name(value: object) -> str:
    return getattr(value, "name", str(value)).lower()


def describe_outcome(outcome: MapOutcome) -> str:
    """One line for a MAP outcome, as docs/simulator.md's tables write the expected answers:

    - SRI-SM: ``IMSI 234150555100001, MSC 447785010101``;
    - ATI: ``assumed_idle, VLR 447785010101, CGI 234-15-4097-27033, age 14`` (the state,
      ``net_det_not_reachable (imsi_detached)`` for a detached subscriber, then what
      locationInformation holds);
    - SRI: ``IMSI ..., MSRN ..., VMSC ...`` or ``IMSI ..., forwarded to ... (unconditional)``;
    - a MAP error: ``error absent_subscriber_sm (imsi_detached)``;
    - no answer: ``failure timeout``, ``failure provider_abort (4)``, ...

    A result or error in an application context version below 3 ends with ``[v2]``/``[v1]``.
    """
    if isinstance(outcome, MapFailure):
        cause = f" ({outcome.cause})" if outcome.cause is not None else ""
        return f"failure {outcome.kind.value}{cause}"
    suffix = f" [v{outcome.version}]" if outcome.version < 3 else ""
    if isinstance(outcome, MapUserError):
        diagnostic = f" ({outcome.diagnostic})" if outcome.diagnostic else ""
        return f"error {outcome.name}{diagnostic}{suffix}"
    assert isinstance(outcome, MapResult)
    value = outcome.value
    if isinstance(value, map_.RoutingInfoForSmRes):
        liwl = value.location_info_with_lmsi
        node = liwl.network_node_number or liwl.roaming_number
        return f"IMSI {value.imsi}, MSC {node.digits if node else '-'}{suffix}"
    if isinstance(value, map_.AnyTimeInterrogationRes):
        info = value.subscriber_info
        parts = []
        if info.subscriber_state is not None:
            state = _name(info.subscriber_state)
            if info.not_reachable_reason is not None:
                state += f" ({_name(info.not_reachable_reason)})"
            parts.append(state)
        loc = info.location_information
        if loc is not None:
            if loc.vlr_number is not None:
                parts.append(f"VLR {loc.vlr_number.digits}")
            cgi = loc.cell_global_id_or_service_area_id_or_lai
            if cgi is not None:
                parts.append(f"CGI {cgi.mcc}-{cgi.mnc}-{cgi.lac}-{cgi.ci}")
            if loc.age_of_location_information is not None:
                parts.append(f"age {loc.age_of_location_information}")
        mnp = info.mnp_info_res
        if mnp is not None:
            parts.append(f"MNP {_name(mnp.number_portability_status)}"
                         + (f" RN {mnp.routeing_number}" if mnp.routeing_number else ""))
        return (", ".join(parts) or "empty") + suffix
    if isinstance(value, map_.SendRoutingInfoRes):
        parts = [f"IMSI {value.imsi}"] if value.imsi is not None else []
        if value.roaming_number is not None:
            parts.append(f"MSRN {value.roaming_number.digits}")
        fwd = value.forwarding_data
        if fwd is not None and fwd.forwarded_to_number is not None:
            reason = {0b11: "unconditional", 0b00: "not reachable", 0b01: "busy",
                      0b10: "no reply"}[((fwd.forwarding_options or 0) >> 2) & 0b11]
            parts.append(f"forwarded to {fwd.forwarded_to_number.digits} ({reason})")
        if value.vmsc_address is not None:
            parts.append(f"VMSC {value.vmsc_address.digits}")
        return ", ".join(parts) + suffix
    return f"{type(value).__name__}{suffix}"
