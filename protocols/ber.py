"""Hand-written BER (ITU-T X.690) reader and writer for the TCAP/MAP hot path.

Tags are handled as the integer value of their identifier octets, exactly as they stand on
the wire: ``0x62`` for a TCAP Begin, ``0xa1`` for ``[1]`` constructed, ``0x9f21`` for
``[33]`` primitive (X.690 §8.1.2.4 high-tag-number form). That keeps tag tests a single
integer comparison and lets an encoder write the tag back without computing it.

Reading (:func:`read_tlv`): single and multi-octet tags, short and long definite lengths
(X.690 §8.1.3.4-5, up to four length octets), indefinite length on constructed encodings
(§8.1.3.6, ended by two zero octets), strict bounds on every step. Every fault raises
:class:`~protocols.errors.CodecError` with layer BER and the offset of the faulty octet.

Writing (:func:`tlv`): definite lengths in the shortest form (X.690 §10.1, as DER does),
which is what every stack and the reference vectors produce.
"""

from __future__ import annotations

from .errors import CodecError, Layer

MAX_NESTING = 32  # indefinite-length encodings nested deeper than this are refused

UNIVERSAL_BOOLEAN = 0x01
UNIVERSAL_INTEGER = 0x02
UNIVERSAL_BIT_STRING = 0x03
UNIVERSAL_OCTET_STRING = 0x04
UNIVERSAL_NULL = 0x05
UNIVERSAL_OID = 0x06
UNIVERSAL_EXTERNAL = 0x28  # [UNIVERSAL 8] constructed
UNIVERSAL_ENUMERATED = 0x0A
UNIVERSAL_SEQUENCE = 0x30
UNIVERSAL_SET = 0x31


def context(number: int, constructed: bool = False) -> int:
    """The wire tag of ``[number]`` context-specific (X.690 §8.1.2)."""
    return _tag(0x80, number, constructed)


def application(number: int, constructed: bool = False) -> int:
    """The wire tag of ``[APPLICATION number]`` (X.690 §8.1.2)."""
    return _tag(0x40, number, constructed)


def _tag(cls: int, number: int, constructed: bool) -> int:
    first = cls | (0x20 if constructed else 0)
    if number < 31:
        return first | number
    groups = []
    while True:
        groups.append(number & 0x7F)
        number >>= 7
        if not number:
            break
    tag = first | 0x1F
    for i, g in enumerate(reversed(groups)):
        tag = (tag << 8) | g | (0x80 if i < len(groups) - 1 else 0)
    return tag


def is_constructed(tag: int) -> bool:
    """True when the tag's first identifier octet has the constructed bit (X.690 §8.1.2.5)."""
    return bool((tag >> (8 * ((tag.bit_length() - 1) // 8))) & 0x20)


def tag_bytes(tag: int) -> bytes:
    """The identifier octets of a wire tag integer."""
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def _err(offset: int, field: str, reason: str) -> CodecError:
    return CodecError(Layer.BER, field, offset, reason)


def read_tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int, int]:
    """Read one TLV at ``pos``, not reaching past ``end``.

    Returns ``(tag, value_start, value_end, next_pos)``; for an indefinite length the value
    ends where its end-of-contents octets start and ``next_pos`` is after them.
    """
    if pos + 2 <= end:  # fast path: one-octet tag, short definite length
        tag = buf[pos]
        ln = buf[pos + 1]
        if ln < 0x80 and tag & 0x1F != 0x1F:
            ve = pos + 2 + ln
            if ve > end:
                raise _err(pos + 1, "length", f"length {ln} runs past the end by {ve - end} octets")
            return tag, pos + 2, ve, ve
    tag, vs, ln = _header(buf, pos, end)
    if ln >= 0:
        return tag, vs, vs + ln, vs + ln
    ve = _find_eoc(buf, vs, end)
    return tag, vs, ve, ve + 2


def _header(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Identifier and length octets at ``pos``: ``(tag, value_start, length)``.

    ``length`` is -1 for the indefinite form; a definite value is checked to fit in ``end``.
    """
    if pos >= end:
        raise _err(pos, "tag", "data ends where a tag was expected")
    tag = first = buf[pos]
    p = pos + 1
    if tag & 0x1F == 0x1F:  # high-tag-number form, X.690 §8.1.2.4
        while True:
            if p >= end:
                raise _err(p, "tag", "data ends inside a multi-octet tag")
            b = buf[p]
            p += 1
            tag = (tag << 8) | b
            if not b & 0x80:
                break
            if p - pos > 4:
                raise _err(pos, "tag", "tag number too large")
    if p >= end:
        raise _err(p, "length", "data ends where a length was expected")
    ln = buf[p]
    p += 1
    if ln < 0x80:
        n = 0
    elif ln == 0x80:  # indefinite form: constructed encodings only (X.690 §8.1.3.2)
        if not first & 0x20:
            raise _err(p - 1, "length", "indefinite length on a primitive encoding")
        return tag, p, -1
    else:
        n = ln & 0x7F
        if n > 4:
            raise _err(p - 1, "length", f"{n} length octets is more than this codec accepts")
        if p + n > end:
            raise _err(p - 1, "length", "data ends inside a long-form length")
        ln = int.from_bytes(buf[p:p + n], "big")
        p += n
    if p + ln > end:
        raise _err(p - n - 1, "length", f"length {ln} runs past the end by {p + ln - end} octets")
    return tag, p, ln


def _find_eoc(buf: bytes, pos: int, end: int) -> int:
    """Offset of the end-of-contents octets closing the indefinite value starting at ``pos``."""
    depth = 1
    while True:
        if pos + 2 > end:
            raise _err(pos, "length", "indefinite-length value has no end-of-contents")
        if buf[pos] == 0 and buf[pos + 1] == 0:
            depth -= 1
            if not depth:
                return pos
            pos += 2
            continue
        _, vs, ln = _header(buf, pos, end)
        if ln < 0:
            depth += 1
            if depth > MAX_NESTING:
                raise _err(pos, "length", "indefinite-length nesting too deep")
            pos = vs
        else:
            pos = vs + ln


def children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """All TLVs inside a constructed value, as ``(tag, value_start, value_end)``."""
    out = []
    pos = start
    while pos < end:
        tag, vs, ve, pos = read_tlv(buf, pos, end)
        out.append((tag, vs, ve))
    return out


# --------------------------------------------------------------------------- writing

def encode_length(n: int) -> bytes:
    """Definite length in the shortest form (X.690 §8.1.3)."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n < 0x1000000:
        return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))
    return b"\x84" + n.to_bytes(4, "big")


def tlv(tag: int, value: bytes) -> bytes:
    """One TLV with a definite length; ``tag`` as its identifier octets' integer."""
    n = len(value)
    if tag < 0x100 and n < 0x80:
        return bytes((tag, n)) + value
    return tag_bytes(tag) + encode_length(n) + value


def encode_integer(value: int) -> bytes:
    """Content octets of an INTEGER: two's complement, minimal (X.690 §8.3.2)."""
    if 0 <= value < 0x80:
        return bytes((value,))
    n = (value + (value < 0)).bit_length() // 8 + 1
    return value.to_bytes(n, "big", signed=True)


def decode_integer(buf: bytes, start: int, end: int, field: str = "INTEGER") -> int:
    """Content octets of an INTEGER (X.690 §8.3)."""
    if start >= end:
        raise _err(start, field, "INTEGER with no content octets")
    if end - start > 8:
        raise _err(start, field, f"INTEGER of {end - start} octets is out of range")
    return int.from_bytes(buf[start:end], "big", signed=True)


def encode_oid(arcs: tuple[int, ...]) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise CodecError(Layer.BER, "OBJECT IDENTIFIER", 0, f"invalid arcs {arcs}")
    out = bytearray()
    for arc in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        group = []
        while arc:
            group.append(arc & 0x7F)
            arc >>= 7
        out.extend([g | 0x80 for g in reversed(group[1:])])
        out.append(group[0])
    return bytes(out)


def decode_oid(buf: bytes, start: int, end: int) -> tuple[int, ...]:
    """Content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    if start >= end:
        raise _err(start, "OBJECT IDENTIFIER", "no content octets")
    if buf[end - 1] & 0x80:
        raise _err(end - 1, "OBJECT IDENTIFIER", "last subidentifier is not terminated")
    arcs: list[int] = []
    acc = 0
    for i in range(start, end):
        b = buf[i]
        if acc == 0 and b == 0x80:
            raise _err(i, "OBJECT IDENTIFIER", "subidentifier with a leading 0x80 octet")
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(acc)
            acc = 0
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return head + tuple(arcs[1:])
