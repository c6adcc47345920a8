"""SCCP connectionless codec (ITU-T Q.713): vectors, round trips, Wireshark, fuzzing."""

from __future__ import annotations

import dataclasses
import pickle
import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import sccp
from protocols.errors import CodecError, Layer
from protocols.sccp import (
    EncodingScheme,
    ExtendedUnitdata,
    ExtendedUnitdataService,
    GlobalTitleIndicator,
    MessageType,
    NatureOfAddressIndicator,
    NumberingPlan,
    ReturnCause,
    RoutingIndicator,
    SccpAddress,
    Segmentation,
    Ssn,
    Unitdata,
    UnitdataService,
    decode,
    encode,
)
from tests import wireshark
from tests.vectors import IDS, VECTORS

HLR_GT = IDS["hlr_gt"]  # 447700900123, also the MSISDN (SRI-SM is routed on it)
GW_GT = IDS["gateway_gt"]  # 447700900000
SCCP_VECTORS = sorted(name for name, v in VECTORS.items() if v.sccp is not None)
DISSECTED = Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / (
    "vectors-dissected.txt")


def m3ua_data(payload: bytes, opc: int = 1, dpc: int = 2) -> bytes:
    """A whole M3UA DATA message (RFC 4666 §3.3.1) carrying ``payload`` as SCCP (SI 3)."""
    pd = struct.pack(">IIBBBB", opc, dpc, 3, 2, 0, 0) + payload
    body = (struct.pack(">HHI", 0x0006, 8, 100)  # routing context 100
            + struct.pack(">HH", 0x0210, 4 + len(pd)) + pd + b"\0" * (-len(pd) % 4))
    return bytes((1, 0, 1, 1)) + struct.pack(">I", 8 + len(body)) + body


def full(digits: str, ssn: int) -> SccpAddress:
    """The inter-PLMN address written out field by field (no convenience constructor)."""
    return SccpAddress(
        routing_indicator=RoutingIndicator.ROUTE_ON_GT,
        gt_indicator=GlobalTitleIndicator.TT_NP_ES_NAI,
        ssn=ssn,
        point_code=None,
        digits=digits,
        translation_type=0,
        numbering_plan=NumberingPlan.ISDN_TELEPHONY,
        nature_of_address=NatureOfAddressIndicator.INTERNATIONAL_NUMBER,
        national_use=False,
    )


# --------------------------------------------------------------------------------------------
# Conformance vectors
# --------------------------------------------------------------------------------------------

# name -> (message class, called (digits, SSN), calling (digits, SSN)); from each vector's note
EXPECTED = {
    "srism_v3_begin": (Unitdata, (HLR_GT, Ssn.HLR), (GW_GT, Ssn.MSC)),
    "srism_v2_begin": (Unitdata, (HLR_GT, Ssn.HLR), (GW_GT, Ssn.MSC)),
    "srism_v3_end_result": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "srism_end_error_absent": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "srism_end_error_unknown": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "srism_end_error_barred": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "srism_end_error_teleservice": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "srism_abort_acn_not_supported": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "tcap_pabort_unrecognized_tid": (Unitdata, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "ati_v3_begin": (Unitdata, (HLR_GT, Ssn.HLR), (GW_GT, Ssn.GSMSCF)),
    "ati_v3_end_result": (Unitdata, (GW_GT, Ssn.GSMSCF), (HLR_GT, Ssn.HLR)),
    "ati_end_not_reachable": (Unitdata, (GW_GT, Ssn.GSMSCF), (HLR_GT, Ssn.HLR)),
    "srism_v3_begin_xudt": (ExtendedUnitdata, (HLR_GT, Ssn.HLR), (GW_GT, Ssn.MSC)),
    "sccp_udts_no_translation": (UnitdataService, (GW_GT, Ssn.MSC), (HLR_GT, Ssn.HLR)),
    "srism_v3_begin_odd_gt": (Unitdata, (HLR_GT + "4", Ssn.HLR), (GW_GT, Ssn.MSC)),
}


def expected_message(name: str):
    """The message each vector describes, built explicitly from its documented values."""
    cls, (cd, cds), (cg, cgs) = EXPECTED[name]
    called, calling, data = full(cd, cds), full(cg, cgs), VECTORS[name].tcap
    if cls is Unitdata:
        return Unitdata(called, calling, data, protocol_class=0, return_on_error=True)
    if cls is ExtendedUnitdata:
        return ExtendedUnitdata(called, calling, data, protocol_class=0, return_on_error=True,
                                hop_counter=15)
    return UnitdataService(called, calling, data,
                           cause=ReturnCause.NO_TRANSLATION_FOR_SPECIFIC_ADDRESS)


def test_every_sccp_vector_is_covered():
    assert sorted(EXPECTED) == SCCP_VECTORS


def assert_inter_plmn(addr: SccpAddress, digits: str, ssn: int) -> None:
    assert addr.routing_indicator is RoutingIndicator.ROUTE_ON_GT
    assert addr.gt_indicator == 4
    assert addr.digits == digits
    assert addr.ssn == ssn and addr.ssn is Ssn(ssn)
    assert addr.point_code is None
    assert addr.translation_type == 0
    assert addr.numbering_plan is NumberingPlan.E164
    assert addr.nature_of_address is NatureOfAddressIndicator.INTERNATIONAL_NUMBER
    assert addr.encoding_scheme is (EncodingScheme.BCD_ODD if len(digits) % 2
                                    else EncodingScheme.BCD_EVEN)
    assert addr.national_use is False


@pytest.mark.parametrize("name", SCCP_VECTORS)
def test_vector_decodes_to_documented_values(name):
    v = VECTORS[name]
    cls, (cd, cds), (cg, cgs) = EXPECTED[name]
    m = decode(v.sccp)
    assert type(m) is cls
    assert m.message_type == v.sccp[0]
    assert_inter_plmn(m.called, cd, cds)
    assert_inter_plmn(m.calling, cg, cgs)
    assert m.data == v.tcap
    if cls is UnitdataService:
        assert m.cause is ReturnCause.NO_TRANSLATION_FOR_SPECIFIC_ADDRESS
        assert m.cause == 1
    else:
        assert m.protocol_class == 0
        assert m.return_on_error is True
    if cls is ExtendedUnitdata:
        assert m.hop_counter == 15
        assert (m.segmentation, m.importance, m.unknown_optional) == (None, None, ())
    assert m == expected_message(name)


def test_specific_vector_facts():
    assert type(decode(VECTORS["srism_v3_begin_xudt"].sccp)).__name__ == "ExtendedUnitdata"
    odd = decode(VECTORS["srism_v3_begin_odd_gt"].sccp).called
    assert odd.digits == "4477009001234" and odd.odd
    assert odd.encoding_scheme is EncodingScheme.BCD_ODD
    assert decode(VECTORS["srism_v3_begin"].sccp).called.encoding_scheme == 2


@pytest.mark.parametrize("name", SCCP_VECTORS)
def test_vector_encodes_byte_for_byte(name):
    v = VECTORS[name]
    assert encode(expected_message(name)) == v.sccp
    assert encode(decode(v.sccp)) == v.sccp


@pytest.mark.parametrize("name", SCCP_VECTORS)
def test_vector_with_e164_constructor(name):
    m = expected_message(name)
    m.called = SccpAddress.e164(m.called.digits, m.called.ssn)
    m.calling = SccpAddress.e164("+" + m.calling.digits, m.calling.ssn)
    assert encode(m) == VECTORS[name].sccp


def _dissected_blocks() -> dict[str, str]:
    text = DISSECTED.read_text()
    blocks = {}
    for part in text.split("##### ")[1:]:
        name = part.split(":", 1)[0]
        sccp_part = part.split("Signalling Connection Control Part", 1)
        if len(sccp_part) == 2:
            blocks[name] = sccp_part[1].split("Transaction Capabilities Application Part")[0]
    return blocks


@pytest.mark.skipif(not DISSECTED.exists(), reason="no ../shared/conformance dissection")
@pytest.mark.parametrize("name", SCCP_VECTORS)
def test_vector_matches_wireshark_dissection_file(name):
    """The decoded values equal what Wireshark printed for the vector (vectors-dissected.txt)."""
    block = _dissected_blocks()[name]
    m = decode(VECTORS[name].sccp)
    mt = int(re.search(r"Message Type: .*\((0x[0-9a-f]+)\)", block).group(1), 16)
    assert m.message_type == mt
    assert re.findall(r"Called Party Digits: (\w+)", block)[0] == m.called.digits
    assert re.findall(r"Calling Party Digits: (\w+)", block)[0] == m.calling.digits
    ssns = [int(x) for x in re.findall(r"SubSystem Number: .*\((\d+)\)", block)]
    assert ssns == [m.called.ssn, m.calling.ssn]
    assert re.findall(r"Translation Type: 0x.. \((\d+)\)", block) == ["0", "0"]
    assert len(re.findall(r"Numbering Plan: ISDN/telephony \(0x1\)", block)) == 2
    assert len(re.findall(r"Nature of Address Indicator: International number", block)) == 2
    es = re.findall(r"Encoding Scheme: BCD, (odd|even) number of digits", block)
    assert es == ["odd" if a.odd else "even" for a in (m.called, m.calling)]
    if isinstance(m, UnitdataService):
        cause = re.search(r"Return Cause: .*\((0x[0-9a-f]+)\)", block).group(1)
        assert m.cause == int(cause, 16)
    else:
        assert m.protocol_class == int(re.search(r"Class: (0x[0-9a-f]+)", block).group(1), 16)
        assert "Return message on error" in block
    if isinstance(m, ExtendedUnitdata):
        assert m.hop_counter == int(re.search(r"Hop Counter: (0x[0-9a-f]+)", block).group(1), 16)
        assert "Pointer to Optional parameter: 0" in block


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------


def test_e164_constructor_matches_the_generic_constructor():
    for digits in ("447700900123", "4477009001234", "1", "", "+447700900000"):
        for ssn in (Ssn.HLR, 8, 147, 0, 255):
            fast = SccpAddress.e164(digits, ssn)
            slow = full(digits.lstrip("+"), ssn)
            assert fast == slow
            assert fast.encode() == slow.encode()
            assert fast.ssn == ssn
    # without SSN or with non-BCD digits the generic constructor is used
    assert SccpAddress.e164("12*#", None) == full("12*#", None)
    assert SccpAddress.e164(GW_GT, 8) is SccpAddress.e164(GW_GT, 8)  # memoised


def test_address_defaults_and_derived_fields():
    a = SccpAddress(digits="12345", ssn=6)
    assert a.gt_indicator is GlobalTitleIndicator.TT_NP_ES_NAI
    assert (a.translation_type, a.numbering_plan, a.nature_of_address) == (0, 1, 4)
    assert a.odd and a.encoding_scheme is EncodingScheme.BCD_ODD
    assert a.encode() == bytes.fromhex("12060011042143f5")
    b = SccpAddress(ssn=6, point_code=100)
    assert b.gt_indicator == 0 and b.digits == "" and b.encoding_scheme is None
    assert (b.translation_type, b.numbering_plan, b.nature_of_address) == (None, None, None)
    assert b.encode() == bytes((0x03, 100, 0, 6))
    r = SccpAddress.route_on_ssn(Ssn.HLR, 0x3FFF)
    assert r.encode() == bytes((0x43, 0xFF, 0x3F, 6))
    assert str(SccpAddress.e164(HLR_GT, 6)) == f"GT {HLR_GT} SSN 6"
    assert str(SccpAddress(gt_indicator=0)) == "(empty address)"


def test_address_replace_pickle_hash():
    a = SccpAddress.e164(HLR_GT, Ssn.HLR)
    b = dataclasses.replace(a, ssn=Ssn.VLR)
    assert b.encode()[1] == 7 and a.encode()[1] == 6
    assert pickle.loads(pickle.dumps(a)) == a
    assert pickle.loads(pickle.dumps(a)).encode() == a.encode()
    assert hash(a) == hash(full(HLR_GT, 6))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.digits = "1"  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, field", [
    (dict(gt_indicator=5, digits="1"), "global title indicator"),
    (dict(gt_indicator=2, digits="12", numbering_plan=1), "numbering plan"),
    (dict(gt_indicator=1, digits="12", translation_type=0), "translation type"),
    (dict(gt_indicator=3, digits="12", nature_of_address=4), "nature of address"),
    (dict(gt_indicator=0, digits="12"), "global title digits"),
    (dict(digits="12x"), "global title digits"),
    (dict(digits="12", point_code=0x4000), "point code"),
    (dict(digits="12", point_code=-1), "point code"),
    (dict(digits="12", ssn=256), "subsystem number"),
    (dict(digits="12", translation_type=256), "translation type"),
    (dict(digits="12", numbering_plan=16), "numbering plan"),
    (dict(digits="12", nature_of_address=128), "nature of address"),
    (dict(digits="12", routing_indicator=2), "routing indicator"),
    (dict(digits="1" * 600), "party address"),
])
def test_unencodable_address_raises_codec_error(kwargs, field):
    with pytest.raises(CodecError) as ei:
        SccpAddress(**kwargs)
    assert ei.value.layer is Layer.SCCP and ei.value.field == field


def test_constructor_normalises_equivalent_values():
    a = SccpAddress(gt_indicator=4, digits="12", ssn=6.0, translation_type=0.0, national_use=1)
    assert a.ssn is Ssn.HLR and type(a.translation_type) is int and a.national_use is True
    assert a.encode() == bytes((0x92, 6, 0, 0x12, 4, 0x21))
    assert SccpAddress.e164("12", 6.0).encode() == SccpAddress.e164("12", 6).encode()
    assert str(SccpAddress.route_on_ssn(6, 5)) == "SSN 6 PC 5"
    with pytest.raises(CodecError) as ei:
        SccpAddress.e164("1" * 600, 6)
    assert ei.value.field == "party address"
    with pytest.raises(CodecError):
        SccpAddress(digits=b"12")  # type: ignore[arg-type]
    for seg in (Segmentation(True, 0, 16, 0), Segmentation(True, 0, 0, 1 << 24)):
        with pytest.raises(CodecError) as ei:
            seg.encode()
        assert ei.value.field == "segmentation"


def test_spare_code_points_decode_to_named_members():
    assert NatureOfAddressIndicator(5).name == "SPARE_5"
    assert NatureOfAddressIndicator(113).name == "NATIONAL_113"
    assert NatureOfAddressIndicator(127) is NatureOfAddressIndicator.RESERVED
    assert ReturnCause(200).name == "SPARE_200" and ReturnCause(200) == 200
    with pytest.raises(ValueError):
        NatureOfAddressIndicator(128)
    with pytest.raises(ValueError):
        ReturnCause(256)
    assert NumberingPlan(7) is NumberingPlan.E214 is NumberingPlan.ISDN_MOBILE
    assert [Ssn.HLR, Ssn.VLR, Ssn.MSC, Ssn.EIR, Ssn.AUC] == [6, 7, 8, 9, 10]
    assert [Ssn.GMLC, Ssn.CAP, Ssn.GSMSCF, Ssn.SGSN] == [145, 146, 147, 149]
    assert [c.value for c in ReturnCause][:15] == list(range(15))


def test_non_canonical_addresses_decode_and_reencode_canonically():
    data = VECTORS["srism_v3_begin"].tcap
    gw = SccpAddress.e164(GW_GT, 8).encode()
    # odd digits with Q.713's filler 0, point code spare bits set, GTI 4 NAI spare bit set
    called = bytes((0x13, 0x34, 0xC1, 0x06, 0x00, 0x11, 0x84, 0x21, 0x43, 0x05))
    raw = (bytes((0x09, 0x00, 3, 3 + len(called), 3 + len(called) + len(gw), len(called)))
           + called + bytes((len(gw),)) + gw + bytes((len(data),)) + data)
    m = decode(raw)
    assert m.called.digits == "12345" and m.called.point_code == 0x134
    assert m.called.nature_of_address == 4 and m.called.ssn == 6
    again = encode(m)
    assert again != raw
    assert decode(again) == m
    canonical = SccpAddress(gt_indicator=4, digits="12345", ssn=6, point_code=0x0134)
    assert m.called == canonical and m.called.encode() == canonical.encode()


# --------------------------------------------------------------------------------------------
# Round trips over every message type and address form, checked in Wireshark
# --------------------------------------------------------------------------------------------

TCAP = VECTORS["srism_v3_begin"].tcap


def address_forms() -> list[SccpAddress]:
    out = []
    for pc in (None, 1234):
        for ssn in (None, 6):
            out.append(SccpAddress(RoutingIndicator.ROUTE_ON_SSN, 0, ssn, pc))
            for gti in (1, 2, 3, 4):
                for digits in ("447700900123", "4477009001234"):
                    kw = {}
                    if gti in (2, 3, 4):
                        kw["translation_type"] = 0 if gti == 4 else 5
                    if gti in (3, 4):
                        kw["numbering_plan"] = NumberingPlan.E164 if gti == 4 else 7
                    if gti in (1, 4):
                        kw["nature_of_address"] = 4 if gti == 4 else 3
                    out.append(SccpAddress(RoutingIndicator.ROUTE_ON_GT, gti, ssn, pc, digits,
                                           **kw))
    return out


def message_matrix():
    forms = address_forms()
    msgs = []
    for i, called in enumerate(forms):
        calling = forms[(i * 7 + 3) % len(forms)]
        msgs.append(Unitdata(called, calling, TCAP, i % 2, bool(i % 3)))
        msgs.append(UnitdataService(called, calling, TCAP, ReturnCause(i % 15)))
        msgs.append(ExtendedUnitdata(called, calling, TCAP, i % 2, True, 1 + i % 15))
        msgs.append(ExtendedUnitdataService(called, calling, TCAP, ReturnCause(14 - i % 15),
                                            15 - i % 15))
    return msgs


def test_round_trip_every_message_type_and_address_form():
    msgs = message_matrix()
    assert len(msgs) == 4 * 36
    for m in msgs:
        raw = encode(m)
        assert raw[0] == m.message_type
        assert decode(raw) == m
        assert encode(decode(raw)) == raw


def test_round_trip_optional_parameters():
    a, b = SccpAddress.e164(HLR_GT, 6), SccpAddress.e164(GW_GT, 8)
    seg = Segmentation(first=True, protocol_class=1, remaining=0, local_reference=0x123456)
    m = ExtendedUnitdata(a, b, TCAP, 1, False, 7, seg, 5, ((0x77, b"ab"), (0x13, b"")))
    raw = encode(m)
    assert raw[6] != 0 and raw.endswith(b"\x77\x02ab\x13\x00\x00")
    assert decode(raw) == m
    s = ExtendedUnitdataService(a, b, TCAP, ReturnCause.HOP_COUNTER_VIOLATION, 0, None, 0)
    assert decode(encode(s)) == s
    # the optional part may come in any order, and its end octet may be missing at the end
    base = encode(ExtendedUnitdata(a, b, TCAP))
    opt_at = len(base)
    body = bytearray(base)
    body[6] = opt_at - 6
    body += b"\x12\x01\x03\x10\x04\x80\x01\x02\x03"
    d = decode(bytes(body))
    assert d.importance == 3
    assert d.segmentation == Segmentation(True, 0, 0, 0x030201)


def tshark_lines(msgs) -> list[list[str]]:
    fields = ["sccp.message_type", "sccp.called.gti", "sccp.called.digits", "sccp.called.ssn",
              "sccp.called.pc", "sccp.calling.gti", "sccp.calling.digits", "sccp.calling.ssn",
              "sccp.calling.pc", "sccp.called.ri", "sccp.called.tt", "sccp.called.np",
              "sccp.called.es", "sccp.called.nai", "sccp.called.oe", "sccp.return_cause",
              "sccp.hops", "sccp.class", "sccp.handling"]
    out = wireshark.decode([m3ua_data(encode(m)) for m in msgs], fields=fields)
    lines = [line.split("\t") for line in out.splitlines()]
    assert len(lines) == len(msgs)
    return lines


def wireshark_digits(a: SccpAddress) -> str:
    # GTI 2 carries no odd/even signal: Wireshark shows the F filler as ST (end of signal)
    return a.digits + ("ST" if a.gt_indicator == 2 and a.odd else "")


def num(text: str) -> int | None:
    """A tshark field value (decimal or 0x-hex), None when the field is absent."""
    return int(text, 0) if text else None


@pytest.mark.wireshark
def test_wireshark_dissects_every_message_type_and_address_form():
    msgs = message_matrix()
    for m, f in zip(msgs, tshark_lines(msgs)):
        (mt, cd_gti, cd_digits, cd_ssn, cd_pc, cg_gti, cg_digits, cg_ssn, cg_pc, cd_ri, cd_tt,
         cd_np, cd_es, cd_nai, cd_oe, cause, hops, cls, handling) = f
        assert num(mt) == m.message_type, m
        assert num(cd_gti) == m.called.gt_indicator
        assert num(cg_gti) == m.calling.gt_indicator
        assert cd_digits == wireshark_digits(m.called)
        assert cg_digits == wireshark_digits(m.calling)
        assert (num(cd_ssn), num(cg_ssn)) == (m.called.ssn, m.calling.ssn)
        assert (num(cd_pc), num(cg_pc)) == (m.called.point_code, m.calling.point_code)
        assert int(cd_ri, 16) == m.called.routing_indicator
        gti = m.called.gt_indicator
        assert num(cd_tt) == m.called.translation_type
        if gti in (3, 4):
            assert int(cd_np, 16) == m.called.numbering_plan
            assert int(cd_es, 16) == m.called.encoding_scheme
        if gti in (1, 4):
            assert int(cd_nai, 16) == m.called.nature_of_address
        if gti == 1:
            assert int(cd_oe, 16) == m.called.odd
        if isinstance(m, (UnitdataService, ExtendedUnitdataService)):
            assert int(cause, 16) == m.cause
        else:
            assert int(cls, 16) == m.protocol_class
            assert int(handling, 16) == (8 if m.return_on_error else 0)
        if isinstance(m, (ExtendedUnitdata, ExtendedUnitdataService)):
            assert int(hops, 16) == m.hop_counter
        else:
            assert hops == ""


@pytest.mark.wireshark
def test_wireshark_dissects_optional_parameters():
    a, b = SccpAddress.e164(HLR_GT, 6), SccpAddress.e164(GW_GT, 8)
    seg = Segmentation(first=True, protocol_class=1, remaining=0, local_reference=0x123456)
    msgs = [ExtendedUnitdata(a, b, TCAP, 1, False, 7, seg, 5, ((0x77, b"ab"),)),
            ExtendedUnitdataService(b, a, TCAP, ReturnCause.SEGMENTATION_FAILURE, 3, None, 2)]
    fields = ["sccp.segmentation.first", "sccp.segmentation.class",
              "sccp.segmentation.remaining", "sccp.segmentation.slr", "sccp.importance",
              "sccp.optional_pointer", "sccp.return_cause"]
    out = wireshark.decode([m3ua_data(encode(m)) for m in msgs], fields=fields)
    first, second = (line.split("\t") for line in out.splitlines())
    assert [int(x, 16) for x in first[:5]] == [1, 1, 0, 0x123456, 5]
    assert int(first[5]) == encode(msgs[0])[6]
    assert first[6] == ""
    assert second[:4] == ["", "", "", ""]
    assert int(second[4], 16) == 2 and int(second[6], 16) == 14


# --------------------------------------------------------------------------------------------
# Strict decoding: explicit malformed cases
# --------------------------------------------------------------------------------------------

UDT = VECTORS["srism_v3_begin"].sccp  # called at 5..16, calling at 17..28, data from 29
XUDT = VECTORS["srism_v3_begin_xudt"].sccp


def patched(raw: bytes, **at: int) -> bytes:
    b = bytearray(raw)
    for k, v in at.items():
        b[int(k[1:])] = v
    return bytes(b)


@pytest.mark.parametrize("raw, field, offset", [
    (b"", "message type", 0),
    (b"\x01\x00", "message type", 0),  # connection request: not connectionless
    (b"\x13" + UDT[1:], "message type", 0),  # LUDT not supported
    (UDT[:4], "UDT", 4),
    (XUDT[:6], "XUDT", 6),
    (patched(UDT, o1=0x02), "protocol class", 1),  # class 2 is connection-oriented
    (patched(UDT, o1=0x90), "protocol class", 1),  # message handling 1001 is spare
    (patched(XUDT, o1=0x83), "protocol class", 1),
    (patched(UDT, o2=0), "pointer to called party address", 2),
    (patched(UDT, o3=0xF0), "pointer to calling party address", 3),
    (patched(UDT, o4=len(UDT) - 4), "pointer to data", 4),
    (patched(UDT, o29=0xFF), "data length", 29),
    (patched(UDT, o5=0xFF), "called party address length", 5),
    (patched(XUDT, o6=0xF9), "pointer to optional part", 6),
    (patched(UDT, o6=0x16), "called party address: global title indicator", 6),  # GTI 5
    (patched(UDT, o6=0x42), "called party address: address length", 8),  # GTI 0, octets follow
    (patched(UDT, o9=0x10), "called party address: encoding scheme", 9),  # ES 0 unknown
    (patched(UDT, o21=0x13), "calling party address: encoding scheme", 21),  # ES 3 national
    (patched(UDT, o12=0xF4), "called party address: global title digits", 12),
    (patched(UDT, o27=0x0F), "calling party address: global title digits", 27),
])
def test_malformed_message_names_field_and_offset(raw, field, offset):
    with pytest.raises(CodecError) as ei:
        decode(raw)
    e = ei.value
    assert e.layer is Layer.SCCP
    assert e.field == field, e
    assert e.offset == offset, e


def test_malformed_addresses():
    gw = SccpAddress.e164(GW_GT, 8).encode()

    def udt_with_called(called: bytes) -> bytes:
        return (bytes((0x09, 0x80, 3, 3 + len(called), 3 + len(called) + len(gw), len(called)))
                + called + bytes((len(gw),)) + gw + bytes((len(TCAP),)) + TCAP)

    cases = [
        (b"", "called party address: address indicator", 6),
        (b"\x01\x05", "called party address: point code", 7),
        (b"\x02", "called party address: subsystem number", 7),
        (b"\x03\x01\x00", "called party address: subsystem number", 9),
        (b"\x12\x06\x00\x12", "called party address: global title", 8),
        (b"\x0e\x06\x00", "called party address: global title", 8),
        (b"\x06\x06", "called party address: global title", 8),
        (b"\x0a\x06", "called party address: global title", 8),
        (b"\x04\x84", "called party address: global title digits", 8),  # odd, no digits
        (b"\x12\x06\x00\x11\x04", "called party address: global title digits", 11),
        (b"\x0a\x06\x00\x1f", "called party address: global title digits", 9),  # GTI 2, F low
        (b"\x3e\x06\x00", "called party address: global title indicator", 6),  # GTI 15
    ]
    for called, field, offset in cases:
        with pytest.raises(CodecError) as ei:
            decode(udt_with_called(called))
        assert (ei.value.field, ei.value.offset) == (field, offset), called.hex()
    # the address-only API reports offsets relative to its own input
    with pytest.raises(CodecError) as ei:
        SccpAddress.decode(b"\x12\x06\x00\x10\x04", offset=100)
    assert (ei.value.field, ei.value.offset) == ("party address: encoding scheme", 103)


def test_empty_data_and_bad_optional_part():
    a, b = SccpAddress.e164(HLR_GT, 6), SccpAddress.e164(GW_GT, 8)
    raw = bytearray(encode(Unitdata(a, b, b"x")))
    raw[-2] = 0
    with pytest.raises(CodecError) as ei:
        decode(bytes(raw[:-1]))
    assert ei.value.field == "data"
    base = encode(ExtendedUnitdata(a, b, TCAP))
    ptr = len(base) - 6
    bad = [
        (b"\x10\x03\x80\x01\x02", "segmentation"),
        (b"\x12\x02\x01\x01\x00", "importance"),
        (b"\x12\x01\x01\x12\x01\x02\x00", "importance"),
        (b"\x10\x04\x80\x01\x02\x03\x10\x04\x80\x01\x02\x03\x00", "segmentation"),
        (b"\x12", "optional parameter length"),
        (b"\x12\x05\x01", "optional parameter length"),
    ]
    for tail, field in bad:
        with pytest.raises(CodecError) as ei:
            decode(base[:6] + bytes((ptr,)) + base[7:] + tail)
        assert ei.value.field == field, tail.hex()


def test_unexpected_internal_error_still_surfaces_as_codec_error(monkeypatch):
    def broken(buf, n):
        raise IndexError("simulated bug")

    monkeypatch.setattr(sccp, "_decode_udt", broken)
    with pytest.raises(CodecError) as ei:
        decode(UDT)
    assert (ei.value.field, ei.value.offset) == ("message", 0)


def test_trailing_bytes_beyond_the_parameters_are_ignored():
    assert decode(UDT + b"\x00\x01") == decode(UDT)


def test_decode_accepts_bytearray_and_memoryview():
    assert decode(bytearray(UDT)) == decode(UDT) == decode(memoryview(UDT))


@pytest.mark.parametrize("msg, field", [
    (Unitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"", 0), "data"),
    (Unitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x" * 256), "data"),
    (Unitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x", 2), "protocol class"),
    (UnitdataService(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x", 256),
     "return cause"),
    (ExtendedUnitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x",
                      hop_counter=256), "hop counter"),
    (ExtendedUnitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x", importance=8),
     "importance"),
    (ExtendedUnitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x",
                      segmentation=Segmentation(True, 2, 0, 0)), "segmentation"),
    (ExtendedUnitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), b"x",
                      unknown_optional=((0, b""),)), "optional parameter"),
    (Unitdata(SccpAddress.e164("1" * 400, 6), SccpAddress.e164("2" * 200, 8), b"x"),
     "pointer to data"),
    (Unitdata(SccpAddress.e164("1", 6), SccpAddress.e164("2", 8), "text"), "message"),
    ("not a message", "message type"),
])
def test_unencodable_message_raises_codec_error(msg, field):
    with pytest.raises(CodecError) as ei:
        encode(msg)
    assert ei.value.field == field


# --------------------------------------------------------------------------------------------
# Fuzzing: only CodecError, never a hang
# --------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [VECTORS[n].sccp for n in SCCP_VECTORS] + [encode(m) for m in message_matrix()[::9]]


def decode_or_codec_error(raw: bytes):
    try:
        m = decode(raw)
    except CodecError as e:
        assert e.layer is Layer.SCCP
        assert 0 <= e.offset <= max(len(raw), 1)
        return None
    try:
        again = encode(m)  # whatever decodes re-encodes, and reads back the same
    except CodecError as e:
        # only possible when the optional part came before the data and no longer fits a
        # one-octet pointer once the parameters are laid out in order
        assert e.field == "pointer to optional part"
        return m
    assert decode(again) == m
    return m


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(raw):
    decode_or_codec_error(raw)


@FUZZ
@given(st.sampled_from([0x09, 0x0A, 0x11, 0x12]), st.binary(max_size=120))
def test_fuzz_random_bodies(mt, body):
    decode_or_codec_error(bytes((mt,)) + body)


def test_every_truncation_of_every_vector_fails_cleanly():
    for raw in SEEDS:
        for n in range(len(raw)):
            with pytest.raises(CodecError):
                decode(raw[:n])


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_fuzz_bit_flips(raw, data):
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] ^= 1 << data.draw(st.integers(0, 7))
    decode_or_codec_error(bytes(b))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_fuzz_lying_pointers_and_lengths(raw, data):
    """Rewrite pointers and the length octets they lead to with arbitrary values."""
    b = bytearray(raw)
    first = 3 if b[0] in (0x11, 0x12) else 2
    count = 4 if b[0] in (0x11, 0x12) else 3
    targets = [first + k for k in range(count)]
    targets += [p + b[p] for p in targets if b[p] and p + b[p] < len(b)]
    for p in data.draw(st.lists(st.sampled_from(targets), min_size=1, max_size=4)):
        b[p] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 3))
    decode_or_codec_error(bytes(b[:len(b) - cut]))


addresses = st.builds(
    lambda ri, gti, ssn, pc, digits, tt, np_, nai, nat: SccpAddress(
        ri, gti, ssn, pc, digits if gti else "",
        tt if gti in (2, 3, 4) else None,
        np_ if gti in (3, 4) else None,
        nai if gti in (1, 4) else None, nat),
    st.sampled_from(RoutingIndicator), st.integers(0, 4), st.none() | st.integers(0, 255),
    st.none() | st.integers(0, 0x3FFF), st.text("0123456789*#abc", max_size=20),
    st.integers(0, 255), st.integers(0, 15), st.integers(0, 127), st.booleans())
payloads = st.binary(min_size=1, max_size=120)
optional = dict(
    segmentation=st.none() | st.builds(Segmentation, st.booleans(), st.integers(0, 1),
                                       st.integers(0, 15), st.integers(0, 0xFFFFFF)),
    importance=st.none() | st.integers(0, 7),
    unknown_optional=st.lists(st.tuples(st.integers(0x13, 0xFF), st.binary(max_size=8)),
                              max_size=2).map(tuple))
messages = st.one_of(
    st.builds(Unitdata, addresses, addresses, payloads, st.integers(0, 1), st.booleans()),
    st.builds(UnitdataService, addresses, addresses, payloads,
              st.integers(0, 255).map(ReturnCause)),
    st.builds(ExtendedUnitdata, addresses, addresses, payloads, st.integers(0, 1), st.booleans(),
              st.integers(0, 255), **optional),
    st.builds(ExtendedUnitdataService, addresses, addresses, payloads,
              st.integers(0, 255).map(ReturnCause), st.integers(0, 255), **optional),
)


@FUZZ
@given(messages)
def test_property_round_trip(m):
    raw = encode(m)
    assert raw[0] == m.message_type
    assert decode(raw) == m
    # GT digits and the fast paths agree with the BCD helpers
    for a in (m.called, m.calling):
        assert SccpAddress.decode(a.encode()) == a


def test_message_type_enum_matches_classes():
    assert [c.message_type for c in (Unitdata, UnitdataService, ExtendedUnitdata,
                                     ExtendedUnitdataService)] == list(MessageType)
    assert sccp.SccpMessage is not None
