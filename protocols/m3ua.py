"""M3UA messages (RFC 4666), sans-IO: the common header, TLV parameters and every message.

Wire format (RFC 4666 §3):

- Common header (§3.1): version (1, Release 1.0), reserved (0), message class, message type,
  then a 32-bit message length that counts the header, all parameters and their padding.
- Parameters (§3.2): 16-bit tag, 16-bit length counting the 4-byte parameter header and the
  value but not the padding; the value is padded with zero bytes to a multiple of 4.

:func:`decode` turns exactly one whole message into one of the typed messages below and
:func:`encode` turns one back into bytes. :class:`MessageFramer` cuts a TCP byte stream into
whole messages by the header length (SCTP keeps message boundaries and needs no framer).

Decoding rules:

- Only :class:`~protocols.errors.CodecError` (layer M3UA) ever leaves :func:`decode`; its
  ``offset`` counts from the start of the message. A wrong version is reported on field
  ``"version"``, an unknown class on ``"message class"`` and an unknown type on ``"message
  type"``, so an ASP can answer with the matching ERR code (§3.8.1: Invalid Version,
  Unsupported Message Class, Unsupported Message Type).
- Parameters are found by tag, in any order. Unknown parameters are skipped and kept, as
  ``(tag, value)`` pairs, in each message's ``unknown`` tuple (the encoder writes them back
  after the known ones). A missing mandatory parameter, a known parameter of the wrong size
  or a repeated non-repeatable one is a :class:`CodecError`.
- Values of enumerated fields outside the enum (a newer error code, say) are kept as plain
  ``int`` rather than rejected: deciding what to do about them is the caller's business.
- The reserved header byte and padding bytes are ignored; an unpadded last parameter is
  accepted.

Hot path: DATA carrying one Routing Context and the Protocol Data (what every lookup sends and
receives) is decoded and encoded with one precompiled :class:`struct.Struct` over the first 32
bytes and a single slice of the payload; other messages go through a table of parameter specs.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import CodecError, Layer

__all__ = [
    "VERSION",
    "HEADER_LENGTH",
    "DEFAULT_MAX_MESSAGE_LENGTH",
    "MessageClass",
    "MgmtType",
    "TransferType",
    "SsnmType",
    "AspsmType",
    "AsptmType",
    "RkmType",
    "ParameterTag",
    "TrafficModeType",
    "ErrorCode",
    "StatusType",
    "AsState",
    "OtherStatus",
    "UnavailabilityCause",
    "UserIdentity",
    "CongestionLevel",
    "RegistrationStatus",
    "DeregistrationStatus",
    "ServiceIndicator",
    "PointCode",
    "ProtocolData",
    "RoutingKeyDestination",
    "RoutingKey",
    "RegistrationResult",
    "DeregistrationResult",
    "Error",
    "Notify",
    "Data",
    "DestinationUnavailable",
    "DestinationAvailable",
    "DestinationStateAudit",
    "SignallingCongestion",
    "DestinationUserPartUnavailable",
    "DestinationRestricted",
    "AspUp",
    "AspDown",
    "Heartbeat",
    "AspUpAck",
    "AspDownAck",
    "HeartbeatAck",
    "AspActive",
    "AspInactive",
    "AspActiveAck",
    "AspInactiveAck",
    "RegistrationRequest",
    "RegistrationResponse",
    "DeregistrationRequest",
    "DeregistrationResponse",
    "Message",
    "MESSAGE_TYPES",
    "decode",
    "encode",
    "encode_data",
    "MessageFramer",
]

VERSION = 1  # RFC 4666 §3.1.1: Release 1.0
HEADER_LENGTH = 8  # RFC 4666 §3.1
DEFAULT_MAX_MESSAGE_LENGTH = 65535 + HEADER_LENGTH
INFO_STRING_MAX = 255  # RFC 4666 §3.4.1: an INFO String holds 0 to 255 octets of UTF-8

_M3UA = Layer.M3UA


# --------------------------------------------------------------------------- enums (§3.1.2)


class MessageClass(enum.IntEnum):
    """Message classes used by M3UA (RFC 4666 §3.1.2)."""

    MGMT = 0
    TRANSFER = 1
    SSNM = 2
    ASPSM = 3
    ASPTM = 4
    RKM = 9


class MgmtType(enum.IntEnum):
    """Management (MGMT) message types (RFC 4666 §3.1.2, §3.8)."""

    ERR = 0
    NTFY = 1


class TransferType(enum.IntEnum):
    """Transfer message types (RFC 4666 §3.1.2, §3.3)."""

    DATA = 1


class SsnmType(enum.IntEnum):
    """SS7 Signalling Network Management (SSNM) message types (RFC 4666 §3.1.2, §3.4)."""

    DUNA = 1
    DAVA = 2
    DAUD = 3
    SCON = 4
    DUPU = 5
    DRST = 6


class AspsmType(enum.IntEnum):
    """ASP State Maintenance (ASPSM) message types (RFC 4666 §3.1.2, §3.5)."""

    ASPUP = 1
    ASPDN = 2
    BEAT = 3
    ASPUP_ACK = 4
    ASPDN_ACK = 5
    BEAT_ACK = 6


class AsptmType(enum.IntEnum):
    """ASP Traffic Maintenance (ASPTM) message types (RFC 4666 §3.1.2, §3.7)."""

    ASPAC = 1
    ASPIA = 2
    ASPAC_ACK = 3
    ASPIA_ACK = 4


class RkmType(enum.IntEnum):
    """Routing Key Management (RKM) message types (RFC 4666 §3.1.2, §3.6)."""

    REG_REQ = 1
    REG_RSP = 2
    DEREG_REQ = 3
    DEREG_RSP = 4


class ParameterTag(enum.IntEnum):
    """Parameter tags (RFC 4666 §3.2): common (0x00xx) and M3UA-specific (0x02xx)."""

    INFO_STRING = 0x0004
    ROUTING_CONTEXT = 0x0006
    DIAGNOSTIC_INFORMATION = 0x0007
    HEARTBEAT_DATA = 0x0009
    TRAFFIC_MODE_TYPE = 0x000B
    ERROR_CODE = 0x000C
    STATUS = 0x000D
    ASP_IDENTIFIER = 0x0011
    AFFECTED_POINT_CODE = 0x0012
    CORRELATION_ID = 0x0013
    NETWORK_APPEARANCE = 0x0200
    USER_CAUSE = 0x0204
    CONGESTION_INDICATIONS = 0x0205
    CONCERNED_DESTINATION = 0x0206
    ROUTING_KEY = 0x0207
    REGISTRATION_RESULT = 0x0208
    DEREGISTRATION_RESULT = 0x0209
    LOCAL_ROUTING_KEY_IDENTIFIER = 0x020A
    DESTINATION_POINT_CODE = 0x020B
    SERVICE_INDICATORS = 0x020C
    ORIGINATING_POINT_CODE_LIST = 0x020E
    PROTOCOL_DATA = 0x0210
    REGISTRATION_STATUS = 0x0212
    DEREGISTRATION_STATUS = 0x0213


class TrafficModeType(enum.IntEnum):
    """Traffic Mode Type (RFC 4666 §3.7.1)."""

    OVERRIDE = 1
    LOADSHARE = 2
    BROADCAST = 3


class ErrorCode(enum.IntEnum):
    """Error Code of the ERR message (RFC 4666 §3.8.1).

    The values the RFC marks "Not Used in M3UA" (0x02, 0x08, 0x0a-0x0c, 0x10, 0x17, 0x18)
    are left out; if one arrives it is kept as a plain ``int``.
    """

    INVALID_VERSION = 0x01
    UNSUPPORTED_MESSAGE_CLASS = 0x03
    UNSUPPORTED_MESSAGE_TYPE = 0x04
    UNSUPPORTED_TRAFFIC_MODE_TYPE = 0x05
    UNEXPECTED_MESSAGE = 0x06
    PROTOCOL_ERROR = 0x07
    INVALID_STREAM_IDENTIFIER = 0x09
    REFUSED_MANAGEMENT_BLOCKING = 0x0D
    ASP_IDENTIFIER_REQUIRED = 0x0E
    INVALID_ASP_IDENTIFIER = 0x0F
    INVALID_PARAMETER_VALUE = 0x11
    PARAMETER_FIELD_ERROR = 0x12
    UNEXPECTED_PARAMETER = 0x13
    DESTINATION_STATUS_UNKNOWN = 0x14
    INVALID_NETWORK_APPEARANCE = 0x15
    MISSING_PARAMETER = 0x16
    INVALID_ROUTING_CONTEXT = 0x19
    NO_CONFIGURED_AS_FOR_ASP = 0x1A


class StatusType(enum.IntEnum):
    """Status Type of the NTFY Status parameter (RFC 4666 §3.8.2)."""

    AS_STATE_CHANGE = 1
    OTHER = 2


class AsState(enum.IntEnum):
    """Status Information for Status Type AS-State_Change (RFC 4666 §3.8.2); 1 is reserved."""

    AS_INACTIVE = 2
    AS_ACTIVE = 3
    AS_PENDING = 4


class OtherStatus(enum.IntEnum):
    """Status Information for Status Type Other (RFC 4666 §3.8.2)."""

    INSUFFICIENT_ASP_RESOURCES = 1
    ALTERNATE_ASP_ACTIVE = 2
    ASP_FAILURE = 3


class UnavailabilityCause(enum.IntEnum):
    """Unavailability Cause of the DUPU User/Cause parameter (RFC 4666 §3.4.5)."""

    UNKNOWN = 0
    UNEQUIPPED_REMOTE_USER = 1
    INACCESSIBLE_REMOTE_USER = 2


class UserIdentity(enum.IntEnum):
    """MTP3-User Identity of the DUPU User/Cause parameter (RFC 4666 §3.4.5)."""

    SCCP = 3
    TUP = 4
    ISUP = 5
    BROADBAND_ISUP = 9
    SATELLITE_ISUP = 10
    AAL_TYPE_2_SIGNALLING = 12
    BICC = 13
    GATEWAY_CONTROL_PROTOCOL = 14


class CongestionLevel(enum.IntEnum):
    """Congestion Level of the SCON Congestion Indications parameter (RFC 4666 §3.4.4)."""

    NO_CONGESTION = 0
    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3


class RegistrationStatus(enum.IntEnum):
    """Registration Status (RFC 4666 §3.6.2)."""

    SUCCESSFULLY_REGISTERED = 0
    UNKNOWN = 1
    INVALID_DPC = 2
    INVALID_NETWORK_APPEARANCE = 3
    INVALID_ROUTING_KEY = 4
    PERMISSION_DENIED = 5
    CANNOT_SUPPORT_UNIQUE_ROUTING = 6
    ROUTING_KEY_NOT_CURRENTLY_PROVISIONED = 7
    INSUFFICIENT_RESOURCES = 8
    UNSUPPORTED_RK_PARAMETER_FIELD = 9
    UNSUPPORTED_TRAFFIC_HANDLING_MODE = 10
    ROUTING_KEY_CHANGE_REFUSED = 11
    ROUTING_KEY_ALREADY_REGISTERED = 12


class DeregistrationStatus(enum.IntEnum):
    """Deregistration Status (RFC 4666 §3.6.4)."""

    SUCCESSFULLY_DEREGISTERED = 0
    UNKNOWN = 1
    INVALID_ROUTING_CONTEXT = 2
    PERMISSION_DENIED = 3
    NOT_REGISTERED = 4
    ASP_CURRENTLY_ACTIVE_FOR_ROUTING_CONTEXT = 5


class ServiceIndicator(enum.IntEnum):
    """MTP3 Service Indicator carried in Protocol Data (RFC 4666 §3.3.1, ITU-T Q.704 §14.2)."""

    SNM = 0
    SNT_MAINTENANCE = 1
    SNT_SPECIAL = 2
    SCCP = 3
    TUP = 4
    ISUP = 5
    DUP_CALL = 6
    DUP_FACILITY = 7
    MTP_TESTING = 8
    BROADBAND_ISUP = 9
    SATELLITE_ISUP = 10
    AAL_TYPE_2_SIGNALLING = 12
    BICC = 13
    GATEWAY_CONTROL_PROTOCOL = 14


def _enum(cls: type[enum.IntEnum], value: int) -> Any:
    """The enum member for ``value``, or ``value`` itself when the enum has no such member."""
    return cls._value2member_map_.get(value, value)


# --------------------------------------------------------------------------- parameter values


@dataclass(slots=True, frozen=True)
class PointCode:
    """A point code with its mask: 8-bit mask, 24-bit point code.

    The format of Affected Point Code (RFC 4666 §3.4.1), Destination Point Code and the
    Originating Point Code List (§3.6.1). A mask of n wildcards the n low bits of the point
    code (§3.4.1); DUPU and the routing key DPC use mask 0.
    """

    point_code: int
    mask: int = 0


@dataclass(slots=True)
class ProtocolData:
    """Protocol Data (RFC 4666 §3.3.1): the MTP3 routing label and service information octet
    fields, then the MTP3-User payload (``data``, the SCCP message when ``si`` is 3).

    OPC and DPC are 32-bit fields on the wire (an ITU point code uses the low 14 bits).
    """

    opc: int
    dpc: int
    si: int
    ni: int
    mp: int
    sls: int
    data: bytes


@dataclass(slots=True)
class RoutingKeyDestination:
    """One Destination Point Code with the optional Service Indicators and Originating Point
    Code List that follow it inside a Routing Key (RFC 4666 §3.6.1); a key may hold several."""

    dpc: PointCode
    service_indicators: list[int] = field(default_factory=list)
    opc_list: list[PointCode] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RoutingKey:
    """Routing Key parameter of REG REQ (RFC 4666 §3.6.1).

    Local-RK-Identifier and at least one Destination Point Code are mandatory; Routing
    Context, Traffic Mode Type and Network Appearance are optional.
    """

    local_rk_identifier: int
    routing_context: int | None = None
    traffic_mode_type: TrafficModeType | int | None = None
    destinations: list[RoutingKeyDestination] = field(default_factory=list)
    network_appearance: int | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class RegistrationResult:
    """Registration Result parameter of REG RSP (RFC 4666 §3.6.2); all three are mandatory."""

    local_rk_identifier: int
    registration_status: RegistrationStatus | int
    routing_context: int
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class DeregistrationResult:
    """Deregistration Result parameter of DEREG RSP (RFC 4666 §3.6.4); both are mandatory."""

    routing_context: int
    deregistration_status: DeregistrationStatus | int
    unknown: tuple[tuple[int, bytes], ...] = ()


# --------------------------------------------------------------------------- messages
#
# Every message is keyword-only; list-valued parameters (Routing Context, Affected Point Code)
# are absent when empty, ``None`` marks other absent optional parameters.


@dataclass(slots=True, kw_only=True)
class Error:
    """ERR (RFC 4666 §3.8.1): Error Code (mandatory); Routing Context, Network Appearance,
    Affected Point Code and Diagnostic Information as the error requires."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.MGMT
    MESSAGE_TYPE: ClassVar[int] = MgmtType.ERR
    error_code: ErrorCode | int
    routing_context: list[int] = field(default_factory=list)
    network_appearance: int | None = None
    affected_point_codes: list[PointCode] = field(default_factory=list)
    diagnostic_information: bytes | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class Notify:
    """NTFY (RFC 4666 §3.8.2): Status (mandatory: type and information), ASP Identifier
    (conditional), Routing Context and INFO String (optional).

    ``status_info`` is an :class:`AsState` for :attr:`StatusType.AS_STATE_CHANGE` and an
    :class:`OtherStatus` for :attr:`StatusType.OTHER`.
    """

    MESSAGE_CLASS: ClassVar[int] = MessageClass.MGMT
    MESSAGE_TYPE: ClassVar[int] = MgmtType.NTFY
    status_type: StatusType | int
    status_info: int
    asp_identifier: int | None = None
    routing_context: list[int] = field(default_factory=list)
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class Data:
    """DATA, Payload Data (RFC 4666 §3.3.1): Network Appearance (optional), Routing Context
    (conditional: one value), Protocol Data (mandatory), Correlation ID (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.TRANSFER
    MESSAGE_TYPE: ClassVar[int] = TransferType.DATA
    network_appearance: int | None = None
    routing_context: int | None = None
    protocol_data: ProtocolData
    correlation_id: int | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class _DestinationState:
    """Parameters shared by DUNA, DAVA, DAUD and DRST (RFC 4666 §3.4.1-§3.4.3, §3.4.6):
    Network Appearance (optional), Routing Context (conditional), Affected Point Code
    (mandatory, one or more), INFO String (optional)."""

    network_appearance: int | None = None
    routing_context: list[int] = field(default_factory=list)
    affected_point_codes: list[PointCode] = field(default_factory=list)
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class DestinationUnavailable(_DestinationState):
    """DUNA (RFC 4666 §3.4.1): the affected destinations are unavailable."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.SSNM
    MESSAGE_TYPE: ClassVar[int] = SsnmType.DUNA


@dataclass(slots=True, kw_only=True)
class DestinationAvailable(_DestinationState):
    """DAVA (RFC 4666 §3.4.2): the affected destinations are available again."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.SSNM
    MESSAGE_TYPE: ClassVar[int] = SsnmType.DAVA


@dataclass(slots=True, kw_only=True)
class DestinationStateAudit(_DestinationState):
    """DAUD (RFC 4666 §3.4.3): the ASP asks the SGP for the state of the destinations."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.SSNM
    MESSAGE_TYPE: ClassVar[int] = SsnmType.DAUD


@dataclass(slots=True, kw_only=True)
class DestinationRestricted(_DestinationState):
    """DRST (RFC 4666 §3.4.6): the affected destinations are restricted."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.SSNM
    MESSAGE_TYPE: ClassVar[int] = SsnmType.DRST


@dataclass(slots=True, kw_only=True)
class SignallingCongestion:
    """SCON (RFC 4666 §3.4.4): Network Appearance (optional), Routing Context (conditional),
    Affected Point Code (mandatory), Concerned Destination (optional, a 24-bit point code),
    Congestion Indications (optional, the congestion level), INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.SSNM
    MESSAGE_TYPE: ClassVar[int] = SsnmType.SCON
    network_appearance: int | None = None
    routing_context: list[int] = field(default_factory=list)
    affected_point_codes: list[PointCode] = field(default_factory=list)
    concerned_destination: int | None = None
    congestion_level: CongestionLevel | int | None = None
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class DestinationUserPartUnavailable:
    """DUPU (RFC 4666 §3.4.5): Network Appearance (optional), Routing Context (conditional),
    Affected Point Code (mandatory, exactly one, mask 0), User/Cause (mandatory: the
    unavailability cause and the MTP3-User identity), INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.SSNM
    MESSAGE_TYPE: ClassVar[int] = SsnmType.DUPU
    network_appearance: int | None = None
    routing_context: list[int] = field(default_factory=list)
    affected_point_code: PointCode
    cause: UnavailabilityCause | int
    user: UserIdentity | int
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspUp:
    """ASPUP (RFC 4666 §3.5.1): ASP Identifier and INFO String, both optional."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPSM
    MESSAGE_TYPE: ClassVar[int] = AspsmType.ASPUP
    asp_identifier: int | None = None
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspUpAck:
    """ASPUP ACK (RFC 4666 §3.5.2): ASP Identifier and INFO String, both optional."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPSM
    MESSAGE_TYPE: ClassVar[int] = AspsmType.ASPUP_ACK
    asp_identifier: int | None = None
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspDown:
    """ASPDN (RFC 4666 §3.5.3): INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPSM
    MESSAGE_TYPE: ClassVar[int] = AspsmType.ASPDN
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspDownAck:
    """ASPDN ACK (RFC 4666 §3.5.4): INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPSM
    MESSAGE_TYPE: ClassVar[int] = AspsmType.ASPDN_ACK
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class Heartbeat:
    """BEAT (RFC 4666 §3.5.5): Heartbeat Data (optional, opaque to the receiver)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPSM
    MESSAGE_TYPE: ClassVar[int] = AspsmType.BEAT
    data: bytes | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class HeartbeatAck:
    """BEAT ACK (RFC 4666 §3.5.6): echoes the Heartbeat Data of the BEAT it answers."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPSM
    MESSAGE_TYPE: ClassVar[int] = AspsmType.BEAT_ACK
    data: bytes | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspActive:
    """ASPAC (RFC 4666 §3.7.1): Traffic Mode Type, Routing Context, INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPTM
    MESSAGE_TYPE: ClassVar[int] = AsptmType.ASPAC
    traffic_mode_type: TrafficModeType | int | None = None
    routing_context: list[int] = field(default_factory=list)
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspActiveAck:
    """ASPAC ACK (RFC 4666 §3.7.2): Traffic Mode Type, Routing Context, INFO String
    (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPTM
    MESSAGE_TYPE: ClassVar[int] = AsptmType.ASPAC_ACK
    traffic_mode_type: TrafficModeType | int | None = None
    routing_context: list[int] = field(default_factory=list)
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspInactive:
    """ASPIA (RFC 4666 §3.7.3): Routing Context and INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPTM
    MESSAGE_TYPE: ClassVar[int] = AsptmType.ASPIA
    routing_context: list[int] = field(default_factory=list)
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class AspInactiveAck:
    """ASPIA ACK (RFC 4666 §3.7.4): Routing Context and INFO String (optional)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.ASPTM
    MESSAGE_TYPE: ClassVar[int] = AsptmType.ASPIA_ACK
    routing_context: list[int] = field(default_factory=list)
    info_string: str | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class RegistrationRequest:
    """REG REQ (RFC 4666 §3.6.1): one or more Routing Key parameters."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.RKM
    MESSAGE_TYPE: ClassVar[int] = RkmType.REG_REQ
    routing_keys: list[RoutingKey] = field(default_factory=list)
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class RegistrationResponse:
    """REG RSP (RFC 4666 §3.6.2): one or more Registration Result parameters."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.RKM
    MESSAGE_TYPE: ClassVar[int] = RkmType.REG_RSP
    results: list[RegistrationResult] = field(default_factory=list)
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class DeregistrationRequest:
    """DEREG REQ (RFC 4666 §3.6.3): Routing Context (mandatory, one or more values)."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.RKM
    MESSAGE_TYPE: ClassVar[int] = RkmType.DEREG_REQ
    routing_context: list[int] = field(default_factory=list)
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(slots=True, kw_only=True)
class DeregistrationResponse:
    """DEREG RSP (RFC 4666 §3.6.4): one or more Deregistration Result parameters."""

    MESSAGE_CLASS: ClassVar[int] = MessageClass.RKM
    MESSAGE_TYPE: ClassVar[int] = RkmType.DEREG_RSP
    results: list[DeregistrationResult] = field(default_factory=list)
    unknown: tuple[tuple[int, bytes], ...] = ()


Message = (
    Error | Notify | Data
    | DestinationUnavailable | DestinationAvailable | DestinationStateAudit
    | SignallingCongestion | DestinationUserPartUnavailable | DestinationRestricted
    | AspUp | AspDown | Heartbeat | AspUpAck | AspDownAck | HeartbeatAck
    | AspActive | AspInactive | AspActiveAck | AspInactiveAck
    | RegistrationRequest | RegistrationResponse | DeregistrationRequest | DeregistrationResponse
)

# (message class, message type) -> message dataclass, for every message of RFC 4666 §3.1.2.
MESSAGE_TYPES: dict[tuple[int, int], type] = {
    (c.MESSAGE_CLASS, c.MESSAGE_TYPE): c
    for c in (
        Error, Notify, Data,
        DestinationUnavailable, DestinationAvailable, DestinationStateAudit,
        SignallingCongestion, DestinationUserPartUnavailable, DestinationRestricted,
        AspUp, AspDown, Heartbeat, AspUpAck, AspDownAck, HeartbeatAck,
        AspActive, AspInactive, AspActiveAck, AspInactiveAck,
        RegistrationRequest, RegistrationResponse, DeregistrationRequest, DeregistrationResponse,
    )
}


# --------------------------------------------------------------------------- wire primitives

_HEADER = struct.Struct(">BBBBI")  # §3.1: version, reserved, class, type, length
_PARAM_HEADER = struct.Struct(">HH")  # §3.2: tag, length
_U32 = struct.Struct(">I")
_U16_PAIR = struct.Struct(">HH")
_PARAM_U32 = struct.Struct(">HHI")
_PROTOCOL_DATA_HEAD = struct.Struct(">IIBBBB")  # §3.3.1: OPC, DPC, SI, NI, MP, SLS
# The DATA fast path: header, Routing Context (one value), Protocol Data head = 32 bytes.
_DATA_FAST = struct.Struct(">BBBBIHHIHHIIBBBB")
_PADS = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")

_T = ParameterTag
_PARAM_NAMES: dict[int, str] = {
    _T.INFO_STRING: "INFO String",
    _T.ROUTING_CONTEXT: "Routing Context",
    _T.DIAGNOSTIC_INFORMATION: "Diagnostic Information",
    _T.HEARTBEAT_DATA: "Heartbeat Data",
    _T.TRAFFIC_MODE_TYPE: "Traffic Mode Type",
    _T.ERROR_CODE: "Error Code",
    _T.STATUS: "Status",
    _T.ASP_IDENTIFIER: "ASP Identifier",
    _T.AFFECTED_POINT_CODE: "Affected Point Code",
    _T.CORRELATION_ID: "Correlation ID",
    _T.NETWORK_APPEARANCE: "Network Appearance",
    _T.USER_CAUSE: "User/Cause",
    _T.CONGESTION_INDICATIONS: "Congestion Indications",
    _T.CONCERNED_DESTINATION: "Concerned Destination",
    _T.ROUTING_KEY: "Routing Key",
    _T.REGISTRATION_RESULT: "Registration Result",
    _T.DEREGISTRATION_RESULT: "Deregistration Result",
    _T.LOCAL_ROUTING_KEY_IDENTIFIER: "Local-RK-Identifier",
    _T.DESTINATION_POINT_CODE: "Destination Point Code",
    _T.SERVICE_INDICATORS: "Service Indicators",
    _T.ORIGINATING_POINT_CODE_LIST: "Originating Point Code List",
    _T.PROTOCOL_DATA: "Protocol Data",
    _T.REGISTRATION_STATUS: "Registration Status",
    _T.DEREGISTRATION_STATUS: "Deregistration Status",
}


def _walk(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """Split ``buf[start:end]`` into parameters (RFC 4666 §3.2).

    Returns ``(tag, parameter offset, value start, value end)`` for each. Every step advances
    by at least 4 bytes, so a lying length can neither loop nor read past ``end``.
    """
    out = []
    pos = start
    unpack = _PARAM_HEADER.unpack_from
    while pos < end:
        if end - pos < 4:
            raise CodecError(_M3UA, "parameter header", pos,
                             f"{end - pos} byte(s) left, a parameter header needs 4")
        tag, length = unpack(buf, pos)
        if length < 4:
            raise CodecError(_M3UA, "parameter length", pos + 2,
                             f"parameter {tag:#06x} length {length} is less than 4")
        vend = pos + length
        if vend > end:
            raise CodecError(_M3UA, "parameter length", pos + 2,
                             f"parameter {tag:#06x} length {length} runs {vend - end} byte(s) "
                             f"past the end at offset {end}")
        out.append((tag, pos, pos + 4, vend))
        pos = vend + (-length & 3)  # skip the padding; an unpadded last parameter is accepted
    return out


def _name(tag: int) -> str:
    return _PARAM_NAMES.get(tag, f"parameter {tag:#06x}")


# --- value decoders: (buf, value start, value end, field name) -> value


def _d_u32(buf: bytes, s: int, e: int, name: str) -> int:
    if e - s != 4:
        raise CodecError(_M3UA, name, s, f"value is {e - s} bytes, expected 4")
    return _U32.unpack_from(buf, s)[0]


def _d_u32_list(buf: bytes, s: int, e: int, name: str) -> list[int]:
    n = e - s
    if n == 0 or n & 3:
        raise CodecError(_M3UA, name, s, f"value is {n} bytes, expected a non-zero multiple of 4")
    return list(struct.unpack_from(f">{n >> 2}I", buf, s))


def _d_bytes(buf: bytes, s: int, e: int, name: str) -> bytes:
    return buf[s:e]


def _d_info(buf: bytes, s: int, e: int, name: str) -> str:
    # UTF-8 (§3.4.1); undecodable bytes survive a round trip as surrogate escapes.
    return buf[s:e].decode("utf-8", "surrogateescape")


def _d_point_codes(buf: bytes, s: int, e: int, name: str) -> list[PointCode]:
    return [PointCode(v & 0xFFFFFF, v >> 24) for v in _d_u32_list(buf, s, e, name)]


def _d_one_point_code(buf: bytes, s: int, e: int, name: str) -> PointCode:
    v = _d_u32(buf, s, e, name)
    return PointCode(v & 0xFFFFFF, v >> 24)


def _d_enum(cls: type[enum.IntEnum]) -> Callable[[bytes, int, int, str], Any]:
    def dec(buf: bytes, s: int, e: int, name: str) -> Any:
        return _enum(cls, _d_u32(buf, s, e, name))
    return dec


def _d_status(buf: bytes, s: int, e: int, name: str) -> tuple[Any, Any]:
    if e - s != 4:
        raise CodecError(_M3UA, name, s, f"value is {e - s} bytes, expected 4")
    st, info = _U16_PAIR.unpack_from(buf, s)
    if st == StatusType.AS_STATE_CHANGE:
        return StatusType.AS_STATE_CHANGE, _enum(AsState, info)
    if st == StatusType.OTHER:
        return StatusType.OTHER, _enum(OtherStatus, info)
    return st, info


def _d_user_cause(buf: bytes, s: int, e: int, name: str) -> tuple[Any, Any]:
    if e - s != 4:
        raise CodecError(_M3UA, name, s, f"value is {e - s} bytes, expected 4")
    cause, user = _U16_PAIR.unpack_from(buf, s)  # §3.4.5: cause first, then user
    return _enum(UnavailabilityCause, cause), _enum(UserIdentity, user)


def _d_concerned(buf: bytes, s: int, e: int, name: str) -> int:
    return _d_u32(buf, s, e, name) & 0xFFFFFF  # §3.4.4: reserved (8 bits), point code (24)


def _d_congestion(buf: bytes, s: int, e: int, name: str) -> Any:
    return _enum(CongestionLevel, _d_u32(buf, s, e, name) & 0xFF)  # reserved (24), level (8)


def _d_protocol_data(buf: bytes, s: int, e: int, name: str) -> ProtocolData:
    if e - s < 12:
        raise CodecError(_M3UA, name, s, f"value is {e - s} bytes, the routing label needs 12")
    opc, dpc, si, ni, mp, sls = _PROTOCOL_DATA_HEAD.unpack_from(buf, s)
    return ProtocolData(opc, dpc, si, ni, mp, sls, buf[s + 12:e])


def _d_service_indicators(buf: bytes, s: int, e: int, name: str) -> list[int]:
    if e == s:
        raise CodecError(_M3UA, name, s, "no service indicator")
    return list(buf[s:e])


def _single(seen: set[int], tag: int, pos: int) -> None:
    if tag in seen:
        raise CodecError(_M3UA, _name(tag), pos, "parameter repeated")
    seen.add(tag)


def _missing(tag: int, end: int, where: str) -> CodecError:
    return CodecError(_M3UA, _name(tag), end, f"mandatory parameter missing from {where}")


def _d_routing_key(buf: bytes, s: int, e: int, name: str) -> RoutingKey:
    """Routing Key (RFC 4666 §3.6.1); Service Indicators and OPC List belong to the
    Destination Point Code before them."""
    seen: set[int] = set()
    lrk = rc = tmt = na = None
    dests: list[RoutingKeyDestination] = []
    unknown = []
    for tag, pos, vs, ve in _walk(buf, s, e):
        if tag == _T.LOCAL_ROUTING_KEY_IDENTIFIER:
            _single(seen, tag, pos)
            lrk = _d_u32(buf, vs, ve, _name(tag))
        elif tag == _T.ROUTING_CONTEXT:
            _single(seen, tag, pos)
            rc = _d_u32(buf, vs, ve, _name(tag))
        elif tag == _T.TRAFFIC_MODE_TYPE:
            _single(seen, tag, pos)
            tmt = _enum(TrafficModeType, _d_u32(buf, vs, ve, _name(tag)))
        elif tag == _T.NETWORK_APPEARANCE:
            _single(seen, tag, pos)
            na = _d_u32(buf, vs, ve, _name(tag))
        elif tag == _T.DESTINATION_POINT_CODE:
            dests.append(RoutingKeyDestination(_d_one_point_code(buf, vs, ve, _name(tag))))
        elif tag == _T.SERVICE_INDICATORS or tag == _T.ORIGINATING_POINT_CODE_LIST:
            if not dests:
                raise CodecError(_M3UA, _name(tag), pos, "before any Destination Point Code")
            dest = dests[-1]
            if tag == _T.SERVICE_INDICATORS:
                if dest.service_indicators:
                    raise CodecError(_M3UA, _name(tag), pos, "parameter repeated")
                dest.service_indicators = _d_service_indicators(buf, vs, ve, _name(tag))
            else:
                if dest.opc_list:
                    raise CodecError(_M3UA, _name(tag), pos, "parameter repeated")
                dest.opc_list = _d_point_codes(buf, vs, ve, _name(tag))
        else:
            unknown.append((tag, buf[vs:ve]))
    if lrk is None:
        raise _missing(_T.LOCAL_ROUTING_KEY_IDENTIFIER, e, name)
    if not dests:
        raise _missing(_T.DESTINATION_POINT_CODE, e, name)
    return RoutingKey(local_rk_identifier=lrk, routing_context=rc, traffic_mode_type=tmt,
                      destinations=dests, network_appearance=na, unknown=tuple(unknown))


def _d_nested(buf: bytes, s: int, e: int, name: str,
              specs: dict[int, tuple[str, Callable[..., Any]]]) -> tuple[dict[str, Any], tuple]:
    seen: set[int] = set()
    values: dict[str, Any] = {}
    unknown = []
    for tag, pos, vs, ve in _walk(buf, s, e):
        spec = specs.get(tag)
        if spec is None:
            unknown.append((tag, buf[vs:ve]))
            continue
        _single(seen, tag, pos)
        values[spec[0]] = spec[1](buf, vs, ve, _name(tag))
    for tag in specs:
        if tag not in seen:
            raise _missing(tag, e, name)
    return values, tuple(unknown)


_REG_RESULT_SPECS = {
    _T.LOCAL_ROUTING_KEY_IDENTIFIER: ("local_rk_identifier", _d_u32),
    _T.REGISTRATION_STATUS: ("registration_status", _d_enum(RegistrationStatus)),
    _T.ROUTING_CONTEXT: ("routing_context", _d_u32),
}
_DEREG_RESULT_SPECS = {
    _T.ROUTING_CONTEXT: ("routing_context", _d_u32),
    _T.DEREGISTRATION_STATUS: ("deregistration_status", _d_enum(DeregistrationStatus)),
}


def _d_registration_result(buf: bytes, s: int, e: int, name: str) -> RegistrationResult:
    values, unknown = _d_nested(buf, s, e, name, _REG_RESULT_SPECS)
    return RegistrationResult(**values, unknown=unknown)


def _d_deregistration_result(buf: bytes, s: int, e: int, name: str) -> DeregistrationResult:
    values, unknown = _d_nested(buf, s, e, name, _DEREG_RESULT_SPECS)
    return DeregistrationResult(**values, unknown=unknown)


# --- value encoders: value -> parameter value bytes (without the TLV header)


def _e_u32(v: int) -> bytes:
    return _U32.pack(v)


def _e_u32_list(vs: list[int]) -> bytes:
    return struct.pack(f">{len(vs)}I", *vs)


def _e_bytes(v: bytes) -> bytes:
    return bytes(memoryview(v))  # bytes-like only: bytes(5) would quietly give 5 zero bytes


def _e_info(v: str) -> bytes:
    raw = v.encode("utf-8", "surrogateescape")
    if len(raw) > INFO_STRING_MAX:
        raise CodecError(_M3UA, "INFO String", 0,
                         f"{len(raw)} octets, at most {INFO_STRING_MAX} allowed (§3.4.1)")
    return raw


def _pc_word(pc: PointCode, name: str) -> int:
    if not 0 <= pc.point_code <= 0xFFFFFF or not 0 <= pc.mask <= 0xFF:
        raise CodecError(_M3UA, name, 0,
                         f"point code {pc.point_code} / mask {pc.mask} exceed 24 / 8 bits")
    return pc.mask << 24 | pc.point_code


def _e_point_codes(pcs: list[PointCode], name: str = "Affected Point Code") -> bytes:
    return _e_u32_list([_pc_word(pc, name) for pc in pcs])


def _e_status(v: tuple[int, int]) -> bytes:
    return _U16_PAIR.pack(*v)


def _e_concerned(pc: int) -> bytes:
    if not 0 <= pc <= 0xFFFFFF:
        raise CodecError(_M3UA, "Concerned Destination", 0, f"point code {pc} exceeds 24 bits")
    return _U32.pack(pc)


def _e_congestion(level: int) -> bytes:
    if not 0 <= level <= 0xFF:
        raise CodecError(_M3UA, "Congestion Indications", 0, f"level {level} exceeds 8 bits")
    return _U32.pack(level)


def _e_protocol_data(pd: ProtocolData) -> bytes:
    return _PROTOCOL_DATA_HEAD.pack(pd.opc, pd.dpc, pd.si, pd.ni, pd.mp, pd.sls) + pd.data


def _tlv(parts: list, tag: int, value: bytes) -> None:
    """Append one parameter (header, value, padding) to ``parts`` (RFC 4666 §3.2)."""
    length = 4 + len(value)
    if length > 0xFFFF:
        raise CodecError(_M3UA, _name(tag), 0,
                         f"value of {len(value)} bytes does not fit a 16-bit parameter length")
    parts.append(_PARAM_HEADER.pack(tag, length))
    parts.append(value)
    parts.append(_PADS[-length & 3])


def _tlv_bytes(tag: int, value: bytes) -> bytes:
    parts: list = []
    _tlv(parts, tag, value)
    return b"".join(parts)


def _e_routing_key(rk: RoutingKey) -> bytes:
    """Routing Key in the order of the RFC 4666 §3.6.1 figure: Local-RK-Identifier, Routing
    Context, Traffic Mode Type, then each DPC with its SIs and OPC list, Network Appearance
    after the first DPC."""
    if not rk.destinations:
        raise CodecError(_M3UA, "Destination Point Code", 0, "a Routing Key needs at least one")
    parts: list = []
    _tlv(parts, _T.LOCAL_ROUTING_KEY_IDENTIFIER, _U32.pack(rk.local_rk_identifier))
    if rk.routing_context is not None:
        _tlv(parts, _T.ROUTING_CONTEXT, _U32.pack(rk.routing_context))
    if rk.traffic_mode_type is not None:
        _tlv(parts, _T.TRAFFIC_MODE_TYPE, _U32.pack(rk.traffic_mode_type))
    for i, dest in enumerate(rk.destinations):
        _tlv(parts, _T.DESTINATION_POINT_CODE,
             _U32.pack(_pc_word(dest.dpc, "Destination Point Code")))
        if i == 0 and rk.network_appearance is not None:
            _tlv(parts, _T.NETWORK_APPEARANCE, _U32.pack(rk.network_appearance))
        if dest.service_indicators:
            _tlv(parts, _T.SERVICE_INDICATORS, bytes(dest.service_indicators))
        if dest.opc_list:
            _tlv(parts, _T.ORIGINATING_POINT_CODE_LIST,
                 _e_point_codes(dest.opc_list, "Originating Point Code List"))
    for tag, value in rk.unknown:
        _tlv(parts, tag, value)
    return b"".join(parts)


def _e_registration_result(r: RegistrationResult) -> bytes:
    parts: list = []
    _tlv(parts, _T.LOCAL_ROUTING_KEY_IDENTIFIER, _U32.pack(r.local_rk_identifier))
    _tlv(parts, _T.REGISTRATION_STATUS, _U32.pack(r.registration_status))
    _tlv(parts, _T.ROUTING_CONTEXT, _U32.pack(r.routing_context))
    for tag, value in r.unknown:
        _tlv(parts, tag, value)
    return b"".join(parts)


def _e_deregistration_result(r: DeregistrationResult) -> bytes:
    parts: list = []
    _tlv(parts, _T.ROUTING_CONTEXT, _U32.pack(r.routing_context))
    _tlv(parts, _T.DEREGISTRATION_STATUS, _U32.pack(r.deregistration_status))
    for tag, value in r.unknown:
        _tlv(parts, tag, value)
    return b"".join(parts)


# --------------------------------------------------------------------------- message specs
#
# One spec per parameter of a message, in the order the encoder writes them:
# (tag, attribute name or names, decoder, encoder, flags). A decoder for several attributes
# returns a tuple of their values; the matching encoder takes that tuple.

_MANDATORY = 1
_REPEATED = 2  # the parameter may occur several times; the attribute is a list of values

_Spec = tuple[int, "str | tuple[str, ...]", Callable[..., Any], Callable[[Any], bytes], int]

_NA: _Spec = (_T.NETWORK_APPEARANCE, "network_appearance", _d_u32, _e_u32, 0)
_RC: _Spec = (_T.ROUTING_CONTEXT, "routing_context", _d_u32_list, _e_u32_list, 0)
_INFO: _Spec = (_T.INFO_STRING, "info_string", _d_info, _e_info, 0)
_APC: _Spec = (_T.AFFECTED_POINT_CODE, "affected_point_codes", _d_point_codes, _e_point_codes,
               _MANDATORY)
_ASPID: _Spec = (_T.ASP_IDENTIFIER, "asp_identifier", _d_u32, _e_u32, 0)
_TMT: _Spec = (_T.TRAFFIC_MODE_TYPE, "traffic_mode_type", _d_enum(TrafficModeType), _e_u32, 0)
_BEAT: _Spec = (_T.HEARTBEAT_DATA, "data", _d_bytes, _e_bytes, 0)
_DESTINATION_STATE: tuple[_Spec, ...] = (_NA, _RC, _APC, _INFO)

_SPECS: dict[type, tuple[_Spec, ...]] = {
    # §3.8.1
    Error: (
        (_T.ERROR_CODE, "error_code", _d_enum(ErrorCode), _e_u32, _MANDATORY),
        _RC,
        _NA,
        (_T.AFFECTED_POINT_CODE, "affected_point_codes", _d_point_codes, _e_point_codes, 0),
        (_T.DIAGNOSTIC_INFORMATION, "diagnostic_information", _d_bytes, _e_bytes, 0),
    ),
    # §3.8.2. Routing Context is written before Status, as in the shared conformance vector;
    # receivers find parameters by tag.
    Notify: (
        _RC,
        (_T.STATUS, ("status_type", "status_info"), _d_status, _e_status, _MANDATORY),
        _ASPID,
        _INFO,
    ),
    # §3.4
    DestinationUnavailable: _DESTINATION_STATE,
    DestinationAvailable: _DESTINATION_STATE,
    DestinationStateAudit: _DESTINATION_STATE,
    DestinationRestricted: _DESTINATION_STATE,
    SignallingCongestion: (
        _NA, _RC, _APC,
        (_T.CONCERNED_DESTINATION, "concerned_destination", _d_concerned, _e_concerned, 0),
        (_T.CONGESTION_INDICATIONS, "congestion_level", _d_congestion, _e_congestion, 0),
        _INFO,
    ),
    DestinationUserPartUnavailable: (
        _NA, _RC,
        (_T.AFFECTED_POINT_CODE, "affected_point_code", _d_one_point_code,
         lambda pc: _U32.pack(_pc_word(pc, "Affected Point Code")), _MANDATORY),
        (_T.USER_CAUSE, ("cause", "user"), _d_user_cause, _e_status, _MANDATORY),
        _INFO,
    ),
    # §3.5
    AspUp: (_ASPID, _INFO),
    AspUpAck: (_ASPID, _INFO),
    AspDown: (_INFO,),
    AspDownAck: (_INFO,),
    Heartbeat: (_BEAT,),
    HeartbeatAck: (_BEAT,),
    # §3.7
    AspActive: (_TMT, _RC, _INFO),
    AspActiveAck: (_TMT, _RC, _INFO),
    AspInactive: (_RC, _INFO),
    AspInactiveAck: (_RC, _INFO),
    # §3.6
    RegistrationRequest: (
        (_T.ROUTING_KEY, "routing_keys", _d_routing_key, _e_routing_key,
         _MANDATORY | _REPEATED),
    ),
    RegistrationResponse: (
        (_T.REGISTRATION_RESULT, "results", _d_registration_result, _e_registration_result,
         _MANDATORY | _REPEATED),
    ),
    DeregistrationRequest: (
        (_T.ROUTING_CONTEXT, "routing_context", _d_u32_list, _e_u32_list, _MANDATORY),
    ),
    DeregistrationResponse: (
        (_T.DEREGISTRATION_RESULT, "results", _d_deregistration_result,
         _e_deregistration_result, _MANDATORY | _REPEATED),
    ),
}

# (class, type) -> (message dataclass, {tag: spec}) for the table-driven decoder.
_DECODE_TABLE: dict[tuple[int, int], tuple[type, dict[int, _Spec]]] = {
    (c.MESSAGE_CLASS, c.MESSAGE_TYPE): (c, {spec[0]: spec for spec in specs})
    for c, specs in _SPECS.items()
}
_KNOWN_CLASSES = frozenset(c for c, _ in MESSAGE_TYPES)


# --------------------------------------------------------------------------- decode


def decode(buf: bytes) -> Message:
    """Decode exactly one whole M3UA message (RFC 4666 §3).

    The header's message length must equal ``len(buf)``. Raises :class:`CodecError` (layer
    M3UA, offset from the start of ``buf``) on anything malformed, and nothing else.
    """
    try:
        if type(buf) is not bytes:
            buf = bytes(buf)
        n = len(buf)
        if n >= 32:
            # Fast path (§3.3.1): DATA = header, Routing Context with one value, Protocol Data.
            (ver, _res, mc, mt, length, rc_tag, rc_len, rc, pd_tag, pd_len,
             opc, dpc, si, ni, mp, sls) = _DATA_FAST.unpack_from(buf)
            if (mc == 1 and mt == 1 and ver == 1 and length == n and rc_tag == 0x0006
                    and rc_len == 8 and pd_tag == 0x0210 and pd_len >= 16):
                end = 16 + pd_len
                if end <= n <= (end + 3) & -4:
                    return Data(routing_context=rc,
                                protocol_data=ProtocolData(opc, dpc, si, ni, mp, sls,
                                                           buf[32:end]))
        return _decode_slow(buf, n)
    except CodecError:
        raise
    except Exception as exc:  # defensive: nothing but CodecError may escape a decoder
        raise CodecError(_M3UA, "message", 0, f"undecodable: {exc!r}") from exc


def _decode_slow(buf: bytes, n: int) -> Message:
    if n < HEADER_LENGTH:
        raise CodecError(_M3UA, "common header", 0,
                         f"{n} byte(s), the common header needs {HEADER_LENGTH}")
    ver, _res, mc, mt, length = _HEADER.unpack_from(buf)
    if ver != VERSION:
        raise CodecError(_M3UA, "version", 0, f"version {ver}, only {VERSION} is supported")
    if length != n:
        raise CodecError(_M3UA, "message length", 4,
                         f"header says {length} bytes, the message has {n}")
    if mc == MessageClass.TRANSFER and mt == TransferType.DATA:
        return _decode_data(buf, n)
    entry = _DECODE_TABLE.get((mc, mt))
    if entry is None:
        if mc not in _KNOWN_CLASSES:
            raise CodecError(_M3UA, "message class", 2, f"unsupported message class {mc}")
        raise CodecError(_M3UA, "message type", 3,
                         f"unsupported message type {mt} in class {MessageClass(mc).name}")
    cls, specs = entry
    values: dict[str, Any] = {}
    seen: set[int] = set()
    unknown = []
    for tag, pos, vs, ve in _walk(buf, HEADER_LENGTH, n):
        spec = specs.get(tag)
        if spec is None:
            unknown.append((tag, buf[vs:ve]))
            continue
        attr, dec, flags = spec[1], spec[2], spec[4]
        value = dec(buf, vs, ve, _name(tag))
        if flags & _REPEATED:
            values.setdefault(attr, []).append(value)
            seen.add(tag)
            continue
        _single(seen, tag, pos)
        if isinstance(attr, tuple):
            values.update(zip(attr, value))
        else:
            values[attr] = value
    for tag, spec in specs.items():
        if spec[4] & _MANDATORY and tag not in seen:
            raise _missing(tag, n, cls.__name__)
    if unknown:
        values["unknown"] = tuple(unknown)
    return cls(**values)


def _decode_data(buf: bytes, n: int) -> Data:
    """DATA in general (RFC 4666 §3.3.1): any parameter order, optional NA and Correlation ID."""
    na = rc = pd = cid = None
    seen: set[int] = set()
    unknown = []
    for tag, pos, vs, ve in _walk(buf, HEADER_LENGTH, n):
        if tag == 0x0210:
            _single(seen, tag, pos)
            pd = _d_protocol_data(buf, vs, ve, "Protocol Data")
        elif tag == 0x0006:
            _single(seen, tag, pos)
            if ve - vs != 4:
                raise CodecError(_M3UA, "Routing Context", vs,
                                 f"value is {ve - vs} bytes, DATA carries exactly one (4 bytes)")
            rc = _U32.unpack_from(buf, vs)[0]
        elif tag == 0x0200:
            _single(seen, tag, pos)
            na = _d_u32(buf, vs, ve, "Network Appearance")
        elif tag == 0x0013:
            _single(seen, tag, pos)
            cid = _d_u32(buf, vs, ve, "Correlation ID")
        else:
            unknown.append((tag, buf[vs:ve]))
    if pd is None:
        raise _missing(_T.PROTOCOL_DATA, n, "Data")
    return Data(network_appearance=na, routing_context=rc, protocol_data=pd,
                correlation_id=cid, unknown=tuple(unknown))


# --------------------------------------------------------------------------- encode


def encode(msg: Message) -> bytes:
    """Encode one M3UA message (RFC 4666 §3), padding every parameter to 4 bytes.

    Raises :class:`CodecError` when a value does not fit its field (or a mandatory
    parameter is missing).
    """
    try:
        if type(msg) is Data:
            rc = msg.routing_context
            if (rc is not None and msg.network_appearance is None
                    and msg.correlation_id is None and not msg.unknown):
                pd = msg.protocol_data
                payload = pd.data
                pd_len = 16 + len(payload)
                pad = -pd_len & 3
                return b"".join((
                    _DATA_FAST.pack(1, 0, 1, 1, 16 + pd_len + pad, 0x0006, 8, rc,
                                    0x0210, pd_len, pd.opc, pd.dpc, pd.si, pd.ni, pd.mp, pd.sls),
                    payload, _PADS[pad]))
            return _encode_data(msg)
        specs = _SPECS.get(type(msg))
        if specs is None:
            raise CodecError(_M3UA, "message", 0, f"not an M3UA message: {type(msg).__name__}")
        parts: list = [b""]  # header slot
        for tag, attr, _dec, enc, flags in specs:
            if isinstance(attr, tuple):
                value: Any = tuple(getattr(msg, a) for a in attr)
                present = all(v is not None for v in value)
            else:
                value = getattr(msg, attr)
                present = value is not None and not (isinstance(value, list) and not value)
            if not present:
                if flags & _MANDATORY:
                    raise CodecError(_M3UA, _name(tag), 0,
                                     f"mandatory parameter missing from {type(msg).__name__}")
                continue
            if flags & _REPEATED:
                for item in value:
                    _tlv(parts, tag, enc(item))
            else:
                _tlv(parts, tag, enc(value))
        for tag, value in msg.unknown:
            _tlv(parts, tag, value)
        return _finish(parts, msg.MESSAGE_CLASS, msg.MESSAGE_TYPE)
    except CodecError:
        raise
    except (struct.error, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise CodecError(_M3UA, type(msg).__name__, 0, f"cannot encode: {exc}") from exc


def encode_data(routing_context: int | None, network_appearance: int | None, opc: int, dpc: int,
                si: int, ni: int, mp: int, sls: int, payload: bytes) -> bytes:
    """A DATA message (RFC 4666 §3.3.1) from its fields, without building a :class:`Data`
    and its :class:`ProtocolData`: the same bytes, and the same errors, as
    ``encode(Data(network_appearance=..., routing_context=..., protocol_data=ProtocolData(
    opc, dpc, si, ni, mp, sls, payload)))`` (the tests compare)."""
    if routing_context is not None and network_appearance is None and type(payload) is bytes:
        pd_len = 16 + len(payload)
        pad = -pd_len & 3
        try:
            return b"".join((
                _DATA_FAST.pack(1, 0, 1, 1, 16 + pd_len + pad, 0x0006, 8, routing_context,
                                0x0210, pd_len, opc, dpc, si, ni, mp, sls),
                payload, _PADS[pad]))
        except (struct.error, TypeError, ValueError, OverflowError):
            pass  # the general encoder names the fault
    return encode(Data(network_appearance=network_appearance, routing_context=routing_context,
                       protocol_data=ProtocolData(opc, dpc, si, ni, mp, sls, payload)))


def _finish(parts: list, mc: int, mt: int) -> bytes:
    length = HEADER_LENGTH + sum(len(p) for p in parts)
    parts[0] = _HEADER.pack(VERSION, 0, mc, mt, length)
    return b"".join(parts)


def _encode_data(msg: Data) -> bytes:
    """DATA with its parameters in the RFC 4666 §3.3.1 order: NA, RC, Protocol Data, CID."""
    parts: list = [b""]
    if msg.network_appearance is not None:
        _tlv(parts, 0x0200, _U32.pack(msg.network_appearance))
    if msg.routing_context is not None:
        _tlv(parts, 0x0006, _U32.pack(msg.routing_context))
    _tlv(parts, 0x0210, _e_protocol_data(msg.protocol_data))
    if msg.correlation_id is not None:
        _tlv(parts, 0x0013, _U32.pack(msg.correlation_id))
    for tag, value in msg.unknown:
        _tlv(parts, tag, value)
    return _finish(parts, MessageClass.TRANSFER, TransferType.DATA)


# --------------------------------------------------------------------------- TCP framing


class MessageFramer:
    """Cut a byte stream (M3UA over TCP) into whole messages by the common header's length
    (RFC 4666 §3.1; the transport alternatives are discussed in §1.3.1).

    :meth:`feed` returns every complete message and keeps the rest. A header that cannot be
    right (version other than 1, length below 8 or above ``max_length``) raises
    :class:`CodecError` whose offset is the position in the stream since the framer was
    created; the stream cannot be resynchronised, so the framer stays failed (every later
    :meth:`feed` raises the same error) and the link should be reset.

    Messages completed before the fault are never lost: when a chunk holds whole messages
    and then a bad header, :meth:`feed` returns those messages and the error is raised by
    the next call (:attr:`error` shows it at once).
    """

    __slots__ = ("max_length", "_buf", "_offset", "_error")

    def __init__(self, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        if max_length < HEADER_LENGTH:
            raise ValueError(f"max_length {max_length} is below the {HEADER_LENGTH}-byte header")
        self.max_length = max_length
        self._buf = bytearray()
        self._offset = 0  # stream position of self._buf[0]
        self._error: CodecError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back: the start of a message not yet complete."""
        return len(self._buf)

    @property
    def error(self) -> CodecError | None:
        """The fault that stopped the stream, if any."""
        return self._error

    @property
    def position(self) -> int:
        """Stream position of the next byte to be framed (bytes consumed so far)."""
        return self._offset

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise self._error
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        out: list[bytes] = []
        start = 0
        max_length = self.max_length
        while n - start >= 1:
            if buf[start] != VERSION:
                self._error = CodecError(_M3UA, "version", self._offset + start,
                                         f"version {buf[start]}, only {VERSION} is supported")
                break
            if n - start < HEADER_LENGTH:
                break
            length = _U32.unpack_from(buf, start + 4)[0]
            if length < HEADER_LENGTH or length > max_length:
                self._error = CodecError(
                    _M3UA, "message length", self._offset + start + 4,
                    f"length {length} outside {HEADER_LENGTH}..{max_length}")
                break
            end = start + length
            if end > n:
                break
            if start == 0 and end == n and type(buf) is bytes:
                out.append(buf)  # the common case: one read, one message, no copy
            else:
                out.append(bytes(buf[start:end]))
            start = end
        if buf is self._buf:
            del self._buf[:start]
        elif start < n:
            self._buf = bytearray(buf[start:])
        self._offset += start
        if self._error is not None and not out:
            raise self._error
        return out
