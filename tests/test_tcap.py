"""TCAP (Q.773): every vector decodes to its described values and re-encodes byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import tcap
from protocols.errors import CodecError, Layer
from protocols.tcap import (
    Abort,
    AbortSource,
    AssociateResult,
    Begin,
    Continue,
    DiagnosticSource,
    DialogueAbort,
    DialogueRequest,
    DialogueResponse,
    End,
    GeneralProblem,
    Invoke,
    PAbortCause,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResultLast,
    ReturnResultNotLast,
    ServiceUserDiagnostic,
    UnidialoguePdu,
    Unidirectional,
)
from tests.vectors import VECTORS

SM_GW_V3 = (0, 4, 0, 0, 1, 0, 20, 3)
SM_GW_V2 = (0, 4, 0, 0, 1, 0, 20, 2)
ATI_V3 = (0, 4, 0, 0, 1, 0, 29, 3)
TID = bytes.fromhex("00000001")
SRISM_ARG = bytes.fromhex("30158007914477000910328101ff820791447700090000")
SRISM_RES = bytes.fromhex("3015040832140599999999f9a009810791447700990010")
ATI_ARG = bytes.fromhex("301aa009810791447700091032a10480008100830791447700090000")
ATI_RES = bytes.fromhex("301f301da017020105810791447700990010a309800732f4510001000aa1028000")
ACCEPTED_V3 = DialogueResponse(SM_GW_V3, AssociateResult.ACCEPTED,
                               DiagnosticSource.DIALOGUE_SERVICE_USER, ServiceUserDiagnostic.NULL)

# Each vector's TCAP message as typed values, from the vector's note and its dissection.
EXPECTED: dict[str, tcap.Message] = {
    "srism_v3_begin": Begin(TID, DialogueRequest(SM_GW_V3), [Invoke(1, 45, SRISM_ARG)]),
    "srism_v2_begin": Begin(TID, DialogueRequest(SM_GW_V2), [Invoke(1, 45, SRISM_ARG)]),
    "srism_v3_end_result": End(TID, ACCEPTED_V3, [ReturnResultLast(1, 45, SRISM_RES)]),
    "srism_end_error_absent": End(TID, None, [ReturnError(1, 6, bytes.fromhex("3003020101"))]),
    "srism_end_error_unknown": End(TID, None, [ReturnError(1, 1, bytes.fromhex("30030a0100"))]),
    "srism_end_error_barred": End(TID, None, [ReturnError(1, 13, bytes.fromhex("0a0100"))]),
    "srism_end_error_teleservice": End(TID, None, [ReturnError(1, 11)]),
    "srism_abort_acn_not_supported": Abort(TID, None, DialogueResponse(
        SM_GW_V2, AssociateResult.REJECT_PERMANENT, DiagnosticSource.DIALOGUE_SERVICE_USER,
        ServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)),
    "tcap_pabort_unrecognized_tid": Abort(TID, PAbortCause.UNRECOGNIZED_TRANSACTION_ID),
    "ati_v3_begin": Begin(TID, DialogueRequest(ATI_V3), [Invoke(1, 71, ATI_ARG)]),
    "ati_v3_end_result": End(TID, DialogueResponse(ATI_V3), [ReturnResultLast(1, 71, ATI_RES)]),
    "ati_end_not_reachable": End(TID, None, [ReturnResultLast(
        1, 71, bytes.fromhex("30073005a1030a0101"))]),
}
EXPECTED["srism_v3_begin_xudt"] = EXPECTED["srism_v3_begin"]
EXPECTED["sccp_udts_no_translation"] = EXPECTED["srism_v3_begin"]
EXPECTED["srism_v3_begin_odd_gt"] = Begin(TID, DialogueRequest(SM_GW_V3), [Invoke(
    1, 45, bytes.fromhex("3016800891447700091032f48101ff820791447700090000"))])


def test_every_tcap_vector_is_covered() -> None:
    assert {n for n, v in VECTORS.items() if v.tcap} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_decodes_to_described_values(name: str) -> None:
    assert tcap.decode(VECTORS[name].tcap) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_encodes_byte_for_byte(name: str) -> None:
    assert tcap.encode(EXPECTED[name]).hex() == VECTORS[name].tcap.hex()


ALL_KINDS: list[tcap.Message] = [
    Begin(b"\x01", DialogueRequest(SM_GW_V3, user_information=bytes.fromhex(
        "2809060704000001010101a000")), [Invoke(-1, 45, SRISM_ARG, linked_id=5)]),
    Continue(b"\x01\x02", b"\xff\xfe\xfd\xfc", ACCEPTED_V3,
             [ReturnResultNotLast(3, 45, SRISM_RES), ReturnResultLast(3)]),
    End(b"\x00\x01\x02", DialogueAbort(AbortSource.DIALOGUE_SERVICE_PROVIDER)),
    Abort(b"\x07", None, DialogueAbort(AbortSource.DIALOGUE_SERVICE_USER)),
    Abort(b"\x07", PAbortCause.RESOURCE_LIMITATION),
    Abort(b"\x07"),
    End(b"\x09", None, [ReturnError(127, (0, 4, 0, 0, 1, 100, 1), None),
                        Reject(None, ProblemType.GENERAL, GeneralProblem.MISTYPED_COMPONENT),
                        Reject(2, ProblemType.RETURN_ERROR, 4)]),
    Unidirectional([Invoke(0, (1, 2, 840, 113549), None)], UnidialoguePdu(SM_GW_V3)),
    Unidirectional([Invoke(200 - 256, 45, b"\x05\x00")]),
]


@pytest.mark.parametrize("msg", ALL_KINDS, ids=lambda m: type(m).__name__)
def test_every_message_and_component_kind_round_trips(msg: tcap.Message) -> None:
    assert tcap.decode(tcap.encode(msg)) == msg


def test_long_form_and_indefinite_lengths_decode_to_same_values() -> None:
    short = VECTORS["srism_end_error_absent"].tcap  # 64 15 49 04 .. 6c 0d a3 0b ...
    long_form = bytes.fromhex("648115") + short[2:]
    assert tcap.decode(long_form) == tcap.decode(short)
    body = short[2:]
    indefinite = b"\x64\x80" + body + b"\x00\x00"
    assert tcap.decode(indefinite) == tcap.decode(short)


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ("62024800", "otid"),  # empty otid
        ("620748050102030405", "otid"),  # 5-octet otid
        ("6400", "dtid"),  # End without dtid
        ("690349010a", "message type"),  # unknown message tag
        ("640549010a0a00", "transaction portion"),  # unexpected tag inside
        ("67034a0180", "p-abortCause"),  # negative cause
        ("6412490101 6b0d 280b 0607 04000001010101 a000".replace(" ", ""),
         "dialoguePortion"),
        ("6408490101 6c03a40100".replace(" ", ""), "Reject"),  # short reject
        ("620a480101 6c05a103020101".replace(" ", ""), "Invoke: opcode"),  # invoke without opcode
    ],
)
def test_malformed_names_tcap_layer(wire: str, field: str) -> None:
    with pytest.raises(CodecError) as info:
        tcap.decode(bytes.fromhex(wire))
    assert info.value.layer is Layer.TCAP
    assert field in info.value.field


def test_trailing_bytes_after_message() -> None:
    with pytest.raises(CodecError, match="after the message"):
        tcap.decode(VECTORS["srism_v3_begin"].tcap + b"\x00")


def test_encoder_refuses_bad_transaction_id() -> None:
    with pytest.raises(CodecError):
        tcap.encode(Begin(b""))
    with pytest.raises(CodecError):
        tcap.encode(End(b"12345"))


def _mutations() -> st.SearchStrategy[bytes]:
    names = sorted(EXPECTED)

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(VECTORS[draw(st.sampled_from(names))].tcap)
        kind = draw(st.sampled_from(["truncate", "flip", "length", "insert"]))
        i = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            return bytes(data[:i])
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "length":
            data[i] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x84, 0xFF,
                                            (data[i] + 1) & 0xFF]))
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        return bytes(data)

    return mutate()


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_mutations(), st.binary(max_size=120)))
def test_fuzz_only_codec_error(data: bytes) -> None:
    try:
        msg = tcap.decode(data)
    except CodecError as exc:
        assert exc.layer is Layer.TCAP
        return
    tcap.encode(msg)  # whatever decodes can be written back
