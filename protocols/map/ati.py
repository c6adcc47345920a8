"""anyTimeInterrogation (opcode 71, version 3): argument and result.

Operation: TS 29.002 §17.6.1 (MAP-MobileServiceOperations); service: §8.11.1
(MAP-ANY-TIME-INTERROGATION); types: §17.7.1 (MAP-MS-DataTypes) and, for
CellGlobalIdOrServiceAreaIdOrLAI, §17.7.8 (MAP-CommonDataTypes). The application context is
anyTimeInfoEnquiryContext-v3; there is no lower version.

:class:`SubscriberInfo` is shared with sendRoutingInfo's result (``subscriberInfo [7]``).
Rarely used complex components (GPRS/EPS location, PS subscriber state, GPRS MS class, ...)
are kept as raw content octets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ber import read_tlv
from ..tbcd import AddressString, Imsi, decode_tbcd, encode_tbcd
from .codes import NotReachableReason, NumberPortabilityStatus
from .common import (
    MAP,
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
    opt_ext,
    outer,
    tl,
    tlvs,
)

_ARG = "AnyTimeInterrogationArg"
_RES = "AnyTimeInterrogationRes"


class DomainType(enum.IntEnum):
    """DomainType (TS 29.002 §17.7.1), extensible."""

    CS_DOMAIN = 0
    PS_DOMAIN = 1


class SubscriberState(enum.IntEnum):
    """The alternatives of SubscriberState ::= CHOICE (TS 29.002 §17.7.1), in ASN.1 order.

    NET_DET_NOT_REACHABLE comes with a :class:`~protocols.map.codes.NotReachableReason`.
    """

    ASSUMED_IDLE = 0  # assumedIdle [0] NULL
    CAMEL_BUSY = 1  # camelBusy [1] NULL
    NET_DET_NOT_REACHABLE = 2  # netDetNotReachable NotReachableReason (untagged ENUMERATED)
    NOT_PROVIDED_FROM_VLR = 3  # notProvidedFromVLR [2] NULL


_STATE_TAG = {SubscriberState.ASSUMED_IDLE: 0x80, SubscriberState.CAMEL_BUSY: 0x81,
              SubscriberState.NOT_PROVIDED_FROM_VLR: 0x82}
_TAG_STATE = {v: k for k, v in _STATE_TAG.items()}


# --------------------------------------------------------------------------- argument

@dataclass(slots=True)
class RequestedInfo:
    """RequestedInfo (TS 29.002 §17.7.1): which information the gsmSCF asks for."""

    location_information: bool = False  # [0] NULL
    subscriber_state: bool = False  # [1] NULL
    extension_container: bytes | None = None  # [2]
    current_location: bool = False  # [3] NULL
    requested_domain: DomainType | int | None = None  # [4]
    imei: bool = False  # [6] NULL
    ms_classmark: bool = False  # [5] NULL
    mnp_requested_info: bool = False  # [7] NULL
    location_information_eps_supported: bool = False  # [11] NULL
    t_ads_data: bool = False  # [8] NULL
    requested_nodes: bytes | None = None  # [9] BIT STRING, raw content octets
    serving_node_indication: bool = False  # [10] NULL
    local_time_zone_request: bool = False  # [12] NULL
    unknown: tuple[bytes, ...] = ()

    _FLAGS = {  # tag -> attribute, for the NULL flags
        0x80: "location_information", 0x81: "subscriber_state", 0x83: "current_location",
        0x86: "imei", 0x85: "ms_classmark", 0x87: "mnp_requested_info",
        0x8B: "location_information_eps_supported", 0x88: "t_ads_data",
        0x8A: "serving_node_indication", 0x8C: "local_time_zone_request",
    }

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> RequestedInfo:
        try:
            out = cls()
            unknown = None
            flags = cls._FLAGS
            for t, start, vs, ve, nxt in tlvs(buf, pos, end):
                name = flags.get(t)
                if name is not None:
                    setattr(out, name, null(buf, vs, ve, name))
                elif t == 0xA2:
                    out.extension_container = bytes(buf[vs:ve])
                elif t == 0x84:
                    out.requested_domain = enumerated(DomainType, buf, vs, ve, "requestedDomain")
                elif t == 0x89:
                    out.requested_nodes = bytes(buf[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:nxt]))
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, "RequestedInfo")

    def _encode(self) -> bytes:
        out = []
        if self.location_information:
            out.append(b"\x80\x00")
        if self.subscriber_state:
            out.append(b"\x81\x00")
        if self.extension_container is not None:
            out.append(tl(0xA2, self.extension_container))
        if self.current_location:
            out.append(b"\x83\x00")
        if self.requested_domain is not None:
            out.append(enc_int(0x84, self.requested_domain))
        if self.imei:
            out.append(b"\x86\x00")
        if self.ms_classmark:
            out.append(b"\x85\x00")
        if self.mnp_requested_info:
            out.append(b"\x87\x00")
        if self.location_information_eps_supported:
            out.append(b"\x8b\x00")
        if self.t_ads_data:
            out.append(b"\x88\x00")
        if self.requested_nodes is not None:
            out.append(tl(0x89, self.requested_nodes))
        if self.serving_node_indication:
            out.append(b"\x8a\x00")
        if self.local_time_zone_request:
            out.append(b"\x8c\x00")
        out.extend(self.unknown)
        return b"".join(out)


def decode_subscriber_identity(buf: bytes, vs: int, ve: int) -> Imsi | AddressString:
    """SubscriberIdentity ::= CHOICE {imsi [0], msisdn [1]} (TS 29.002 §17.7.8)."""
    t, s, e, nxt = read_tlv(buf, vs, ve)
    if nxt != ve:
        raise err("subscriberIdentity", nxt, "more than one alternative in a CHOICE")
    if t == 0x80:
        return imsi(buf, s, e, "imsi")
    if t == 0x81:
        return address(buf, s, e, "msisdn")
    raise err("subscriberIdentity", vs, f"unknown alternative, tag {t:#x}")


def encode_subscriber_identity(value: Imsi | AddressString) -> bytes:
    if isinstance(value, Imsi):
        return tl(0x80, enc_imsi(value))
    if isinstance(value, AddressString):
        return tl(0x81, enc_address(value))
    raise err("subscriberIdentity", 0, f"an Imsi or an AddressString, not {type(value).__name__}")


@dataclass(slots=True)
class AnyTimeInterrogationArg:
    """AnyTimeInterrogationArg (TS 29.002 §17.7.1; service parameters §8.11.1.2).

    ``subscriber_identity`` is the CHOICE imsi [0] / msisdn [1]: an :class:`Imsi` or an
    :class:`AddressString`.
    """

    subscriber_identity: Imsi | AddressString  # [0] SubscriberIdentity
    requested_info: RequestedInfo  # [1]
    gsm_scf_address: AddressString  # [3] ISDN-AddressString
    extension_container: bytes | None = None  # [2]
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> AnyTimeInterrogationArg:
        try:
            data = as_bytes(data)
            pos, end = outer(data, 0x30, _ARG)
            ident = info = scf = ext = None
            unknown = None
            for t, start, vs, ve, nxt in tlvs(data, pos, end):
                if t == 0xA0:
                    ident = decode_subscriber_identity(data, vs, ve)
                elif t == 0xA1:
                    info = RequestedInfo._decode(data, vs, ve)
                elif t == 0x83:
                    scf = address(data, vs, ve, "gsmSCF-Address")
                elif t == 0xA2:
                    ext = bytes(data[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(data[start:nxt]))
            for value, name in ((ident, "subscriberIdentity"), (info, "requestedInfo"),
                                (scf, "gsmSCF-Address")):
                if value is None:
                    raise err(name, 0, f"mandatory component missing from {_ARG}")
            return cls(ident, info, scf, ext, tuple(unknown) if unknown else ())
        except Exception as exc:
            fail(exc, _ARG)

    def encode(self, version: int = 3) -> bytes:
        try:
            return tl(0x30, tl(0xA0, encode_subscriber_identity(self.subscriber_identity))
                      + tl(0xA1, self.requested_info._encode())
                      + tl(0x83, enc_address(self.gsm_scf_address))
                      + opt_ext(0xA2, self.extension_container)
                      + b"".join(self.unknown))
        except Exception as exc:
            fail(exc, _ARG)


# --------------------------------------------------------------------------- result

def decode_plmn(buf: bytes, pos: int, field: str) -> tuple[str, str]:
    """MCC and MNC from a 3-octet PLMN identity (TS 24.008 §10.5.1.3, TS 23.003 §2.2).

    Octets: MCC2|MCC1, MNC3|MCC3, MNC2|MNC1 (high|low nibble); MNC3 = 0xF for a 2-digit MNC.
    """
    o1, o2, o3 = buf[pos], buf[pos + 1], buf[pos + 2]
    nibbles = (o1 & 0xF, o1 >> 4, o2 & 0xF, o3 & 0xF, o3 >> 4)
    if max(nibbles) > 9 or (o2 >> 4 > 9 and o2 >> 4 != 0xF):
        raise err(field, pos,
                  f"PLMN identity {bytes(buf[pos:pos + 3]).hex()} is not MCC/MNC digits")
    mcc = f"{nibbles[0]}{nibbles[1]}{nibbles[2]}"
    mnc = f"{nibbles[3]}{nibbles[4]}" + ("" if o2 >> 4 == 0xF else str(o2 >> 4))
    return mcc, mnc


def encode_plmn(mcc: str, mnc: str) -> bytes:
    """The 3-octet PLMN identity of :func:`decode_plmn`."""
    if len(mcc) != 3 or len(mnc) not in (2, 3) or not (mcc + mnc).isdecimal():
        raise err("PLMN identity", 0, f"MCC {mcc!r} / MNC {mnc!r} are not 3 and 2-3 digits")
    d = [int(c) for c in mcc]
    m = [int(c) for c in mnc]
    return bytes((d[1] << 4 | d[0], (m[2] if len(m) == 3 else 0xF) << 4 | d[2], m[1] << 4 | m[0]))


@dataclass(slots=True, frozen=True)
class CellGlobalIdOrServiceAreaIdOrLai:
    """CellGlobalIdOrServiceAreaIdOrLAI (TS 29.002 §17.7.8), decoded.

    CHOICE {cellGlobalIdOrServiceAreaIdFixedLength [0] (7 octets: PLMN, LAC, CI or SAC),
    laiFixedLength [1] (5 octets: PLMN, LAC)}. ``ci`` is None for a LAI; it is the service
    area code when LocationInformation says ``sai_present``.
    """

    mcc: str
    mnc: str
    lac: int
    ci: int | None = None

    @classmethod
    def _decode(cls, buf: bytes, vs: int, ve: int) -> CellGlobalIdOrServiceAreaIdOrLai:
        t, s, e, nxt = read_tlv(buf, vs, ve)
        if nxt != ve:
            raise err("cellGlobalIdOrServiceAreaIdOrLAI", nxt, "more than one alternative")
        if t == 0x80:
            if e - s != 7:
                raise err("cellGlobalIdOrServiceAreaIdFixedLength", s,
                          f"{e - s} octets where the type has exactly 7")
            mcc, mnc = decode_plmn(buf, s, "cellGlobalIdOrServiceAreaIdFixedLength")
            return cls(mcc, mnc, buf[s + 3] << 8 | buf[s + 4], buf[s + 5] << 8 | buf[s + 6])
        if t == 0x81:
            if e - s != 5:
                raise err("laiFixedLength", s, f"{e - s} octets where the type has exactly 5")
            mcc, mnc = decode_plmn(buf, s, "laiFixedLength")
            return cls(mcc, mnc, buf[s + 3] << 8 | buf[s + 4])
        raise err("cellGlobalIdOrServiceAreaIdOrLAI", vs, f"unknown alternative, tag {t:#x}")

    def _encode(self) -> bytes:
        plmn = encode_plmn(self.mcc, self.mnc) + self.lac.to_bytes(2, "big")
        if self.ci is None:
            return tl(0x81, plmn)
        return tl(0x80, plmn + self.ci.to_bytes(2, "big"))


@dataclass(slots=True)
class LocationInformation:
    """LocationInformation (TS 29.002 §17.7.1). Octet-string components kept raw:
    geographical/geodetic information (TS 23.032 shapes), locationNumber (ISUP, Q.763)."""

    age_of_location_information: int | None = None  # INTEGER (0..32767), minutes
    geographical_information: bytes | None = None  # [0]
    vlr_number: AddressString | None = None  # [1]
    location_number: bytes | None = None  # [2]
    cell_global_id_or_service_area_id_or_lai: CellGlobalIdOrServiceAreaIdOrLai | None = None
    extension_container: bytes | None = None  # [4]
    selected_lsa_id: bytes | None = None  # [5]
    msc_number: AddressString | None = None  # [6]
    geodetic_information: bytes | None = None  # [7]
    current_location_retrieved: bool = False  # [8] NULL
    sai_present: bool = False  # [9] NULL
    location_information_eps: bytes | None = None  # [10], raw content octets
    user_csg_information: bytes | None = None  # [11], raw content octets
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> LocationInformation:
        try:
            out = cls()
            unknown = None
            for t, start, vs, ve, nxt in tlvs(buf, pos, end):
                if t == 0x02:
                    out.age_of_location_information = integer(buf, vs, ve,
                                                               "ageOfLocationInformation")
                elif t == 0x80:
                    out.geographical_information = bytes(buf[vs:ve])
                elif t == 0x81:
                    out.vlr_number = address(buf, vs, ve, "vlr-number")
                elif t == 0x82:
                    out.location_number = bytes(buf[vs:ve])
                elif t == 0xA3:
                    out.cell_global_id_or_service_area_id_or_lai = (
                        CellGlobalIdOrServiceAreaIdOrLai._decode(buf, vs, ve))
                elif t == 0xA4:
                    out.extension_container = bytes(buf[vs:ve])
                elif t == 0x85:
                    out.selected_lsa_id = bytes(buf[vs:ve])
                elif t == 0x86:
                    out.msc_number = address(buf, vs, ve, "msc-Number")
                elif t == 0x87:
                    out.geodetic_information = bytes(buf[vs:ve])
                elif t == 0x88:
                    out.current_location_retrieved = null(buf, vs, ve, "currentLocationRetrieved")
                elif t == 0x89:
                    out.sai_present = null(buf, vs, ve, "sai-Present")
                elif t == 0xAA:
                    out.location_information_eps = bytes(buf[vs:ve])
                elif t == 0xAB:
                    out.user_csg_information = bytes(buf[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:nxt]))
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, "LocationInformation")

    def _encode(self) -> bytes:
        out = []
        if self.age_of_location_information is not None:
            out.append(enc_int(0x02, self.age_of_location_information))
        if self.geographical_information is not None:
            out.append(tl(0x80, self.geographical_information))
        if self.vlr_number is not None:
            out.append(tl(0x81, enc_address(self.vlr_number)))
        if self.location_number is not None:
            out.append(tl(0x82, self.location_number))
        if self.cell_global_id_or_service_area_id_or_lai is not None:
            out.append(tl(0xA3, self.cell_global_id_or_service_area_id_or_lai._encode()))
        if self.extension_container is not None:
            out.append(tl(0xA4, self.extension_container))
        if self.selected_lsa_id is not None:
            out.append(tl(0x85, self.selected_lsa_id))
        if self.msc_number is not None:
            out.append(tl(0x86, enc_address(self.msc_number)))
        if self.geodetic_information is not None:
            out.append(tl(0x87, self.geodetic_information))
        if self.current_location_retrieved:
            out.append(b"\x88\x00")
        if self.sai_present:
            out.append(b"\x89\x00")
        if self.location_information_eps is not None:
            out.append(tl(0xAA, self.location_information_eps))
        if self.user_csg_information is not None:
            out.append(tl(0xAB, self.user_csg_information))
        out.extend(self.unknown)
        return b"".join(out)


@dataclass(slots=True)
class MnpInfoRes:
    """MNPInfoRes (TS 29.002 §17.7.1): number portability data from the HLR/NPLR."""

    routeing_number: str | None = None  # [0] RouteingNumber, TBCD-STRING (SIZE (1..5))
    imsi: Imsi | None = None  # [1]
    msisdn: AddressString | None = None  # [2]
    number_portability_status: NumberPortabilityStatus | int | None = None  # [3]
    extension_container: bytes | None = None  # [4]
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> MnpInfoRes:
        try:
            out = cls()
            unknown = None
            for t, start, vs, ve, nxt in tlvs(buf, pos, end):
                if t == 0x80:
                    out.routeing_number = decode_tbcd(bytes(buf[vs:ve]), vs, MAP,
                                                      "routeingNumber")
                elif t == 0x81:
                    out.imsi = imsi(buf, vs, ve, "imsi")
                elif t == 0x82:
                    out.msisdn = address(buf, vs, ve, "msisdn")
                elif t == 0x83:
                    out.number_portability_status = enumerated(
                        NumberPortabilityStatus, buf, vs, ve, "numberPortabilityStatus")
                elif t == 0xA4:
                    out.extension_container = bytes(buf[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:nxt]))
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, "MNPInfoRes")

    def _encode(self) -> bytes:
        out = []
        if self.routeing_number is not None:
            out.append(tl(0x80, encode_tbcd(self.routeing_number, MAP, "routeingNumber")))
        if self.imsi is not None:
            out.append(tl(0x81, enc_imsi(self.imsi)))
        if self.msisdn is not None:
            out.append(tl(0x82, enc_address(self.msisdn)))
        if self.number_portability_status is not None:
            out.append(enc_int(0x83, self.number_portability_status))
        if self.extension_container is not None:
            out.append(tl(0xA4, self.extension_container))
        out.extend(self.unknown)
        return b"".join(out)


@dataclass(slots=True)
class SubscriberInfo:
    """SubscriberInfo (TS 29.002 §17.7.1).

    ``subscriber_state`` is the alternative of the SubscriberState CHOICE [1];
    ``not_reachable_reason`` goes with NET_DET_NOT_REACHABLE. ``imei`` is the TBCD digits.
    """

    location_information: LocationInformation | None = None  # [0]
    subscriber_state: SubscriberState | None = None  # [1]
    not_reachable_reason: NotReachableReason | int | None = None
    extension_container: bytes | None = None  # [2]
    location_information_gprs: bytes | None = None  # [3], raw content octets
    ps_subscriber_state: bytes | None = None  # [4] CHOICE, raw (the chosen alternative's TLV)
    imei: str | None = None  # [5] IMEI, TBCD-STRING (SIZE (8))
    ms_classmark2: bytes | None = None  # [6]
    gprs_ms_class: bytes | None = None  # [7], raw content octets
    mnp_info_res: MnpInfoRes | None = None  # [8]
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def _decode(cls, buf: bytes, pos: int, end: int) -> SubscriberInfo:
        try:
            out = cls()
            unknown = None
            for t, start, vs, ve, nxt in tlvs(buf, pos, end):
                if t == 0xA0:
                    out.location_information = LocationInformation._decode(buf, vs, ve)
                elif t == 0xA1:
                    out.subscriber_state, out.not_reachable_reason = _decode_state(buf, vs, ve)
                elif t == 0xA2:
                    out.extension_container = bytes(buf[vs:ve])
                elif t == 0xA3:
                    out.location_information_gprs = bytes(buf[vs:ve])
                elif t == 0xA4:
                    out.ps_subscriber_state = bytes(buf[vs:ve])
                elif t == 0x85:
                    out.imei = decode_tbcd(bytes(buf[vs:ve]), vs, MAP, "imei")
                elif t == 0x86:
                    out.ms_classmark2 = bytes(buf[vs:ve])
                elif t == 0xA7:
                    out.gprs_ms_class = bytes(buf[vs:ve])
                elif t == 0xA8:
                    out.mnp_info_res = MnpInfoRes._decode(buf, vs, ve)
                else:
                    unknown = add_unknown(unknown, bytes(buf[start:nxt]))
            if unknown:
                out.unknown = tuple(unknown)
            return out
        except Exception as exc:
            fail(exc, "SubscriberInfo")

    def _encode(self) -> bytes:
        out = []
        if self.location_information is not None:
            out.append(tl(0xA0, self.location_information._encode()))
        if self.subscriber_state is not None:
            out.append(tl(0xA1, _encode_state(self.subscriber_state, self.not_reachable_reason)))
        if self.extension_container is not None:
            out.append(tl(0xA2, self.extension_container))
        if self.location_information_gprs is not None:
            out.append(tl(0xA3, self.location_information_gprs))
        if self.ps_subscriber_state is not None:
            out.append(tl(0xA4, self.ps_subscriber_state))
        if self.imei is not None:
            out.append(tl(0x85, encode_tbcd(self.imei, MAP, "imei")))
        if self.ms_classmark2 is not None:
            out.append(tl(0x86, self.ms_classmark2))
        if self.gprs_ms_class is not None:
            out.append(tl(0xA7, self.gprs_ms_class))
        if self.mnp_info_res is not None:
            out.append(tl(0xA8, self.mnp_info_res._encode()))
        out.extend(self.unknown)
        return b"".join(out)


def _decode_state(buf: bytes, vs: int, ve: int
                  ) -> tuple[SubscriberState, NotReachableReason | int | None]:
    t, s, e, nxt = read_tlv(buf, vs, ve)
    if nxt != ve:
        raise err("subscriberState", nxt, "more than one alternative in a CHOICE")
    if t == 0x0A:
        return (SubscriberState.NET_DET_NOT_REACHABLE,
                enumerated(NotReachableReason, buf, s, e, "netDetNotReachable"))
    state = _TAG_STATE.get(t)
    if state is None:
        raise err("subscriberState", vs, f"unknown alternative, tag {t:#x}")
    null(buf, s, e, "subscriberState")
    return state, None


def _encode_state(state: SubscriberState, reason: NotReachableReason | int | None) -> bytes:
    if state == SubscriberState.NET_DET_NOT_REACHABLE:
        if reason is None:
            raise err("netDetNotReachable", 0, "needs a not_reachable_reason")
        return enc_int(0x0A, reason)
    return bytes((_STATE_TAG[SubscriberState(state)], 0))


@dataclass(slots=True)
class AnyTimeInterrogationRes:
    """AnyTimeInterrogationRes (TS 29.002 §17.7.1; service parameters §8.11.1.2)."""

    subscriber_info: SubscriberInfo
    extension_container: bytes | None = None
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def decode(cls, data: bytes, version: int = 3) -> AnyTimeInterrogationRes:
        try:
            data = as_bytes(data)
            pos, end = outer(data, 0x30, _RES)
            info = ext = None
            unknown = None
            for t, start, vs, ve, nxt in tlvs(data, pos, end):
                if t == 0x30 and info is None:  # both are untagged SEQUENCEs: order decides
                    info = SubscriberInfo._decode(data, vs, ve)
                elif t == 0x30 and ext is None:
                    ext = bytes(data[vs:ve])
                else:
                    unknown = add_unknown(unknown, bytes(data[start:nxt]))
            if info is None:
                raise err("subscriberInfo", 0, f"mandatory component missing from {_RES}")
            return cls(info, ext, tuple(unknown) if unknown else ())
        except Exception as exc:
            fail(exc, _RES)

    def encode(self, version: int = 3) -> bytes:
        try:
            return tl(0x30, tl(0x30, self.subscriber_info._encode())
                      + opt_ext(0x30, self.extension_container) + b"".join(self.unknown))
        except Exception as exc:
            fail(exc, _RES)
