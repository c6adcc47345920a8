"""Shared MAP building blocks: field readers and writers, error conversion, the ExtensionContainer.

Everything here serves the hand-written codecs in the sibling modules (TS 29.002 §17.7). The
decoders are plain ``read_tlv``-style loops over a parameter's bytes; these helpers keep them
short without adding a generic (and slow) reflection layer.

Conventions for every decoder in :mod:`protocols.map`:

* the input is the component parameter's whole TLV (``0x30 ...`` for a SEQUENCE); offsets in
  a :class:`~protocols.errors.CodecError` count from its first octet;
* unknown tags (additions after an extension marker ``...`` in a later release) are skipped
  and kept verbatim in an ``unknown`` tuple, so a relay can re-encode them unchanged;
* a missing mandatory component or a malformed known one raises
  :class:`~protocols.errors.CodecError` with layer MAP, and nothing else escapes.

ExtensionContainer (TS 29.002 §17.7.11, MAP-ExtensionDataTypes) carries operator-private data
no gateway interprets: it is kept as its raw content octets (``bytes``) and written back under
whatever tag the enclosing type gives it.
"""

from __future__ import annotations

import enum
from typing import NoReturn, TypeVar

from ..ber import decode_integer, encode_integer, read_tlv, tlv
from ..errors import CodecError, Layer
from ..tbcd import AddressString, Imsi, encode_tbcd

MAP = Layer.MAP
E = TypeVar("E", bound=enum.IntEnum)

# Identifier octets used across modules (X.690 §8.1.2; tags as wire integers, see ber.py).
T_BOOLEAN = 0x01
T_INTEGER = 0x02
T_OCTET_STRING = 0x04
T_NULL = 0x05
T_ENUMERATED = 0x0A
T_SEQUENCE = 0x30

_CACHE_MAX = 4096  # decoded/encoded addresses remembered (gateway GTs and SC addresses repeat)


def err(field: str, offset: int, reason: str) -> CodecError:
    """A MAP-layer :class:`CodecError`."""
    return CodecError(MAP, field, offset, reason)


def convert(exc: BaseException, field: str) -> CodecError:
    """Turn any exception raised while decoding ``field`` into a MAP :class:`CodecError`.

    A MAP error passes through unchanged (it already names the innermost field); a BER or TBCD
    error is re-raised as MAP, keeping its offset; anything else (a bug, or a malformed value
    that slipped past a check) becomes a MAP error at offset 0 rather than escaping.
    """
    if isinstance(exc, CodecError):
        if exc.layer is MAP:
            return exc
        return CodecError(MAP, field, exc.offset, f"{exc.layer.value} {exc.field}: {exc.reason}")
    if isinstance(exc, RecursionError):
        return CodecError(MAP, field, 0, "nesting too deep")
    return CodecError(MAP, field, 0, f"{type(exc).__name__}: {exc}")


def fail(exc: BaseException, field: str) -> NoReturn:
    """Raise :func:`convert` of ``exc`` (for ``except Exception as exc: fail(exc, ...)``)."""
    raise convert(exc, field) from None


def as_bytes(data: object) -> bytes:
    """``data`` as ``bytes`` (a bytearray or memoryview is copied; anything else refused)."""
    if type(data) is bytes:
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise err("parameter", 0, f"expected bytes, got {type(data).__name__}")


def outer(data: bytes, tag: int, field: str) -> tuple[int, int]:
    """Check the parameter's outermost TLV: ``tag`` and spanning all of ``data`` (bytes).

    Returns the content's ``(start, end)``.
    """
    n = len(data)
    if n < 2:
        raise err(field, 0, "parameter shorter than a tag and a length")
    if data[0] != tag:
        raise err(field, 0, f"tag {data[0]:#04x} where {tag:#04x} was expected")
    ln = data[1]
    if ln < 0x80:
        if ln + 2 != n:
            raise err(field, 1, f"length {ln} does not match the {n - 2} octets that follow")
        return 2, n
    _, vs, ve, nxt = read_tlv(data, 0, n)
    if nxt != n:
        raise err(field, nxt, f"{n - nxt} octets after the end of the parameter")
    return vs, ve


def tlvs(buf: bytes, pos: int, end: int):
    """Yield ``(tag, tlv_start, value_start, value_end, next)`` for each TLV in ``buf[pos:end]``.

    ``buf[tlv_start:next]`` is the whole TLV as received (for keeping unknown ones raw).
    """
    while pos < end:
        start = pos
        t = buf[pos]
        if t & 0x1F != 0x1F and pos + 1 < end and buf[pos + 1] < 0x80:
            vs = pos + 2
            pos = vs + buf[pos + 1]
            if pos > end:
                raise err("length", start + 1, f"length {buf[start + 1]} runs past the end "
                          f"by {pos - end} octets")
            yield t, start, vs, pos, pos
        else:
            t, vs, ve, pos = read_tlv(buf, pos, end)
            yield t, start, vs, ve, pos


def add_unknown(unknown: list[bytes] | None, raw: bytes) -> list[bytes]:
    """Append a skipped TLV to a lazily created list."""
    if unknown is None:
        return [raw]
    unknown.append(raw)
    return unknown


# ----------------------------------------------------------------------------- readers

def boolean(buf: bytes, vs: int, ve: int, field: str) -> bool:
    """BOOLEAN contents (X.690 §8.2): one octet, any non-zero value is TRUE."""
    if ve - vs != 1:
        raise err(field, vs, f"BOOLEAN of {ve - vs} octets")
    return buf[vs] != 0


def null(buf: bytes, vs: int, ve: int, field: str) -> bool:
    """NULL contents (X.690 §8.8): none. Returns True (the flag is present)."""
    if ve != vs:
        raise err(field, vs, f"NULL with {ve - vs} content octets")
    return True


def integer(buf: bytes, vs: int, ve: int, field: str) -> int:
    """INTEGER contents (X.690 §8.3)."""
    if ve - vs == 1:
        b = buf[vs]
        return b - 256 if b & 0x80 else b
    try:
        return decode_integer(buf, vs, ve, field)
    except CodecError as exc:
        raise convert(exc, field) from None


def enumerated(cls: type[E], buf: bytes, vs: int, ve: int, field: str) -> E | int:
    """ENUMERATED contents: the enum member, or the bare int for a value this codec does not
    know (extensible enumerations: the receiver decides what an unknown value means)."""
    v = integer(buf, vs, ve, field)
    return cls._value2member_map_.get(v, v)  # type: ignore[return-value]


def octets(buf: bytes, vs: int, ve: int, field: str, size: int | None = None) -> bytes:
    """OCTET STRING contents, optionally of a fixed size."""
    if size is not None and ve - vs != size:
        raise err(field, vs, f"{ve - vs} octets where the type has exactly {size}")
    return bytes(buf[vs:ve])


#: octets -> decoded value, bounded by _CACHE_MAX (the hot path looks these up inline)
ADDRESS_CACHE: dict[bytes, AddressString] = {}
IMSI_CACHE: dict[bytes, Imsi] = {}


def address(buf: bytes, vs: int, ve: int, field: str) -> AddressString:
    """(ISDN-)AddressString contents (TS 29.002 §17.7.8), as :class:`AddressString`.

    Values are immutable, so decodings are memoised by their octets (bounded).
    """
    raw = buf[vs:ve]
    a = ADDRESS_CACHE.get(raw)
    if a is None:
        a = AddressString.decode(raw, vs, field)
        if len(ADDRESS_CACHE) >= _CACHE_MAX:
            ADDRESS_CACHE.clear()
        ADDRESS_CACHE[raw] = a
    return a


def imsi(buf: bytes, vs: int, ve: int, field: str = "IMSI") -> Imsi:
    """IMSI contents (TS 29.002 §17.7.8: TBCD-STRING (SIZE (3..8))), memoised like addresses."""
    raw = buf[vs:ve]
    i = IMSI_CACHE.get(raw)
    if i is None:
        if not 3 <= len(raw) <= 8:
            raise err(field, vs, f"length {len(raw)} outside 3..8")
        try:
            i = Imsi.decode(raw, vs)
        except CodecError as exc:
            raise CodecError(MAP, field, exc.offset, exc.reason) from None
        if len(IMSI_CACHE) >= _CACHE_MAX:
            IMSI_CACHE.clear()
        IMSI_CACHE[raw] = i
    return i


# ----------------------------------------------------------------------------- writers

def tl(tag: int, value: bytes) -> bytes:
    """One TLV (one-octet tag) with the shortest definite length (X.690 §10.1)."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    return tlv(tag, value)


def enc_int(tag: int, value: int) -> bytes:
    """An INTEGER or ENUMERATED under ``tag``."""
    if 0 <= value < 0x80:
        return bytes((tag, 1, value))
    return tl(tag, encode_integer(int(value)))


def enc_bool(tag: int, value: bool) -> bytes:
    """A BOOLEAN under ``tag``; TRUE as 0xFF (X.690 §11.1, as the reference vectors)."""
    return bytes((tag, 1, 0xFF if value else 0))


_ADDR_ENC: dict[str, tuple[int, int, bytes]] = {}


def enc_address(a: AddressString) -> bytes:
    """AddressString contents (TS 29.002 §17.7.8), memoised (bounded) on the hot path."""
    digits = a.digits
    hit = _ADDR_ENC.get(digits)
    nature = a.nature
    plan = a.plan
    if hit is not None and hit[0] == nature and hit[1] == plan:
        return hit[2]
    out = a.encode()
    if len(_ADDR_ENC) >= _CACHE_MAX:
        _ADDR_ENC.clear()
    _ADDR_ENC[digits] = (nature, plan, out)
    return out


def enc_number(a: AddressString) -> bytes:
    """AddressString contents, not memoised: for a subscriber's number (an MSISDN), new on
    nearly every call, which would only churn the memo and keep its entries alive."""
    if type(a) is AddressString:
        return a.encode()
    return enc_address(a)  # (a subclass; or not an address: the error is enc_address's)


def enc_imsi(i: Imsi) -> bytes:
    """IMSI contents (TBCD, TS 29.002 §17.7.8)."""
    digits = i.digits
    if not 5 <= len(digits) <= 16:
        raise err("IMSI", 0, f"{len(digits)} digits do not fit TBCD-STRING (SIZE (3..8))")
    if type(i) is Imsi:  # Imsi.encode, without the call
        return encode_tbcd(digits, MAP, "IMSI")
    return i.encode()


def opt_ext(tag: int, ext: bytes | None) -> bytes:
    """An optional ExtensionContainer under ``tag`` (content octets kept raw)."""
    return b"" if ext is None else tl(tag, ext)
