"""BER reader/writer (X.690): tags, lengths, primitives, strict bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import ber
from protocols.errors import CodecError, Layer


@pytest.mark.parametrize(
    ("number", "constructed", "wire"),
    [(0, False, "80"), (1, True, "a1"), (30, True, "be"), (31, False, "9f1f"),
     (33, False, "9f21"), (127, True, "bf7f"), (128, False, "9f8100"), (16383, False, "9fff7f")],
)
def test_context_tags(number: int, constructed: bool, wire: str) -> None:
    tag = ber.context(number, constructed)
    assert ber.tag_bytes(tag).hex() == wire
    assert ber.is_constructed(tag) is constructed
    buf = bytes.fromhex(wire) + b"\x01\xaa"
    assert ber.read_tlv(buf, 0, len(buf)) == (tag, len(buf) - 1, len(buf), len(buf))


def test_application_tag() -> None:
    assert ber.application(2, True) == 0x62
    assert ber.application(10) == 0x4A


@pytest.mark.parametrize(
    ("length_octets", "n"),
    [("05", 5), ("8105", 5), ("820005", 5), ("83000005", 5), ("8400000005", 5), ("8180", 128)],
)
def test_long_and_short_definite_lengths_are_accepted(length_octets: str, n: int) -> None:
    head = bytes.fromhex("04" + length_octets)
    buf = head + bytes(n)
    assert ber.read_tlv(buf, 0, len(buf)) == (4, len(head), len(buf), len(buf))


def test_writer_uses_shortest_length() -> None:
    assert ber.tlv(0x04, bytes(5)).hex() == "0405" + "00" * 5
    assert ber.tlv(0x04, bytes(128))[:3].hex() == "048180"
    assert ber.tlv(0x04, bytes(256))[:4].hex() == "04820100"
    assert ber.tlv(0x9F21, b"\x01").hex() == "9f210101"
    assert ber.encode_length(70000).hex() == "83011170"


def test_indefinite_length_nested() -> None:
    # SEQUENCE (indefinite) { INTEGER 1, [0] (indefinite) { INTEGER 2 } }
    buf = bytes.fromhex("30800201 01a08002 01020000 0000".replace(" ", ""))
    tag, vs, ve, nxt = ber.read_tlv(buf, 0, len(buf))
    assert (tag, vs, nxt) == (0x30, 2, len(buf))
    kids = ber.children(buf, vs, ve)
    assert [k[0] for k in kids] == [0x02, 0xA0]
    inner = ber.children(buf, kids[1][1], kids[1][2])
    assert inner == [(0x02, 9, 10)]


@pytest.mark.parametrize(
    ("wire", "field", "offset"),
    [
        ("", "tag", 0),
        ("04", "length", 1),
        ("0405aa", "length", 1),  # runs past the end
        ("9f", "tag", 1),  # multi-octet tag cut
        ("9f8181818181", "tag", 0),  # tag number too large
        ("0480aa0000", "length", 1),  # indefinite on primitive
        ("3080020101", "length", 5),  # no end-of-contents
        ("0485000000000001", "length", 1),  # too many length octets
        ("048201", "length", 1),  # long form cut
    ],
)
def test_malformed_names_layer_field_and_offset(wire: str, field: str, offset: int) -> None:
    buf = bytes.fromhex(wire)
    with pytest.raises(CodecError) as info:
        ber.read_tlv(buf, 0, len(buf))
    assert info.value.layer is Layer.BER
    assert info.value.field == field
    assert info.value.offset == offset
    assert f"offset {offset}" in str(info.value)


def test_deep_indefinite_nesting_is_refused() -> None:
    buf = b"\x30\x80" * (ber.MAX_NESTING + 2) + b"\x00\x00" * (ber.MAX_NESTING + 2)
    with pytest.raises(CodecError, match="too deep"):
        ber.read_tlv(buf, 0, len(buf))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_round_trip_minimal(value: int) -> None:
    enc = ber.encode_integer(value)
    assert ber.decode_integer(enc, 0, len(enc)) == value
    assert enc == value.to_bytes(len(enc), "big", signed=True)
    if len(enc) > 1:  # minimal: the first 9 bits are not all equal
        assert not (enc[0] == 0 and enc[1] < 0x80) and not (enc[0] == 0xFF and enc[1] >= 0x80)


@given(st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=10),
       st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=39))
def test_oid_round_trip(tail: list[int], first: int, second: int) -> None:
    arcs = (first, second, *tail)
    enc = ber.encode_oid(arcs)
    assert ber.decode_oid(enc, 0, len(enc)) == arcs


def test_oid_known_encodings() -> None:
    assert ber.encode_oid((0, 0, 17, 773, 1, 1, 1)).hex() == "00118605010101"
    assert ber.encode_oid((0, 4, 0, 0, 1, 0, 20, 3)).hex() == "04000001001403"
    for bad in ("", "0186", "008001"):
        buf = bytes.fromhex(bad)
        with pytest.raises(CodecError):
            ber.decode_oid(buf, 0, len(buf))


@settings(max_examples=400)
@given(st.binary(max_size=64))
def test_reader_only_raises_codec_error(data: bytes) -> None:
    pos = 0
    try:
        while pos < len(data):
            _, vs, ve, pos = ber.read_tlv(data, pos, len(data))
            assert pos <= len(data) and vs <= ve
    except CodecError:
        pass
