"""sendRoutingInfo (opcode 22): argument and result for the call path, versions 1 to 3.

Operation: TS 29.002 §17.6.3 (MAP-CallHandlingOperations); service: §10.1
(MAP-SEND-ROUTING-INFORMATION); types: §17.7.3 (MAP-CH-DataTypes). Versions 1 and 2 use
GSM 09.02 phase 2's types: the result is a plain SEQUENCE {imsi, routingInfo, cug-CheckInfo};
version 3 tags the result ``[3] SEQUENCE`` with imsi [9] and ExtendedRoutingInfo.

What a lookup needs is typed: the IMSI, the MSRN (``roaming_number``) or the forwarding data;
CUG, CAMEL, SS and bearer data are kept as raw content octets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..tbcd import AddressString, Imsi
from .ati import SubscriberInfo
from .codes import NumberPortabilityStatus
from .common import (
    add_unknown,
    address,
    as_bytes,
    enc_address,
    enc_imsi,
    enc_int,
    enumerated,
    err,
    fail,
    imsi,
    integer,
    null,
    octets,
    opt_ext,
    outer,
    tl,
    tlvs,
)

_ARG = "SendRoutingInfoArg"
_RES = "SendRoutingInfoRes"


class InterrogationType(enum.IntEnum):
    """InterrogationType (TS 29.002 §17.7.3)."""

    BASIC_CALL = 0
    FORWARDING = 1


class ForwardingReason(enum.IntEnum):
    """ForwardingReason (TS 29.002 §17.7.3)."""

    NOT_REACHABLE = 0
    BUSY = 1
    NO_REPLY = 2


class UnavailabilityCause(enum.IntEnum):
    """UnavailabilityCause (TS 29.002 §17.7.3), extensible."""

    BEARER_SERVICE_NOT_PROVISIONED = 1
    TELESERVICE_NOT_PROVISIONED = 2
    ABSENT_SUBSCRIBER = 3
    BUSY_SUBSCRIBER = 4
    CALL_BARRED = 5
    CUG_REJECT = 6


@dataclass(slots=True)
class SendRoutingInfoArg:
    """SendRoutingInfoArg (TS 29.002 §17.7.3; service parameters §10.1.2).

    ``interrogation_type`` and ``gmsc_or_gsm_scf_address`` are mandatory in version 3 and
    absent before; versions 1 and 2 carry msisdn, cug-CheckInfo, numberOfForwarding and
    networkSignalInfo only. Components this class does not name are kept in ``unknown``.
    """

    msisdn: AddressString  # [0] ISDN-AddressString
    interrogation_type: InterrogationType | int | None = None  # [3], v3
    gmsc_or_gsm_scf_address: AddressString | None = None  # [6], v3
    cug_check_info: bytes | None = None  # [1] CUG-CheckInfo, raw content octets
    number_of_forwarding: int | None = None  # [2] (1..5)
    or_interrogation: bool = False  # [4] NULL
    or_capability: int | None = None  # [5] OR-Phase (1..127)
    call_reference_number: bytes | None = None  # [7] (1..8 octets)
    forwarding_reason: ForwardingReason | int | None = None  # [8]
    basic_service_group: bytes | None = None  # [9] Ext-BasicServiceCode, raw
    network_signal_info: bytes | None = None  # [10] ExternalSignalInfo, raw
    camel_info: bytes | None = None  # [11] CamelInfo, raw
    suppression_of_announcement: bool = False  # [12] NULL
    extension_container: bytes | None = None  # [13]
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> SendRoutingInfoArg:
        try:
            data = as_bytes(data)
            pos, end = outer(data, 0x30, _ARG)
            out = cls(None)  # type: ignore[arg-type]
            unknown = None
            for t, start, vs, ve, nxt in tlvs(data, pos, end):
                if t == 0x80:
                    out.msisdn = address(data, vs, ve, "msisdn")
                elif t == 0x83:
                    out.interrogation_type = enumerated(InterrogationType, data, vs, ve,
                                                        "interrogationType")
                elif t == 0x86:
                    out.gmsc_or_gsm_scf_address = address(data, vs, ve, "gmsc-OrGsmSCF-Address")
                elif t == 0xA1:
                    out.cug_check_info = bytes(data[vs:ve])
                elif t == 0x82:
                    out.number_of_forwarding = integer(data, vs, ve, "numberOfForwarding")
                elif t == 0x84:
                    out.or_interrogation = null(data, vs, ve, "or-Interrogation")
                elif t == 0x85:
                    out.or_capability = integer(data, vs, ve, "or-Capability")
                elif t == 0x87:
                    out.call_reference_number = bytes(data[vs:ve])
                elif t == 0x88:
                    out.forwarding_reason = enumerated(ForwardingReason, data, vs, ve,
                                                       "forwardingReason")
                elif t == 0xA9:
                    out.basic_service_group = bytes(data[vs:ve])
                elif t == 0xAA:
                    out.network_signal_info = bytes(data[vs:ve])
                elif t == 0xAB:
                    out.camel_info = bytes(data[vs:ve])
                elif t == 0x8C:
                    out.suppression_of_announcement = null(data, vs, ve,
                                                           "suppressionOfAnnouncement")
                elif t == 0xAD:
                    out.extension_container = bytes(data[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(data[start:nxt]))
            if out.msisdn is None:
                raise err("msisdn", 0, f"mandatory component missing from {_ARG}")
            if version >= 3:
                if out.interrogation_type is None:
                    raise err("interrogationType", 0, f"mandatory in {_ARG} version 3")
                if out.gmsc_or_gsm_scf_address is None:
                    raise err("gmsc-OrGsmSCF-Address", 0, f"mandatory in {_ARG} version 3")
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, _ARG)

    def encode(self, version: int = 3) -> bytes:
        try:
            out = [tl(0x80, enc_address(self.msisdn))]
            if self.cug_check_info is not None:
                out.append(tl(0xA1, self.cug_check_info))
            if self.number_of_forwarding is not None:
                out.append(enc_int(0x82, self.number_of_forwarding))
            if version >= 3:
                if self.interrogation_type is None or self.gmsc_or_gsm_scf_address is None:
                    raise err("interrogationType", 0, "interrogation_type and "
                              "gmsc_or_gsm_scf_address are mandatory in version 3")
                out.append(enc_int(0x83, self.interrogation_type))
                if self.or_interrogation:
                    out.append(b"\x84\x00")
                if self.or_capability is not None:
                    out.append(enc_int(0x85, self.or_capability))
                out.append(tl(0x86, enc_address(self.gmsc_or_gsm_scf_address)))
                if self.call_reference_number is not None:
                    out.append(tl(0x87, self.call_reference_number))
                if self.forwarding_reason is not None:
                    out.append(enc_int(0x88, self.forwarding_reason))
                if self.basic_service_group is not None:
                    out.append(tl(0xA9, self.basic_service_group))
            if self.network_signal_info is not None:
                out.append(tl(0xAA, self.network_signal_info))
            if version >= 3:
                if self.camel_info is not None:
                    out.append(tl(0xAB, self.camel_info))
                if self.suppression_of_announcement:
                    out.append(b"\x8c\x00")
                out.append(opt_ext(0xAD, self.extension_container))
                out.extend(self.unknown)
            return tl(0x30, b"".join(out))
        except Exception as exc:
            fail(exc, _ARG)


@dataclass(slots=True)
class ForwardingData:
    """ForwardingData (TS 29.002 §17.7.3; version 2: MAP-SS-DataTypes).

    ``forwarding_options`` is the one-octet ForwardingOptions (TS 29.002 §17.7.4 bits:
    notification to forwarding/calling party, redirecting presentation, forwarding reason).
    """

    forwarded_to_number: AddressString | None = None  # [5] ISDN-AddressString
    forwarded_to_subaddress: bytes | None = None  # [4] ISDN-SubaddressString
    forwarding_options: int | None = None  # [6] one octet
    extension_container: bytes | None = None  # [7], v3
    long_forwarded_to_number: AddressString | None = None  # [8] FTN-AddressString, v3
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> ForwardingData:
        try:
            out = cls()
            unknown = None
            for t, start, vs, ve, nxt in tlvs(buf, pos, end):
                if t == 0x85:
                    out.forwarded_to_number = address(buf, vs, ve, "forwardedToNumber")
                elif t == 0x84:
                    out.forwarded_to_subaddress = bytes(buf[vs:ve])
                elif t == 0x86:
                    out.forwarding_options = octets(buf, vs, ve, "forwardingOptions", 1)[0]
                elif t == 0xA7:
                    out.extension_container = bytes(buf[vs:ve])
                elif t == 0x88:
                    out.long_forwarded_to_number = address(buf, vs, ve, "longForwardedToNumber")
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:nxt]))
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, "ForwardingData")

    def _encode(self, version: int) -> bytes:
        out = []
        if self.forwarded_to_number is not None:
            out.append(tl(0x85, enc_address(self.forwarded_to_number)))
        if self.forwarded_to_subaddress is not None:
            out.append(tl(0x84, self.forwarded_to_subaddress))
        if self.forwarding_options is not None:
            out.append(bytes((0x86, 1, self.forwarding_options)))
        if version >= 3:
            if self.extension_container is not None:
                out.append(tl(0xA7, self.extension_container))
            if self.long_forwarded_to_number is not None:
                out.append(tl(0x88, enc_address(self.long_forwarded_to_number)))
            out.extend(self.unknown)
        return b"".join(out)


@dataclass(slots=True)
class SendRoutingInfoRes:
    """SendRoutingInfoRes (TS 29.002 §17.7.3; service parameters §10.1.2).

    ExtendedRoutingInfo / RoutingInfo become three exclusive fields: ``roaming_number`` (the
    MSRN), ``forwarding_data``, or (v3) ``camel_routing_info`` [8] kept raw.
    Versions 1 and 2: SEQUENCE {imsi, routingInfo, cug-CheckInfo OPTIONAL}, mandatory imsi
    and routing info. Version 3: ``[3] SEQUENCE`` where everything is optional.
    """

    imsi: Imsi | None = None  # [9] in v3, first component before
    roaming_number: AddressString | None = None  # RoutingInfo.roamingNumber (MSRN)
    forwarding_data: ForwardingData | None = None  # RoutingInfo.forwardingData
    camel_routing_info: bytes | None = None  # [8] CamelRoutingInfo, raw, v3
    cug_check_info: bytes | None = None  # [3] in v3, untagged SEQUENCE before; raw
    cug_subscription_flag: bool = False  # [6] NULL
    subscriber_info: SubscriberInfo | None = None  # [7]
    ss_list: bytes | None = None  # [1] SS-List, raw
    basic_service: bytes | None = None  # [5] Ext-BasicServiceCode, raw
    forwarding_interrogation_required: bool = False  # [4] NULL
    vmsc_address: AddressString | None = None  # [2]
    extension_container: bytes | None = None  # [0]
    msisdn: AddressString | None = None  # [12]
    number_portability_status: NumberPortabilityStatus | int | None = None  # [13]
    unavailability_cause: UnavailabilityCause | int | None = None  # [21]
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> SendRoutingInfoRes:
        try:
            data = as_bytes(data)
            if data[:1] == b"\x30":
                return cls._decode_v2(data)
            pos, end = outer(data, 0xA3, _RES)
            out = cls()
            unknown = None
            for t, start, vs, ve, nxt in tlvs(data, pos, end):
                if t == 0x89:
                    out.imsi = imsi(data, vs, ve, "imsi")
                elif t == 0x04:
                    out.roaming_number = address(data, vs, ve, "roamingNumber")
                elif t == 0x30:
                    out.forwarding_data = ForwardingData._decode(data, vs, ve)
                elif t == 0xA8:
                    out.camel_routing_info = bytes(data[vs:ve])
                elif t == 0xA3:
                    out.cug_check_info = bytes(data[vs:ve])
                elif t == 0x86:
                    out.cug_subscription_flag = null(data, vs, ve, "cugSubscriptionFlag")
                elif t == 0xA7:
                    out.subscriber_info = SubscriberInfo._decode(data, vs, ve)
                elif t == 0xA1:
                    out.ss_list = bytes(data[vs:ve])
                elif t == 0xA5:
                    out.basic_service = bytes(data[vs:ve])
                elif t == 0x84:
                    out.forwarding_interrogation_required = null(
                        data, vs, ve, "forwardingInterrogationRequired")
                elif t == 0x82:
                    out.vmsc_address = address(data, vs, ve, "vmsc-Address")
                elif t == 0xA0:
                    out.extension_container = bytes(data[vs:ve])
                elif t == 0x8C:
                    out.msisdn = address(data, vs, ve, "msisdn")
                elif t == 0x8D:
                    out.number_portability_status = enumerated(
                        NumberPortabilityStatus, data, vs, ve, "numberPortabilityStatus")
                elif t == 0x95:
                    out.unavailability_cause = enumerated(UnavailabilityCause, data, vs, ve,
                                                          "unavailabilityCause")
                else:
                    unknown = add_unknown(unknown, bytes(data[start:nxt]))
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, _RES)

    @classmethod
    def _decode_v2(cls, data: bytes) -> SendRoutingInfoRes:
        """Versions 1 and 2: SEQUENCE {imsi IMSI, routingInfo RoutingInfo, cug-CheckInfo
        CUG-CheckInfo OPTIONAL, ...}; untagged, so position tells the components apart."""
        pos, end = outer(data, 0x30, _RES)
        out = cls()
        unknown = None
        index = 0
        for t, start, vs, ve, nxt in tlvs(data, pos, end):
            if index == 0 and t == 0x04:
                out.imsi = imsi(data, vs, ve, "imsi")
            elif index == 1 and t == 0x04:
                out.roaming_number = address(data, vs, ve, "roamingNumber")
            elif index == 1 and t == 0x30:
                out.forwarding_data = ForwardingData._decode(data, vs, ve)
            elif index == 2 and t == 0x30:
                out.cug_check_info = bytes(data[vs:ve])
            else:
                unknown = add_unknown(unknown, bytes(data[start:nxt]))
            index += 1
        if out.imsi is None:
            raise err("imsi", 0, f"mandatory component missing from {_RES} version 2")
        if out.roaming_number is None and out.forwarding_data is None:
            raise err("routingInfo", 0, f"mandatory component missing from {_RES} version 2")
        if unknown:
            out.unknown = tuple(unknown)
        return out

    def _routing(self, version: int) -> bytes:
        chosen = [x is not None for x in (self.roaming_number, self.forwarding_data,
                                          self.camel_routing_info)]
        if sum(chosen) > 1:
            raise err("extendedRoutingInfo", 0, "roaming_number, forwarding_data and "
                      "camel_routing_info are alternatives of one CHOICE")
        if self.roaming_number is not None:
            return tl(0x04, enc_address(self.roaming_number))
        if self.forwarding_data is not None:
            return tl(0x30, self.forwarding_data._encode(version))
        if self.camel_routing_info is not None and version >= 3:
            return tl(0xA8, self.camel_routing_info)
        if version < 3:
            raise err("routingInfo", 0, f"mandatory in {_RES} version {version}")
        return b""

    def encode(self, version: int = 3) -> bytes:
        try:
            if version < 3:
                if self.imsi is None:
                    raise err("imsi", 0, f"mandatory in {_RES} version {version}")
                body = tl(0x04, enc_imsi(self.imsi)) + self._routing(version)
                if self.cug_check_info is not None:
                    body += tl(0x30, self.cug_check_info)
                return tl(0x30, body)
            out = []
            if self.imsi is not None:
                out.append(tl(0x89, enc_imsi(self.imsi)))
            out.append(self._routing(version))
            if self.cug_check_info is not None:
                out.append(tl(0xA3, self.cug_check_info))
            if self.cug_subscription_flag:
                out.append(b"\x86\x00")
            if self.subscriber_info is not None:
                out.append(tl(0xA7, self.subscriber_info._encode()))
            if self.ss_list is not None:
                out.append(tl(0xA1, self.ss_list))
            if self.basic_service is not None:
                out.append(tl(0xA5, self.basic_service))
            if self.forwarding_interrogation_required:
                out.append(b"\x84\x00")
            if self.vmsc_address is not None:
                out.append(tl(0x82, enc_address(self.vmsc_address)))
            out.append(opt_ext(0xA0, self.extension_container))
            if self.msisdn is not None:
                out.append(tl(0x8C, enc_address(self.msisdn)))
            if self.number_portability_status is not None:
                out.append(enc_int(0x8D, self.number_portability_status))
            if self.unavailability_cause is not None:
                out.append(enc_int(0x95, self.unavailability_cause))
            out.extend(self.unknown)
            return tl(0xA3, b"".join(out))
        except Exception as exc:
            fail(exc, _RES)
