"""Every TCAP message kind and MAP operation our encoders produce, through the whole stack
(M3UA DATA -> SCCP UDT -> TCAP -> MAP), dissects in Wireshark with no malformed mark and
with the operation, error, numbers and IMSI we put in.

(M3UA and SCCP message types on their own are checked in test_m3ua.py and test_sccp.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.map import ErrorCode, Opcode, context_for
from protocols.tbcd import Imsi, isdn
from tests import wireshark

MSISDN, SMSC, MSC, IMSI, GW = "447700900123", "447700900000", "447700990001", \
    "234150999999999", "447700900000"
HLR_SSN, MSC_SSN, SCF_SSN = sccp.Ssn.HLR, sccp.Ssn.MSC, sccp.Ssn.GSMSCF


def wrap(message: tcap.Message, forward: bool = True, ssn: int = MSC_SSN) -> bytes:
    """A TCAP message inside SCCP UDT inside M3UA DATA (gateway <-> HLR)."""
    gw = sccp.SccpAddress.e164(GW, ssn)
    hlr = sccp.SccpAddress.e164(MSISDN, HLR_SSN)
    called, calling = (hlr, gw) if forward else (gw, hlr)
    udt = sccp.Unitdata(called, calling, tcap.encode(message), 0, True)
    opc, dpc = (1, 2) if forward else (2, 1)
    return m3ua.encode(m3ua.Data(routing_context=100, protocol_data=m3ua.ProtocolData(
        opc, dpc, 3, 2, 0, 0, sccp.encode(udt))))


@dataclass(slots=True)
class Case:
    name: str
    wire: bytes
    local_values: str  # gsm_old.localValue: opcodes and error codes, in order
    msisdn: str = ""  # e164.msisdn values Wireshark shows
    imsi: str = ""
    transaction: bool = True  # a Unidirectional has no transaction id


def _begin(opcode: int, version: int, arg: object, otid: bytes = b"\x00\x00\x00\x07",
           ssn: int = MSC_SSN) -> bytes:
    pdu = None if version == 1 else tcap.DialogueRequest(context_for(opcode, version))
    return wrap(tcap.Begin(otid, pdu, [tcap.Invoke(1, opcode, map_.encode_argument(
        opcode, arg, version))]), ssn=ssn)


def _end(opcode: int, version: int, res: object, accepted: bool = True) -> bytes:
    pdu = tcap.DialogueResponse(context_for(opcode, version)) if accepted else None
    return wrap(tcap.End(b"\x00\x00\x00\x07", pdu, [tcap.ReturnResultLast(
        1, opcode, map_.encode_result(opcode, res, version))]), forward=False)


def _error(code: int, param: object | None) -> bytes:
    return wrap(tcap.End(b"\x00\x00\x00\x07", None, [tcap.ReturnError(
        1, code, map_.encode_error_param(code, param))]), forward=False)


SRISM_ARG = map_.RoutingInfoForSmArg(isdn(MSISDN), True, isdn(SMSC))
SRISM_RES = map_.RoutingInfoForSmRes(Imsi(IMSI), map_.LocationInfoWithLmsi(
    network_node_number=isdn(MSC), lmsi=b"\x01\x02\x03\x04"))
ATI_ARG = map_.AnyTimeInterrogationArg(isdn(MSISDN), map_.RequestedInfo(
    location_information=True, subscriber_state=True), isdn(GW))
ATI_RES = map_.AnyTimeInterrogationRes(map_.SubscriberInfo(
    location_information=map_.LocationInformation(
        age_of_location_information=5, vlr_number=isdn(MSC),
        cell_global_id_or_service_area_id_or_lai=map_.CellGlobalIdOrServiceAreaIdOrLai(
            "234", "15", 1, 10)),
    subscriber_state=map_.SubscriberState.ASSUMED_IDLE))
SRI_ARG = map_.SendRoutingInfoArg(
    isdn(MSISDN), interrogation_type=map_.InterrogationType.BASIC_CALL,
    gmsc_or_gsm_scf_address=isdn(GW))
ERRORS = [
    (ErrorCode.SYSTEM_FAILURE, map_.SystemFailureParam(map_.NetworkResource.HLR)),
    (ErrorCode.DATA_MISSING, map_.DataMissingParam()),
    (ErrorCode.UNEXPECTED_DATA_VALUE, map_.UnexpectedDataParam()),
    (ErrorCode.FACILITY_NOT_SUPPORTED, map_.FacilityNotSupParam()),
    (ErrorCode.UNKNOWN_SUBSCRIBER, map_.UnknownSubscriberParam(
        unknown_subscriber_diagnostic=map_.UnknownSubscriberDiagnostic.IMSI_UNKNOWN)),
    (ErrorCode.TELESERVICE_NOT_PROVISIONED, None),
    (ErrorCode.CALL_BARRED, map_.CallBarredParam(
        call_barring_cause=map_.CallBarringCause.BARRING_SERVICE_ACTIVE)),
    (ErrorCode.ABSENT_SUBSCRIBER_SM, map_.AbsentSubscriberSmParam(
        absent_subscriber_diagnostic_sm=map_.AbsentSubscriberDiagnosticSM.IMSI_DETACHED)),
    (ErrorCode.ATI_NOT_ALLOWED, map_.AtiNotAllowedParam()),
    (ErrorCode.ABSENT_SUBSCRIBER, None),
]

CASES = [
    Case("srism_v1_begin", _begin(45, 1, SRISM_ARG), "45", f"{MSISDN},{SMSC}"),
    Case("srism_v2_begin", _begin(45, 2, SRISM_ARG), "45", f"{MSISDN},{SMSC}"),
    Case("srism_v3_begin", _begin(45, 3, SRISM_ARG), "45", f"{MSISDN},{SMSC}"),
    Case("srism_v3_end_result", _end(45, 3, SRISM_RES), "45", MSC, IMSI),
    Case("srism_v2_end_result", _end(45, 2, SRISM_RES), "45", MSC, IMSI),
    Case("ati_v3_begin", _begin(71, 3, ATI_ARG, ssn=SCF_SSN), "71", f"{MSISDN},{GW}"),
    Case("ati_v3_end_result", _end(71, 3, ATI_RES), "71", MSC),
    Case("sri_v3_begin", _begin(22, 3, SRI_ARG), "22", f"{MSISDN},{GW}"),
    Case("sri_v3_end_msrn", _end(22, 3, map_.SendRoutingInfoRes(
        imsi=Imsi(IMSI), roaming_number=isdn("447700990099"))), "22", "447700990099", IMSI),
    Case("send_imsi_begin", _begin(58, 2, map_.SendImsiArg(isdn(MSISDN))), "58", MSISDN),
    *[Case(f"error_{code.name.lower()}", _error(code, param), str(int(code)))
      for code, param in ERRORS],
    Case("continue_not_last", wrap(tcap.Continue(b"\x01\x02", b"\x00\x00\x00\x07", None, [
        tcap.ReturnResultNotLast(1, Opcode.SEND_ROUTING_INFO_FOR_SM, map_.encode_result(
            45, SRISM_RES))]), forward=False), "45", MSC, IMSI),
    Case("end_reject", wrap(tcap.End(b"\x00\x00\x00\x07", None, [tcap.Reject(
        1, tcap.ProblemType.INVOKE, tcap.InvokeProblem.MISTYPED_PARAMETER)]), forward=False),
         ""),
    Case("abort_p", wrap(tcap.Abort(b"\x00\x00\x00\x07", tcap.PAbortCause.RESOURCE_LIMITATION),
                         forward=False), ""),
    Case("abort_u_abrt", wrap(tcap.Abort(b"\x00\x00\x00\x07", None, tcap.DialogueAbort()),
                              forward=False), ""),
    Case("abort_acn_refused", wrap(tcap.Abort(b"\x00\x00\x00\x07", None, tcap.DialogueResponse(
        context_for(45, 2), tcap.AssociateResult.REJECT_PERMANENT,
        tcap.DiagnosticSource.DIALOGUE_SERVICE_USER,
        tcap.ServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)), forward=False), ""),
    Case("unidirectional", wrap(tcap.Unidirectional([tcap.Invoke(
        0, 45, map_.encode_argument(45, SRISM_ARG))], tcap.UnidialoguePdu(context_for(45, 3)))),
         "45", f"{MSISDN},{SMSC}", transaction=False),
]

FIELDS = ["gsm_old.localValue", "e164.msisdn", "e212.imsi", "tcap.tid", "sccp.called.digits"]


@pytest.fixture(scope="module")
def dissected() -> list[list[str]]:
    out = wireshark.decode([c.wire for c in CASES], fields=FIELDS)
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(CASES)
    return rows


@pytest.mark.wireshark
@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_dissects_with_what_we_put_in(dissected: list[list[str]], index: int) -> None:
    case = CASES[index]
    local, msisdn, imsi, tid, called = dissected[index]
    assert local == case.local_values
    assert msisdn == case.msisdn
    assert imsi == case.imsi
    assert bool(tid) is case.transaction  # the TCAP transaction portion dissected
    assert called in (MSISDN, GW)


@pytest.mark.wireshark
def test_full_text_has_no_malformed_or_unknown_parts() -> None:
    text = wireshark.decode([c.wire for c in CASES])
    assert "Malformed" not in text
    # "Unknown" would mark a part Wireshark could not place; the only ones allowed are the
    # names of the unknownSubscriber error and its imsiUnknown diagnostic
    assert "Unknown" not in text.replace("imsiUnknown", "")
