"""sendRoutingInfoForSM (opcode 45): argument and result, versions 1 to 3.

Operation: TS 29.002 §17.6.5 (MAP-ShortMessageServiceOperations); service: §12.1
(MAP-SEND-ROUTING-INFO-FOR-SM); types: §17.7.6 (MAP-SM-DataTypes). Version 1 and 2 follow
GSM 09.02 phase 2's ASN.1, which carries both: the argument's ``teleservice [5]`` and the
result's ``mwd-Set [2]`` exist in version 1 only, and the result's LocationInfoWithLMSI holds
``LocationInfo ::= CHOICE {roamingNumber [0], msc-Number [1]}`` where version 3 has
``networkNode-Number [1]`` (same tag, so a v2 msc-Number is a v3 networkNode-Number).

This is the gateway's hot path: both types are decoded and encoded by hand-unrolled loops.
Decoders accept the components of any version (unknown ones are skipped into ``unknown``);
encoders write only what the requested version defines, so the same value can be re-sent
after a fallback to a lower application context version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ber import read_tlv
from ..tbcd import _SWAP, AddressString, Imsi, NatureOfAddress, NumberingPlan, _address
from .common import (
    ADDRESS_CACHE,
    IMSI_CACHE,
    add_unknown,
    address,
    as_bytes,
    boolean,
    enc_address,
    enc_bool,
    enc_imsi,
    enc_int,
    enc_number,
    enumerated,
    err,
    fail,
    imsi,
    integer,
    null,
    octets,
    outer,
    tl,
    tlvs,
)

_OCTETS = tuple(bytes((i,)) for i in range(256))
_INTERNATIONAL = NatureOfAddress.INTERNATIONAL
_ISDN = NumberingPlan.ISDN
_ARG = "RoutingInfoForSM-Arg"
_RES = "RoutingInfoForSM-Res"
_LIWL = "LocationInfoWithLMSI"


class SmRpMti(enum.IntEnum):
    """SM-RP-MTI (TS 29.002 §17.7.6: INTEGER (0..10), values from TS 23.040 TP-MTI)."""

    SMS_DELIVER = 0
    SMS_STATUS_REPORT = 1


class SmDeliveryNotIntended(enum.IntEnum):
    """SM-DeliveryNotIntended (TS 29.002 §17.7.6), extensible."""

    ONLY_IMSI_REQUESTED = 0
    ONLY_MCC_MNC_REQUESTED = 1


@dataclass(slots=True)
class RoutingInfoForSmArg:
    """RoutingInfoForSM-Arg (TS 29.002 §17.7.6; service parameters §12.1.2).

    ``teleservice`` ([5] TeleserviceCode, one octet) exists in version 1 only.
    ``extension_container`` and ``correlation_id`` are kept as raw content octets.
    """

    msisdn: AddressString  # [0] ISDN-AddressString
    sm_rp_pri: bool  # [1] BOOLEAN
    service_centre_address: AddressString  # [2] AddressString
    teleservice: int | None = None  # [5] TeleserviceCode, v1 only
    extension_container: bytes | None = None  # [6]
    gprs_support_indicator: bool = False  # [7] NULL
    sm_rp_mti: SmRpMti | int | None = None  # [8]
    sm_rp_smea: bytes | None = None  # [9] SM-RP-SMEA (TS 23.040 address, raw)
    sm_delivery_not_intended: SmDeliveryNotIntended | int | None = None  # [10]
    ip_sm_gw_guidance_indicator: bool = False  # [11] NULL
    imsi: Imsi | None = None  # [12]
    t4_trigger_indicator: bool = False  # [14] NULL
    single_attempt_delivery: bool = False  # [13] NULL
    correlation_id: bytes | None = None  # [15] CorrelationID, raw content octets
    smsf_support_indicator: bool = False  # [16] NULL
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> RoutingInfoForSmArg:
        try:
            buf = data if type(data) is bytes else as_bytes(data)
            end = len(buf)
            if 6 < end < 0x82 and buf[1] == end - 2 and buf[0] == 0x30 and buf[2] == 0x80:
                # The hot path: just msisdn, sm-RP-PRI and serviceCentreAddress, in that order
                # and in short form, as every SMSC sends it: read in place (the loop below
                # reads the same, with the same errors).
                a = 4 + buf[3]
                if a + 5 <= end and buf[a] == 0x81 and buf[a + 1] == 1 and buf[a + 3] == 0x82:
                    c = a + 5
                    if c + buf[a + 4] == end:
                        msisdn = None
                        if a > 5 and buf[4] == 0x91:  # international ISDN: as decode_tbcd reads
                            digits = buf[5:a].translate(_SWAP).hex()
                            if digits.isdigit():
                                msisdn = _address(digits, _INTERNATIONAL, _ISDN)
                            elif digits[-1] == "f" and digits[:-1].isdigit():
                                msisdn = _address(digits[:-1], _INTERNATIONAL, _ISDN)
                        return cls(msisdn or AddressString.decode(buf[4:a], 4, "msisdn"),
                                   buf[a + 2] != 0,
                                   ADDRESS_CACHE.get(buf[c:end])
                                   or address(buf, c, end, "serviceCentreAddress"))
            if end > 2 and buf[0] == 0x30 and buf[1] < 0x80 and buf[1] + 2 == end:
                pos = 2
            else:
                pos, end = outer(buf, 0x30, _ARG)
            msisdn = pri = sca = None
            teleservice = ext = mti = smea = dni = imsi_ = corr = None
            gprs = ipsmgw = t4 = single = smsf = False
            unknown = None
            while pos < end:
                start = pos
                t = buf[pos]
                if pos + 1 < end and buf[pos + 1] < 0x80 and t & 0x1F != 0x1F:
                    vs = pos + 2
                    pos = ve = vs + buf[pos + 1]
                    if ve > end:
                        raise err(_ARG, start + 1, "length runs past the end of the argument")
                else:
                    t, vs, ve, pos = read_tlv(buf, pos, end)
                if t == 0x80:  # (a subscriber's number: decoded afresh, not memoised)
                    msisdn = AddressString.decode(buf[vs:ve], vs, "msisdn")
                elif t == 0x81:
                    if ve - vs != 1:
                        raise err("sm-RP-PRI", vs, f"BOOLEAN of {ve - vs} octets")
                    pri = buf[vs] != 0
                elif t == 0x82:
                    sca = (ADDRESS_CACHE.get(buf[vs:ve])
                           or address(buf, vs, ve, "serviceCentreAddress"))
                elif t == 0x85:
                    teleservice = octets(buf, vs, ve, "teleservice", 1)[0]
                elif t == 0xA6:
                    ext = bytes(buf[vs:ve])
                elif t == 0x87:
                    gprs = null(buf, vs, ve, "gprsSupportIndicator")
                elif t == 0x88:
                    mti = enumerated(SmRpMti, buf, vs, ve, "sm-RP-MTI")
                elif t == 0x89:
                    smea = bytes(buf[vs:ve])
                elif t == 0x8A:
                    dni = enumerated(SmDeliveryNotIntended, buf, vs, ve, "sm-deliveryNotIntended")
                elif t == 0x8B:
                    ipsmgw = null(buf, vs, ve, "ip-sm-gwGuidanceIndicator")
                elif t == 0x8C:
                    imsi_ = imsi(buf, vs, ve, "imsi")
                elif t == 0x8E:
                    t4 = null(buf, vs, ve, "t4-Trigger-Indicator")
                elif t == 0x8D:
                    single = null(buf, vs, ve, "singleAttemptDelivery")
                elif t == 0xAF:
                    corr = bytes(buf[vs:ve])
                elif t == 0x90:
                    smsf = null(buf, vs, ve, "smsf-supportIndicator")
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:pos]))
            if msisdn is None:
                raise err("msisdn", 0, f"mandatory component missing from {_ARG}")
            if pri is None:
                raise err("sm-RP-PRI", 0, f"mandatory component missing from {_ARG}")
            if sca is None:
                raise err("serviceCentreAddress", 0, f"mandatory component missing from {_ARG}")
            return cls(msisdn, pri, sca, teleservice, ext, gprs, mti, smea, dni, ipsmgw, imsi_,
                       t4, single, corr, smsf, tuple(unknown) if unknown else ())
        except Exception as exc:
            fail(exc, _ARG)

    def encode(self, version: int = 3) -> bytes:
        try:
            a = enc_number(self.msisdn)
            c = enc_address(self.service_centre_address)
            if version == 1:
                tail = (b"" if self.teleservice is None
                        else bytes((0x85, 1, self.teleservice)))
            elif version >= 3:
                tail = self._encode_v3_tail()
            else:
                tail = b""
            la = len(a)
            lc = len(c)
            n = la + lc + 7 + len(tail)
            if n < 0x80:  # the common case, every length in one octet: written directly
                return (bytes((0x30, n, 0x80, la)) + a
                        + (b"\x81\x01\xff\x82" if self.sm_rp_pri else b"\x81\x01\x00\x82")
                        + _OCTETS[lc] + c + tail)
            return tl(0x30, tl(0x80, a) + (b"\x81\x01\xff" if self.sm_rp_pri else b"\x81\x01\x00")
                      + tl(0x82, c) + tail)
        except Exception as exc:
            fail(exc, _ARG)

    def _encode_v3_tail(self) -> bytes:
        if (self.extension_container is None and self.sm_rp_mti is None
                and self.sm_rp_smea is None and self.sm_delivery_not_intended is None
                and self.imsi is None and self.correlation_id is None and not self.unknown
                and not (self.gprs_support_indicator or self.ip_sm_gw_guidance_indicator
                         or self.t4_trigger_indicator or self.single_attempt_delivery
                         or self.smsf_support_indicator)):
            return b""  # what the lines below give when nothing optional is set
        out = []
        if self.extension_container is not None:
            out.append(tl(0xA6, self.extension_container))
        if self.gprs_support_indicator:
            out.append(b"\x87\x00")
        if self.sm_rp_mti is not None:
            out.append(enc_int(0x88, self.sm_rp_mti))
        if self.sm_rp_smea is not None:
            out.append(tl(0x89, self.sm_rp_smea))
        if self.sm_delivery_not_intended is not None:
            out.append(enc_int(0x8A, self.sm_delivery_not_intended))
        if self.ip_sm_gw_guidance_indicator:
            out.append(b"\x8b\x00")
        if self.imsi is not None:
            out.append(tl(0x8C, enc_imsi(self.imsi)))
        if self.t4_trigger_indicator:
            out.append(b"\x8e\x00")
        if self.single_attempt_delivery:
            out.append(b"\x8d\x00")
        if self.correlation_id is not None:
            out.append(tl(0xAF, self.correlation_id))
        if self.smsf_support_indicator:
            out.append(b"\x90\x00")
        out.extend(self.unknown)
        return b"".join(out)


@dataclass(slots=True)
class AdditionalNumber:
    """Additional-Number ::= CHOICE {msc-Number [0], sgsn-Number [1]} (TS 29.002 §17.7.6).

    Exactly one of the two is set.
    """

    msc_number: AddressString | None = None
    sgsn_number: AddressString | None = None

    @classmethod
    def _decode(cls, buf: bytes, vs: int, ve: int) -> AdditionalNumber:
        t, s, e, nxt = read_tlv(buf, vs, ve)
        if nxt != ve:
            raise err("additional-Number", nxt, "more than one alternative in a CHOICE")
        if t == 0x80:
            return cls(address(buf, s, e, "msc-Number"))
        if t == 0x81:
            return cls(None, address(buf, s, e, "sgsn-Number"))
        raise err("additional-Number", vs, f"unknown alternative, tag {t:#x}")

    def _encode(self) -> bytes:
        if (self.msc_number is None) == (self.sgsn_number is None):
            raise err("additional-Number", 0, "exactly one of msc_number, sgsn_number is set")
        if self.msc_number is not None:
            return tl(0x80, enc_address(self.msc_number))
        return tl(0x81, enc_address(self.sgsn_number))


@dataclass(slots=True)
class LocationInfoWithLmsi:
    """LocationInfoWithLMSI (TS 29.002 §17.7.6).

    Version 3: networkNode-Number [1], lmsi, extensionContainer, ..., gprsNodeIndicator [5],
    additional-Number [6]. Versions 1 and 2: ``locationInfo`` CHOICE {roamingNumber [0],
    msc-Number [1]}, lmsi; msc-Number is read into ``network_node_number`` (same tag) and the
    version 1 roamingNumber into ``roaming_number``. One of the two is always present.
    """

    network_node_number: AddressString | None = None  # [1] ISDN-AddressString
    lmsi: bytes | None = None  # LMSI, 4 octets
    extension_container: bytes | None = None
    gprs_node_indicator: bool = False  # [5] NULL
    additional_number: AdditionalNumber | None = None  # [6]
    roaming_number: AddressString | None = None  # [0], locationInfo of version 1
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> LocationInfoWithLmsi:
        try:
            begin = pos
            nnn = lmsi = ext = addl = rn = None
            gprs = False
            unknown = None
            while pos < end:
                start = pos
                t = buf[pos]
                if pos + 1 < end and buf[pos + 1] < 0x80 and t & 0x1F != 0x1F:
                    vs = pos + 2
                    pos = ve = vs + buf[pos + 1]
                    if ve > end:
                        raise err(_LIWL, start + 1, "length runs past the end of the sequence")
                else:
                    t, vs, ve, pos = read_tlv(buf, pos, end)
                if t == 0x81:
                    nnn = (ADDRESS_CACHE.get(buf[vs:ve])
                           or address(buf, vs, ve, "networkNode-Number"))
                elif t == 0x04:
                    lmsi = octets(buf, vs, ve, "lmsi", 4)
                elif t == 0x30:
                    ext = bytes(buf[vs:ve])
                elif t == 0x85:
                    gprs = null(buf, vs, ve, "gprsNodeIndicator")
                elif t == 0xA6:
                    addl = AdditionalNumber._decode(buf, vs, ve)
                elif t == 0x80:
                    rn = address(buf, vs, ve, "roamingNumber")
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:pos]))
            if nnn is None and rn is None:
                raise err("networkNode-Number", begin, f"mandatory component missing from {_LIWL}")
            return cls(nnn, lmsi, ext, gprs, addl, rn, tuple(unknown) if unknown else ())
        except Exception as exc:
            fail(exc, _LIWL)

    def _encode(self, version: int) -> bytes:
        if version == 1 and self.network_node_number is not None and (
                self.roaming_number is not None):
            raise err("locationInfo", 0, "roamingNumber and msc-Number are alternatives")
        if self.network_node_number is not None:
            a = enc_address(self.network_node_number)
            body = bytes((0x81, len(a))) + a if len(a) < 0x80 else tl(0x81, a)
        elif self.roaming_number is not None and version == 1:
            body = tl(0x80, enc_address(self.roaming_number))
        else:
            raise err("networkNode-Number", 0, f"mandatory in {_LIWL} version {version}")
        if self.lmsi is not None:
            body += tl(0x04, self.lmsi)
        if version >= 3:
            if self.extension_container is not None:
                body += tl(0x30, self.extension_container)
            if self.gprs_node_indicator:
                body += b"\x85\x00"
            if self.additional_number is not None:
                body += tl(0xA6, self.additional_number._encode())
            if self.unknown:
                body += b"".join(self.unknown)
        return body


@dataclass(slots=True)
class IpSmGwGuidance:
    """IP-SM-GW-Guidance (TS 29.002 §17.7.6); delivery timer values in seconds (30..600)."""

    minimum_delivery_time_value: int
    recommended_delivery_time_value: int
    extension_container: bytes | None = None
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> IpSmGwGuidance:
        try:
            ints: list[int] = []
            ext = None
            unknown = None
            for t, start, vs, ve, nxt in tlvs(buf, pos, end):
                if t == 0x02 and len(ints) < 2:
                    ints.append(integer(buf, vs, ve, "SM-DeliveryTimerValue"))
                elif t == 0x30 and ext is None:
                    ext = bytes(buf[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:nxt]))
            if len(ints) != 2:
                raise err("ip-sm-gwGuidance", pos, "two SM-DeliveryTimerValues are mandatory")
            return cls(ints[0], ints[1], ext, tuple(unknown) if unknown else ())
        except Exception as exc:
            fail(exc, "IP-SM-GW-Guidance")

    def _encode(self) -> bytes:
        out = (enc_int(0x02, self.minimum_delivery_time_value)
               + enc_int(0x02, self.recommended_delivery_time_value))
        if self.extension_container is not None:
            out += tl(0x30, self.extension_container)
        return out + b"".join(self.unknown)


@dataclass(slots=True)
class RoutingInfoForSmRes:
    """RoutingInfoForSM-Res (TS 29.002 §17.7.6; service parameters §12.1.2).

    ``mwd_set`` ([2] BOOLEAN) exists in version 1 only; ``extension_container`` [4] and
    ``ip_sm_gw_guidance`` [5] in version 3.
    """

    imsi: Imsi
    location_info_with_lmsi: LocationInfoWithLmsi  # [0]
    extension_container: bytes | None = None  # [4]
    ip_sm_gw_guidance: IpSmGwGuidance | None = None  # [5]
    mwd_set: bool | None = None  # [2], v1 only
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> RoutingInfoForSmRes:
        try:
            buf = data if type(data) is bytes else as_bytes(data)
            end = len(buf)
            if 8 < end < 0x82 and buf[1] == end - 2 and buf[0] == 0x30 and buf[2] == 0x04:
                # The hot path: the IMSI and a LocationInfoWithLMSI holding just the
                # networkNode-Number, in short form: read in place (the loops below read the
                # same, with the same errors).
                a = 4 + buf[3]
                if (a + 4 <= end and buf[a] == 0xA0 and buf[a + 1] == end - a - 2
                        and buf[a + 2] == 0x81 and buf[a + 3] == end - a - 4):
                    return cls(IMSI_CACHE.get(buf[4:a]) or imsi(buf, 4, a, "imsi"),
                               LocationInfoWithLmsi(
                                   ADDRESS_CACHE.get(buf[a + 4:end])
                                   or address(buf, a + 4, end, "networkNode-Number")))
            if end > 2 and buf[0] == 0x30 and buf[1] < 0x80 and buf[1] + 2 == end:
                pos = 2
            else:
                pos, end = outer(buf, 0x30, _RES)
            imsi_ = liwl = ext = guidance = mwd = None
            unknown = None
            while pos < end:
                start = pos
                t = buf[pos]
                if pos + 1 < end and buf[pos + 1] < 0x80 and t & 0x1F != 0x1F:
                    vs = pos + 2
                    pos = ve = vs + buf[pos + 1]
                    if ve > end:
                        raise err(_RES, start + 1, "length runs past the end of the result")
                else:
                    t, vs, ve, pos = read_tlv(buf, pos, end)
                if t == 0x04:
                    imsi_ = IMSI_CACHE.get(buf[vs:ve]) or imsi(buf, vs, ve, "imsi")
                elif t == 0xA0:
                    liwl = LocationInfoWithLmsi._decode(buf, vs, ve)
                elif t == 0xA4:
                    ext = bytes(buf[vs:ve])
                elif t == 0xA5:
                    guidance = IpSmGwGuidance._decode(buf, vs, ve)
                elif t == 0x82:
                    mwd = boolean(buf, vs, ve, "mwd-Set")
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:pos]))
            if imsi_ is None:
                raise err("imsi", 0, f"mandatory component missing from {_RES}")
            if liwl is None:
                raise err("locationInfoWithLMSI", 0, f"mandatory component missing from {_RES}")
            return cls(imsi_, liwl, ext, guidance, mwd, tuple(unknown) if unknown else ())
        except Exception as exc:
            fail(exc, _RES)

    def encode(self, version: int = 3) -> bytes:
        try:
            loc = self.location_info_with_lmsi
            imsi_ = self.imsi
            if (version >= 2 and type(imsi_) is Imsi and type(loc) is LocationInfoWithLmsi
                    and loc.network_node_number is not None and loc.lmsi is None
                    and loc.extension_container is None and not loc.gprs_node_indicator
                    and loc.additional_number is None and not loc.unknown
                    and self.extension_container is None and self.ip_sm_gw_guidance is None
                    and not self.unknown):
                # The hot path: the IMSI and just the networkNode-Number, what an HLR answers:
                # written directly (the lines below write the same, with the same errors).
                digits = imsi_.digits
                if 5 <= len(digits) <= 15 and digits.isdigit() and digits.isascii():
                    i = bytes.fromhex(digits + "f" if len(digits) & 1 else digits
                                      ).translate(_SWAP)
                    a = enc_address(loc.network_node_number)
                    li = len(i)
                    la = len(a)
                    if li + la < 0x78:
                        return b"".join((bytes((0x30, li + la + 6, 0x04, li)), i,
                                         bytes((0xA0, la + 2, 0x81, la)), a))
            i = enc_imsi(imsi_)
            liwl = loc._encode(version)
            tail = b""
            if version == 1:
                if self.mwd_set is not None:
                    tail = enc_bool(0x82, self.mwd_set)
            elif version >= 3:
                if self.extension_container is not None:
                    tail += tl(0xA4, self.extension_container)
                if self.ip_sm_gw_guidance is not None:
                    tail += tl(0xA5, self.ip_sm_gw_guidance._encode())
                if self.unknown:
                    tail += b"".join(self.unknown)
            li = len(i)
            ll = len(liwl)
            n = li + ll + 4 + len(tail)
            if n < 0x80:  # the common case, every length in one octet: written directly
                return bytes((0x30, n, 0x04, li)) + i + bytes((0xA0, ll)) + liwl + tail
            return tl(0x30, tl(0x04, i) + tl(0xA0, liwl) + tail)
        except Exception as exc:
            fail(exc, _RES)
