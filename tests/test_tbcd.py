"""TBCD digits, AddressString and IMSI (TS 29.002 §17.7.8, TS 23.003 §2.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import CodecError
from protocols.tbcd import (
    AddressString,
    Imsi,
    NatureOfAddress,
    NumberingPlan,
    decode_bcd,
    decode_tbcd,
    encode_bcd,
    encode_tbcd,
    isdn,
)

DIGITS = st.text(alphabet="0123456789*#abc", max_size=20)


def test_tbcd_known() -> None:
    assert encode_tbcd("234150999999999").hex() == "32140599999999f9"
    assert decode_tbcd(bytes.fromhex("32140599999999f9")) == "234150999999999"
    assert encode_tbcd("12*#").hex() == "21ba"


@given(DIGITS)
def test_tbcd_round_trip(digits: str) -> None:
    assert decode_tbcd(encode_tbcd(digits)) == digits


@given(DIGITS)
def test_bcd_round_trip(digits: str) -> None:
    enc = encode_bcd(digits)
    assert decode_bcd(enc, odd=len(digits) % 2 == 1) == digits


def test_bcd_odd_filler_either_way() -> None:
    assert decode_bcd(bytes.fromhex("447700091032f4"), odd=True) == "4477009001234"
    assert decode_bcd(bytes.fromhex("44770009103204"), odd=True) == "4477009001234"
    assert encode_bcd("4477009001234").hex() == "447700091032f4"


@pytest.mark.parametrize(("wire", "offset"), [("1f", 0), ("21f321", 1), ("f1f1", 0)])
def test_tbcd_filler_inside_is_an_error(wire: str, offset: int) -> None:
    with pytest.raises(CodecError) as info:
        decode_tbcd(bytes.fromhex(wire), offset=10)
    assert info.value.offset == 10 + offset


def test_unencodable_digit() -> None:
    with pytest.raises(CodecError):
        encode_tbcd("12x")


def test_address_string() -> None:
    a = isdn("+447700900123")
    assert a.encode().hex() == "91447700091032"
    assert AddressString.decode(bytes.fromhex("91447700091032")) == a
    assert str(a) == "+447700900123"
    national = AddressString("7700900123", NatureOfAddress.NATIONAL_SIGNIFICANT,
                             NumberingPlan.ISDN)
    assert national.encode()[0] == 0xA1
    assert AddressString.decode(national.encode()) == national
    with pytest.raises(CodecError):
        AddressString.decode(b"")


def test_imsi_home_network() -> None:
    uk = Imsi("234150999999999")
    assert (uk.mcc, uk.mnc, uk.msin) == ("234", "15", "0999999999")
    us = Imsi("310260123456789")
    assert (us.mcc, us.mnc, us.msin) == ("310", "260", "123456789")
    assert Imsi.decode(uk.encode()) == uk
    with pytest.raises(CodecError):
        Imsi.decode(b"\x01")
