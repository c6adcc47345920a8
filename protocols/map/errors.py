"""MAP error parameters (TS 29.002 §17.6.6 MAP-Errors, types §17.7.7 MAP-ER-DataTypes).

Covers every error sendRoutingInfoForSM and anyTimeInterrogation may return (systemFailure,
dataMissing, unexpectedDataValue, facilityNotSupported, unknownSubscriber,
teleserviceNotProvisioned, callBarred, absentSubscriberSM, ati-NotAllowed), absentSubscriber
(sendRoutingInfoForSM version 1 and sendRoutingInfo), and the other errors of sendRoutingInfo.

Parameters are optional on the wire: a returnError without one is valid, and
:func:`decode_error` then gives ``param=None``. Where the type changed between versions the
decoder tells the forms apart by their tag, so it needs no version:

* systemFailure: v1/v2 a bare NetworkResource ENUMERATED; v3 CHOICE {networkResource,
  extensibleSystemFailureParam SEQUENCE};
* callBarred: likewise CallBarringCause or ExtensibleCallBarredParam;
* absentSubscriber: v1/v2 ``mwd-Set BOOLEAN``; v3 AbsentSubscriberParam SEQUENCE;
* errors with a SEQUENCE parameter in v3 had none in v1/v2 (their encoders return None there).

The SEQUENCE parameters are all "extensionContainer plus a few optional components", so they
share one table-driven codec (errors are not the hot path).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from ..tbcd import Imsi
from .codes import AdditionalNetworkResource, ErrorCode, NetworkResource
from .common import (
    add_unknown,
    as_bytes,
    boolean,
    enc_bool,
    enc_imsi,
    enc_int,
    enumerated,
    err,
    fail,
    imsi,
    null,
    outer,
    tl,
    tlvs,
)


class AbsentSubscriberDiagnosticSM(enum.IntEnum):
    """AbsentSubscriberDiagnosticSM (TS 29.002 §17.7.7: INTEGER (0..255)); the values are
    TS 23.040 §3.3.2's. Other values decode as plain ints."""

    NO_PAGING_RESPONSE_VIA_THE_MSC = 0
    IMSI_DETACHED = 1
    ROAMING_RESTRICTION = 2
    DEREGISTERED_IN_THE_HLR_FOR_NON_GPRS = 3
    MS_PURGED_FOR_NON_GPRS = 4
    NO_PAGING_RESPONSE_VIA_THE_SGSN = 5
    GPRS_DETACHED = 6
    DEREGISTERED_IN_THE_HLR_FOR_GPRS = 7
    MS_PURGED_FOR_GPRS = 8
    UNIDENTIFIED_SUBSCRIBER_VIA_THE_MSC = 9
    UNIDENTIFIED_SUBSCRIBER_VIA_THE_SGSN = 10
    DEREGISTERED_IN_THE_HSS_HLR_FOR_IMS = 11
    NO_RESPONSE_VIA_THE_IP_SM_GW = 12


class UnknownSubscriberDiagnostic(enum.IntEnum):
    """UnknownSubscriberDiagnostic (TS 29.002 §17.7.7), extensible."""

    IMSI_UNKNOWN = 0
    GPRS_EPS_SUBSCRIPTION_UNKNOWN = 1
    NPDB_MISMATCH = 2


class CallBarringCause(enum.IntEnum):
    """CallBarringCause (TS 29.002 §17.7.7)."""

    BARRING_SERVICE_ACTIVE = 0
    OPERATOR_BARRING = 1


class AbsentSubscriberReason(enum.IntEnum):
    """AbsentSubscriberReason (TS 29.002 §17.7.7), extensible."""

    IMSI_DETACH = 0
    RESTRICTED_AREA = 1
    NO_PAGE_RESPONSE = 2
    PURGED_MS = 3
    MT_ROAMING_RETRY = 4
    BUSY_SUBSCRIBER = 5


class FailureCauseParam(enum.IntEnum):
    """FailureCauseParam (TS 29.002 §17.7.7), extensible."""

    LIMIT_REACHED_ON_NUMBER_OF_CONCURRENT_LOCATION_REQUESTS = 0


class CugRejectCause(enum.IntEnum):
    """CUG-RejectCause (TS 29.002 §17.7.7)."""

    INCOMING_CALLS_BARRED_WITHIN_CUG = 0
    SUBSCRIBER_NOT_MEMBER_OF_CUG = 1
    REQUESTED_BASIC_SERVICE_VIOLATES_CUG_CONSTRAINTS = 5
    CALLED_PARTY_SS_INTERACTION_VIOLATION = 7


# Component kinds of the table-driven SEQUENCE codec.
_EXT, _NULL, _ENUM, _IMSI, _OCTETS = range(5)


class _SequenceParam:
    """Codec for an error parameter SEQUENCE described by ``_SPEC``.

    ``_SPEC``: (tag, attribute, kind, enum class or None), in ASN.1 definition order (which
    is also the encoding order). Subclasses are slotted dataclasses with those attributes
    plus ``unknown``.
    """

    __slots__ = ()
    NAME: ClassVar[str]
    _SPEC: ClassVar[tuple[tuple[int, str, int, type[enum.IntEnum] | None], ...]]
    _MIN_VERSION: ClassVar[int] = 3  # no parameter before this version
    unknown: tuple[bytes, ...]

    @classmethod
    def decode(cls, data: bytes, version: int = 3):
        try:
            data = as_bytes(data)
            pos, end = outer(data, 0x30, cls.NAME)
            return cls._decode_seq(data, pos, end)
        except Exception as exc:
            fail(exc, cls.NAME)

    @classmethod
    def _decode_seq(cls, data: bytes, pos: int, end: int):
        out = cls()
        by_tag = {spec[0]: spec for spec in cls._SPEC}
        unknown = None
        for t, start, vs, ve, nxt in tlvs(data, pos, end):
            spec = by_tag.get(t)
            if spec is None:
                unknown = add_unknown(unknown, bytes(data[start:nxt]))
                continue
            _, name, kind, enum_cls = spec
            if kind == _EXT:
                value = bytes(data[vs:ve])
            elif kind == _NULL:
                value = null(data, vs, ve, name)
            elif kind == _ENUM:
                value = enumerated(enum_cls, data, vs, ve, name)  # type: ignore[arg-type]
            elif kind == _IMSI:
                value = imsi(data, vs, ve, name)
            else:
                value = bytes(data[vs:ve])
            setattr(out, name, value)
        if unknown:
            out.unknown = tuple(unknown)
        return out

    def encode(self, version: int = 3) -> bytes | None:
        """The parameter's TLV, or None when ``version`` defines no parameter for the error."""
        if version < self._MIN_VERSION:
            return None
        try:
            return tl(0x30, self._encode_seq())
        except Exception as exc:
            fail(exc, self.NAME)

    def _encode_seq(self) -> bytes:
        out = []
        for tag, name, kind, _ in self._SPEC:
            value = getattr(self, name)
            if value is None or value is False:
                continue
            if kind == _NULL:
                out.append(bytes((tag, 0)))
            elif kind == _ENUM:
                out.append(enc_int(tag, value))
            elif kind == _IMSI:
                out.append(tl(tag, enc_imsi(value)))
            else:
                out.append(tl(tag, value))
        out.extend(self.unknown)
        return b"".join(out)


_X = (0x30, "extension_container", _EXT, None)


@dataclass(slots=True)
class ExtensionOnlyParam(_SequenceParam):
    """Base of the parameters that are just ``SEQUENCE {extensionContainer OPTIONAL, ...}``."""

    extension_container: bytes | None = None
    unknown: tuple[bytes, ...] = ()

    NAME = "ExtensionOnlyParam"
    _SPEC = (_X,)


class DataMissingParam(ExtensionOnlyParam):
    """DataMissingParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "DataMissingParam"


class TeleservNotProvParam(ExtensionOnlyParam):
    """TeleservNotProvParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "TeleservNotProvParam"


class AtiNotAllowedParam(ExtensionOnlyParam):
    """ATI-NotAllowedParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "ATI-NotAllowedParam"


class BearerServNotProvParam(ExtensionOnlyParam):
    """BearerServNotProvParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "BearerServNotProvParam"


class NumberChangedParam(ExtensionOnlyParam):
    """NumberChangedParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "NumberChangedParam"


class OrNotAllowedParam(ExtensionOnlyParam):
    """OR-NotAllowedParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "OR-NotAllowedParam"


class NoSubscriberReplyParam(ExtensionOnlyParam):
    """NoSubscriberReplyParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "NoSubscriberReplyParam"


class ForwardingViolationParam(ExtensionOnlyParam):
    """ForwardingViolationParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "ForwardingViolationParam"


class UnidentifiedSubParam(ExtensionOnlyParam):
    """UnidentifiedSubParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "UnidentifiedSubParam"


class IllegalSubscriberParam(ExtensionOnlyParam):
    """IllegalSubscriberParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "IllegalSubscriberParam"


class IllegalEquipmentParam(ExtensionOnlyParam):
    """IllegalEquipmentParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "IllegalEquipmentParam"


class MessageWaitListFullParam(ExtensionOnlyParam):
    """MessageWaitListFullParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "MessageWaitListFullParam"


class ResourceLimitationParam(ExtensionOnlyParam):
    """ResourceLimitationParam (TS 29.002 §17.7.7)."""

    __slots__ = ()
    NAME = "ResourceLimitationParam"


@dataclass(slots=True)
class UnexpectedDataParam(_SequenceParam):
    """UnexpectedDataParam (TS 29.002 §17.7.7)."""

    extension_container: bytes | None = None
    unexpected_subscriber: bool = False  # [0] NULL
    unknown: tuple[bytes, ...] = ()

    NAME = "UnexpectedDataParam"
    _SPEC = (_X, (0x80, "unexpected_subscriber", _NULL, None))


@dataclass(slots=True)
class FacilityNotSupParam(_SequenceParam):
    """FacilityNotSupParam (TS 29.002 §17.7.7)."""

    extension_container: bytes | None = None
    shape_of_location_estimate_not_supported: bool = False  # [0] NULL
    needed_lcs_capability_not_supported_in_serving_node: bool = False  # [1] NULL
    unknown: tuple[bytes, ...] = ()

    NAME = "FacilityNotSupParam"
    _SPEC = (_X, (0x80, "shape_of_location_estimate_not_supported", _NULL, None),
             (0x81, "needed_lcs_capability_not_supported_in_serving_node", _NULL, None))


@dataclass(slots=True)
class UnknownSubscriberParam(_SequenceParam):
    """UnknownSubscriberParam (TS 29.002 §17.7.7)."""

    extension_container: bytes | None = None
    unknown_subscriber_diagnostic: UnknownSubscriberDiagnostic | int | None = None
    unknown: tuple[bytes, ...] = ()

    NAME = "UnknownSubscriberParam"
    _SPEC = (_X, (0x0A, "unknown_subscriber_diagnostic", _ENUM, UnknownSubscriberDiagnostic))


@dataclass(slots=True)
class BusySubscriberParam(_SequenceParam):
    """BusySubscriberParam (TS 29.002 §17.7.7)."""

    extension_container: bytes | None = None
    ccbs_possible: bool = False  # [0] NULL
    ccbs_busy: bool = False  # [1] NULL
    unknown: tuple[bytes, ...] = ()

    NAME = "BusySubscriberParam"
    _SPEC = (_X, (0x80, "ccbs_possible", _NULL, None), (0x81, "ccbs_busy", _NULL, None))


@dataclass(slots=True)
class CugRejectParam(_SequenceParam):
    """CUG-RejectParam (TS 29.002 §17.7.7); v1/v2: a bare CUG-RejectCause (also decoded)."""

    cug_reject_cause: CugRejectCause | int | None = None
    extension_container: bytes | None = None
    unknown: tuple[bytes, ...] = ()

    NAME = "CUG-RejectParam"
    _SPEC = ((0x0A, "cug_reject_cause", _ENUM, CugRejectCause), _X)

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> CugRejectParam:
        try:
            data = as_bytes(data)
            if data[:1] == b"\x0a":
                vs, ve = outer(data, 0x0A, cls.NAME)
                return cls(enumerated(CugRejectCause, data, vs, ve, "cug-RejectCause"))
        except Exception as exc:
            fail(exc, cls.NAME)
        return super(CugRejectParam, cls).decode(data, version)

    def encode(self, version: int = 3) -> bytes | None:
        if version < 3:
            return None if self.cug_reject_cause is None else enc_int(0x0A, self.cug_reject_cause)
        return _SequenceParam.encode(self, version)


@dataclass(slots=True)
class AbsentSubscriberSmParam(_SequenceParam):
    """AbsentSubscriberSM-Param (TS 29.002 §17.7.7).

    The diagnostics are :class:`AbsentSubscriberDiagnosticSM` values (plain ints when
    unknown). The same SEQUENCE is written whatever the version (the error is defined from
    phase 2+ on, with this one parameter type).
    """

    absent_subscriber_diagnostic_sm: AbsentSubscriberDiagnosticSM | int | None = None
    extension_container: bytes | None = None
    additional_absent_subscriber_diagnostic_sm: AbsentSubscriberDiagnosticSM | int | None = None
    imsi: Imsi | None = None  # [1]
    requested_retransmission_time: bytes | None = None  # [2] Time (4 octets, NTP seconds)
    user_identifier_alert: Imsi | None = None  # [3]
    unknown: tuple[bytes, ...] = ()

    NAME = "AbsentSubscriberSM-Param"
    _MIN_VERSION = 1
    _SPEC = ((0x02, "absent_subscriber_diagnostic_sm", _ENUM, AbsentSubscriberDiagnosticSM), _X,
             (0x80, "additional_absent_subscriber_diagnostic_sm", _ENUM,
              AbsentSubscriberDiagnosticSM),
             (0x81, "imsi", _IMSI, None), (0x82, "requested_retransmission_time", _OCTETS, None),
             (0x83, "user_identifier_alert", _IMSI, None))


@dataclass(slots=True)
class AbsentSubscriberParam(_SequenceParam):
    """absentSubscriber (27) parameter.

    Version 3: AbsentSubscriberParam (TS 29.002 §17.7.7) SEQUENCE {extensionContainer, ...,
    absentSubscriberReason [0]}. Versions 1 and 2 (GSM 09.02 phase 2): ``mwd-Set BOOLEAN``,
    read into ``mwd_set``.
    """

    extension_container: bytes | None = None
    absent_subscriber_reason: AbsentSubscriberReason | int | None = None  # [0]
    mwd_set: bool | None = None  # v1/v2 parameter
    unknown: tuple[bytes, ...] = ()

    NAME = "AbsentSubscriberParam"
    _SPEC = (_X, (0x80, "absent_subscriber_reason", _ENUM, AbsentSubscriberReason))

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> AbsentSubscriberParam:
        try:
            data = as_bytes(data)
            if data[:1] == b"\x01":
                vs, ve = outer(data, 0x01, "mwd-Set")
                return cls(mwd_set=boolean(data, vs, ve, "mwd-Set"))
        except Exception as exc:
            fail(exc, "mwd-Set")
        return super(AbsentSubscriberParam, cls).decode(data, version)

    def encode(self, version: int = 3) -> bytes | None:
        if version < 3:
            return None if self.mwd_set is None else enc_bool(0x01, self.mwd_set)
        return _SequenceParam.encode(self, version)


@dataclass(slots=True)
class SystemFailureParam(_SequenceParam):
    """SystemFailureParam (TS 29.002 §17.7.7).

    CHOICE {networkResource NetworkResource, extensibleSystemFailureParam SEQUENCE
    {networkResource OPTIONAL, extensionContainer OPTIONAL, ..., additionalNetworkResource
    [0], failureCauseParam [1]}}; v1/v2: the bare NetworkResource. ``extensible`` records
    (and selects, in v3) the SEQUENCE alternative; it is implied when a field only that
    alternative has is set.
    """

    network_resource: NetworkResource | int | None = None
    extension_container: bytes | None = None
    additional_network_resource: AdditionalNetworkResource | int | None = None  # [0]
    failure_cause_param: FailureCauseParam | int | None = None  # [1]
    extensible: bool = False
    unknown: tuple[bytes, ...] = ()

    NAME = "SystemFailureParam"
    _SPEC = ((0x0A, "network_resource", _ENUM, NetworkResource), _X,
             (0x80, "additional_network_resource", _ENUM, AdditionalNetworkResource),
             (0x81, "failure_cause_param", _ENUM, FailureCauseParam))

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> SystemFailureParam:
        try:
            data = as_bytes(data)
            if data[:1] == b"\x0a":
                vs, ve = outer(data, 0x0A, "networkResource")
                return cls(enumerated(NetworkResource, data, vs, ve, "networkResource"))
        except Exception as exc:
            fail(exc, cls.NAME)
        out = super(SystemFailureParam, cls).decode(data, version)
        out.extensible = True
        return out

    def encode(self, version: int = 3) -> bytes | None:
        simple = not (self.extensible or self.extension_container is not None
                      or self.additional_network_resource is not None
                      or self.failure_cause_param is not None or self.unknown)
        if version < 3 or simple:
            return None if self.network_resource is None else enc_int(0x0A, self.network_resource)
        return _SequenceParam.encode(self, version)


@dataclass(slots=True)
class CallBarredParam(_SequenceParam):
    """CallBarredParam (TS 29.002 §17.7.7).

    CHOICE {callBarringCause, extensibleCallBarredParam SEQUENCE {callBarringCause OPTIONAL,
    extensionContainer OPTIONAL, ..., unauthorisedMessageOriginator [1] NULL,
    anonymousCallRejection [2] NULL}}; v1/v2: the bare CallBarringCause. ``extensible`` as
    for :class:`SystemFailureParam`.
    """

    call_barring_cause: CallBarringCause | int | None = None
    extension_container: bytes | None = None
    unauthorised_message_originator: bool = False  # [1] NULL
    anonymous_call_rejection: bool = False  # [2] NULL
    extensible: bool = False
    unknown: tuple[bytes, ...] = ()

    NAME = "CallBarredParam"
    _SPEC = ((0x0A, "call_barring_cause", _ENUM, CallBarringCause), _X,
             (0x81, "unauthorised_message_originator", _NULL, None),
             (0x82, "anonymous_call_rejection", _NULL, None))

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> CallBarredParam:
        try:
            data = as_bytes(data)
            if data[:1] == b"\x0a":
                vs, ve = outer(data, 0x0A, "callBarringCause")
                return cls(enumerated(CallBarringCause, data, vs, ve, "callBarringCause"))
        except Exception as exc:
            fail(exc, cls.NAME)
        out = super(CallBarredParam, cls).decode(data, version)
        out.extensible = True
        return out

    def encode(self, version: int = 3) -> bytes | None:
        simple = not (self.extensible or self.extension_container is not None
                      or self.unauthorised_message_originator or self.anonymous_call_rejection
                      or self.unknown)
        if version < 3 or simple:
            if self.call_barring_cause is None:
                return None
            return enc_int(0x0A, self.call_barring_cause)
        return _SequenceParam.encode(self, version)


@dataclass(slots=True)
class UnknownErrorParam:
    """The parameter of an error this codec has no type for, kept as its whole TLV."""

    data: bytes

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> UnknownErrorParam:
        try:
            return cls(as_bytes(data))
        except Exception as exc:
            fail(exc, "error parameter")

    def encode(self, version: int = 3) -> bytes | None:
        return self.data


ErrorParam = (SystemFailureParam | ExtensionOnlyParam | UnexpectedDataParam | FacilityNotSupParam
              | UnknownSubscriberParam | CallBarredParam | AbsentSubscriberSmParam
              | AbsentSubscriberParam | BusySubscriberParam | CugRejectParam | UnknownErrorParam)

#: error code -> parameter type (TS 29.002 §17.6.6)
ERROR_PARAMS: dict[int, type] = {
    ErrorCode.SYSTEM_FAILURE: SystemFailureParam,
    ErrorCode.DATA_MISSING: DataMissingParam,
    ErrorCode.UNEXPECTED_DATA_VALUE: UnexpectedDataParam,
    ErrorCode.FACILITY_NOT_SUPPORTED: FacilityNotSupParam,
    ErrorCode.UNKNOWN_SUBSCRIBER: UnknownSubscriberParam,
    ErrorCode.TELESERVICE_NOT_PROVISIONED: TeleservNotProvParam,
    ErrorCode.CALL_BARRED: CallBarredParam,
    ErrorCode.ABSENT_SUBSCRIBER_SM: AbsentSubscriberSmParam,
    ErrorCode.ATI_NOT_ALLOWED: AtiNotAllowedParam,
    ErrorCode.ABSENT_SUBSCRIBER: AbsentSubscriberParam,
    ErrorCode.BEARER_SERVICE_NOT_PROVISIONED: BearerServNotProvParam,
    ErrorCode.NUMBER_CHANGED: NumberChangedParam,
    ErrorCode.OR_NOT_ALLOWED: OrNotAllowedParam,
    ErrorCode.NO_SUBSCRIBER_REPLY: NoSubscriberReplyParam,
    ErrorCode.FORWARDING_VIOLATION: ForwardingViolationParam,
    ErrorCode.BUSY_SUBSCRIBER: BusySubscriberParam,
    ErrorCode.CUG_REJECT: CugRejectParam,
    ErrorCode.UNIDENTIFIED_SUBSCRIBER: UnidentifiedSubParam,
    ErrorCode.ILLEGAL_SUBSCRIBER: IllegalSubscriberParam,
    ErrorCode.ILLEGAL_EQUIPMENT: IllegalEquipmentParam,
    ErrorCode.MESSAGE_WAITING_LIST_FULL: MessageWaitListFullParam,
    ErrorCode.RESOURCE_LIMITATION: ResourceLimitationParam,
}


@dataclass(slots=True)
class MapError:
    """A decoded returnError: the error code and its parameter (None when absent)."""

    code: ErrorCode | int
    param: ErrorParam | None = None


def decode_error(code: int, data: bytes | None, version: int = 3) -> MapError:
    """Decode a returnError's error code and optional parameter TLV (TS 29.002 §17.6.6).

    Codes without a parameter type here keep the parameter as :class:`UnknownErrorParam`.
    """
    try:
        code = ErrorCode._value2member_map_.get(code, code)  # type: ignore[assignment]
        if not data:
            return MapError(code)
        cls = ERROR_PARAMS.get(code, UnknownErrorParam)
        return MapError(code, cls.decode(data, version))
    except Exception as exc:
        fail(exc, "error parameter")


def encode_error_param(code: int, param: ErrorParam | None, version: int = 3) -> bytes | None:
    """The parameter TLV for a returnError, or None to send the error without one.

    ``param`` must be of the error's type (or :class:`UnknownErrorParam`).
    """
    if param is None:
        return None
    cls = ERROR_PARAMS.get(code)
    if cls is not None and not isinstance(param, (cls, UnknownErrorParam)):
        raise err("error parameter", 0,
                  f"{type(param).__name__} is not the parameter of error {code} "
                  f"({cls.__name__})")
    return param.encode(version)
