"""The subscriber model of the simulated networks, and the one pure function that turns a
number into what an HLR knows of it (:func:`resolve`).

A :class:`Model` holds operator networks (:class:`Network`: MCC/MNC, HLR global title, point
code, routing context, MSC/VLRs, MSRN and MSIN rules), the number ranges each one holds
(:class:`Range`) and per-number overrides. Ranges and overrides carry a partial
:class:`Profile`; a number's settings are, lowest first:

1. its range holder's network defaults (``[networks.defaults]``),
2. its range's settings (the longest matching prefix wins),
3. its per-number override (a run-time override, set through the control API, replaces the
   one from the file).

A **ported** number (``ported_to``) is subscribed in another network (TS 23.066 §4: the
subscription network). Its settings are then the recipient network's defaults plus its
per-number override; the donor's range settings no longer apply. Its IMSI carries the recipient
network's MCC/MNC and it is served by the recipient's MSC/VLRs.

A **roaming** number (``roaming_in``) is served by an MSC/VLR of a visited network (TS 23.012):
the MSC and VLR global titles, the cell (MCC/MNC, LAC) and the MSRN come from that network,
the IMSI still from the subscription network.

Everything derived (IMSI, serving MSC, cell id, location age, MSRN) is a deterministic function
of the number, so the same file always gives the same answers.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

from protocols.map import (
    AbsentSubscriberDiagnosticSM,
    AbsentSubscriberReason,
    CallBarringCause,
    NotReachableReason,
    Opcode,
    UnknownSubscriberDiagnostic,
)

__all__ = [
    "AtiState",
    "ForwardWhen",
    "Location",
    "Model",
    "MsinRule",
    "Network",
    "Operation",
    "Profile",
    "Range",
    "Status",
    "Subscriber",
    "absent_subscriber_reason",
    "imsi_for",
    "not_reachable_reason",
    "resolve",
]

IMSI_DIGITS = 15  # TS 23.003 §2.2: MCC + MNC + MSIN, at most 15 digits; we always use 15


class Status(enum.StrEnum):
    """What the HLR says of a subscriber (one per TS 29.002 answer an HLR lookup sees)."""

    CONNECTED = "connected"  # registered in a VLR: SRI-SM result, ATI assumedIdle
    ABSENT = "absent"  # absentSubscriberSM with a diagnostic (TS 29.002 §17.7.7, TS 23.040)
    UNKNOWN = "unknown"  # unknownSubscriber (no such subscription)
    BARRED = "barred"  # callBarred (barring service active or operator barring)
    TELESERVICE_NOT_PROVISIONED = "teleservice_not_provisioned"  # no SMS (or speech) teleservice
    SYSTEM_FAILURE = "system_failure"  # systemFailure (networkResource hlr)


class AtiState(enum.StrEnum):
    """The SubscriberState alternative ATI answers (TS 29.002 §17.7.1)."""

    ASSUMED_IDLE = "assumed_idle"
    CAMEL_BUSY = "camel_busy"
    NET_DET_NOT_REACHABLE = "net_det_not_reachable"
    NOT_PROVIDED_FROM_VLR = "not_provided_from_vlr"


class ForwardWhen(enum.StrEnum):
    """When sendRoutingInfo answers with forwarding data instead of an MSRN."""

    UNCONDITIONAL = "unconditional"  # call forwarding unconditional (CFU)
    NOT_REACHABLE = "not_reachable"  # call forwarding on not reachable (CFNRc), when absent


class MsinRule(enum.StrEnum):
    """How a network builds the MSIN of a number's IMSI (always 15 IMSI digits).

    ``suffix``: the network's MSIN prefix, then the number's last digits (readable: the IMSI
    shows the number). ``permuted``: the prefix, then the number's last digits put through a
    fixed bijection (``x * 7654321 + key`` modulo a power of ten), so the IMSI does not show the
    number but two numbers never share an IMSI.
    """

    SUFFIX = "suffix"
    PERMUTED = "permuted"


class Operation(enum.StrEnum):
    """The MAP operations a simulated HLR answers, by their short names."""

    SRI_SM = "sri_sm"  # sendRoutingInfoForSM, TS 29.002 §12.1
    ATI = "ati"  # anyTimeInterrogation, TS 29.002 §8.11.1
    SRI = "sri"  # sendRoutingInfo, TS 29.002 §10.1

    @property
    def opcode(self) -> int:
        return _OPCODES[self]

    @classmethod
    def for_opcode(cls, opcode: int) -> Operation | None:
        return _BY_OPCODE.get(opcode)


_OPCODES = {Operation.SRI_SM: Opcode.SEND_ROUTING_INFO_FOR_SM,
            Operation.ATI: Opcode.ANY_TIME_INTERROGATION,
            Operation.SRI: Opcode.SEND_ROUTING_INFO}
_BY_OPCODE = {int(v): k for k, v in _OPCODES.items()}

#: the highest application context version each operation has (TS 29.002 §17.3.3)
HIGHEST_VERSION = {Operation.SRI_SM: 3, Operation.ATI: 3, Operation.SRI: 3}

_D = AbsentSubscriberDiagnosticSM
_R = NotReachableReason
_A = AbsentSubscriberReason
# absentSubscriberSM diagnostic -> ATI netDetNotReachable reason (the paging failures are not
# here: the HLR still believes the subscriber attached, so ATI says assumedIdle)
_NOT_REACHABLE = {
    _D.IMSI_DETACHED: _R.IMSI_DETACHED,
    _D.GPRS_DETACHED: _R.IMSI_DETACHED,
    _D.ROAMING_RESTRICTION: _R.RESTRICTED_AREA,
    _D.DEREGISTERED_IN_THE_HLR_FOR_NON_GPRS: _R.NOT_REGISTERED,
    _D.DEREGISTERED_IN_THE_HLR_FOR_GPRS: _R.NOT_REGISTERED,
    _D.MS_PURGED_FOR_NON_GPRS: _R.MS_PURGED,
    _D.MS_PURGED_FOR_GPRS: _R.MS_PURGED,
    _D.UNIDENTIFIED_SUBSCRIBER_VIA_THE_MSC: _R.NOT_REGISTERED,
}
_PAGING_FAILURES = frozenset({_D.NO_PAGING_RESPONSE_VIA_THE_MSC,
                              _D.NO_PAGING_RESPONSE_VIA_THE_SGSN})

# absentSubscriberSM diagnostic -> absentSubscriber reason (sendRoutingInfo, TS 29.002 §17.7.7)
_ABSENT_REASON = {
    _D.NO_PAGING_RESPONSE_VIA_THE_MSC: _A.NO_PAGE_RESPONSE,
    _D.NO_PAGING_RESPONSE_VIA_THE_SGSN: _A.NO_PAGE_RESPONSE,
    _D.ROAMING_RESTRICTION: _A.RESTRICTED_AREA,
    _D.MS_PURGED_FOR_NON_GPRS: _A.PURGED_MS,
    _D.MS_PURGED_FOR_GPRS: _A.PURGED_MS,
}


def not_reachable_reason(diagnostic: AbsentSubscriberDiagnosticSM) -> NotReachableReason | None:
    """The ATI ``netDetNotReachable`` reason that goes with an absentSubscriberSM diagnostic
    (None: the HLR still has the subscriber attached, only paging failed)."""
    if diagnostic in _PAGING_FAILURES:
        return None
    return _NOT_REACHABLE.get(diagnostic, NotReachableReason.IMSI_DETACHED)


def absent_subscriber_reason(diagnostic: AbsentSubscriberDiagnosticSM) -> AbsentSubscriberReason:
    """The absentSubscriber reason (sendRoutingInfo) that goes with an absentSubscriberSM
    diagnostic."""
    return _ABSENT_REASON.get(diagnostic, AbsentSubscriberReason.IMSI_DETACH)


# --------------------------------------------------------------------------- settings


@dataclass(slots=True, frozen=True)
class Profile:
    """Partial subscriber settings, as a network's defaults, a range or a per-number override
    give them. None means "inherit"; the empty string, for ``roaming_in``, ``ported_to`` and
    ``forward_to``, means "explicitly none" (at home, not ported, no forwarding)."""

    status: Status | None = None
    absent_diagnostic: AbsentSubscriberDiagnosticSM | None = None
    unknown_diagnostic: UnknownSubscriberDiagnostic | None = None
    barring_cause: CallBarringCause | None = None
    imsi: str | None = None  # the IMSI itself, instead of the network's MSIN rule
    msc: str | None = None  # serving MSC global title
    vlr: str | None = None  # serving VLR global title (default: the MSC's, a combined MSC/VLR)
    roaming_in: str | None = None  # the visited network's name
    ported_to: str | None = None  # the subscription network's name
    ati_state: AtiState | None = None
    lac: int | None = None  # location area code of the serving cell
    cell_id: int | None = None
    age: int | None = None  # age of location information, minutes (0..32767)
    forward_to: str | None = None  # forwarded-to number for sendRoutingInfo
    forward_when: ForwardWhen | None = None

    def merged(self, over: Profile | None) -> Profile:
        """These settings with every field ``over`` sets taking precedence."""
        if over is None:
            return self
        changes = {f.name: v for f in fields(over) if (v := getattr(over, f.name)) is not None}
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, object]:
        """The fields that are set, JSON-ready (enums by their names)."""
        out: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = enum_name(v)
        return out

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def enum_name(value: object) -> object:
    """An enum member as the lower-case name the network file uses; anything else unchanged."""
    if isinstance(value, enum.StrEnum):
        return value.value
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    return value


@dataclass(slots=True, frozen=True)
class Range:
    """A block of numbers held by ``network``: every number starting with ``prefix`` (and of
    ``length`` digits, when given). ``msin_prefix`` overrides the network's for IMSIs built for
    numbers of this range."""

    prefix: str
    network: str
    profile: Profile = Profile()
    length: int | None = None
    msin_prefix: str | None = None
    base: Profile = field(default=Profile(), compare=False)  # network defaults + profile

    def holds(self, number: str) -> bool:
        return number.startswith(self.prefix) and (self.length is None
                                                   or len(number) == self.length)


@dataclass(slots=True, frozen=True)
class Network:
    """One simulated operator network and its HLR (TS 23.003 numbering, TS 29.002 routing)."""

    name: str
    operator: str
    country: str  # ISO 3166-1 alpha-2, e.g. "GB"
    country_code: str  # E.164 country code, e.g. "44"
    mcc: str  # E.212 mobile country code
    mnc: str  # E.212 mobile network code (2 or 3 digits, as the country uses)
    hlr_gt: str  # the HLR's global title (E.164)
    point_code: int  # the HLR's ITU 14-bit signalling point code
    routing_context: int  # the M3UA Routing Context of the HLR's Application Server
    mscs: tuple[str, ...]  # MSC/VLR global titles; numbers are spread over them
    msrn_prefix: str  # MSRNs this network's VLRs allocate start with this
    msrn_digits: int = 4  # ... followed by the number's last msrn_digits digits
    lac: int = 1  # location area code of the network's cells
    msin_rule: MsinRule = MsinRule.SUFFIX
    msin_prefix: str = ""
    msin_key: int = 0
    max_versions: Mapping[Operation, int] = field(default_factory=lambda: dict(HIGHEST_VERSION))
    ati_allowed: bool = True  # False: anyTimeInterrogation answers ati-NotAllowed
    routing_number: str | None = None  # MNP routeing number (ATI mnpRequestedInfo)
    port: int = 0  # M3UA listening port (0: any free port)
    sctp: bool = False  # also listen on SCTP (where the kernel has it)
    defaults: Profile = Profile()

    @property
    def plmn(self) -> str:
        return self.mcc + self.mnc


@dataclass(slots=True)
class Location:
    """Where the subscriber was last seen: the serving cell (TS 29.002 §17.7.8
    CellGlobalIdOrServiceAreaIdOrLAI) and the age of that information in minutes."""

    mcc: str
    mnc: str
    lac: int
    cell_id: int
    age: int


@dataclass(slots=True)
class Subscriber:
    """What the HLR knows of one number: the view the simulated HLRs answer from (a fresh
    value from every :func:`resolve`; not frozen, which makes it cheaper to build)."""

    msisdn: str
    range_holder: str  # the network holding the number's range
    network: str  # the subscription network (another one when the number is ported)
    serving_network: str  # whose MSC/VLR serves it (the visited network when roaming)
    status: Status
    imsi: str
    msc: str
    vlr: str
    absent_diagnostic: AbsentSubscriberDiagnosticSM
    unknown_diagnostic: UnknownSubscriberDiagnostic
    barring_cause: CallBarringCause
    ati_state: AtiState
    not_reachable_reason: NotReachableReason | None
    location: Location
    msrn: str
    forward_to: str | None
    forward_when: ForwardWhen

    @property
    def ported(self) -> bool:
        return self.network != self.range_holder

    @property
    def roaming(self) -> bool:
        return self.serving_network != self.network

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (enums by their names), for the control API."""
        out: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Location):
                v = {g.name: getattr(v, g.name) for g in fields(v)}
            out[f.name] = enum_name(v)
        out["ported"] = self.ported
        out["roaming"] = self.roaming
        return out


# --------------------------------------------------------------------------- the model


class Model:
    """Networks, their ranges and the per-number overrides of a network file (immutable)."""

    __slots__ = ("networks", "ranges", "overrides", "_by_prefix", "_lengths")

    def __init__(self, networks: Iterable[Network], ranges: Iterable[Range],
                 overrides: Mapping[str, Profile] | None = None) -> None:
        self.networks: dict[str, Network] = {n.name: n for n in networks}
        built = []
        for r in ranges:
            holder = self.networks[r.network]
            built.append(replace(r, base=holder.defaults.merged(r.profile)))
        self.ranges: tuple[Range, ...] = tuple(built)
        self.overrides: dict[str, Profile] = dict(overrides or {})
        by_prefix: dict[str, list[Range]] = {}
        for r in self.ranges:
            by_prefix.setdefault(r.prefix, []).append(r)
        self._by_prefix = by_prefix
        self._lengths = tuple(sorted({len(p) for p in by_prefix}, reverse=True))

    def find_range(self, number: str) -> Range | None:
        """The range holding ``number``: the longest prefix that matches (and whose length,
        if it sets one, is the number's)."""
        by_prefix = self._by_prefix
        n = len(number)
        for length in self._lengths:
            if length > n:
                continue
            found = by_prefix.get(number[:length])
            if found is not None:
                for r in found:
                    if r.length is None or r.length == n:
                        return r
        return None


def _crc(number: str) -> int:
    return zlib.crc32(number.encode("ascii"))


def imsi_for(network: Network, number: str, msin_prefix: str | None = None) -> str:
    """The 15-digit IMSI ``network``'s MSIN rule gives ``number`` (TS 23.003 §2.2)."""
    prefix = network.msin_prefix if msin_prefix is None else msin_prefix
    width = IMSI_DIGITS - len(network.mcc) - len(network.mnc) - len(prefix)
    if width <= 0:
        return (network.plmn + prefix)[:IMSI_DIGITS]
    modulus = 10 ** width
    tail = int(number[-width:] or "0") % modulus
    if network.msin_rule is MsinRule.PERMUTED:
        tail = (tail * 7654321 + network.msin_key) % modulus  # 7654321 is prime to 10
    return f"{network.plmn}{prefix}{tail:0{width}d}"


def resolve(model: Model, number: str,
            overrides: Mapping[str, Profile] | None = None) -> Subscriber | None:
    """What the HLR knows of ``number`` (E.164 digits, a leading ``+`` allowed), or None when
    no network holds a range for it.

    ``overrides`` are the run-time per-number overrides: one present for ``number`` replaces
    the network file's. Pure and deterministic: the same model, overrides and number always
    give the same subscriber.
    """
    digits = number[1:] if number[:1] == "+" else number
    rng = model.find_range(digits)
    if rng is None:
        return None
    networks = model.networks
    if overrides is not None and digits in overrides:
        override = overrides[digits]
    else:
        override = model.overrides.get(digits)
    profile = rng.base.merged(override) if override is not None else rng.base
    home = networks[rng.network]
    network = home
    msin_prefix = rng.msin_prefix
    if profile.ported_to:
        network = networks[profile.ported_to]
        # the recipient's settings: the donor range's no longer apply
        profile = network.defaults.merged(override).merged(Profile(ported_to=network.name))
        msin_prefix = None
    serving = networks[profile.roaming_in] if profile.roaming_in else network
    crc = _crc(digits)
    status = profile.status or Status.CONNECTED
    msc = profile.msc or serving.mscs[crc % len(serving.mscs)]
    absent = profile.absent_diagnostic
    if absent is None:
        absent = AbsentSubscriberDiagnosticSM.IMSI_DETACHED
    reason: NotReachableReason | None = None
    ati_state = profile.ati_state
    if ati_state is None:
        if status is Status.ABSENT:
            reason = not_reachable_reason(absent)
            ati_state = (AtiState.ASSUMED_IDLE if reason is None
                         else AtiState.NET_DET_NOT_REACHABLE)
        else:
            ati_state = AtiState.ASSUMED_IDLE
    elif ati_state is AtiState.NET_DET_NOT_REACHABLE:
        reason = not_reachable_reason(absent) or NotReachableReason.IMSI_DETACHED
    location = Location(
        serving.mcc, serving.mnc,
        profile.lac if profile.lac is not None else serving.lac,
        profile.cell_id if profile.cell_id is not None else 1 + (crc >> 8) % 65535,
        profile.age if profile.age is not None else (crc >> 4) % 30)
    return Subscriber(
        msisdn=digits,
        range_holder=home.name,
        network=network.name,
        serving_network=serving.name,
        status=status,
        imsi=profile.imsi or imsi_for(network, digits, msin_prefix),
        msc=msc,
        vlr=profile.vlr or msc,
        absent_diagnostic=absent,
        unknown_diagnostic=(profile.unknown_diagnostic
                            if profile.unknown_diagnostic is not None
                            else UnknownSubscriberDiagnostic.IMSI_UNKNOWN),
        barring_cause=(profile.barring_cause if profile.barring_cause is not None
                       else CallBarringCause.BARRING_SERVICE_ACTIVE),
        ati_state=ati_state,
        not_reachable_reason=reason,
        location=location,
        msrn=serving.msrn_prefix + digits[-serving.msrn_digits:],
        forward_to=profile.forward_to or None,
        forward_when=profile.forward_when or ForwardWhen.UNCONDITIONAL,
    )
