"""Sans-IO MAP codec (3GPP TS 29.002) for the HLR lookup path.

Operations: sendRoutingInfoForSM (v1-v3, :mod:`.sm`), anyTimeInterrogation (v3, :mod:`.ati`),
sendRoutingInfo (v1-v3, :mod:`.sri`), sendIMSI (v2, :mod:`.om`); their errors
(:mod:`.errors`), application context names (:mod:`.contexts`), codes (:mod:`.codes`).

The TCAP layer hands over, and takes back, a component's parameter as its whole TLV bytes.
Every message type has ``encode(version=3) -> bytes`` and ``decode(data, version=3)``; the
registries below dispatch on the operation code. Decoding malformed input raises
:class:`~protocols.errors.CodecError` (layer MAP, field, byte offset) and nothing else.
"""

from __future__ import annotations

from .ati import (
    AnyTimeInterrogationArg,
    AnyTimeInterrogationRes,
    CellGlobalIdOrServiceAreaIdOrLai,
    DomainType,
    LocationInformation,
    MnpInfoRes,
    RequestedInfo,
    SubscriberInfo,
    SubscriberState,
)
from .codes import (
    AdditionalNetworkResource,
    ErrorCode,
    NetworkResource,
    NotReachableReason,
    NumberPortabilityStatus,
    Opcode,
)
from .common import err
from .contexts import (
    ANY_TIME_INFO_ENQUIRY_CONTEXT_V3,
    CONTEXTS,
    IMSI_RETRIEVAL_CONTEXT_V2,
    LOCATION_INFO_RETRIEVAL_CONTEXT_V1,
    LOCATION_INFO_RETRIEVAL_CONTEXT_V2,
    LOCATION_INFO_RETRIEVAL_CONTEXT_V3,
    MAP_AC,
    SHORT_MSG_GATEWAY_CONTEXT_V1,
    SHORT_MSG_GATEWAY_CONTEXT_V2,
    SHORT_MSG_GATEWAY_CONTEXT_V3,
    context_for,
    context_versions,
    lookup_context,
)
from .errors import (
    ERROR_PARAMS,
    AbsentSubscriberDiagnosticSM,
    AbsentSubscriberParam,
    AbsentSubscriberReason,
    AbsentSubscriberSmParam,
    AtiNotAllowedParam,
    BearerServNotProvParam,
    BusySubscriberParam,
    CallBarredParam,
    CallBarringCause,
    CugRejectCause,
    CugRejectParam,
    DataMissingParam,
    ErrorParam,
    ExtensionOnlyParam,
    FacilityNotSupParam,
    FailureCauseParam,
    ForwardingViolationParam,
    IllegalEquipmentParam,
    IllegalSubscriberParam,
    MapError,
    MessageWaitListFullParam,
    NoSubscriberReplyParam,
    NumberChangedParam,
    OrNotAllowedParam,
    ResourceLimitationParam,
    SystemFailureParam,
    TeleservNotProvParam,
    UnexpectedDataParam,
    UnidentifiedSubParam,
    UnknownErrorParam,
    UnknownSubscriberDiagnostic,
    UnknownSubscriberParam,
    decode_error,
    encode_error_param,
)
from .om import SendImsiArg, SendImsiRes
from .sm import (
    AdditionalNumber,
    IpSmGwGuidance,
    LocationInfoWithLmsi,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SmDeliveryNotIntended,
    SmRpMti,
)
from .sri import (
    ForwardingData,
    ForwardingReason,
    InterrogationType,
    SendRoutingInfoArg,
    SendRoutingInfoRes,
    UnavailabilityCause,
)

Argument = RoutingInfoForSmArg | AnyTimeInterrogationArg | SendRoutingInfoArg | SendImsiArg
Result = RoutingInfoForSmRes | AnyTimeInterrogationRes | SendRoutingInfoRes | SendImsiRes

#: operation code -> argument type
ARGUMENTS: dict[int, type] = {
    Opcode.SEND_ROUTING_INFO_FOR_SM: RoutingInfoForSmArg,
    Opcode.ANY_TIME_INTERROGATION: AnyTimeInterrogationArg,
    Opcode.SEND_ROUTING_INFO: SendRoutingInfoArg,
    Opcode.SEND_IMSI: SendImsiArg,
}

#: operation code -> result type
RESULTS: dict[int, type] = {
    Opcode.SEND_ROUTING_INFO_FOR_SM: RoutingInfoForSmRes,
    Opcode.ANY_TIME_INTERROGATION: AnyTimeInterrogationRes,
    Opcode.SEND_ROUTING_INFO: SendRoutingInfoRes,
    Opcode.SEND_IMSI: SendImsiRes,
}


def _lookup(table: dict[int, type], opcode: int, what: str) -> type:
    cls = table.get(opcode)
    if cls is None:
        raise err("operation", 0, f"no {what} codec for operation code {opcode}")
    return cls


# (the four functions below look their table up inline, _lookup only naming a miss: each
# runs once per dialogue)


def decode_argument(opcode: int, data: bytes, version: int = 3) -> Argument:
    """Decode an invoke's parameter TLV for ``opcode``."""
    cls = ARGUMENTS.get(opcode) or _lookup(ARGUMENTS, opcode, "argument")
    return cls.decode(data, version)


def encode_argument(opcode: int, arg: Argument, version: int = 3) -> bytes:
    """Encode an invoke's parameter TLV; ``arg`` must be the operation's argument type."""
    cls = ARGUMENTS.get(opcode) or _lookup(ARGUMENTS, opcode, "argument")
    if not isinstance(arg, cls):
        raise err("operation", 0, f"{type(arg).__name__} is not the argument of operation "
                  f"{opcode} ({cls.__name__})")
    return arg.encode(version)


def decode_result(opcode: int, data: bytes, version: int = 3) -> Result:
    """Decode a returnResult's parameter TLV for ``opcode``."""
    cls = RESULTS.get(opcode) or _lookup(RESULTS, opcode, "result")
    return cls.decode(data, version)


def encode_result(opcode: int, res: Result, version: int = 3) -> bytes:
    """Encode a returnResult's parameter TLV; ``res`` must be the operation's result type."""
    cls = RESULTS.get(opcode) or _lookup(RESULTS, opcode, "result")
    if not isinstance(res, cls):
        raise err("operation", 0, f"{type(res).__name__} is not the result of operation "
                  f"{opcode} ({cls.__name__})")
    return res.encode(version)


__all__ = [
    "ANY_TIME_INFO_ENQUIRY_CONTEXT_V3",
    "ARGUMENTS",
    "CONTEXTS",
    "ERROR_PARAMS",
    "IMSI_RETRIEVAL_CONTEXT_V2",
    "LOCATION_INFO_RETRIEVAL_CONTEXT_V1",
    "LOCATION_INFO_RETRIEVAL_CONTEXT_V2",
    "LOCATION_INFO_RETRIEVAL_CONTEXT_V3",
    "MAP_AC",
    "RESULTS",
    "SHORT_MSG_GATEWAY_CONTEXT_V1",
    "SHORT_MSG_GATEWAY_CONTEXT_V2",
    "SHORT_MSG_GATEWAY_CONTEXT_V3",
    "AbsentSubscriberDiagnosticSM",
    "AbsentSubscriberParam",
    "AbsentSubscriberReason",
    "AbsentSubscriberSmParam",
    "AdditionalNetworkResource",
    "AdditionalNumber",
    "AnyTimeInterrogationArg",
    "AnyTimeInterrogationRes",
    "Argument",
    "AtiNotAllowedParam",
    "BearerServNotProvParam",
    "BusySubscriberParam",
    "CallBarredParam",
    "CallBarringCause",
    "CellGlobalIdOrServiceAreaIdOrLai",
    "CugRejectCause",
    "CugRejectParam",
    "DataMissingParam",
    "DomainType",
    "ErrorCode",
    "ErrorParam",
    "ExtensionOnlyParam",
    "FacilityNotSupParam",
    "FailureCauseParam",
    "ForwardingData",
    "ForwardingReason",
    "ForwardingViolationParam",
    "IllegalEquipmentParam",
    "IllegalSubscriberParam",
    "InterrogationType",
    "IpSmGwGuidance",
    "LocationInfoWithLmsi",
    "LocationInformation",
    "MapError",
    "MessageWaitListFullParam",
    "MnpInfoRes",
    "NetworkResource",
    "NoSubscriberReplyParam",
    "NotReachableReason",
    "NumberChangedParam",
    "NumberPortabilityStatus",
    "Opcode",
    "OrNotAllowedParam",
    "RequestedInfo",
    "ResourceLimitationParam",
    "Result",
    "RoutingInfoForSmArg",
    "RoutingInfoForSmRes",
    "SendImsiArg",
    "SendImsiRes",
    "SendRoutingInfoArg",
    "SendRoutingInfoRes",
    "SmDeliveryNotIntended",
    "SmRpMti",
    "SubscriberInfo",
    "SubscriberState",
    "SystemFailureParam",
    "TeleservNotProvParam",
    "UnavailabilityCause",
    "UnexpectedDataParam",
    "UnidentifiedSubParam",
    "UnknownErrorParam",
    "UnknownSubscriberDiagnostic",
    "UnknownSubscriberParam",
    "context_for",
    "context_versions",
    "decode_argument",
    "decode_error",
    "decode_result",
    "encode_argument",
    "encode_error_param",
    "encode_result",
    "lookup_context",
]
