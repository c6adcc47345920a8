"""Whole TCAP/MAP dialogues, differentially against pycrate (a test-only ASN.1 oracle).

Hypothesis draws valid SRI-SM and ATI dialogue messages: the Begin, the End with the
result, the End with each error of the operation (TS 29.002 §12.1, §8.11.2), and the
Abort (P-Abort, U-Abort with an ABRT, U-Abort refusing the application context). Each is a
pair (our typed values, pycrate's value); then:

* what our encoder writes, pycrate decodes to that value;
* what pycrate encodes from that value, our decoder reads back to our typed values.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pycrate_asn1dir import TCAP_MAPv2v3

from protocols import map as map_
from protocols import tcap
from protocols.map import ErrorCode, Opcode, context_for
from tests.test_map import ati_arg, ati_res, error_cases, srism_arg, srism_res

PDU = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

SRISM_ERRORS = {ErrorCode.SYSTEM_FAILURE, ErrorCode.DATA_MISSING, ErrorCode.UNEXPECTED_DATA_VALUE,
                ErrorCode.FACILITY_NOT_SUPPORTED, ErrorCode.UNKNOWN_SUBSCRIBER,
                ErrorCode.TELESERVICE_NOT_PROVISIONED, ErrorCode.CALL_BARRED,
                ErrorCode.ABSENT_SUBSCRIBER_SM}
ATI_ERRORS = {ErrorCode.SYSTEM_FAILURE, ErrorCode.ATI_NOT_ALLOWED, ErrorCode.DATA_MISSING,
              ErrorCode.UNEXPECTED_DATA_VALUE, ErrorCode.UNKNOWN_SUBSCRIBER}
DIALOGUE_AS = {"direct-reference": tcap.DIALOGUE_AS_ID}
TIDS = st.binary(min_size=1, max_size=4)
INVOKE_IDS = st.integers(-128, 127)


def _dialogue_py(pdu: tcap.DialoguePdu) -> dict:
    """pycrate's value of a dialogue portion (Q.773 dialogue-as)."""
    if isinstance(pdu, tcap.DialogueRequest):
        body = ("dialogueRequest", {"protocol-version": (1, 1),
                                    "application-context-name": pdu.application_context})
    elif isinstance(pdu, tcap.DialogueResponse):
        src = ("dialogue-service-user" if pdu.diagnostic_source == 1
               else "dialogue-service-provider")
        body = ("dialogueResponse", {"protocol-version": (1, 1),
                                     "application-context-name": pdu.application_context,
                                     "result": int(pdu.result),
                                     "result-source-diagnostic": (src, int(pdu.diagnostic))})
    else:
        body = ("dialogueAbort", {"abort-source": int(pdu.abort_source)})
    return {**DIALOGUE_AS, "encoding": ("single-ASN1-type", ("DialoguePDU", body))}


class Drawn:
    """A drawn dialogue message: our TCAP message, the typed MAP value inside it, pycrate's
    value with the MAP part left open (its type reference comes from pycrate's own decode)."""

    def __init__(self, msg: tcap.Message, map_value: object, py: tuple, map_py: object,
                 version: int = 3) -> None:
        self.msg, self.map_value, self.py, self.map_py, self.version = (
            msg, map_value, py, map_py, version)


@st.composite
def begins(draw) -> Drawn:
    otid, iid = draw(TIDS), draw(INVOKE_IDS)
    kind = draw(st.sampled_from(["srism2", "srism3", "ati"]))
    if kind == "ati":
        opcode, version = Opcode.ANY_TIME_INTERROGATION, 3
        arg, val = draw(ati_arg())
    else:
        opcode, version = Opcode.SEND_ROUTING_INFO_FOR_SM, int(kind[-1])
        arg, val = draw(srism_arg(version))
    pdu = tcap.DialogueRequest(context_for(opcode, version))
    msg = tcap.Begin(otid, pdu, [tcap.Invoke(iid, opcode, map_.encode_argument(
        opcode, arg, version))])
    py = ("begin", {"otid": otid, "dialoguePortion": _dialogue_py(pdu), "components": [
        ("basicROS", ("invoke", {"invokeId": ("present", iid), "opcode": ("local", opcode),
                                 "argument": None}))]})
    return Drawn(msg, arg, py, val, version)


@st.composite
def ends_with_result(draw) -> Drawn:
    dtid, iid = draw(TIDS), draw(INVOKE_IDS)
    if draw(st.booleans()):
        opcode = Opcode.ANY_TIME_INTERROGATION
        res, val = draw(ati_res())
    else:
        opcode = Opcode.SEND_ROUTING_INFO_FOR_SM
        res, val = draw(srism_res(3))
    pdu = (tcap.DialogueResponse(context_for(opcode, 3)) if draw(st.booleans()) else None)
    msg = tcap.End(dtid, pdu, [tcap.ReturnResultLast(iid, opcode, map_.encode_result(
        opcode, res))])
    body: dict = {"dtid": dtid}
    if pdu is not None:
        body["dialoguePortion"] = _dialogue_py(pdu)
    body["components"] = [("basicROS", ("returnResult", {
        "invokeId": ("present", iid), "result": {"opcode": ("local", opcode), "result": None}}))]
    return Drawn(msg, res, ("end", body), val)


@st.composite
def ends_with_error(draw) -> Drawn:
    dtid, iid = draw(TIDS), draw(INVOKE_IDS)
    allowed = draw(st.sampled_from([SRISM_ERRORS, ATI_ERRORS]))
    code, _, param, val, version = error_cases(draw)
    assume(code in allowed and version == 3)
    wire = map_.encode_error_param(code, param)
    with_param = wire is not None and draw(st.booleans())
    comp: dict = {"invokeId": ("present", iid), "errcode": ("local", code)}
    if with_param:
        comp["parameter"] = None
    msg = tcap.End(dtid, None, [tcap.ReturnError(iid, code, wire if with_param else None)])
    return Drawn(msg, map_.MapError(code, param if with_param else None),
                 ("end", {"dtid": dtid, "components": [("basicROS", ("returnError", comp))]}),
                 val if with_param else None)


@st.composite
def aborts(draw) -> Drawn:
    dtid = draw(TIDS)
    kind = draw(st.sampled_from(["p", "abrt", "refuse"]))
    if kind == "p":
        cause = draw(st.sampled_from(list(tcap.PAbortCause)))
        return Drawn(tcap.Abort(dtid, cause), None,
                     ("abort", {"dtid": dtid, "reason": ("p-abortCause", int(cause))}), None)
    if kind == "abrt":
        pdu = tcap.DialogueAbort(draw(st.sampled_from(list(tcap.AbortSource))))
    else:  # the HLR refuses v3 and proposes v2 (TS 29.002 §12.1 / Q.773 AARE)
        pdu = tcap.DialogueResponse(
            context_for(Opcode.SEND_ROUTING_INFO_FOR_SM, draw(st.sampled_from([1, 2]))),
            tcap.AssociateResult.REJECT_PERMANENT, tcap.DiagnosticSource.DIALOGUE_SERVICE_USER,
            tcap.ServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)
    return Drawn(tcap.Abort(dtid, None, pdu), None,
                 ("abort", {"dtid": dtid, "reason": ("u-abortCause", _dialogue_py(pdu))}), None)


def _map_slot(py_value: tuple) -> tuple[dict, str] | None:
    """Where the MAP value sits in pycrate's component value: (dict, key)."""
    body = py_value[1]
    if "components" not in body:
        return None
    kind, comp = body["components"][0][1]
    if kind == "invoke":
        return comp, "argument"
    if kind == "returnResult":
        return comp["result"], "result"
    return (comp, "parameter") if "parameter" in comp else None


def _decode_ours(wire: bytes, version: int) -> tuple[tcap.Message, object]:
    msg = tcap.decode(wire)
    if not getattr(msg, "components", None):
        return msg, None
    c = msg.components[0]
    if isinstance(c, tcap.Invoke):
        return msg, map_.decode_argument(c.opcode, c.parameter, version)
    if isinstance(c, tcap.ReturnResultLast):
        return msg, map_.decode_result(c.opcode, c.parameter, version)
    return msg, map_.decode_error(c.error_code, c.parameter, version)


def _check(d: Drawn) -> None:
    ours = tcap.encode(d.msg)
    # ours -> pycrate: same values
    PDU.from_ber(ours)
    got = PDU.get_val()
    expected = _with_map(d.py, _map_slot(got), d.map_py)
    assert got == expected
    # pycrate -> ours: same typed values, and the same bytes (both write definite lengths)
    PDU.set_val(expected)
    theirs = PDU.to_ber()
    msg, value = _decode_ours(theirs, d.version)
    assert msg == d.msg
    assert value == d.map_value
    assert theirs == ours


def _with_map(py: tuple, got_slot: tuple[dict, str] | None, map_py: object) -> tuple:
    """Our expected pycrate value, with the MAP value under pycrate's own type reference."""
    import copy

    expected = copy.deepcopy(py)
    slot = _map_slot(expected)
    if slot is not None and got_slot is not None:
        ref = got_slot[0][got_slot[1]][0]
        slot[0][slot[1]] = (ref, map_py)
    return expected


@SETTINGS
@given(begins())
def test_begin(d: Drawn) -> None:
    _check(d)


@SETTINGS
@given(ends_with_result())
def test_end_with_result(d: Drawn) -> None:
    _check(d)


@SETTINGS
@given(ends_with_error())
def test_end_with_each_error(d: Drawn) -> None:
    _check(d)


@SETTINGS
@given(aborts())
def test_abort(d: Drawn) -> None:
    _check(d)


def test_every_error_of_both_operations_is_drawable() -> None:
    """The error strategy reaches every SRI-SM and ATI error code (none is silently missed)."""
    seen: set[int] = set()

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
    @given(ends_with_error())
    def collect(d: Drawn) -> None:
        seen.add(int(d.msg.components[0].error_code))

    collect()
    assert seen == {int(c) for c in SRISM_ERRORS | ATI_ERRORS}
