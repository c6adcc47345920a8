"""The SIGTRAN runtime: asyncio adapters around the sans-IO M3UA ASP state machine.

- :mod:`.transport`: M3UA over TCP (framed by the M3UA header length, as libosmo-sigtran does)
  and over SCTP (pysctp; payload protocol id 3, stream 0 for management, DATA on stream 1).
- :mod:`.association`: :class:`Association`, one :class:`~protocols.m3ua_asp.Asp` driven over a
  transport, with reconnection, heartbeats and a graceful close; :class:`AssociationServer`
  accepts associations (the simulator's side).
- :mod:`.linkset`: :class:`LinkSet`, several associations toward one destination, load-shared
  by key or in override (fail-over) order.
"""

from protocols.m3ua_asp import AspConfig, AspNotActive, AspState, Role

from .association import (
    Association,
    AssociationConfig,
    AssociationDown,
    AssociationServer,
    AssociationStats,
    backoff_delay,
)
from .linkset import LinkSet, LinkSetDown, LinkSetMode
from .transport import (
    M3UA_PPID,
    SctpTransport,
    TcpTransport,
    Transport,
    TransportKind,
    TransportListener,
    sctp_unavailable_reason,
)

__all__ = [
    "AspConfig",
    "AspNotActive",
    "AspState",
    "Role",
    "Association",
    "AssociationConfig",
    "AssociationDown",
    "AssociationServer",
    "AssociationStats",
    "backoff_delay",
    "LinkSet",
    "LinkSetDown",
    "LinkSetMode",
    "M3UA_PPID",
    "SctpTransport",
    "TcpTransport",
    "Transport",
    "TransportKind",
    "TransportListener",
    "sctp_unavailable_reason",
]
