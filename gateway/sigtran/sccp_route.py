"""Wrapping TCAP into SCCP and M3UA for one destination, and answering back the way a
message came: the glue between the TCAP transaction manager and an M3UA association.

SCCP addressing follows TS 29.002 §6.1.3 for inter-PLMN signalling: route on GT, GT
indicator 4, translation type 0, E.164, international; the SSN names the MAP entity.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols import m3ua, sccp

SI_SCCP = 3  # service indicator of SCCP in the MTP3 routing label (Q.704 §14.2.1)


@dataclass(slots=True, frozen=True)
class MapRoute:
    """Where a MAP dialogue goes: a link set and the MTP/SCCP addressing toward it.

    ``hlr_gt`` fixes the called global title (a partner HLR's GT, or an SS7 firewall's);
    None addresses the HLR by the MSISDN itself (TS 29.002 §6.1.3: the called GT of an
    SRI-SM or ATI is the MSISDN). ``calling_gt`` is our own GT.
    """

    name: str
    linkset: object  # gateway.sigtran.linkset.LinkSet (duck-typed: pick(key) -> association)
    opc: int
    dpc: int
    calling_gt: str
    ni: int = 2  # national network, as the reference vectors
    hlr_gt: str | None = None
    hlr_ssn: int = sccp.Ssn.HLR
    return_on_error: bool = True


def unitdata(called: sccp.SccpAddress, calling: sccp.SccpAddress, data: bytes,
             return_on_error: bool = True) -> bytes:
    """A class 0 UDT carrying ``data`` (Q.713 §4.10)."""
    return sccp.encode(sccp.Unitdata(called, calling, data, 0, return_on_error))


def protocol_data(opc: int, dpc: int, ni: int, sls: int, payload: bytes) -> m3ua.ProtocolData:
    """The M3UA Protocol Data for an SCCP payload (RFC 4666 §3.3.1)."""
    return m3ua.ProtocolData(opc, dpc, SI_SCCP, ni, 0, sls & 0xFF, payload)


def reply_data(received: m3ua.ProtocolData, udt: sccp.Unitdata | sccp.ExtendedUnitdata,
               tcap_bytes: bytes) -> m3ua.ProtocolData:
    """An answer to ``udt``: addresses and point codes swapped, same SLS and network."""
    payload = unitdata(udt.calling, udt.called, tcap_bytes, False)
    return m3ua.ProtocolData(received.dpc, received.opc, SI_SCCP, received.ni, received.mp,
                             received.sls, payload)
