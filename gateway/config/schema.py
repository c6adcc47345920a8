"""The gateway's configuration as frozen dataclasses, one per TOML section.

Each field's metadata says how :mod:`.convert` checks it: ``range`` (inclusive bounds),
``positive`` (> 0), ``digits`` (``"e164"`` or ``"gt"``), ``nonempty`` (a list with at least
one item) and ``doc`` (one line, shown by ``hlrgw config check --explain``-style tools and
the docs). A field with no default is required.

The sections (see ``config/*.toml`` for commented examples and docs/operations.md):

- ``include``: more files, relative to the file naming them;
- ``[node]``: the gateway's name;
- ``[sccp]``: our own global title, SSNs, translation type;
- ``[map]``: SMSC address (SRI-SM), gsmSCF address (ATI), timer m, context versions;
- ``[[associations]]``: M3UA associations (transport, addresses, ASP role, RC, OPC/DPC/NI,
  traffic mode, heartbeat);
- ``[[linksets]]``: associations toward one destination, and their TPS cap;
- ``[[sip_targets]]``: SIP number-portability servers (with a rate cap each);
- ``[[routing_numbers]]``: routing number -> the network it designates (RFC 4694 ``rn``);
- ``[[mnp_sources]]``: ported-number data (a CSV file; ``kind = "sip"`` is refused);
- ``[[range_tables]]``: number ranges and the network holding each;
- ``[[routes]]``: E.164 prefixes (longest wins) and the ordered methods tried for them;
- ``[http]``, ``[sip]``, ``[admin]``: listeners (with TLS);
- ``[sip_redirect]``: the SIP redirect front end for softswitches (absent: not listening),
  and ``[[sip_redirect.clients]]``: the source networks allowed to query, each as a customer;
- ``[storage]``, ``[cache]``, ``[logging]``, ``[traces]``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AdminSection",
    "AspRole",
    "AssociationSection",
    "CacheSection",
    "Config",
    "HttpSection",
    "LinkSetMode",
    "LinkSetSection",
    "LogFormat",
    "LoggingSection",
    "MapSection",
    "MapVersions",
    "MethodKind",
    "MethodSection",
    "MnpKind",
    "MnpSourceSection",
    "NodeSection",
    "RangeEntry",
    "RangeTableSection",
    "RouteSection",
    "RoutingNumberSection",
    "SccpSection",
    "SipContactScheme",
    "SipRedirectClient",
    "SipRedirectSection",
    "SipSection",
    "SipTargetSection",
    "SipTransport",
    "StorageSection",
    "TlsSection",
    "TraceSection",
    "TrafficMode",
    "Transport",
    "MAP_METHODS",
]

MAX_PC = (1 << 14) - 1  # ITU point codes are 14 bits (Q.704 §2.2.2)
MAX_RC = (1 << 32) - 1  # Routing Context: 32 bits (RFC 4666 §3.3.1)


def _m(doc: str, **checks: Any) -> dict[str, Any]:
    return {"doc": doc, **checks}


def opt(default: Any, doc: str, **checks: Any) -> Any:
    """A field with a default and its checks."""
    return field(default=default, metadata=_m(doc, **checks))


def req(doc: str, **checks: Any) -> Any:
    """A required field and its checks."""
    return field(metadata=_m(doc, **checks))


class Transport(enum.StrEnum):
    """What carries M3UA."""

    TCP = "tcp"
    SCTP = "sctp"


class AspRole(enum.StrEnum):
    """Our side of the ASP procedures (RFC 4666 §1.2): an ASP toward an SGP, or an IPSP."""

    ASP = "asp"
    IPSP = "ipsp"


class TrafficMode(enum.StrEnum):
    """Traffic Mode Type sent in ASP Active (RFC 4666 §3.7.1)."""

    OVERRIDE = "override"
    LOADSHARE = "loadshare"
    BROADCAST = "broadcast"


class LinkSetMode(enum.StrEnum):
    """How a link set spreads dialogues over its associations."""

    LOADSHARE = "loadshare"
    OVERRIDE = "override"


class MethodKind(enum.StrEnum):
    """One way of answering a lookup."""

    MAP_SRI_SM = "map_sri_sm"
    MAP_ATI = "map_ati"
    SIP = "sip"
    LOCAL = "local"
    REJECT = "reject"


MAP_METHODS = frozenset({MethodKind.MAP_SRI_SM, MethodKind.MAP_ATI})


class MnpKind(enum.StrEnum):
    """Where ported-number data comes from."""

    FILE = "file"
    SIP = "sip"


class SipTransport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class SipContactScheme(enum.StrEnum):
    """The scheme of the redirect front end's 302 Contact (RFC 4694 §4: ``rn``/``npdi`` in
    a tel URI, or in the user part of a SIP URI with ``user=phone``)."""

    AUTO = "auto"  # the Request-URI's own scheme
    SIP = "sip"
    TEL = "tel"


class LogFormat(enum.StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True)
class NodeSection:
    name: str = opt("hlrgw", "the gateway's name in logs and metrics")


@dataclass(frozen=True, slots=True)
class SccpSection:
    global_title: str = req("our own global title, the calling GT of every dialogue",
                            digits="gt")
    ssn: int = opt(8, "calling SSN of SRI-SM (an SMS gateway MSC: 8)", range=(2, 254))
    ati_ssn: int = opt(147, "calling SSN of ATI (the gsmSCF: 147)", range=(2, 254))
    hlr_ssn: int = opt(6, "called SSN toward the HLR (6)", range=(2, 254))
    translation_type: int = opt(0, "translation type of the called and calling GT",
                                range=(0, 255))


@dataclass(frozen=True, slots=True)
class MapVersions:
    sri_sm: int = opt(3, "application-context version SRI-SM dialogues start with",
                      range=(1, 3))
    ati: int = opt(3, "application-context version of ATI (only v3 exists)", range=(3, 3))


@dataclass(frozen=True, slots=True)
class MapSection:
    smsc_address: str = req("service centre address sent in SRI-SM", digits="e164")
    gsmscf_address: str | None = opt(None, "gsmSCF address sent in ATI (default: the "
                                     "SMSC address)", digits="e164")
    timer_m: float = opt(15.0, "MAP invoke timer m in seconds (TS 29.002: 15 to 30)",
                         range=(0.001, 600.0))
    max_dialogues: int = opt(65536, "bound on open MAP dialogues", range=(1, 1 << 24))
    versions: MapVersions = opt(MapVersions(), "context versions to start with")


@dataclass(frozen=True, slots=True)
class AssociationSection:
    name: str = req("unique name (link sets, traces and metrics refer to it)")
    remote_addresses: tuple[str, ...] = req("the peer's IP address (SCTP multi-homing "
                                            "would list more)", nonempty=True)
    opc: int = req("our point code (14-bit ITU)", range=(0, MAX_PC))
    dpc: int = req("the destination's point code (14-bit ITU)", range=(0, MAX_PC))
    remote_port: int = opt(2905, "the peer's port", range=(1, 65535))
    transport: Transport = opt(Transport.SCTP, "tcp or sctp")
    local_address: str | None = opt(None, "local address to bind")
    local_port: int = opt(0, "local port to bind (0: any)", range=(0, 65535))
    role: AspRole = opt(AspRole.ASP, "asp (toward an SGP) or ipsp")
    routing_context: int | None = opt(None, "M3UA routing context", range=(0, MAX_RC))
    ni: int = opt(2, "network indicator (0 international, 2 national)", range=(0, 3))
    traffic_mode: TrafficMode = opt(TrafficMode.LOADSHARE, "traffic mode in ASP Active")
    heartbeat: float = opt(30.0, "BEAT interval in seconds (0: no heartbeat)",
                           range=(0.0, 3600.0))
    t_ack: float = opt(2.0, "T(ack) for ASP Up/Active in seconds", range=(0.01, 60.0),
                       positive=True)
    asp_identifier: int | None = opt(None, "ASP Identifier sent in ASP Up", range=(0, MAX_RC))
    reconnect_max: float = opt(30.0, "longest back-off between reconnections, seconds",
                               range=(0.01, 3600.0))


@dataclass(frozen=True, slots=True)
class LinkSetSection:
    name: str = req("unique name (routes refer to it)")
    associations: tuple[str, ...] = req("associations toward this destination, by name, in "
                                        "priority order", nonempty=True)
    mode: LinkSetMode = opt(LinkSetMode.LOADSHARE, "loadshare or override")
    tps: float | None = opt(None, "cap on dialogues begun per second on this link set",
                            range=(0.001, 1e6), positive=True)
    burst: int = opt(1, "dialogues allowed at once above the TPS pace", range=(1, 100000))
    queue_wait: float = opt(1.0, "longest a dialogue waits for a TPS slot before the next "
                            "method is tried, seconds", range=(0.0, 60.0))


@dataclass(frozen=True, slots=True)
class SipTargetSection:
    name: str = req("unique name (sip methods and MNP sources refer to it)")
    uri: str = req("the NP server's SIP URI, e.g. sip:np.example.net:5060")
    transport: SipTransport = opt(SipTransport.UDP, "udp, tcp or tls")
    timeout: float = opt(2.0, "answer timeout in seconds", range=(0.001, 60.0))
    tps: float | None = opt(None, "cap on queries sent to this target per second (a capped "
                            "target is skipped: the next target, then the next method)",
                            range=(0.001, 1e6), positive=True)
    burst: int | None = opt(None, "queries allowed at once above the TPS pace (default: the "
                            "TPS, at least 1)", range=(1, 100000))


@dataclass(frozen=True, slots=True)
class RoutingNumberSection:
    routing_number: str = req("the routing number (RFC 4694 rn); a received rn starting with "
                              "it designates this network", digits="e164")
    network: str = req("name of the network it designates")
    mccmnc: str | None = opt(None, "MCC+MNC of that network (5 or 6 digits)")


@dataclass(frozen=True, slots=True)
class MnpSourceSection:
    name: str = req("unique name (local methods refer to it)")
    kind: MnpKind = req("file (CSV of ported numbers); sip is refused: use a sip route method")
    file: str | None = opt(None, "CSV file msisdn,network,mccmnc,routing_number (kind file)",
                           path=True)
    targets: tuple[str, ...] = opt((), "SIP targets, by name (kind sip, not in this version)")


@dataclass(frozen=True, slots=True)
class RangeEntry:
    prefix: str = req("E.164 prefix of the range", digits="e164")
    network: str = req("name of the network holding the range")
    mccmnc: str | None = opt(None, "MCC+MNC of that network (5 or 6 digits)")


@dataclass(frozen=True, slots=True)
class RangeTableSection:
    name: str = req("unique name (local methods refer to it)")
    file: str | None = opt(None, "CSV file prefix,network,mccmnc", path=True)
    ranges: tuple[RangeEntry, ...] = opt((), "ranges written in the configuration")


@dataclass(frozen=True, slots=True)
class MethodSection:
    kind: MethodKind = req("map_sri_sm, map_ati, sip, local or reject")
    linkset: str | None = opt(None, "link set of a MAP method")
    called_gt: str = opt("msisdn", "called GT of a MAP method: msisdn, or a fixed HLR GT")
    timeout: float | None = opt(None, "this method's timeout in seconds (default: timer m, "
                                "within the route's timeout)", range=(0.001, 600.0))
    version: int | None = opt(None, "application-context version to start with (MAP)",
                              range=(1, 3))
    targets: tuple[str, ...] = opt((), "SIP targets of a sip method, in order")
    range_table: str | None = opt(None, "range table of a local method")
    mnp_source: str | None = opt(None, "MNP source of a local method")
    reason: str = opt("rejected by configuration", "why a reject method refuses")


@dataclass(frozen=True, slots=True)
class RouteSection:
    name: str = req("unique name")
    methods: tuple[MethodSection, ...] = req("methods tried in order", nonempty=True)
    prefixes: tuple[str, ...] = opt((), "E.164 prefixes this route serves", digits="e164")
    default: bool = opt(False, "the route of numbers no prefix matches")
    timeout: float = opt(20.0, "deadline of a lookup on this route, in seconds",
                         range=(0.001, 600.0))
    tps: float | None = opt(None, "cap on lookups started per second on this route",
                            range=(0.001, 1e6), positive=True)
    burst: int = opt(1, "lookups allowed at once above the TPS pace", range=(1, 100000))
    queue_wait: float = opt(1.0, "longest a lookup waits for a TPS slot before it is "
                            "refused as throttled, seconds", range=(0.0, 60.0))
    breaker_failures: int = opt(5, "failures in a row that open a method's circuit breaker",
                                range=(1, 100000))
    breaker_cooldown: float = opt(30.0, "seconds a tripped method is skipped",
                                  range=(0.001, 86400.0))


@dataclass(frozen=True, slots=True)
class TlsSection:
    cert: str = req("PEM certificate chain (relative to the configuration file)", path=True)
    key: str = req("PEM private key (relative to the configuration file)", path=True)


@dataclass(frozen=True, slots=True)
class HttpSection:
    listen: str = opt("127.0.0.1", "address of the HTTP lookup API")
    port: int = opt(8080, "port of the HTTP lookup API", range=(0, 65535))
    tls: TlsSection | None = opt(None, "serve HTTPS with this certificate")


@dataclass(frozen=True, slots=True)
class SipSection:
    listen: str = opt("127.0.0.1", "local address of the SIP NP client")
    port: int = opt(5070, "local port of the SIP NP client", range=(0, 65535))
    transport: SipTransport = opt(SipTransport.UDP, "udp, tcp or tls")
    tls: TlsSection | None = opt(None, "certificate for SIP over TLS")


@dataclass(frozen=True, slots=True)
class SipRedirectClient:
    customer: str = req("the customer account (hlrgw customers add) these sources query as: "
                        "audited, rate-limited and entitled (service mnp) as that customer")
    networks: tuple[str, ...] = req("source addresses or networks (CIDR) of its softswitches",
                                    nonempty=True)


@dataclass(frozen=True, slots=True)
class SipRedirectSection:
    listen: str = opt("127.0.0.1", "address the redirect front end listens on")
    port: int = opt(5060, "port, the same for every transport (0: any free port)",
                    range=(0, 65535))
    transports: tuple[SipTransport, ...] = opt((SipTransport.UDP, SipTransport.TCP),
                                               "udp, tcp or both", nonempty=True)
    clients: tuple[SipRedirectClient, ...] = opt((), "who may query: source networks, each "
                                                 "as a customer (none: every source gets 403)")
    contact_host: str | None = opt(None, "host of the 302 Contact (default: the "
                                   "Request-URI's host and port)")
    contact_scheme: SipContactScheme = opt(SipContactScheme.AUTO, "auto (the Request-URI's), "
                                           "sip or tel")
    max_in_flight: int = opt(1000, "lookups running at once before new INVITEs get 503",
                             range=(1, 1000000))
    retry_after: int = opt(5, "seconds in the Retry-After of an overload 503",
                           range=(1, 86400))
    lookup_timeout: float = opt(5.0, "seconds before an unanswered lookup gets 504",
                                range=(0.001, 600.0))
    udp_buffer: int = opt(4 * 1024 * 1024, "socket buffer asked for the UDP socket, bytes "
                          "(capped by net.core.rmem_max)", range=(65536, 1 << 30))


@dataclass(frozen=True, slots=True)
class AdminSection:
    listen: str = opt("127.0.0.1", "address of the admin API (keep it on a management "
                      "network)")
    port: int = opt(8081, "port of the admin API", range=(0, 65535))
    token: str | None = opt(None, "bearer token (prefer token_env)")
    token_env: str | None = opt("HLRGW_ADMIN_TOKEN", "environment variable holding the token")
    metrics_need_token: bool = opt(True, "whether GET /metrics needs the token too")
    tls: TlsSection | None = opt(None, "serve the admin API over HTTPS")


@dataclass(frozen=True, slots=True)
class StorageSection:
    url: str = opt("sqlite:///var/lib/hlrgw/hlrgw.db", "lookup history store "
                   "(sqlite:///PATH or postgresql://...)")


@dataclass(frozen=True, slots=True)
class CacheSection:
    url: str = opt("memory://", "answer cache (memory:// or redis://HOST:PORT/DB)")
    ttl: float = opt(300.0, "seconds an answer is reused", range=(0.0, 86400.0 * 30))


@dataclass(frozen=True, slots=True)
class LoggingSection:
    level: LogLevel = opt(LogLevel.INFO, "debug, info, warning or error")
    format: LogFormat = opt(LogFormat.JSON, "json or console")


@dataclass(frozen=True, slots=True)
class TraceSection:
    directory: str = opt("/var/lib/hlrgw/traces", "private directory for trace files "
                         "(created with mode 0700)", path=True)
    expire_after: float = opt(86400.0, "seconds a trace file is kept",
                              range=(1.0, 86400.0 * 365))
    max_seconds: float = opt(600.0, "longest trace allowed", range=(0.1, 86400.0))


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, validated gateway configuration (:func:`gateway.config.load_config`)."""

    sccp: SccpSection = req("our SCCP identity")
    map: MapSection = req("MAP settings")
    routes: tuple[RouteSection, ...] = req("routes", nonempty=True)
    associations: tuple[AssociationSection, ...] = opt((), "M3UA associations")
    linksets: tuple[LinkSetSection, ...] = opt((), "link sets")
    node: NodeSection = opt(NodeSection(), "this gateway")
    sip_targets: tuple[SipTargetSection, ...] = opt((), "SIP number-portability servers")
    routing_numbers: tuple[RoutingNumberSection, ...] = opt((), "routing number -> network")
    mnp_sources: tuple[MnpSourceSection, ...] = opt((), "number-portability data")
    range_tables: tuple[RangeTableSection, ...] = opt((), "number-range tables")
    http: HttpSection = opt(HttpSection(), "HTTP lookup API listener")
    sip: SipSection = opt(SipSection(), "SIP client listener")
    sip_redirect: SipRedirectSection | None = opt(None, "SIP redirect front end (None: off)")
    admin: AdminSection = opt(AdminSection(), "admin API listener")
    storage: StorageSection = opt(StorageSection(), "storage")
    cache: CacheSection = opt(CacheSection(), "cache")
    logging: LoggingSection = opt(LoggingSection(), "logging")
    traces: TraceSection = opt(TraceSection(), "signalling traces")
    include: tuple[str, ...] = opt((), "more configuration files")
    path: str = field(default="", metadata={"internal": True})  # the main file

    def association(self, name: str) -> AssociationSection | None:
        return next((a for a in self.associations if a.name == name), None)

    def linkset(self, name: str) -> LinkSetSection | None:
        return next((s for s in self.linksets if s.name == name), None)

    def sip_target(self, name: str) -> SipTargetSection | None:
        return next((t for t in self.sip_targets if t.name == name), None)

    def route(self, name: str) -> RouteSection | None:
        return next((r for r in self.routes if r.name == name), None)
