"""TBCD digit strings, (ISDN-)AddressString and IMSI (3GPP TS 29.002 §17.7.8, TS 23.003 §2).

TBCD-STRING: two digits per octet, the first digit in the low nibble; an odd count ends
with the filler 0xF in the high nibble. Digits 0-9 plus ``*`` (0xA), ``#`` (0xB) and
``a``, ``b``, ``c`` (0xC-0xE) per TS 29.002 §17.7.8.

The same nibble order carries SCCP global-title digits (Q.713 §3.4.2.3.1), where the odd
or even count is signalled by the encoding scheme instead of a filler; :func:`decode_bcd`
and :func:`encode_bcd` serve both.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._twin import mutable_twin
from .errors import CodecError, Layer

_NIBBLE_TO_CHAR = "0123456789*#abc"  # 0xF is the filler
_CHAR_TO_NIBBLE = {c: i for i, c in enumerate(_NIBBLE_TO_CHAR)}
_CHAR_TO_NIBBLE.update({"A": 0xA, "B": 0xB, "C": 0xC})

# octet -> the two digits it carries (low nibble first); None where a nibble is invalid.
_PAIR: list[str | None] = []
for _octet in range(256):
    _lo, _hi = _octet & 0xF, _octet >> 4
    if _lo == 0xF:
        _PAIR.append(None)
    elif _hi == 0xF:
        _PAIR.append(_NIBBLE_TO_CHAR[_lo])
    else:
        _PAIR.append(_NIBBLE_TO_CHAR[_lo] + _NIBBLE_TO_CHAR[_hi])
_PAIR_T = tuple(_PAIR)
del _octet, _lo, _hi, _PAIR

# Digits with the first in the low nibble are hex with each octet's nibbles swapped: the
# fast paths below use bytes.translate + hex/fromhex and fall back for anything but 0-9.
_SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))

# two-digit string -> octet, for the general encoder
_ENC_PAIR = {a + b: (_CHAR_TO_NIBBLE[b] << 4) | _CHAR_TO_NIBBLE[a]
             for a in _NIBBLE_TO_CHAR for b in _NIBBLE_TO_CHAR}


def decode_tbcd(data: bytes, offset: int = 0, layer: Layer = Layer.TBCD,
                field: str = "TBCD-STRING") -> str:
    """Decode a TBCD-STRING; a 0xF filler may stand only in the last high nibble."""
    fast = data.translate(_SWAP).hex()
    if fast.isdigit():
        return fast
    if fast[-1:] == "f" and fast[:-1].isdigit():
        return fast[:-1]
    parts = [_PAIR_T[b] for b in data]
    n = len(data)
    if None not in parts:
        out = "".join(parts)  # type: ignore[arg-type]
        if len(out) == 2 * n or (len(out) == 2 * n - 1 and data[-1] >= 0xF0):
            return out
    for i, b in enumerate(data):
        if (b & 0xF) == 0xF or ((b >> 4) == 0xF and i != n - 1):
            raise CodecError(layer, field, offset + i, f"filler nibble inside digits ({b:#04x})")
    raise AssertionError("unreachable")  # pragma: no cover


def encode_tbcd(digits: str, layer: Layer = Layer.TBCD, field: str = "TBCD-STRING") -> bytes:
    """Encode digits as TBCD, padding an odd count with the 0xF filler."""
    if digits.isdigit() and digits.isascii():
        return bytes.fromhex(digits + "f" if len(digits) & 1 else digits).translate(_SWAP)
    enc = _ENC_PAIR
    n = len(digits)
    try:
        out = bytearray(enc[digits[i:i + 2]] for i in range(0, n - 1, 2))
        if n & 1:
            out.append(0xF0 | _CHAR_TO_NIBBLE[digits[-1]])
    except KeyError as exc:
        raise CodecError(layer, field, 0, f"digit not encodable in TBCD: {exc.args[0]!r}") from None
    return bytes(out)


def decode_bcd(data: bytes, odd: bool, offset: int = 0, layer: Layer = Layer.SCCP,
               field: str = "global title digits") -> str:
    """Decode BCD digits whose odd/even count is signalled out of band (SCCP GT, Q.713)."""
    fast = data.translate(_SWAP).hex()
    if odd:
        fast = fast[:-1]  # the filler nibble, 0 or F
    if fast.isdigit() or (not fast and not odd):
        return fast
    pair = _NIBBLE_TO_CHAR + "?"
    chars = []
    for b in data:
        chars.append(pair[b & 0xF])
        chars.append(pair[b >> 4])
    if odd:  # the last high nibble is filler (0 per Q.713, 0xF in practice): ignore it
        if not data:
            raise CodecError(layer, field, offset, "odd digit count with no digits")
        chars.pop()
    out = "".join(chars)
    if "?" in out:
        i = out.index("?") // 2
        raise CodecError(layer, field, offset + i, f"filler nibble inside digits ({data[i]:#04x})")
    return out


def encode_bcd(digits: str, layer: Layer = Layer.SCCP, field: str = "global title digits") -> bytes:
    """Encode BCD digits with their count signalled out of band (SCCP GT, Q.713 §3.4.2.3.1).

    An odd count ends with filler 0xF in the last high nibble, as the reference vectors and
    common stacks write it; Q.713 names 0000, and :func:`decode_bcd` accepts either.
    """
    return encode_tbcd(digits, layer, field)


class NatureOfAddress(enum.IntEnum):
    """AddressString nature of address indicator (TS 29.002 §17.7.8, bits 7-5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL_SIGNIFICANT = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    RESERVED = 5
    ABBREVIATED = 6
    EXTENSION = 7


class NumberingPlan(enum.IntEnum):
    """AddressString numbering plan indicator (TS 29.002 §17.7.8, bits 4-1)."""

    UNKNOWN = 0
    ISDN = 1  # ITU-T E.164
    SPARE_2 = 2
    DATA = 3  # ITU-T X.121
    TELEX = 4  # ITU-T F.69
    SPARE_5 = 5
    LAND_MOBILE = 6  # ITU-T E.212
    SPARE_7 = 7
    NATIONAL = 8
    PRIVATE = 9
    RESERVED = 15


_MAP = Layer.MAP  # (an enum member read from its class costs a lookup each time)
_NOA = tuple(NatureOfAddress)
_NPI = {p.value: p for p in NumberingPlan}


@dataclass(slots=True, frozen=True)
class AddressString:
    """AddressString / ISDN-AddressString (TS 29.002 §17.7.8).

    First octet: extension bit 1, nature of address (bits 7-5), numbering plan (bits 4-1);
    then the TBCD digits. ``0x91`` introduces an international E.164 number.
    """

    digits: str
    nature: NatureOfAddress = NatureOfAddress.INTERNATIONAL
    plan: NumberingPlan = NumberingPlan.ISDN

    def encode(self) -> bytes:
        return bytes((0x80 | (self.nature << 4) | self.plan,)) + encode_tbcd(
            self.digits, _MAP, "AddressString")

    @classmethod
    def decode(cls, data: bytes, offset: int = 0, field: str = "AddressString") -> AddressString:
        if not data:
            raise CodecError(Layer.MAP, field, offset, "empty AddressString")
        first = data[0]
        plan = _NPI.get(first & 0xF)
        if plan is None:
            plan = NumberingPlan.RESERVED if first & 0xF == 15 else NumberingPlan.UNKNOWN
        digits = decode_tbcd(data[1:], offset + 1, _MAP, field)
        if cls is AddressString:
            return _address(digits, _NOA[(first >> 4) & 7], plan)
        return cls(digits, _NOA[(first >> 4) & 7], plan)

    def __str__(self) -> str:
        return ("+" if self.nature is NatureOfAddress.INTERNATIONAL else "") + self.digits


# AddressStrings are built once per dialogue or more (the MSISDN, on each side): by a mutable
# twin re-classed to AddressString, without the frozen __init__ (see protocols._twin). Same
# values as the constructor (AddressString has no __post_init__): the tests compare.
_AddressStringTwin = mutable_twin(AddressString)
_INTERNATIONAL = NatureOfAddress.INTERNATIONAL
_ISDN = NumberingPlan.ISDN


def _address(digits: str, nature: NatureOfAddress, plan: NumberingPlan) -> AddressString:
    """``AddressString(digits, nature, plan)``, built without the dataclass ``__init__``."""
    a = _AddressStringTwin(digits, nature, plan)
    a.__class__ = AddressString
    return a


def isdn(digits: str) -> AddressString:
    """An international E.164 ISDN-AddressString (the common case on the HLR path)."""
    a = _AddressStringTwin(digits.lstrip("+") if digits[:1] == "+" else digits, _INTERNATIONAL,
                           _ISDN)
    a.__class__ = AddressString
    return a


# MCCs whose networks use three-digit MNCs (ITU-T E.212 operational bulletin; TS 23.003 §2.2
# leaves the length to the national plan). The 2/3 split is not visible in the IMSI itself.
THREE_DIGIT_MNC_MCCS = frozenset({
    "302", "310", "311", "312", "313", "314", "315", "316", "330", "334", "338", "342",
    "344", "346", "348", "354", "356", "358", "360", "365", "366", "376", "405", "708",
    "722", "732", "750",
})


@dataclass(slots=True, frozen=True)
class Imsi:
    """IMSI = MCC (3) + MNC (2 or 3) + MSIN (TS 23.003 §2.2); up to 15 digits."""

    digits: str

    @property
    def mcc(self) -> str:
        return self.digits[:3]

    @property
    def mnc(self) -> str:
        return self.digits[3:6] if self.digits[:3] in THREE_DIGIT_MNC_MCCS else self.digits[3:5]

    @property
    def msin(self) -> str:
        return self.digits[3 + len(self.mnc):]

    def encode(self) -> bytes:
        return encode_tbcd(self.digits, _MAP, "IMSI")

    @classmethod
    def decode(cls, data: bytes, offset: int = 0) -> Imsi:
        if not 3 <= len(data) <= 8:
            raise CodecError(Layer.MAP, "IMSI", offset, f"length {len(data)} outside 3..8")
        return cls(decode_tbcd(data, offset, _MAP, "IMSI"))

    def __str__(self) -> str:
        return self.digits
