"""Loading a network file (TOML, read with :mod:`tomllib`) into a :class:`SimConfig`.

Every check names the key it is about, with its position in the file's tables, e.g.
``networks[2].ranges[0].prefix: must start with the network's country code 49, got '4412'``.
Unknown keys are errors too, so a misspelt setting cannot be silently ignored.

The format is documented, with examples, in ``docs/simulator.md``; the same parsers check the
JSON bodies of the control API (:func:`parse_profile`, :func:`parse_fault`).
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.m3ua import ErrorCode
from protocols.map import (
    AbsentSubscriberDiagnosticSM,
    CallBarringCause,
    UnknownSubscriberDiagnostic,
)
from protocols.tbcd import THREE_DIGIT_MNC_MCCS
from protocols.tcap import PAbortCause

from .faults import ASSOCIATION_FAULTS, Distribution, FaultKind, FaultSpec, MalformedVariant
from .model import (
    HIGHEST_VERSION,
    AtiState,
    ForwardWhen,
    Model,
    MsinRule,
    Network,
    Operation,
    Profile,
    Range,
    Status,
)

__all__ = [
    "ConfigError",
    "Endpoint",
    "check_override",
    "HUB",
    "SimConfig",
    "SipConfig",
    "load_config",
    "parse_config",
    "parse_fault",
    "parse_number",
    "parse_profile",
]

HUB = "hub"  # the name of the hub endpoint (and of its fault scope)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_DIGITS = re.compile(r"^[0-9]+$")


class ConfigError(ValueError):
    """A network file (or a control API body) that is not valid; the message names the key."""


@dataclass(slots=True, frozen=True)
class Endpoint:
    """Where one simulated HLR (or the hub) listens and how it is addressed."""

    name: str
    operator: str
    gt: str  # its global title
    point_code: int
    routing_context: int
    port: int = 0  # 0: a free port chosen at start
    sctp: bool = False
    serves: frozenset[str] | None = None  # the networks whose numbers it answers; None: all


@dataclass(slots=True, frozen=True)
class SipConfig:
    """The simulator's SIP number-portability server (``[sip]``): UDP and TCP ports
    (0: a free port chosen at start)."""

    udp_port: int = 5060
    tcp_port: int = 5060


@dataclass(slots=True, frozen=True)
class SimConfig:
    """A whole network file."""

    model: Model
    faults: tuple[FaultSpec, ...] = ()
    hub: Endpoint | None = None
    seed: int = 0
    control_port: int = 8905
    heartbeat_interval: float = 0.0  # BEATs the HLR endpoints send (0: none)
    source: str = "<config>"
    sip: SipConfig | None = None  # the SIP NP server (None: not run)

    @property
    def endpoints(self) -> list[Endpoint]:
        """Every network's HLR endpoint, then the hub's (if configured)."""
        out = [Endpoint(n.name, n.operator, n.hlr_gt, n.point_code, n.routing_context, n.port,
                        n.sctp, frozenset({n.name})) for n in self.model.networks.values()]
        if self.hub is not None:
            out.append(self.hub)
        return out


# --------------------------------------------------------------------------- helpers


class _Table:
    """A TOML table being read: takes keys one by one, then complains about leftovers."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a table, got {_show(data)}")
        self.data = dict(data)
        self.where = where
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, default: Any = None) -> Any:
        self.seen.add(name)
        return self.data.get(name, default)

    def require(self, name: str) -> Any:
        self.seen.add(name)
        if name not in self.data:
            raise ConfigError(f"{self.key(name)}: missing (required)")
        return self.data[name]

    def done(self) -> None:
        extra = [k for k in self.data if k not in self.seen]
        if extra:
            raise ConfigError(f"{self.key(extra[0])}: unknown key")


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, Mapping) else "a table"


def _str(t: _Table, name: str, default: Any = ..., *, pattern: re.Pattern | None = None,
         what: str = "") -> Any:
    value = t.require(name) if default is ... else t.get(name, default)
    if value is None or (default is not ... and value is default):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{t.key(name)}: must be a string, got {_show(value)}")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(f"{t.key(name)}: must be {what}, got {value!r}")
    return value


def _digits(t: _Table, name: str, default: Any = ..., *, min_len: int = 1,
            max_len: int = 15) -> Any:
    value = _str(t, name, default)
    if value is None or (default is not ... and value is default):
        return value
    return _check_digits(value.removeprefix("+"), t.key(name), min_len, max_len)


def _check_digits(value: str, key: str, min_len: int = 1, max_len: int = 15) -> str:
    if not _DIGITS.match(value) or not min_len <= len(value) <= max_len:
        size = f"{min_len}" if min_len == max_len else f"{min_len} to {max_len}"
        raise ConfigError(f"{key}: must be {size} decimal digits, got {value!r}")
    return value


def parse_number(number: str, key: str = "number") -> str:
    """E.164 digits from ``number`` (a leading ``+`` allowed); 3 to 15 digits."""
    if not isinstance(number, str):
        raise ConfigError(f"{key}: must be a string of digits, got {_show(number)}")
    return _check_digits(number.strip().removeprefix("+"), key, 3, 15)


def _int(t: _Table, name: str, default: Any = ..., *, lo: int | None = None,
         hi: int | None = None) -> Any:
    value = t.require(name) if default is ... else t.get(name, default)
    if default is not ... and value is default:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{t.key(name)}: must be an integer, got {_show(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{t.key(name)}: must be in {lo}..{hi}, got {value}")
    return value


def _float(t: _Table, name: str, default: Any = ..., *, lo: float | None = None,
           hi: float | None = None) -> Any:
    value = t.require(name) if default is ... else t.get(name, default)
    if default is not ... and value is default:
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"{t.key(name)}: must be a number, got {_show(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{t.key(name)}: must be in {lo}..{hi}, got {value}")
    return float(value)


def _bool(t: _Table, name: str, default: bool) -> bool:
    value = t.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{t.key(name)}: must be true or false, got {_show(value)}")
    return value


def _enum(cls: type[enum.Enum], value: Any, key: str) -> Any:
    """An enum member from its lower-case name (or, for integer enums, its number)."""
    if isinstance(value, str):
        for member in cls:
            names = {member.name.lower()}
            if isinstance(member.value, str):
                names.add(member.value)
            if value.lower() in names:
                return member
    elif isinstance(value, int) and not isinstance(value, bool) and issubclass(cls, enum.IntEnum):
        try:
            return cls(value)
        except ValueError:
            pass
    choices = ", ".join(m.value if isinstance(m.value, str) else m.name.lower() for m in cls)
    raise ConfigError(f"{key}: must be one of {choices}; got {_show(value)}")


def _opt_enum(t: _Table, name: str, cls: type[enum.Enum]) -> Any:
    value = t.get(name)
    return None if value is None else _enum(cls, value, t.key(name))


def _list(t: _Table, name: str, default: Any = ...) -> Any:
    value = t.require(name) if default is ... else t.get(name, default)
    if default is not ... and value is default:
        return value
    if not isinstance(value, list):
        raise ConfigError(f"{t.key(name)}: must be an array, got {_show(value)}")
    return value


# --------------------------------------------------------------------------- profiles

def _profile(t: _Table, networks: Mapping[str, Any] | None) -> Profile:
    """Read the subscriber settings present in ``t`` (the others stay None)."""
    kw: dict[str, Any] = {}
    kw["status"] = _opt_enum(t, "status", Status)
    kw["absent_diagnostic"] = _opt_enum(t, "absent_diagnostic", AbsentSubscriberDiagnosticSM)
    kw["unknown_diagnostic"] = _opt_enum(t, "unknown_diagnostic", UnknownSubscriberDiagnostic)
    kw["barring_cause"] = _opt_enum(t, "barring_cause", CallBarringCause)
    kw["imsi"] = _digits(t, "imsi", None, min_len=6, max_len=15)
    kw["msc"] = _digits(t, "msc", None, min_len=3)
    kw["vlr"] = _digits(t, "vlr", None, min_len=3)
    for name in ("roaming_in", "ported_to"):
        value = _str(t, name, None)
        if value and networks is not None and value not in networks:
            raise ConfigError(f"{t.key(name)}: no network named {value!r} "
                              f"(networks: {', '.join(networks)})")
        kw[name] = value
    kw["ati_state"] = _opt_enum(t, "ati_state", AtiState)
    kw["lac"] = _int(t, "lac", None, lo=0, hi=0xFFFF)
    kw["cell_id"] = _int(t, "cell_id", None, lo=0, hi=0xFFFF)
    kw["age"] = _int(t, "age", None, lo=0, hi=32767)
    fwd = _str(t, "forward_to", None)
    if fwd:
        fwd = _check_digits(fwd.removeprefix("+"), t.key("forward_to"), 3, 15)
    kw["forward_to"] = fwd
    kw["forward_when"] = _opt_enum(t, "forward_when", ForwardWhen)
    return Profile(**kw)


def parse_profile(data: Any, where: str = "body",
                  networks: Mapping[str, Any] | None = None) -> Profile:
    """Subscriber settings from a mapping (a per-number override, a control API body)."""
    t = _Table(data, where)
    profile = _profile(t, networks)
    t.done()
    return profile


def check_override(number: str, profile: Profile, model: Model, key: str) -> None:
    """The checks a per-number override needs the whole model for."""
    rng = model.find_range(number)
    if rng is None:
        raise ConfigError(f"{key}: no network holds a range for {number}")
    if profile.ported_to and profile.ported_to == rng.network:
        raise ConfigError(f"{key}.ported_to: {number} is in a range of {rng.network} already "
                          "(ported_to names the network it moved to)")
    subscribed = profile.ported_to or rng.network
    if profile.roaming_in and profile.roaming_in == subscribed:
        raise ConfigError(f"{key}.roaming_in: {profile.roaming_in} is the number's own "
                          "network (roaming_in names a visited network)")


# --------------------------------------------------------------------------- networks


def _versions(t: _Table, name: str) -> dict[Operation, int]:
    out = dict(HIGHEST_VERSION)
    if not t.has(name):
        t.seen.add(name)
        return out
    sub = _Table(t.get(name), t.key(name))
    for op in Operation:
        if sub.has(op.value):
            lo = HIGHEST_VERSION[op] if op is Operation.ATI else 1
            out[op] = _int(sub, op.value, lo=lo, hi=HIGHEST_VERSION[op])
    sub.done()
    return out


def _network(t: _Table) -> Network:
    name = _str(t, "name", pattern=_NAME, what="lower-case letters, digits and '-' "
                "(at most 32, not starting with '-')")
    if name == HUB:
        raise ConfigError(f"{t.key('name')}: {HUB!r} is the hub's name")
    cc = _digits(t, "country_code", min_len=1, max_len=3)
    country = _str(t, "country", pattern=re.compile(r"^[A-Z]{2}$"),
                   what="an ISO 3166-1 alpha-2 code such as 'GB'")
    mcc = _digits(t, "mcc", min_len=3, max_len=3)
    mnc = _digits(t, "mnc", min_len=2, max_len=3)
    if (len(mnc) == 3) != (mcc in THREE_DIGIT_MNC_MCCS):
        size = 3 if mcc in THREE_DIGIT_MNC_MCCS else 2
        raise ConfigError(f"{t.key('mnc')}: MCC {mcc} uses {size}-digit MNCs, got {mnc!r}")

    def gt(key: str, value: str) -> str:
        if not value.startswith(cc):
            raise ConfigError(f"{key}: must start with the network's country code {cc}, "
                              f"got {value!r}")
        return value

    hlr_gt = gt(t.key("hlr_gt"), _digits(t, "hlr_gt", min_len=5))
    mscs = _list(t, "mscs")
    if not mscs:
        raise ConfigError(f"{t.key('mscs')}: needs at least one MSC/VLR global title")
    mscs = tuple(gt(f"{t.key('mscs')}[{i}]", _check_digits(
        m.removeprefix("+") if isinstance(m, str) else str(m), f"{t.key('mscs')}[{i}]", 5))
        for i, m in enumerate(mscs))
    msrn_prefix = gt(t.key("msrn_prefix"), _digits(t, "msrn_prefix", min_len=3, max_len=14))
    msrn_digits = _int(t, "msrn_digits", 4, lo=1, hi=10)
    if len(msrn_prefix) + msrn_digits > 15:
        raise ConfigError(f"{t.key('msrn_digits')}: msrn_prefix plus {msrn_digits} digits is "
                          "longer than 15 digits")
    msin = _Table(t.get("msin", {}), t.key("msin"))
    rule = _enum(MsinRule, msin.get("rule", "suffix"), msin.key("rule"))
    msin_prefix = _digits(msin, "prefix", None, min_len=1, max_len=8) or ""
    key = _int(msin, "key", 0, lo=0)
    msin.done()
    defaults = parse_profile(t.get("defaults", {}), t.key("defaults"))
    routing_number = _digits(t, "routing_number", None, min_len=1, max_len=10)
    return Network(
        name=name, operator=_str(t, "operator"), country=country, country_code=cc, mcc=mcc,
        mnc=mnc, hlr_gt=hlr_gt, point_code=_int(t, "point_code", lo=0, hi=0x3FFF),
        routing_context=_int(t, "routing_context", lo=0, hi=0xFFFFFFFF), mscs=mscs,
        msrn_prefix=msrn_prefix, msrn_digits=msrn_digits, lac=_int(t, "lac", 1, lo=0,
                                                                   hi=0xFFFF),
        msin_rule=rule, msin_prefix=msin_prefix, msin_key=key,
        max_versions=_versions(t, "max_versions"), ati_allowed=_bool(t, "ati_allowed", True),
        routing_number=routing_number, port=_int(t, "port", 0, lo=0, hi=65535),
        sctp=_bool(t, "sctp", False), defaults=defaults)


def _range(t: _Table, network: Network, networks: Mapping[str, Any]) -> Range:
    prefix = _digits(t, "prefix", min_len=1, max_len=15)
    if not prefix.startswith(network.country_code):
        raise ConfigError(f"{t.key('prefix')}: must start with the network's country code "
                          f"{network.country_code}, got {prefix!r}")
    length = _int(t, "length", None, lo=len(prefix), hi=15)
    msin_prefix = _digits(t, "msin_prefix", None, min_len=1, max_len=8)
    # settings are whatever else the table holds
    profile = _profile(t, networks)
    if profile.ported_to == network.name:
        raise ConfigError(f"{t.key('ported_to')}: the range is {network.name}'s own")
    t.done()
    return Range(prefix, network.name, profile, length, msin_prefix)


# --------------------------------------------------------------------------- faults

_LATENCY_KEYS = ("distribution", "ms", "min_ms", "max_ms", "median_ms", "sigma")


def parse_fault(data: Any, where: str = "body", *, networks: Iterable[str] = (),
                hub: bool = False, source: str = "api", fault_id: str | None = None
                ) -> FaultSpec:
    """A :class:`~simulators.faults.FaultSpec` from a mapping (a ``[[faults]]`` table or a
    control API body). ``networks`` are the endpoint names a ``network`` scope may name."""
    t = _Table(data, where)
    kind = _enum(FaultKind, t.require("kind"), t.key("kind"))
    names = list(networks) + ([HUB] if hub else [])
    network = _str(t, "network", None)
    if network is not None and names and network not in names:
        raise ConfigError(f"{t.key('network')}: no endpoint named {network!r} "
                          f"(endpoints: {', '.join(names)})")
    prefix = _digits(t, "prefix", None, min_len=1, max_len=15)
    number = _digits(t, "number", None, min_len=3, max_len=15)
    if prefix is not None and number is not None:
        raise ConfigError(f"{t.key('number')}: give a prefix or a number, not both")
    if kind in ASSOCIATION_FAULTS and (prefix is not None or number is not None):
        raise ConfigError(f"{t.key('kind')}: {kind.value} acts on associations; its scope is "
                          "a network (or every endpoint), not numbers")
    ops = t.get("operations")
    operations = None
    if ops is not None:
        if not isinstance(ops, list) or not ops:
            raise ConfigError(f"{t.key('operations')}: must be a non-empty array of "
                              f"{', '.join(o.value for o in Operation)}")
        operations = frozenset(_enum(Operation, o, f"{t.key('operations')}[{i}]")
                               for i, o in enumerate(ops))
    kw: dict[str, Any] = dict(kind=kind, network=network, prefix=prefix, number=number,
                              operations=operations, source=source)
    if fault_id is not None:
        kw["id"] = fault_id
    if kind not in ASSOCIATION_FAULTS:
        kw["probability"] = _float(t, "probability", 1.0, lo=0.0, hi=1.0)
    if kind is FaultKind.LATENCY:
        dist = _enum(Distribution, t.get("distribution", "fixed"), t.key("distribution"))
        kw["distribution"] = dist
        if dist is Distribution.FIXED:
            kw["ms"] = _float(t, "ms", lo=0.0, hi=600_000.0)
        elif dist is Distribution.UNIFORM:
            kw["min_ms"] = _float(t, "min_ms", lo=0.0, hi=600_000.0)
            kw["max_ms"] = _float(t, "max_ms", lo=0.0, hi=600_000.0)
            if kw["max_ms"] < kw["min_ms"]:
                raise ConfigError(f"{t.key('max_ms')}: must be at least min_ms "
                                  f"({kw['min_ms']:g}), got {kw['max_ms']:g}")
        else:
            kw["median_ms"] = _float(t, "median_ms", lo=0.0, hi=600_000.0)
            kw["sigma"] = _float(t, "sigma", lo=0.0, hi=5.0)
            kw["max_ms"] = _float(t, "max_ms", None, lo=0.0, hi=600_000.0)
        for k in _LATENCY_KEYS:
            if t.has(k) and k not in t.seen:
                raise ConfigError(f"{t.key(k)}: not used by a {dist.value} latency")
    elif kind is FaultKind.P_ABORT:
        if t.has("cause"):
            kw["cause"] = _enum(PAbortCause, t.get("cause"), t.key("cause"))
    elif kind is FaultKind.MALFORMED:
        if t.has("variant"):
            kw["variant"] = _enum(MalformedVariant, t.get("variant"), t.key("variant"))
    elif kind is FaultKind.RESET:
        kw["every"] = _int(t, "every", 1, lo=1, hi=1_000_000_000)
    elif kind is FaultKind.REFUSE_ASPAC:
        if t.has("error_code"):
            kw["error_code"] = _enum(ErrorCode, t.get("error_code"), t.key("error_code"))
    t.done()
    return FaultSpec(**kw)


# --------------------------------------------------------------------------- the file


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> SimConfig:
    """A :class:`SimConfig` from an already parsed TOML document."""
    top = _Table(data, "")
    sim = _Table(top.get("simulator", {}), "simulator")
    seed = _int(sim, "seed", 0, lo=0)
    control_port = _int(sim, "control_port", 8905, lo=0, hi=65535)
    heartbeat = _float(sim, "heartbeat_interval", 0.0, lo=0.0, hi=3600.0)
    sim.done()

    raw_networks = _list(top, "networks")
    if not raw_networks:
        raise ConfigError("networks: needs at least one [[networks]] table")
    networks: dict[str, Network] = {}
    tables: list[tuple[_Table, Network]] = []
    names = [n.get("name") if isinstance(n, Mapping) else None for n in raw_networks]
    known = {n: None for n in names if isinstance(n, str)}
    for i, raw in enumerate(raw_networks):
        t = _Table(raw, f"networks[{i}]")
        net = _network(t)
        if net.name in networks:
            raise ConfigError(f"{t.key('name')}: {net.name!r} is used twice")
        networks[net.name] = net
        tables.append((t, net))

    # the network defaults may name other networks (roaming_in); check them now
    for t, net in tables:
        for name in ("roaming_in", "ported_to"):
            value = getattr(net.defaults, name)
            if value and value not in known:
                raise ConfigError(f"{t.key('defaults')}.{name}: no network named {value!r}")
        if net.defaults.ported_to:
            raise ConfigError(f"{t.key('defaults')}.ported_to: a whole network cannot be "
                              "ported; set it on ranges or numbers")

    ranges: list[Range] = []
    seen_prefix: dict[tuple[str, int | None], str] = {}
    for t, net in tables:
        raw_ranges = _list(t, "ranges", [])
        for j, raw in enumerate(raw_ranges):
            rt = _Table(raw, f"{t.where}.ranges[{j}]")
            r = _range(rt, net, known)
            key = (r.prefix, r.length)
            if key in seen_prefix:
                raise ConfigError(f"{rt.key('prefix')}: {r.prefix} is already a range of "
                                  f"{seen_prefix[key]}")
            seen_prefix[key] = net.name
            ranges.append(r)
        t.done()

    _check_endpoints(networks)
    hub = None
    if top.has("hub"):
        hub = _hub(_Table(top.get("hub"), "hub"), networks)

    model = Model(networks.values(), ranges)
    overrides: dict[str, Profile] = {}
    for i, raw in enumerate(_list(top, "subscribers", [])):
        t = _Table(raw, f"subscribers[{i}]")
        number = _digits(t, "number", min_len=3, max_len=15)
        profile = _profile(t, known)
        t.done()
        if number in overrides:
            raise ConfigError(f"{t.key('number')}: {number} has two [[subscribers]] tables")
        check_override(number, profile, model, t.where)
        overrides[number] = profile
    model = Model(networks.values(), ranges, overrides)

    faults = []
    for i, raw in enumerate(_list(top, "faults", [])):
        faults.append(parse_fault(raw, f"faults[{i}]", networks=networks, hub=hub is not None,
                                  source="file", fault_id=f"file-{i + 1}"))
    sip = None
    if top.has("sip"):
        sip = _sip(_Table(top.get("sip"), "sip"), networks, hub, control_port)
    top.done()
    return SimConfig(model, tuple(faults), hub, seed, control_port, heartbeat, source, sip)


def _sip(t: _Table, networks: Mapping[str, Network], hub: Endpoint | None,
         control_port: int) -> SipConfig | None:
    enabled = _bool(t, "enabled", True)
    udp_port = _int(t, "udp_port", 5060, lo=0, hi=65535)
    tcp_port = _int(t, "tcp_port", 5060, lo=0, hi=65535)
    t.done()
    if not enabled:
        return None
    if tcp_port:
        taken = {net.port: f"{net.name}'s port" for net in networks.values() if net.port}
        if hub is not None and hub.port:
            taken[hub.port] = "the hub's port"
        if control_port:
            taken[control_port] = "the control port"
        if tcp_port in taken:
            raise ConfigError(f"{t.key('tcp_port')}: {tcp_port} is {taken[tcp_port]}")
    for i, net in enumerate(networks.values()):
        if net.routing_number is None:
            raise ConfigError(f"networks[{i}].routing_number: missing (required when the SIP "
                              "NP server is enabled: ported numbers answer with it)")
    return SipConfig(udp_port, tcp_port)


def _hub(t: _Table, networks: Mapping[str, Network]) -> Endpoint:
    gt = _digits(t, "gt", min_len=5)
    pc = _int(t, "point_code", lo=0, hi=0x3FFF)
    rc = _int(t, "routing_context", lo=0, hi=0xFFFFFFFF)
    port = _int(t, "port", 0, lo=0, hi=65535)
    for net in networks.values():
        if net.point_code == pc:
            raise ConfigError(f"{t.key('point_code')}: {pc} is {net.name}'s point code")
        if port and net.port == port:
            raise ConfigError(f"{t.key('port')}: {port} is {net.name}'s port")
    endpoint = Endpoint(HUB, _str(t, "operator", "international signalling hub"), gt, pc, rc,
                        port, _bool(t, "sctp", False), None)
    t.done()
    return endpoint


def _check_endpoints(networks: Mapping[str, Network]) -> None:
    pcs: dict[int, str] = {}
    ports: dict[int, str] = {}
    for i, net in enumerate(networks.values()):
        if net.point_code in pcs:
            raise ConfigError(f"networks[{i}].point_code: {net.point_code} is "
                              f"{pcs[net.point_code]}'s point code too")
        pcs[net.point_code] = net.name
        if net.port:
            if net.port in ports:
                raise ConfigError(f"networks[{i}].port: {net.port} is {ports[net.port]}'s "
                                  "port too")
            ports[net.port] = net.name


def load_config(path: str | Path) -> SimConfig:
    """Read and check a network file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_config(data, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

