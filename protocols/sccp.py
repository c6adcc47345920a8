"""SCCP connectionless messages (ITU-T Q.713): UDT, UDTS, XUDT and XUDTS.

Sans-IO codec: :func:`decode` turns the SCCP payload of an M3UA DATA message into a typed
message, :func:`encode` turns one back into bytes. Only :class:`~protocols.errors.CodecError`
escapes either; its offset counts from the start of the buffer given to :func:`decode`.

Message layout (Q.713 §1.8, §4): message type, the mandatory fixed part, one-octet pointers to
the mandatory variable parameters (each pointer counts from its own octet to the parameter's
length octet), the length-prefixed parameters, and for XUDT/XUDTS a fourth pointer to the
optional part (0 when there is none)::

    UDT   (§4.10)  09 class  p(called) p(calling) p(data)            called calling data
    UDTS  (§4.11)  0a cause  p(called) p(calling) p(data)            called calling data
    XUDT  (§4.18)  11 class hops  p(called) p(calling) p(data) p(opt) ... [optional part]
    XUDTS (§4.19)  12 cause hops  p(called) p(calling) p(data) p(opt) ... [optional part]

Decoding is strict: every pointer must land inside the message and every parameter must end
inside it; the protocol class must be 0 or 1 with message handling 0000 or 1000 (§3.6); a
party address must be exactly as long as its indicator says (§3.4); a global title indicator
above 4 or an encoding scheme other than BCD odd/even is refused. Bytes that no pointer
reaches (a gap, or a tail after the last parameter) are ignored: Q.713 fixes the parameters
only through the pointers. Spare bits (the top two bits of a point code, the spare bits of the
importance and segmentation octets, bit 8 of the GTI 4 nature-of-address octet) are sent as
zero and not checked on receipt. LUDT/LUDTS and the connection-oriented messages are not
supported.

Hot path: a lookup decodes and encodes one UDT. Party addresses are frozen and carry their
own encoding (computed once when built), decoded addresses are memoised by their wire bytes
(the gateway's own address and the HLR's repeat on every message), and the message encoders
are straight byte concatenations with no reflection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

from ._twin import mutable_twin
from .errors import CodecError, Layer
from .tbcd import _SWAP, decode_bcd, encode_bcd

__all__ = [
    "MessageType",
    "ParameterName",
    "RoutingIndicator",
    "GlobalTitleIndicator",
    "NumberingPlan",
    "EncodingScheme",
    "NatureOfAddressIndicator",
    "ReturnCause",
    "Ssn",
    "SccpAddress",
    "Segmentation",
    "Unitdata",
    "UnitdataService",
    "ExtendedUnitdata",
    "ExtendedUnitdataService",
    "SccpMessage",
    "decode",
    "encode",
    "encode_unitdata",
    "encode_unitdata_lv",
    "unitdata_payload",
    "unitdata_split",
]

_L = Layer.SCCP


def _err(field_name: str, offset: int, reason: str) -> CodecError:
    return CodecError(_L, field_name, offset, reason)


def _pseudo_member(cls, value: int, name: str):
    """A named member for a spare/reserved code point, registered so lookups stay O(1)."""
    member = int.__new__(cls, value)
    member._name_ = name
    member._value_ = value
    return cls._value2member_map_.setdefault(value, member)


# --------------------------------------------------------------------------------------------
# Code points
# --------------------------------------------------------------------------------------------


class MessageType(enum.IntEnum):
    """Message type codes of the connectionless messages handled here (Q.713 §2.1, Table 1)."""

    UDT = 0x09  # unitdata
    UDTS = 0x0A  # unitdata service
    XUDT = 0x11  # extended unitdata
    XUDTS = 0x12  # extended unitdata service


class ParameterName(enum.IntEnum):
    """Parameter name codes (Q.713 §3, Table 2) used in the optional part of XUDT/XUDTS."""

    END_OF_OPTIONAL_PARAMETERS = 0x00  # §3.1
    CALLED_PARTY_ADDRESS = 0x03  # §3.4
    CALLING_PARTY_ADDRESS = 0x04  # §3.5
    PROTOCOL_CLASS = 0x05  # §3.6
    RETURN_CAUSE = 0x0B  # §3.12
    DATA = 0x0F  # §3.16
    SEGMENTATION = 0x10  # §3.17
    HOP_COUNTER = 0x11  # §3.18
    IMPORTANCE = 0x12  # §3.19
    LONG_DATA = 0x13  # §3.20


class RoutingIndicator(enum.IntEnum):
    """Address indicator bit 7 (Q.713 §3.4.1)."""

    ROUTE_ON_GT = 0  # route on global title
    ROUTE_ON_SSN = 1  # route on DPC (MTP routing label or address) + subsystem number


class GlobalTitleIndicator(enum.IntEnum):
    """Address indicator bits 6-3: which global title format follows (Q.713 §3.4.1)."""

    NO_GLOBAL_TITLE = 0
    NAI_ONLY = 1  # nature of address (with odd/even indicator)
    TT_ONLY = 2  # translation type
    TT_NP_ES = 3  # translation type, numbering plan, encoding scheme
    TT_NP_ES_NAI = 4  # translation type, numbering plan, encoding scheme, nature of address


class NumberingPlan(enum.IntEnum):
    """Global title numbering plan, bits 8-5 of the NP/ES octet (Q.713 §3.4.2.3.3)."""

    UNKNOWN = 0
    ISDN_TELEPHONY = 1  # ITU-T E.163 / E.164
    GENERIC = 2
    DATA = 3  # ITU-T X.121
    TELEX = 4  # ITU-T F.69
    MARITIME_MOBILE = 5  # ITU-T E.210, E.211
    LAND_MOBILE = 6  # ITU-T E.212
    ISDN_MOBILE = 7  # ITU-T E.214
    SPARE_8 = 8
    SPARE_9 = 9
    SPARE_10 = 10
    SPARE_11 = 11
    SPARE_12 = 12
    SPARE_13 = 13
    PRIVATE = 14  # private network or network-specific
    RESERVED = 15
    # aliases by the plan's Recommendation number
    E164 = 1
    E212 = 6
    E214 = 7


class EncodingScheme(enum.IntEnum):
    """Global title encoding scheme, bits 4-1 of the NP/ES octet (Q.713 §3.4.2.3.3).

    Only the BCD schemes are supported; the codec derives the scheme from the digit count.
    """

    UNKNOWN = 0
    BCD_ODD = 1
    BCD_EVEN = 2
    NATIONAL_SPECIFIC = 3


class NatureOfAddressIndicator(enum.IntEnum):
    """Nature of address indicator, 7 bits (Q.713 §3.4.2.3.1 and §3.4.2.3.4).

    0000101-1101111 are spare, 1110000-1111110 reserved for national use and 1111111
    reserved; those decode as members named ``SPARE_n`` / ``NATIONAL_n`` / ``RESERVED``.
    """

    UNKNOWN = 0
    SUBSCRIBER_NUMBER = 1
    RESERVED_FOR_NATIONAL_USE = 2
    NATIONAL_SIGNIFICANT_NUMBER = 3
    INTERNATIONAL_NUMBER = 4
    RESERVED = 127
    INTERNATIONAL = 4  # alias

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, int) and 0 <= value <= 127:
            return _pseudo_member(cls, value, f"NATIONAL_{value}" if value >= 112
                                  else f"SPARE_{value}")
        return None


class ReturnCause(enum.IntEnum):
    """Return cause of UDTS/XUDTS (Q.713 §3.12); 15-255 are spare (decoded as ``SPARE_n``)."""

    NO_TRANSLATION_FOR_ADDRESS_OF_SUCH_NATURE = 0
    NO_TRANSLATION_FOR_SPECIFIC_ADDRESS = 1
    SUBSYSTEM_CONGESTION = 2
    SUBSYSTEM_FAILURE = 3
    UNEQUIPPED_USER = 4
    MTP_FAILURE = 5
    NETWORK_CONGESTION = 6
    UNQUALIFIED = 7
    ERROR_IN_MESSAGE_TRANSPORT = 8
    ERROR_IN_LOCAL_PROCESSING = 9
    DESTINATION_CANNOT_PERFORM_REASSEMBLY = 10
    SCCP_FAILURE = 11
    HOP_COUNTER_VIOLATION = 12
    SEGMENTATION_NOT_SUPPORTED = 13
    SEGMENTATION_FAILURE = 14

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, int) and 15 <= value <= 255:
            return _pseudo_member(cls, value, f"SPARE_{value}")
        return None


class Ssn(enum.IntEnum):
    """Well-known subsystem numbers (Q.713 §3.4.2.2; GSM values from TS 23.003 §8.1)."""

    UNKNOWN = 0  # SSN not known / not used
    SCMG = 1  # SCCP management
    HLR = 6
    VLR = 7
    MSC = 8
    EIR = 9
    AUC = 10
    GMLC = 145
    CAP = 146
    GSMSCF = 147  # MAP towards the gsmSCF
    SGSN = 149


# decode tables: one index per octet value, no enum construction on the hot path
_SSN = tuple(Ssn._value2member_map_.get(v, v) for v in range(256))
_NAI = tuple(NatureOfAddressIndicator(v) for v in range(128))
_NP = tuple(NumberingPlan(v) for v in range(16))
_GTI = tuple(GlobalTitleIndicator(v) for v in range(5))
_CAUSE = tuple(ReturnCause(v) for v in range(256))
_RI = (RoutingIndicator.ROUTE_ON_GT, RoutingIndicator.ROUTE_ON_SSN)
# validating normalisers for constructed addresses (a dict lookup is both range and type check)
_GTI_OF = dict(enumerate(_GTI))
_RI_OF = dict(enumerate(_RI))
_NP_OF = dict(enumerate(_NP))
_NAI_OF = dict(enumerate(_NAI))
_OCTET_OF = {v: v for v in range(256)}
_SSN_OF = dict(enumerate(_SSN))

def _digits(raw: bytes, start: int, odd: bool) -> str:
    return decode_bcd(raw[start:], odd, start, _L, "global title digits")


def _bcd(digits: str) -> bytes:
    return encode_bcd(digits, _L, "global title digits")


# GT parts carried by each GTI: (translation type, numbering plan, nature of address)
_GT_PARTS = {0: (False, False, False), 1: (False, False, True), 2: (True, False, False),
             3: (True, True, False), 4: (True, True, True)}


# --------------------------------------------------------------------------------------------
# Party address
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class SccpAddress:
    """Called/calling party address (Q.713 §3.4, §3.5), ITU format with a 14-bit point code.

    Address indicator octet: bit 8 national use, bit 7 routing indicator, bits 6-3 global title
    indicator, bit 2 SSN indicator, bit 1 point code indicator. Then, in this order and only
    when indicated: the point code (2 octets, least significant first, top two bits spare,
    §3.4.2.1), the SSN (§3.4.2.2) and the global title (§3.4.2.3):

    ====  =============================================================================
    GTI   global title octets before the digits
    ====  =============================================================================
    0     no global title
    1     odd/even (bit 8) + nature of address (bits 7-1)                  §3.4.2.3.1
    2     translation type (the digits' coding is implied; BCD assumed)     §3.4.2.3.2
    3     translation type, numbering plan (8-5) + encoding scheme (4-1)   §3.4.2.3.3
    4     as 3, then nature of address (bits 7-1, bit 8 spare)             §3.4.2.3.4
    ====  =============================================================================

    Digits are BCD, first digit in the low nibble. The odd/even count is signalled by the
    odd/even bit (GTI 1) or the encoding scheme (GTI 3, 4: 1 BCD odd, 2 BCD even), derived
    here from ``len(digits)``; an odd count is sent with filler 0xF (0 or F accepted). GTI 2
    has no such signal: a trailing 0xF nibble is read as filler.

    GT parts the indicator does not carry are ``None``. When building an address, carried
    parts left as ``None`` default to translation type 0, numbering plan E.164 and nature of
    address international, and ``gt_indicator=None`` means 4 with digits, 0 without. The
    constructor validates and encodes once (raising :class:`CodecError` if it cannot be
    encoded); :meth:`encode` then costs nothing.
    """

    routing_indicator: RoutingIndicator = RoutingIndicator.ROUTE_ON_GT
    gt_indicator: GlobalTitleIndicator | None = None
    ssn: int | None = None
    point_code: int | None = None
    digits: str = ""
    translation_type: int | None = None
    numbering_plan: NumberingPlan | None = None
    nature_of_address: NatureOfAddressIndicator | None = None
    national_use: bool = False
    _lv: bytes = field(init=False, repr=False, compare=False)  # length octet + encoding

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        gti = self.gt_indicator
        if gti is None:
            gti = 4 if self.digits else 0
        g = _GTI_OF.get(gti)
        if g is None:
            raise _err("global title indicator", 0, f"unsupported global title indicator {gti!r}")
        ri = _RI_OF.get(self.routing_indicator)
        if ri is None:
            raise _err("routing indicator", 0,
                       f"routing indicator {self.routing_indicator!r} is not 0 or 1")
        setattr_(self, "gt_indicator", g)
        setattr_(self, "routing_indicator", ri)
        has_tt, has_np, has_nai = _GT_PARTS[g]
        tt, np_, nai = self.translation_type, self.numbering_plan, self.nature_of_address
        if has_tt:
            v = _OCTET_OF.get(0 if tt is None else tt)
            if v is None:
                raise _err("translation type", 0, f"translation type {tt!r} outside 0..255")
            setattr_(self, "translation_type", v)
        elif tt is not None:
            raise _err("translation type", 0, f"GTI {g} carries no translation type")
        if has_np:
            v = _NP_OF.get(NumberingPlan.E164 if np_ is None else np_)
            if v is None:
                raise _err("numbering plan", 0, f"numbering plan {np_!r} outside 0..15")
            setattr_(self, "numbering_plan", v)
        elif np_ is not None:
            raise _err("numbering plan", 0, f"GTI {g} carries no numbering plan")
        if has_nai:
            v = _NAI_OF.get(NatureOfAddressIndicator.INTERNATIONAL_NUMBER if nai is None else nai)
            if v is None:
                raise _err("nature of address", 0, f"nature of address {nai!r} outside 0..127")
            setattr_(self, "nature_of_address", v)
        elif nai is not None:
            raise _err("nature of address", 0, f"GTI {g} carries no nature of address")
        ssn = self.ssn
        if ssn is not None:
            v = _SSN_OF.get(ssn)
            if v is None:
                raise _err("subsystem number", 0, f"SSN {ssn!r} outside 0..255")
            setattr_(self, "ssn", v)
        if self.national_use is not False and self.national_use is not True:
            setattr_(self, "national_use", bool(self.national_use))
        setattr_(self, "_lv", _encode_address(self))

    # -- convenience -------------------------------------------------------------------------

    @classmethod
    def e164(cls, digits: str, ssn: int | None, *, memoise: bool = True) -> SccpAddress:
        """The inter-PLMN address form (TS 29.002 §6.1.3; Q.713 §3.4.2.3.4).

        Route on GT, GTI 4, translation type 0, numbering plan E.164, nature of address
        international, with the SSN. A leading ``+`` is dropped. Memoised: the gateway's own
        calling address is built once and reused. ``memoise=False`` builds without the memo,
        for per-subscriber addresses (the called MSISDN): they would only churn it.
        """
        if memoise:
            return _e164(digits, ssn)
        return _e164_build(digits, ssn)

    @classmethod
    def route_on_ssn(cls, ssn: int, point_code: int | None = None) -> SccpAddress:
        """An address routed on DPC + SSN with no global title (Q.713 §3.4.1)."""
        return cls(RoutingIndicator.ROUTE_ON_SSN, GlobalTitleIndicator.NO_GLOBAL_TITLE, ssn,
                   point_code)

    @property
    def odd(self) -> bool:
        """True when the global title has an odd number of digits."""
        return len(self.digits) % 2 == 1

    @property
    def encoding_scheme(self) -> EncodingScheme | None:
        """BCD odd/even for GTI 3 and 4 (derived from the digit count), else None."""
        if self.gt_indicator < 3:
            return None
        return EncodingScheme.BCD_ODD if len(self.digits) & 1 else EncodingScheme.BCD_EVEN

    def encode(self) -> bytes:
        """The address parameter's value (without its length octet)."""
        return self._lv[1:]

    @classmethod
    def decode(cls, data: bytes, offset: int = 0) -> SccpAddress:
        """Decode one address parameter value; ``offset`` places ``data`` in a larger buffer."""
        return _decode_address_at(bytes(data), offset, "party address")

    def __str__(self) -> str:
        parts = []
        if self.digits:
            parts.append(f"GT {self.digits}")
        if self.ssn is not None:
            parts.append(f"SSN {int(self.ssn)}")
        if self.point_code is not None:
            parts.append(f"PC {self.point_code}")
        return " ".join(parts) or "(empty address)"


def _encode_address(a: SccpAddress) -> bytes:
    """Length octet + address parameter value (Q.713 §3.4); called once per address."""
    gti = a.gt_indicator
    ai = (0x80 if a.national_use else 0) | (a.routing_indicator << 6) | (gti << 2)
    head = [0, ai]
    pc, ssn = a.point_code, a.ssn
    if pc is not None:
        if not isinstance(pc, int) or not 0 <= pc <= 0x3FFF:
            raise _err("point code", 0, f"ITU point code {pc!r} outside 0..16383")
        head[1] |= 0x01
        head += (pc & 0xFF, pc >> 8)
    if ssn is not None:  # validated by the constructor
        head[1] |= 0x02
        head.append(ssn)
    digits = a.digits
    if not gti:
        if digits:
            raise _err("global title digits", 0, "digits need a global title indicator 1..4")
        head[0] = len(head) - 1
        return bytes(head)
    if digits.__class__ is not str:
        raise _err("global title digits", 0, f"digits must be a str, not {type(digits)}")
    odd = len(digits) & 1
    if gti == 4:
        head += (a.translation_type, (a.numbering_plan << 4) | (1 if odd else 2),
                 a.nature_of_address)
    elif gti == 1:
        head.append((0x80 if odd else 0) | a.nature_of_address)
    else:
        head.append(a.translation_type)
        if gti == 3:
            head.append((a.numbering_plan << 4) | (1 if odd else 2))
    bcd = _bcd(digits)
    n = len(head) - 1 + len(bcd)
    if n > 255:
        raise _err("party address", 0, f"address of {n} octets exceeds 255")
    head[0] = n
    return bytes(head) + bcd


_SccpAddressTwin = mutable_twin(SccpAddress)  # see protocols._twin


def _build(ri, gti, ssn, pc, digits, tt, np_, nai, national, lv) -> SccpAddress:
    """An address from already valid, normalised parts and its known encoding ``lv``.

    Skips :meth:`SccpAddress.__post_init__` (validation and encoding) and the frozen
    ``__init__`` for the two hot builders, :func:`_e164` and the decoder; both are checked
    against the constructor in the tests.
    """
    a = _SccpAddressTwin(ri, gti, ssn, pc, digits, tt, np_, nai, national, lv)
    a.__class__ = SccpAddress
    return a


_ROUTE_ON_GT = RoutingIndicator.ROUTE_ON_GT
_GTI4 = GlobalTitleIndicator.TT_NP_ES_NAI
_E164 = NumberingPlan.E164
_INTERNATIONAL = NatureOfAddressIndicator.INTERNATIONAL_NUMBER


def _e164_build(digits: str, ssn: int | None) -> SccpAddress:
    if digits[:1] == "+":
        digits = digits[1:]
    s = _SSN_OF.get(ssn)
    if s is None or not (digits.isdigit() and digits.isascii()):
        return SccpAddress(_ROUTE_ON_GT, _GTI4, ssn, None, digits, 0, _E164, _INTERNATIONAL)
    n = len(digits)
    if n > 500:
        raise _err("party address", 0, f"address of {(n + 1) // 2 + 5} octets exceeds 255")
    # BCD, first digit in the low nibble, odd count padded with F (as encode_bcd writes it)
    odd = n & 1
    bcd = bytes.fromhex(digits + "f" if odd else digits).translate(_SWAP)
    # indicator 0x12 (route on GT, GTI 4, SSN present), SSN, TT 0, NP E.164 + ES, NAI 4
    lv = bytes((5 + len(bcd), 0x12, s, 0, 0x11 if odd else 0x12, 4)) + bcd
    return _build(_ROUTE_ON_GT, _GTI4, s, None, digits, 0, _E164, _INTERNATIONAL, False, lv)


_e164 = lru_cache(maxsize=1024)(_e164_build)


def _decode_address_raw(raw: bytes) -> SccpAddress:
    """Decode an address parameter value; offsets in errors are relative to ``raw``.

    When ``raw`` is exactly what the encoder would produce (no spare bits set, F filler) it
    becomes the address's cached encoding; otherwise the constructor re-encodes canonically.
    """
    n = len(raw)
    if n == 0:
        raise _err("address indicator", 0, "empty party address")
    ai = raw[0]
    if (ai == 0x12 or ai == 0x52) and n > 5:
        # the hot path: GTI 4 with SSN, no point code (TS 29.002 §6.1.3 addresses), BCD
        # digits 0-9 with F filler, NAI spare bit clear: canonical, as the code below finds
        npes = raw[3]
        es = npes & 0x0F
        b = raw[4]
        if (es == 1 or es == 2) and b < 0x80:
            digits = raw[5:].translate(_SWAP).hex()
            if es == 2 or digits[-1] == "f":
                if es == 1:
                    digits = digits[:-1]
                if digits.isdigit():
                    return _build(_RI[ai >> 6], _GTI4, _SSN[raw[1]], None, digits, raw[2],
                                  _NP[npes >> 4], _NAI[b], False, bytes((n,)) + raw)
    return _decode_address_general(raw)


def _decode_address_general(raw: bytes) -> SccpAddress:
    """:func:`_decode_address_raw` for every address (``raw`` not empty)."""
    n = len(raw)
    ai = raw[0]
    i = 1
    pc = ssn = None
    canonical = True
    if ai & 0x01:
        if n < 3:
            raise _err("point code", 1, f"point code needs 2 octets, {n - 1} left")
        hi = raw[2]
        pc = raw[1] | ((hi & 0x3F) << 8)
        canonical = hi < 0x40
        i = 3
    if ai & 0x02:
        if i >= n:
            raise _err("subsystem number", i, "SSN indicated but missing")
        ssn = _SSN[raw[i]]
        i += 1
    gti = (ai >> 2) & 0x0F
    tt = np_ = nai = None
    odd = False
    if gti == 4:
        if n < i + 3:
            raise _err("global title", i, f"GTI 4 needs 3 header octets, {n - i} left")
        tt = raw[i]
        npes = raw[i + 1]
        es = npes & 0x0F
        if es != 1 and es != 2:
            raise _err("encoding scheme", i + 1, f"unsupported encoding scheme {es}")
        np_ = _NP[npes >> 4]
        b = raw[i + 2]
        nai = _NAI[b & 0x7F]
        canonical = canonical and b < 0x80
        i += 3
        odd = es == 1
    elif gti == 0:
        if i != n:
            raise _err("address length", i, f"{n - i} octets after an address without GT")
    elif gti == 1:
        if n < i + 1:
            raise _err("global title", i, "GTI 1 needs the nature of address octet")
        b = raw[i]
        nai = _NAI[b & 0x7F]
        odd = b >= 0x80
        i += 1
    elif gti == 2:
        if n < i + 1:
            raise _err("global title", i, "GTI 2 needs the translation type octet")
        tt = raw[i]
        i += 1
        odd = i < n and raw[-1] >= 0xF0
    elif gti == 3:
        if n < i + 2:
            raise _err("global title", i, f"GTI 3 needs 2 header octets, {n - i} left")
        tt = raw[i]
        npes = raw[i + 1]
        es = npes & 0x0F
        if es != 1 and es != 2:
            raise _err("encoding scheme", i + 1, f"unsupported encoding scheme {es}")
        np_ = _NP[npes >> 4]
        i += 2
        odd = es == 1
    else:
        raise _err("global title indicator", 0, f"unsupported global title indicator {gti}")
    if gti:
        digits = _digits(raw, i, odd)
        if odd and raw[-1] < 0xF0:
            canonical = False  # filler 0 (Q.713's letter); the encoder sends F
    else:
        digits = ""
    if canonical:
        return _build(_RI[(ai >> 6) & 1], _GTI[gti], ssn, pc, digits, tt, np_, nai,
                      ai >= 0x80, bytes((n,)) + raw)
    return SccpAddress(_RI[(ai >> 6) & 1], _GTI[gti], ssn, pc, digits, tt, np_, nai,
                       ai >= 0x80)


_decode_address_cached = lru_cache(maxsize=4096)(_decode_address_raw)


def _decode_address_at(raw: bytes, base: int, name: str) -> SccpAddress:
    try:
        return _decode_address_cached(raw)
    except CodecError as exc:
        raise _err(f"{name}: {exc.field}", base + exc.offset, exc.reason) from None


# --------------------------------------------------------------------------------------------
# Optional parameters
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Segmentation:
    """Segmentation parameter, 4 octets (Q.713 §3.17).

    Octet 1: bit 8 first segment (F), bit 7 class of the segmented message (C: 0 or 1, class 1
    asks for in-sequence delivery), bits 6-5 spare, bits 4-1 remaining segments. Octets 2-4:
    segmentation local reference (§3.2), an opaque 24-bit value kept as an int read least
    significant octet first, as Wireshark reads local references.
    """

    first: bool
    protocol_class: int
    remaining: int
    local_reference: int

    def encode(self) -> bytes:
        if self.protocol_class not in (0, 1):
            raise _err("segmentation", 0, f"class {self.protocol_class!r} is not 0 or 1")
        if not 0 <= self.remaining <= 15:
            raise _err("segmentation", 0, f"remaining segments {self.remaining!r} outside 0..15")
        if not 0 <= self.local_reference <= 0xFFFFFF:
            raise _err("segmentation", 0, "local reference outside 24 bits")
        octet = (0x80 if self.first else 0) | (self.protocol_class << 6) | self.remaining
        return bytes((octet,)) + self.local_reference.to_bytes(3, "little")


def _decode_optional(buf: bytes, start: int, n: int):
    """Optional part (Q.713 §1.8, §2.3): (name, length, value)... ended by 0x00 (§3.1).

    Returns (segmentation, importance, unknown). A missing end-of-optional-parameters octet is
    tolerated when the last parameter ends exactly at the end of the message.
    """
    seg = imp = None
    unknown = []
    i = start
    while True:
        if i >= n:  # (the caller checked the pointer lands inside, so a parameter was read)
            break  # no end-of-optional-parameters octet; the message ends cleanly
        name = buf[i]
        if name == 0:
            break
        if i + 1 >= n:
            raise _err("optional parameter length", i + 1, f"parameter {name:#04x} truncated")
        ln = buf[i + 1]
        v = i + 2
        end = v + ln
        if end > n:
            raise _err("optional parameter length", i + 1,
                       f"parameter {name:#04x} length {ln} runs past the message end {n}")
        if name == 0x10:
            if seg is not None:
                raise _err("segmentation", i, "segmentation parameter repeated")
            if ln != 4:
                raise _err("segmentation", i + 1, f"length {ln}, expected 4")
            b = buf[v]
            seg = Segmentation(bool(b & 0x80), (b >> 6) & 1, b & 0x0F,
                               int.from_bytes(buf[v + 1:end], "little"))
        elif name == 0x12:
            if imp is not None:
                raise _err("importance", i, "importance parameter repeated")
            if ln != 1:
                raise _err("importance", i + 1, f"length {ln}, expected 1")
            imp = buf[v] & 0x07
        else:
            unknown.append((name, buf[v:end]))
        i = end
    return seg, imp, tuple(unknown)


def _encode_optional(seg: Segmentation | None, imp: int | None,
                     unknown: tuple[tuple[int, bytes], ...]) -> bytes:
    out = bytearray()
    if seg is not None:
        out += b"\x10\x04" + seg.encode()
    if imp is not None:
        if not isinstance(imp, int) or not 0 <= imp <= 7:
            raise _err("importance", 0, f"importance {imp!r} outside 0..7")
        out += bytes((0x12, 1, imp))
    for name, value in unknown:
        if not 1 <= name <= 255 or len(value) > 255:
            raise _err("optional parameter", 0, f"cannot encode parameter {name!r}")
        out += bytes((name, len(value))) + value
    if out:
        out.append(0)  # end of optional parameters (§3.1)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Unitdata:
    """UDT, unitdata (Q.713 §4.10): connectionless data, class 0 or 1.

    ``protocol_class`` is the class (§3.6, bits 4-1: 0 or 1); ``return_on_error`` is message
    handling 1000 (bit 8), asking for a UDTS when the message cannot be delivered.
    """

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_on_error: bool = False
    message_type: ClassVar[MessageType] = MessageType.UDT


@dataclass(slots=True)
class UnitdataService:
    """UDTS, unitdata service (Q.713 §4.11): a UDT returned with the reason (§3.12)."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    cause: ReturnCause
    message_type: ClassVar[MessageType] = MessageType.UDTS


@dataclass(slots=True)
class ExtendedUnitdata:
    """XUDT, extended unitdata (Q.713 §4.18): UDT plus hop counter and optional part.

    ``hop_counter`` (§3.18) is normally 15 down to 1; the codec carries any octet and leaves the
    range check to routing. Optional parameters: segmentation (§3.17), importance (§3.19,
    0..7) and any others as raw ``(name, value)`` pairs, re-sent in that order.
    """

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_on_error: bool = False
    hop_counter: int = 15
    segmentation: Segmentation | None = None
    importance: int | None = None
    unknown_optional: tuple[tuple[int, bytes], ...] = ()
    message_type: ClassVar[MessageType] = MessageType.XUDT


@dataclass(slots=True)
class ExtendedUnitdataService:
    """XUDTS, extended unitdata service (Q.713 §4.19): an XUDT returned with the reason."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    cause: ReturnCause
    hop_counter: int = 15
    segmentation: Segmentation | None = None
    importance: int | None = None
    unknown_optional: tuple[tuple[int, bytes], ...] = ()
    message_type: ClassVar[MessageType] = MessageType.XUDTS


SccpMessage = Unitdata | UnitdataService | ExtendedUnitdata | ExtendedUnitdataService

_PARAM_NAMES = ("called party address", "calling party address", "data")


def _variable(buf: bytes, n: int, p: int, k: int) -> tuple[int, int]:
    """Locate the mandatory variable parameter whose pointer octet is at ``p`` (Q.713 §2.2)."""
    ptr = buf[p]
    if ptr == 0:
        raise _err(f"pointer to {_PARAM_NAMES[k]}", p, "pointer is 0")
    at = p + ptr
    if at >= n:
        raise _err(f"pointer to {_PARAM_NAMES[k]}", p,
                   f"points to offset {at}, past the message end {n}")
    end = at + 1 + buf[at]
    if end > n:
        raise _err(f"{_PARAM_NAMES[k]} length", at,
                   f"length {buf[at]} runs past the message end {n}")
    return at + 1, end


def _three(buf: bytes, n: int, p: int):
    """The three mandatory variable parameters: called, calling (decoded) and data."""
    a0, a1 = _variable(buf, n, p, 0)
    b0, b1 = _variable(buf, n, p + 1, 1)
    d0, d1 = _variable(buf, n, p + 2, 2)
    if d0 == d1:
        raise _err("data", d0 - 1, "empty data parameter")
    try:
        called = _decode_address_cached(buf[a0:a1])
    except CodecError as exc:
        raise _err(f"called party address: {exc.field}", a0 + exc.offset, exc.reason) from None
    try:
        calling = _decode_address_cached(buf[b0:b1])
    except CodecError as exc:
        raise _err(f"calling party address: {exc.field}", b0 + exc.offset, exc.reason) from None
    return called, calling, buf[d0:d1]


def _protocol_class(b: int) -> tuple[int, bool]:
    """Protocol class octet (Q.713 §3.6): class 0/1 in bits 4-1, handling 0000/1000 in 8-5."""
    if b & 0x0E:
        raise _err("protocol class", 1, f"class {b & 0x0F} is not connectionless (0 or 1)")
    if b & 0x70:
        raise _err("protocol class", 1, f"message handling {b >> 4:#x} is spare")
    return b & 0x01, b >= 0x80


def _decode_udt(buf: bytes, n: int) -> Unitdata:
    if n < 5:
        raise _err("UDT", n, f"message of {n} octets is shorter than the fixed part")
    b = buf[1]
    if b & 0x7E:
        _protocol_class(b)
    # The hot path: the three pointers and lengths checked inline (as _variable does). Any
    # fault, in them or in an address, goes to _three, which finds and names it.
    a = 2 + buf[2]
    c = 3 + buf[3]
    d = 4 + buf[4]
    if a > 2 and c > 3 and d > 4 and a < n and c < n and d < n:
        a_end = a + 1 + buf[a]
        c_end = c + 1 + buf[c]
        d_end = d + 1 + buf[d]
        if a_end <= n and c_end <= n and d + 1 < d_end <= n:
            try:
                return Unitdata(_decode_address_cached(buf[a + 1:a_end]),
                                _decode_address_cached(buf[c + 1:c_end]),
                                buf[d + 1:d_end], b & 1, b >= 0x80)
            except CodecError:
                pass
    called, calling, data = _three(buf, n, 2)
    return Unitdata(called, calling, data, b & 1, b >= 0x80)


# the last octet of an odd count of BCD digits (F filler)
_BCD_ODD_LAST = frozenset(0xF0 | lo for lo in range(10))
# octet -> b"0" when it holds two BCD digits 0-9, b"x" otherwise: ``raw.translate(_BCD_OK)
# .isdigit()`` says whether every octet of raw does (False for no octet at all)
_BCD_OK = bytes(0x30 if (b >> 4) < 10 and (b & 0x0F) < 10 else 0x78 for b in range(256))


def _address_ok(lv: bytes) -> bool:
    """True when ``lv`` (length octet, then the address) holds an address of the form
    :func:`_decode_address_raw` reads on its hot path (GTI 4 with SSN, BCD digits 0-9, F
    filler), which therefore decodes; False says nothing (the decoder decides)."""
    if len(lv) < 7:
        return False
    ai = lv[1]
    es = lv[4] & 0x0F
    if (ai != 0x12 and ai != 0x52) or lv[5] >= 0x80:
        return False
    return bcd_digits_ok(lv, 6, len(lv), es)


def bcd_digits_ok(buf: bytes, start: int, end: int, es: int) -> bool:
    """True when ``buf[start:end]`` (at least one octet) holds address digits of encoding
    scheme ``es`` as :func:`_decode_address_raw` reads them on its hot path: BCD 0-9 in
    every nibble for 2 (even), the same with an F filler as the last high nibble for 1
    (odd); False for any other scheme."""
    if es == 2:
        return buf[start:end].translate(_BCD_OK).isdigit()
    return es == 1 and buf[end - 1] in _BCD_ODD_LAST and (
        end - start == 1 or buf[start:end - 1].translate(_BCD_OK).isdigit())


def unitdata_payload(buf: bytes) -> bytes | None:
    """The data of ``buf`` when it is a UDT that :func:`decode` reads (pointers, lengths and
    protocol class checked as it checks them) with both addresses of the inter-PLMN form
    (GTI 4 with SSN, BCD digits), without building the message or its addresses: a receiver
    that only needs the TCAP inside. None for anything else, well-formed or not (then
    :func:`decode` reads it, and names any fault)."""
    split = unitdata_split(buf)
    return None if split is None else split[2]


def unitdata_split(buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """``(called, calling, data)`` of ``buf`` when it is a UDT that :func:`decode` reads
    (pointers, lengths and protocol class checked as it checks them) with both addresses of
    the inter-PLMN form (GTI 4 with SSN, BCD digits), the addresses as they stand in the UDT
    (length octet first, as :func:`encode_unitdata_lv` takes them), without building the
    message or its addresses. None for anything else (:func:`decode` names any fault)."""
    n = len(buf)
    if n < 5 or buf[0] != 0x09 or buf[1] & 0x7E or type(buf) is not bytes:
        return None
    a = 2 + buf[2]
    c = 3 + buf[3]
    d = 4 + buf[4]
    if not (a > 2 and c > 3 and d > 4 and a < n and c < n and d < n):
        return None
    a_end = a + 1 + buf[a]
    c_end = c + 1 + buf[c]
    d_end = d + 1 + buf[d]
    if not (a_end <= n and c_end <= n and d + 1 < d_end <= n and a_end - a > 6 < c_end - c):
        return None
    # _address_ok of both, without slicing the addresses out first
    ai = buf[a + 1]
    ci = buf[c + 1]
    if ((ai == 0x12 or ai == 0x52) and (ci == 0x12 or ci == 0x52)
            and buf[a + 5] < 0x80 and buf[c + 5] < 0x80
            and bcd_digits_ok(buf, a + 6, a_end, buf[a + 4] & 0x0F)
            and bcd_digits_ok(buf, c + 6, c_end, buf[c + 4] & 0x0F)):
        return buf[a:a_end], buf[c:c_end], buf[d + 1:d_end]
    return None


def _decode_udts(buf: bytes, n: int) -> UnitdataService:
    if n < 5:
        raise _err("UDTS", n, f"message of {n} octets is shorter than the fixed part")
    called, calling, data = _three(buf, n, 2)
    return UnitdataService(called, calling, data, _CAUSE[buf[1]])


def _decode_extended(buf: bytes, n: int, service: bool):
    if n < 7:
        raise _err("XUDTS" if service else "XUDT", n,
                   f"message of {n} octets is shorter than the fixed part")
    called, calling, data = _three(buf, n, 3)
    seg = imp = None
    unknown: tuple[tuple[int, bytes], ...] = ()
    ptr = buf[6]
    if ptr:
        at = 6 + ptr
        if at >= n:
            raise _err("pointer to optional part", 6,
                       f"points to offset {at}, past the message end {n}")
        seg, imp, unknown = _decode_optional(buf, at, n)
    if service:
        return ExtendedUnitdataService(called, calling, data, _CAUSE[buf[1]], buf[2], seg, imp,
                                       unknown)
    cls, roe = _protocol_class(buf[1])
    return ExtendedUnitdata(called, calling, data, cls, roe, buf[2], seg, imp, unknown)


def decode(buf: bytes) -> SccpMessage:
    """Decode one SCCP connectionless message (Q.713 §4.10, §4.11, §4.18, §4.19).

    Raises :class:`CodecError` (and nothing else) on malformed or unsupported input.
    """
    try:
        if type(buf) is not bytes:
            buf = bytes(buf)
        n = len(buf)
        if n == 0:
            raise _err("message type", 0, "empty message")
        mt = buf[0]
        if mt == 0x09:
            return _decode_udt(buf, n)
        if mt == 0x11:
            return _decode_extended(buf, n, False)
        if mt == 0x0A:
            return _decode_udts(buf, n)
        if mt == 0x12:
            return _decode_extended(buf, n, True)
        raise _err("message type", 0, f"unsupported message type {mt:#04x}")
    except CodecError:
        raise
    except Exception as exc:  # a bug, never a malformed-input path: still only CodecError
        raise _err("message", 0, f"undecodable: {exc!r}") from None


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _class_octet(m: Unitdata | ExtendedUnitdata) -> int:
    c = m.protocol_class
    if c != 0 and c != 1:
        raise _err("protocol class", 1, f"class {c!r} is not 0 or 1")
    return (0x80 if m.return_on_error else 0) | c


def _data_lv(data: bytes) -> bytes:
    ld = len(data)
    if not 1 <= ld <= 255:
        raise _err("data", 0, f"data of {ld} octets outside 1..255")
    return bytes((ld,)) + data


def _encode_udt_like(first: int, second: int, m) -> bytes:
    a = m.called._lv
    b = m.calling._lv
    la = len(a)
    p3 = 1 + la + len(b)
    if p3 > 255:
        raise _err("pointer to data", 4, f"pointer {p3} exceeds 255")
    return bytes((first, second, 3, 2 + la, p3)) + a + b + _data_lv(m.data)


def _encode_extended(first: int, second: int, m) -> bytes:
    hops = m.hop_counter
    if not isinstance(hops, int) or not 0 <= hops <= 255:
        raise _err("hop counter", 2, f"hop counter {hops!r} outside 0..255")
    a = m.called._lv
    b = m.calling._lv
    d = _data_lv(m.data)
    la, lb = len(a), len(b)
    opt = _encode_optional(m.segmentation, m.importance, m.unknown_optional)
    p4 = 1 + la + lb + len(d) if opt else 0
    if 2 + la + lb > 255 or p4 > 255:
        raise _err("pointer to optional part", 6, "message too long for one-octet pointers")
    return bytes((first, second, hops, 4, 3 + la, 2 + la + lb, p4)) + a + b + d + opt


def _cause(m) -> int:
    c = m.cause
    if not isinstance(c, int) or not 0 <= c <= 255:
        raise _err("return cause", 1, f"return cause {c!r} outside 0..255")
    return c


_OCTETS = tuple(bytes((i,)) for i in range(256))


def encode_unitdata(called: SccpAddress, calling: SccpAddress, data: bytes,
                    protocol_class: int = 0, return_on_error: bool = False) -> bytes:
    """A UDT (Q.713 §4.10) from its parts, without building a :class:`Unitdata`: the same
    bytes, and the same errors, as ``encode(Unitdata(called, calling, data, protocol_class,
    return_on_error))``, which calls it."""
    try:
        return encode_unitdata_lv(called._lv, calling._lv, data, protocol_class,
                                  return_on_error)
    except CodecError:
        raise
    except Exception as exc:  # e.g. not an address
        raise _err("message", 0, f"unencodable: {exc!r}") from None


def encode_unitdata_lv(called: bytes, calling: bytes, data: bytes, protocol_class: int = 0,
                       return_on_error: bool = False) -> bytes:
    """:func:`encode_unitdata` from the addresses' encodings, length octet first (as a UDT
    holds them, and as :func:`unitdata_split` gives them): an answer sent back the way its
    request came, with the two addresses swapped, needs neither decoded."""
    try:
        if protocol_class != 0 and protocol_class != 1:
            raise _err("protocol class", 1, f"class {protocol_class!r} is not 0 or 1")
        a = called
        b = calling
        la = len(a)
        p3 = 1 + la + len(b)
        if p3 > 255:
            raise _err("pointer to data", 4, f"pointer {p3} exceeds 255")
        ld = len(data)
        if not 1 <= ld <= 255:
            raise _err("data", 0, f"data of {ld} octets outside 1..255")
        return (bytes((0x09, (0x80 if return_on_error else 0) | protocol_class, 3, 2 + la, p3))
                + a + b + _OCTETS[ld] + data)
    except CodecError:
        raise
    except Exception as exc:  # e.g. a str where bytes belong
        raise _err("message", 0, f"unencodable: {exc!r}") from None


def encode(msg: SccpMessage) -> bytes:
    """Encode one SCCP connectionless message (Q.713 §4.10, §4.11, §4.18, §4.19)."""
    try:
        t = type(msg)
        if t is Unitdata:
            return encode_unitdata(msg.called, msg.calling, msg.data, msg.protocol_class,
                                   msg.return_on_error)
        if t is ExtendedUnitdata:
            return _encode_extended(0x11, _class_octet(msg), msg)
        if t is UnitdataService:
            return _encode_udt_like(0x0A, _cause(msg), msg)
        if t is ExtendedUnitdataService:
            return _encode_extended(0x12, _cause(msg), msg)
        raise _err("message type", 0, f"cannot encode {t.__name__}")
    except CodecError:
        raise
    except Exception as exc:  # e.g. a str where bytes belong
        raise _err("message", 0, f"unencodable: {exc!r}") from None
