"""MAP codec (TS 29.002): the shared vectors, pycrate as a differential oracle, fuzzing.

* Vectors: the component parameter of every MAP vector (found in the TCAP bytes by a plain BER
  walk, and cross-checked against the hex Wireshark dissected) decodes to what the vector's
  note says, and encoding those typed values gives the same bytes back.
* Differential: hypothesis draws valid values as pairs (our dataclass, pycrate's value);
  our encoding must decode in pycrate to that value, pycrate's encoding must decode with ours
  to that dataclass, and both encodings must be the same bytes (both write definite lengths
  in definition order).
* Fuzz: random, mutated and randomly structured BER into every decoder raises CodecError
  (layer MAP) or decodes; nothing else escapes.
"""

from __future__ import annotations

import dataclasses

import pycrate_asn1dir.MAPv2 as M2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrate_asn1dir import TCAP_MAPv2v3 as T

from protocols.ber import read_tlv
from protocols.errors import CodecError, Layer
from protocols.map import (
    ARGUMENTS,
    ERROR_PARAMS,
    RESULTS,
    SHORT_MSG_GATEWAY_CONTEXT_V2,
    SHORT_MSG_GATEWAY_CONTEXT_V3,
    AbsentSubscriberDiagnosticSM,
    AbsentSubscriberParam,
    AbsentSubscriberSmParam,
    AdditionalNumber,
    AnyTimeInterrogationArg,
    AnyTimeInterrogationRes,
    AtiNotAllowedParam,
    BusySubscriberParam,
    CallBarredParam,
    CallBarringCause,
    CellGlobalIdOrServiceAreaIdOrLai,
    CugRejectParam,
    DataMissingParam,
    ErrorCode,
    FacilityNotSupParam,
    ForwardingData,
    IpSmGwGuidance,
    LocationInformation,
    LocationInfoWithLmsi,
    MnpInfoRes,
    NetworkResource,
    NotReachableReason,
    NumberChangedParam,
    Opcode,
    RequestedInfo,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SendImsiArg,
    SendImsiRes,
    SendRoutingInfoArg,
    SendRoutingInfoRes,
    SubscriberInfo,
    SubscriberState,
    SystemFailureParam,
    TeleservNotProvParam,
    UnexpectedDataParam,
    UnknownErrorParam,
    UnknownSubscriberDiagnostic,
    UnknownSubscriberParam,
    context_for,
    context_versions,
    decode_argument,
    decode_error,
    decode_result,
    encode_argument,
    encode_error_param,
    encode_result,
    lookup_context,
)
from protocols.tbcd import AddressString, Imsi, NatureOfAddress, NumberingPlan, encode_tbcd, isdn
from tests.vectors import IDS, VECTORS

MS, SM, CH, ER, COMMON = (T.MAP_MS_DataTypes, T.MAP_SM_DataTypes, T.MAP_CH_DataTypes,
                          T.MAP_ER_DataTypes, T.MAP_CommonDataTypes)
DIFF = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ============================================================================ vectors

def component(tcap: bytes) -> tuple[int, int, bytes | None]:
    """(component tag, opcode or error code, parameter TLV or None) of a TCAP message's one
    component, by a plain BER walk (Q.773: components 0x6c; invoke a1 {id, opcode, param};
    returnResultLast a2 {id, SEQUENCE {opcode, param}}; returnError a3 {id, code, param})."""
    _, vs, ve, _ = read_tlv(tcap, 0, len(tcap))
    pos = vs
    while True:
        tag, s, e, pos = read_tlv(tcap, pos, ve)
        if tag == 0x6C:
            break
    ctag, s, e, _ = read_tlv(tcap, s, e)
    items = []
    while s < e:
        t, a, b, s = read_tlv(tcap, s, e)
        items.append((t, a, b))
    if ctag == 0xA2:
        _, a, b = items[1]
        inner = []
        while a < b:
            t, x, y, nxt = read_tlv(tcap, a, b)
            inner.append((t, x, y, tcap[a:nxt]))
            a = nxt
        return ctag, tcap[inner[0][1]], inner[1][3]
    code = tcap[items[1][1]]
    if len(items) < 3:
        return ctag, code, None
    start = items[2][1]
    # the parameter TLV: its value plus the header before it
    hdr = 2 if tcap[start - 2] == items[2][0] else 3
    return ctag, code, tcap[start - hdr:items[2][2]]


# The parameters as Wireshark dissected them (vectors-dissected.txt), for a cross-check.
PARAMS = {
    "srism_v3_begin": "30158007914477000910328101ff820791447700090000",
    "srism_v2_begin": "30158007914477000910328101ff820791447700090000",
    "srism_v3_end_result": "3015040832140599999999f9a009810791447700990010",
    "srism_end_error_absent": "3003020101",
    "srism_end_error_unknown": "30030a0100",
    "srism_end_error_barred": "0a0100",
    "ati_v3_begin": "301aa009810791447700091032a10480008100830791447700090000",
    "ati_v3_end_result": "301f301da017020105810791447700990010a309800732f4510001000aa1028000",
    "ati_end_not_reachable": "30073005a1030a0101",
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_vector_parameters_are_where_the_walk_finds_them(name: str) -> None:
    assert component(VECTORS[name].tcap)[2] == bytes.fromhex(PARAMS[name])


@pytest.mark.parametrize("name", ["srism_v3_begin", "srism_v2_begin", "srism_v3_begin_xudt",
                                  "sccp_udts_no_translation"])
def test_vector_srism_argument(name: str) -> None:
    ctag, opcode, param = component(VECTORS[name].tcap)
    assert (ctag, opcode) == (0xA1, Opcode.SEND_ROUTING_INFO_FOR_SM)
    version = 2 if "v2" in name else 3
    arg = decode_argument(opcode, param, version)
    assert arg == RoutingInfoForSmArg(isdn(IDS["msisdn"]), True, isdn(IDS["gateway_gt"]))
    assert str(arg.msisdn) == "+447700900123"
    assert arg.service_centre_address.digits == "447700900000"
    assert encode_argument(opcode, arg, version) == param


def test_vector_srism_argument_odd_gt() -> None:
    _, _, param = component(VECTORS["srism_v3_begin_odd_gt"].tcap)
    arg = RoutingInfoForSmArg.decode(param)
    assert arg.msisdn.digits == "4477009001234"
    assert arg.encode() == param


def test_vector_srism_result() -> None:
    ctag, opcode, param = component(VECTORS["srism_v3_end_result"].tcap)
    assert (ctag, opcode) == (0xA2, Opcode.SEND_ROUTING_INFO_FOR_SM)
    res = decode_result(opcode, param)
    assert res.imsi == Imsi(IDS["imsi"]) and (res.imsi.mcc, res.imsi.mnc) == ("234", "15")
    assert res.location_info_with_lmsi == LocationInfoWithLmsi(isdn(IDS["msc_gt"]))
    assert res == RoutingInfoForSmRes(Imsi("234150999999999"),
                                      LocationInfoWithLmsi(isdn("447700990001")))
    assert encode_result(opcode, res) == param


@pytest.mark.parametrize(("name", "code", "param"), [
    ("srism_end_error_absent", ErrorCode.ABSENT_SUBSCRIBER_SM,
     AbsentSubscriberSmParam(AbsentSubscriberDiagnosticSM.IMSI_DETACHED)),
    ("srism_end_error_unknown", ErrorCode.UNKNOWN_SUBSCRIBER,
     UnknownSubscriberParam(unknown_subscriber_diagnostic=UnknownSubscriberDiagnostic.IMSI_UNKNOWN)),
    ("srism_end_error_barred", ErrorCode.CALL_BARRED,
     CallBarredParam(CallBarringCause.BARRING_SERVICE_ACTIVE)),
    ("srism_end_error_teleservice", ErrorCode.TELESERVICE_NOT_PROVISIONED, None),
])
def test_vector_srism_errors(name: str, code: ErrorCode, param) -> None:
    ctag, wire_code, wire_param = component(VECTORS[name].tcap)
    assert ctag == 0xA3 and wire_code == code
    error = decode_error(wire_code, wire_param)
    assert error.code is code and error.param == param
    assert encode_error_param(code, error.param) == wire_param
    if param is not None:
        assert decode_error(code, wire_param).param.__class__ is ERROR_PARAMS[code]


def test_vector_error_diagnostic_values() -> None:
    absent = decode_error(6, component(VECTORS["srism_end_error_absent"].tcap)[2]).param
    assert absent.absent_subscriber_diagnostic_sm == 1
    assert absent.absent_subscriber_diagnostic_sm is AbsentSubscriberDiagnosticSM.IMSI_DETACHED
    unknown = decode_error(1, component(VECTORS["srism_end_error_unknown"].tcap)[2]).param
    assert unknown.unknown_subscriber_diagnostic == 0
    barred = decode_error(13, component(VECTORS["srism_end_error_barred"].tcap)[2]).param
    assert barred.call_barring_cause == 0 and not barred.extensible


def test_vector_ati_argument() -> None:
    ctag, opcode, param = component(VECTORS["ati_v3_begin"].tcap)
    assert (ctag, opcode) == (0xA1, Opcode.ANY_TIME_INTERROGATION)
    arg = decode_argument(opcode, param)
    assert arg == AnyTimeInterrogationArg(
        isdn("447700900123"), RequestedInfo(location_information=True, subscriber_state=True),
        isdn("447700900000"))
    assert isinstance(arg.subscriber_identity, AddressString)
    assert encode_argument(opcode, arg) == param


def test_vector_ati_result() -> None:
    ctag, opcode, param = component(VECTORS["ati_v3_end_result"].tcap)
    assert (ctag, opcode) == (0xA2, Opcode.ANY_TIME_INTERROGATION)
    res = decode_result(opcode, param)
    loc = res.subscriber_info.location_information
    assert loc.age_of_location_information == 5
    assert loc.vlr_number == isdn("447700990001")
    cgi = loc.cell_global_id_or_service_area_id_or_lai
    assert (cgi.mcc, cgi.mnc, cgi.lac, cgi.ci) == ("234", "15", 1, 10)
    assert res.subscriber_info.subscriber_state is SubscriberState.ASSUMED_IDLE
    assert res == AnyTimeInterrogationRes(SubscriberInfo(
        LocationInformation(5, vlr_number=isdn("447700990001"),
                            cell_global_id_or_service_area_id_or_lai=(
                                CellGlobalIdOrServiceAreaIdOrLai("234", "15", 1, 10))),
        SubscriberState.ASSUMED_IDLE))
    assert encode_result(opcode, res) == param


def test_vector_ati_not_reachable() -> None:
    _, opcode, param = component(VECTORS["ati_end_not_reachable"].tcap)
    res = decode_result(opcode, param)
    assert res.subscriber_info.subscriber_state is SubscriberState.NET_DET_NOT_REACHABLE
    assert res.subscriber_info.not_reachable_reason is NotReachableReason.IMSI_DETACHED
    assert res.subscriber_info.location_information is None
    assert res.encode() == param


# ============================================================================ contexts

def test_application_contexts() -> None:
    assert context_for(Opcode.SEND_ROUTING_INFO_FOR_SM, 3) == SHORT_MSG_GATEWAY_CONTEXT_V3
    assert SHORT_MSG_GATEWAY_CONTEXT_V3 == (0, 4, 0, 0, 1, 0, 20, 3)
    assert context_for(45, 1) == (0, 4, 0, 0, 1, 0, 20, 1)
    assert context_for(Opcode.SEND_ROUTING_INFO, 1) == (0, 4, 0, 0, 1, 0, 5, 1)
    assert context_for(Opcode.SEND_ROUTING_INFO, 3) == (0, 4, 0, 0, 1, 0, 5, 3)
    assert context_for(Opcode.ANY_TIME_INTERROGATION, 3) == (0, 4, 0, 0, 1, 0, 29, 3)
    assert context_for(Opcode.SEND_IMSI, 2) == (0, 4, 0, 0, 1, 0, 26, 2)
    assert lookup_context((0, 4, 0, 0, 1, 0, 20, 2)) == ("shortMsgGatewayContext", 2)
    assert lookup_context((0, 4, 0, 0, 1, 0, 29, 3)) == ("anyTimeInfoEnquiryContext", 3)
    assert lookup_context((0, 4, 0, 0, 1, 0, 99, 3)) is None
    assert context_versions(Opcode.SEND_ROUTING_INFO_FOR_SM) == (3, 2, 1)
    assert context_versions(Opcode.ANY_TIME_INTERROGATION) == (3,)
    with pytest.raises(CodecError) as info:
        context_for(Opcode.ANY_TIME_INTERROGATION, 2)
    assert info.value.layer is Layer.MAP


def test_vector_dialogue_contexts() -> None:
    assert SHORT_MSG_GATEWAY_CONTEXT_V3 == (0, 4, 0, 0, 1, 0, 20, 3)
    # the AARQ of srism_v2_begin carries 06 07 04 00 00 01 00 14 02
    assert bytes.fromhex("0607040000010014" "02") in VECTORS["srism_v2_begin"].tcap
    assert SHORT_MSG_GATEWAY_CONTEXT_V2[-2:] == (0x14, 2)


def test_codes_match_pycrate() -> None:
    """Every error and operation code pycrate's TS 29.002 ASN.1 defines is a member here."""
    for attr in dir(T.MAP_Errors):
        val = getattr(getattr(T.MAP_Errors, attr), "_val", None)
        if isinstance(val, dict) and "errorCode" in val:
            assert val["errorCode"][1] in ErrorCode._value2member_map_, attr
    for modname in dir(T):
        if modname.startswith("MAP_") and modname.endswith("Operations"):
            mod = getattr(T, modname)
            for attr in dir(mod):
                val = getattr(getattr(mod, attr), "_val", None)
                if isinstance(val, dict) and "operationCode" in val:
                    assert val["operationCode"][1] in Opcode._value2member_map_, attr
    assert (Opcode.SEND_ROUTING_INFO, Opcode.SEND_ROUTING_INFO_FOR_SM, Opcode.SEND_IMSI,
            Opcode.ANY_TIME_INTERROGATION) == (22, 45, 58, 71)


def test_every_srism_and_ati_error_has_its_parameter_type() -> None:
    srism = {34: SystemFailureParam, 35: DataMissingParam, 36: UnexpectedDataParam,
             21: FacilityNotSupParam, 1: UnknownSubscriberParam, 11: TeleservNotProvParam,
             13: CallBarredParam, 6: AbsentSubscriberSmParam, 27: AbsentSubscriberParam}
    ati = {34: SystemFailureParam, 49: AtiNotAllowedParam, 35: DataMissingParam,
           36: UnexpectedDataParam, 1: UnknownSubscriberParam}
    for code, cls in {**srism, **ati}.items():
        assert ERROR_PARAMS[code] is cls
        assert decode_error(code, None) == decode_error(code, b"")
        assert decode_error(code, None).param is None
    assert encode_error_param(ErrorCode.SYSTEM_FAILURE, None) is None
    with pytest.raises(CodecError):
        encode_error_param(ErrorCode.SYSTEM_FAILURE, DataMissingParam())
    unknown = decode_error(99, b"\x05\x00")
    assert unknown.code == 99 and unknown.param == UnknownErrorParam(b"\x05\x00")


# ============================================================================ strategies

def names(asn_enum) -> dict[int, str]:
    return {v: k for k, v in asn_enum._cont.items()}


NAT = st.sampled_from(list(NatureOfAddress))
NPI = st.sampled_from(list(NumberingPlan))
ADDR = st.builds(AddressString, st.one_of(st.text("0123456789", max_size=16),
                                          st.text("0123456789*#abc", max_size=16)), NAT, NPI)
IMSI = st.builds(Imsi, st.text("0123456789", min_size=6, max_size=15))
EXT = st.sampled_from([
    (b"", {}),
    (bytes.fromhex("a006300406022a03"), {"privateExtensionList": [{"extId": (1, 2, 3)}]}),
    (bytes.fromhex("a100"), {"pcs-Extensions": {}}),
])


def plmn(mcc: str, mnc: str) -> bytes:
    """PLMN identity written out independently of the codec (TS 24.008 §10.5.1.3)."""
    mnc3 = mnc[2] if len(mnc) == 3 else "f"
    return bytes.fromhex(mcc[1] + mcc[0] + mnc3 + mcc[2] + mnc[1] + mnc[0])


class Case:
    """A drawn value built up as the pair (our dataclass, pycrate's value)."""

    def __init__(self, draw, obj, val: dict) -> None:
        self.draw, self.obj, self.val = draw, obj, val

    def maybe(self, attr: str, key: str, strategy, to_py=lambda v: v) -> None:
        if self.draw(st.booleans()):
            v = self.draw(strategy)
            setattr(self.obj, attr, v)
            self.val[key] = to_py(v)

    def flag(self, attr: str, key: str) -> None:
        if self.draw(st.booleans()):
            setattr(self.obj, attr, True)
            self.val[key] = 0

    def ext(self, key: str = "extensionContainer", attr: str = "extension_container") -> None:
        if self.draw(st.booleans()):
            raw, val = self.draw(EXT)
            setattr(self.obj, attr, raw)
            self.val[key] = val


def addr_py(a: AddressString) -> bytes:
    return a.encode()


def imsi_py(i: Imsi) -> bytes:
    return i.encode()


@st.composite
def srism_arg(draw, version: int):
    msisdn, pri, sca = draw(ADDR), draw(st.booleans()), draw(ADDR)
    c = Case(draw, RoutingInfoForSmArg(msisdn, pri, sca),
             {"msisdn": msisdn.encode(), "sm-RP-PRI": pri, "serviceCentreAddress": sca.encode()})
    if version == 1:
        c.maybe("teleservice", "teleservice", st.integers(0, 255), lambda v: bytes((v,)))
    if version >= 3:
        c.ext()
        c.flag("gprs_support_indicator", "gprsSupportIndicator")
        c.maybe("sm_rp_mti", "sm-RP-MTI", st.integers(0, 10))
        c.maybe("sm_rp_smea", "sm-RP-SMEA", st.binary(min_size=1, max_size=12))
        c.maybe("sm_delivery_not_intended", "sm-deliveryNotIntended", st.integers(0, 1),
                names(SM.SM_DeliveryNotIntended).get)
        c.flag("ip_sm_gw_guidance_indicator", "ip-sm-gwGuidanceIndicator")
        c.maybe("imsi", "imsi", IMSI, imsi_py)
        c.flag("t4_trigger_indicator", "t4-Trigger-Indicator")
        c.flag("single_attempt_delivery", "singleAttemptDelivery")
        if draw(st.booleans()):
            hlr, uri = draw(st.binary(min_size=3, max_size=8)), draw(st.binary(max_size=20))
            c.obj.correlation_id = b"\x80" + bytes((len(hlr),)) + hlr + b"\x82" + bytes(
                (len(uri),)) + uri
            c.val["correlationID"] = {"hlr-id": hlr, "sip-uri-B": uri}
        c.flag("smsf_support_indicator", "smsf-supportIndicator")
    return c.obj, c.val


@st.composite
def srism_res(draw, version: int):
    nnn = draw(ADDR)
    liwl = LocationInfoWithLmsi()
    lval: dict = {}
    if version == 1 and draw(st.booleans()):
        liwl.roaming_number = nnn
        lval["locationInfo"] = ("roamingNumber", nnn.encode())
    elif version < 3:
        liwl.network_node_number = nnn
        lval["locationInfo"] = ("msc-Number", nnn.encode())
    else:
        liwl.network_node_number = nnn
        lval["networkNode-Number"] = nnn.encode()
    lc = Case(draw, liwl, lval)
    lc.maybe("lmsi", "lmsi", st.binary(min_size=4, max_size=4))
    if version >= 3:
        lc.ext()
        lc.flag("gprs_node_indicator", "gprsNodeIndicator")
        if draw(st.booleans()):
            number, sgsn = draw(ADDR), draw(st.booleans())
            liwl.additional_number = (AdditionalNumber(None, number) if sgsn
                                      else AdditionalNumber(number))
            lval["additional-Number"] = ("sgsn-Number" if sgsn else "msc-Number",
                                         number.encode())
    i = draw(IMSI)
    c = Case(draw, RoutingInfoForSmRes(i, liwl), {"imsi": i.encode(),
                                                  "locationInfoWithLMSI": lval})
    if version == 1:
        c.maybe("mwd_set", "mwd-Set", st.booleans())
    if version >= 3:
        c.ext()
        if draw(st.booleans()):
            lo, hi = draw(st.integers(30, 600)), draw(st.integers(30, 600))
            g = IpSmGwGuidance(lo, hi)
            gval = {"minimumDeliveryTimeValue": lo, "recommendedDeliveryTimeValue": hi}
            Case(draw, g, gval).ext()
            c.obj.ip_sm_gw_guidance = g
            c.val["ip-sm-gwGuidance"] = gval
    return c.obj, c.val


@st.composite
def requested_info(draw):
    c = Case(draw, RequestedInfo(), {})
    c.flag("location_information", "locationInformation")
    c.flag("subscriber_state", "subscriberState")
    c.ext()
    c.flag("current_location", "currentLocation")
    c.maybe("requested_domain", "requestedDomain", st.integers(0, 1),
            names(MS.DomainType).get)
    c.flag("imei", "imei")
    c.flag("ms_classmark", "ms-classmark")
    c.flag("mnp_requested_info", "mnpRequestedInfo")
    c.flag("location_information_eps_supported", "locationInformationEPS-Supported")
    c.flag("t_ads_data", "t-adsData")
    if draw(st.booleans()):
        bits = draw(st.integers(0, 3))
        c.obj.requested_nodes = bytes((6, bits << 6))
        c.val["requestedNodes"] = (bits, 2)
    c.flag("serving_node_indication", "servingNodeIndication")
    c.flag("local_time_zone_request", "localTimeZoneRequest")
    return c.obj, c.val


@st.composite
def ati_arg(draw):
    ident = draw(st.one_of(IMSI, ADDR))
    info, ival = draw(requested_info())
    scf = draw(ADDR)
    c = Case(draw, AnyTimeInterrogationArg(ident, info, scf), {
        "subscriberIdentity": (("imsi", ident.encode()) if isinstance(ident, Imsi)
                               else ("msisdn", ident.encode())),
        "requestedInfo": ival, "gsmSCF-Address": scf.encode()})
    c.ext()
    return c.obj, c.val


@st.composite
def cgi(draw):
    mcc = draw(st.text("0123456789", min_size=3, max_size=3))
    mnc = draw(st.text("0123456789", min_size=2, max_size=3))
    lac = draw(st.integers(0, 0xFFFF))
    ci = draw(st.one_of(st.none(), st.integers(0, 0xFFFF)))
    value = CellGlobalIdOrServiceAreaIdOrLai(mcc, mnc, lac, ci)
    if ci is None:
        return value, ("laiFixedLength", plmn(mcc, mnc) + lac.to_bytes(2, "big"))
    return value, ("cellGlobalIdOrServiceAreaIdFixedLength",
                   plmn(mcc, mnc) + lac.to_bytes(2, "big") + ci.to_bytes(2, "big"))


@st.composite
def location_information(draw):
    c = Case(draw, LocationInformation(), {})
    c.maybe("age_of_location_information", "ageOfLocationInformation", st.integers(0, 32767))
    c.maybe("geographical_information", "geographicalInformation",
            st.binary(min_size=8, max_size=8))
    c.maybe("vlr_number", "vlr-number", ADDR, addr_py)
    c.maybe("location_number", "locationNumber", st.binary(min_size=2, max_size=10))
    if draw(st.booleans()):
        value, val = draw(cgi())
        c.obj.cell_global_id_or_service_area_id_or_lai = value
        c.val["cellGlobalIdOrServiceAreaIdOrLAI"] = val
    c.ext(attr="extension_container")
    c.maybe("selected_lsa_id", "selectedLSA-Id", st.binary(min_size=3, max_size=3))
    c.maybe("msc_number", "msc-Number", ADDR, addr_py)
    c.maybe("geodetic_information", "geodeticInformation", st.binary(min_size=10, max_size=10))
    c.flag("current_location_retrieved", "currentLocationRetrieved")
    c.flag("sai_present", "sai-Present")
    return c.obj, c.val


STATES = {SubscriberState.ASSUMED_IDLE: "assumedIdle", SubscriberState.CAMEL_BUSY: "camelBusy",
          SubscriberState.NOT_PROVIDED_FROM_VLR: "notProvidedFromVLR"}


@st.composite
def subscriber_info(draw):
    c = Case(draw, SubscriberInfo(), {})
    if draw(st.booleans()):
        c.obj.location_information, c.val["locationInformation"] = draw(location_information())
    if draw(st.booleans()):
        state = draw(st.sampled_from(list(SubscriberState)))
        c.obj.subscriber_state = state
        if state is SubscriberState.NET_DET_NOT_REACHABLE:
            reason = draw(st.integers(0, 3))
            c.obj.not_reachable_reason = reason
            c.val["subscriberState"] = ("netDetNotReachable",
                                        names(MS.NotReachableReason)[reason])
        else:
            c.val["subscriberState"] = (STATES[state], 0)
    c.ext()
    c.maybe("imei", "imei", st.text("0123456789", min_size=15, max_size=16), encode_tbcd)
    c.maybe("ms_classmark2", "ms-Classmark2", st.binary(min_size=3, max_size=3))
    if draw(st.booleans()):
        m = Case(draw, MnpInfoRes(), {})
        m.maybe("routeing_number", "routeingNumber", st.text("0123456789", min_size=1,
                                                               max_size=10), encode_tbcd)
        m.maybe("imsi", "imsi", IMSI, imsi_py)
        m.maybe("msisdn", "msisdn", ADDR, addr_py)
        m.maybe("number_portability_status", "numberPortabilityStatus",
                st.sampled_from([0, 1, 2, 4, 5]), names(MS.NumberPortabilityStatus).get)
        m.ext()
        c.obj.mnp_info_res, c.val["mnpInfoRes"] = m.obj, m.val
    return c.obj, c.val


@st.composite
def ati_res(draw):
    info, val = draw(subscriber_info())
    c = Case(draw, AnyTimeInterrogationRes(info), {"subscriberInfo": val})
    c.ext()
    return c.obj, c.val


@st.composite
def sri_arg(draw, version: int):
    msisdn = draw(ADDR)
    c = Case(draw, SendRoutingInfoArg(msisdn), {"msisdn": msisdn.encode()})
    if draw(st.booleans()):
        interlock = draw(st.binary(min_size=4, max_size=4))
        c.obj.cug_check_info = b"\x04\x04" + interlock
        c.val["cug-CheckInfo"] = {"cug-Interlock": interlock}
    c.maybe("number_of_forwarding", "numberOfForwarding", st.integers(1, 5))
    if version >= 3:
        itype, gmsc = draw(st.integers(0, 1)), draw(ADDR)
        c.obj.interrogation_type, c.obj.gmsc_or_gsm_scf_address = itype, gmsc
        c.val["interrogationType"] = names(CH.InterrogationType)[itype]
        c.val["gmsc-OrGsmSCF-Address"] = gmsc.encode()
        c.flag("or_interrogation", "or-Interrogation")
        c.maybe("or_capability", "or-Capability", st.integers(1, 127))
        c.maybe("call_reference_number", "callReferenceNumber",
                st.binary(min_size=1, max_size=8))
        c.maybe("forwarding_reason", "forwardingReason", st.integers(0, 2),
                names(CH.ForwardingReason).get)
        c.flag("suppression_of_announcement", "suppressionOfAnnouncement")
        c.ext()
    return c.obj, c.val


@st.composite
def forwarding_data(draw, version: int):
    c = Case(draw, ForwardingData(), {})
    c.maybe("forwarded_to_number", "forwardedToNumber", ADDR, addr_py)
    c.maybe("forwarded_to_subaddress", "forwardedToSubaddress",
            st.binary(min_size=1, max_size=21))
    c.maybe("forwarding_options", "forwardingOptions", st.integers(0, 255),
            lambda v: bytes((v,)))
    if version >= 3:
        c.ext()
        c.maybe("long_forwarded_to_number", "longForwardedToNumber", ADDR, addr_py)
    return c.obj, c.val


@st.composite
def sri_res(draw, version: int):
    i = draw(IMSI)
    c = Case(draw, SendRoutingInfoRes(i), {})
    if draw(st.booleans()):
        rn = draw(ADDR)
        c.obj.roaming_number = rn
        routing = ("roamingNumber", rn.encode())
    else:
        c.obj.forwarding_data, fval = draw(forwarding_data(version))
        routing = ("forwardingData", fval)
    if version < 3:
        c.val.update({"imsi": i.encode(), "routingInfo": routing})
        if draw(st.booleans()):
            interlock = draw(st.binary(min_size=4, max_size=4))
            c.obj.cug_check_info = b"\x04\x04" + interlock + b"\x05\x00"
            c.val["cug-CheckInfo"] = {"cug-Interlock": interlock, "cug-OutgoingAccess": 0}
        return c.obj, c.val
    if draw(st.booleans()):
        c.val["imsi"] = i.encode()
    else:
        c.obj.imsi = None
    if draw(st.booleans()):
        c.val["extendedRoutingInfo"] = ("routingInfo", routing)
    else:
        c.obj.roaming_number = c.obj.forwarding_data = None
    c.flag("cug_subscription_flag", "cugSubscriptionFlag")
    if draw(st.booleans()):
        c.obj.subscriber_info, c.val["subscriberInfo"] = draw(subscriber_info())
    c.flag("forwarding_interrogation_required", "forwardingInterrogationRequired")
    c.maybe("vmsc_address", "vmsc-Address", ADDR, addr_py)
    c.ext()
    c.maybe("msisdn", "msisdn", ADDR, addr_py)
    c.maybe("number_portability_status", "numberPortabilityStatus",
            st.sampled_from([0, 1, 2, 4, 5]), names(MS.NumberPortabilityStatus).get)
    c.maybe("unavailability_cause", "unavailabilityCause", st.integers(1, 6),
            names(CH.UnavailabilityCause).get)
    return c.obj, c.val


# ============================================================================ differential

def both_ways(asn, obj, val, version: int = 3, decode=None) -> None:
    decode = decode or type(obj).decode
    ours = obj.encode(version)
    asn.from_ber(ours)
    assert asn.get_val() == val
    asn.set_val(val)
    theirs = asn.to_ber()
    assert decode(theirs, version) == obj
    assert ours == theirs


@DIFF
@given(st.data())
def test_diff_srism_argument(data) -> None:
    version = data.draw(st.sampled_from([1, 2, 3]))
    obj, val = data.draw(srism_arg(version))
    asn = SM.RoutingInfoForSM_Arg if version == 3 else M2.MAPv2_SM_DataTypes.RoutingInfoForSM_Arg
    both_ways(asn, obj, val, version)


@DIFF
@given(st.data())
def test_diff_srism_result(data) -> None:
    version = data.draw(st.sampled_from([1, 2, 3]))
    obj, val = data.draw(srism_res(version))
    asn = SM.RoutingInfoForSM_Res if version == 3 else M2.MAPv2_SM_DataTypes.RoutingInfoForSM_Res
    both_ways(asn, obj, val, version)


@DIFF
@given(ati_arg())
def test_diff_ati_argument(case) -> None:
    both_ways(MS.AnyTimeInterrogationArg, *case)


@DIFF
@given(ati_res())
def test_diff_ati_result(case) -> None:
    both_ways(MS.AnyTimeInterrogationRes, *case)


@DIFF
@given(st.data())
def test_diff_sri_argument(data) -> None:
    version = data.draw(st.sampled_from([2, 3]))
    obj, val = data.draw(sri_arg(version))
    both_ways(CH.SendRoutingInfoArg if version == 3 else M2.MAPv2_CH_DataTypes.SendRoutingInfoArg,
              obj, val, version)


@DIFF
@given(st.data())
def test_diff_sri_result(data) -> None:
    version = data.draw(st.sampled_from([2, 3]))
    obj, val = data.draw(sri_res(version))
    both_ways(CH.SendRoutingInfoRes if version == 3 else M2.MAPv2_CH_DataTypes.SendRoutingInfoRes,
              obj, val, version)


def error_cases(draw):
    """(error code, pycrate type, our param, pycrate value, version) for every typed error."""
    code = draw(st.sampled_from(sorted(ERROR_PARAMS)))
    cls = ERROR_PARAMS[code]
    asn_name = {AtiNotAllowedParam: "ATI_NotAllowedParam", AbsentSubscriberSmParam:
                "AbsentSubscriberSM_Param", CugRejectParam: "CUG_RejectParam",
                ErrorCode.OR_NOT_ALLOWED: "OR_NotAllowedParam"}
    name = asn_name.get(cls) or asn_name.get(code) or cls.__name__
    c = Case(draw, cls(), {})
    if cls is SystemFailureParam:
        if draw(st.booleans()):
            r = draw(st.integers(0, 7))
            if draw(st.booleans()):  # v1/v2: the bare ENUMERATED
                c.obj.network_resource = r
                return code, M2.MAPv2_CommonDataTypes.NetworkResource, c.obj, \
                    names(COMMON.NetworkResource)[r], 2
            c.obj.network_resource = r
            return code, ER.SystemFailureParam, c.obj, ("networkResource",
                                                        names(COMMON.NetworkResource)[r]), 3
        c.obj.extensible = True
        c.maybe("network_resource", "networkResource", st.integers(0, 7),
                names(COMMON.NetworkResource).get)
        c.ext()
        c.maybe("additional_network_resource", "additionalNetworkResource", st.integers(0, 7),
                names(COMMON.AdditionalNetworkResource).get)
        c.maybe("failure_cause_param", "failureCauseParam", st.just(0),
                names(ER.FailureCauseParam).get)
        return code, ER.SystemFailureParam, c.obj, ("extensibleSystemFailureParam", c.val), 3
    if cls is CallBarredParam:
        if draw(st.booleans()):
            cause = draw(st.integers(0, 1))
            c.obj.call_barring_cause = cause
            version = draw(st.sampled_from([2, 3]))
            if version == 2:
                return code, M2.MAPv2_ER_DataTypes.CallBarringCause, c.obj, \
                    names(ER.CallBarringCause)[cause], 2
            return code, ER.CallBarredParam, c.obj, ("callBarringCause",
                                                     names(ER.CallBarringCause)[cause]), 3
        c.obj.extensible = True
        c.maybe("call_barring_cause", "callBarringCause", st.integers(0, 1),
                names(ER.CallBarringCause).get)
        c.ext()
        c.flag("unauthorised_message_originator", "unauthorisedMessageOriginator")
        c.flag("anonymous_call_rejection", "anonymousCallRejection")
        return code, ER.CallBarredParam, c.obj, ("extensibleCallBarredParam", c.val), 3
    if cls is AbsentSubscriberParam and draw(st.booleans()):
        c.obj.mwd_set = draw(st.booleans())
        return code, M2.MAPv2_Errors.Mwd_Set, c.obj, c.obj.mwd_set, 2
    if cls is AbsentSubscriberSmParam:
        c.maybe("absent_subscriber_diagnostic_sm", "absentSubscriberDiagnosticSM",
                st.integers(0, 255))
    if cls is CugRejectParam:
        c.maybe("cug_reject_cause", "cug-RejectCause", st.sampled_from([0, 1, 5, 7]),
                names(ER.CUG_RejectCause).get)
    c.ext()
    if cls is AbsentSubscriberSmParam:
        c.maybe("additional_absent_subscriber_diagnostic_sm",
                "additionalAbsentSubscriberDiagnosticSM", st.integers(0, 255))
        c.maybe("imsi", "imsi", IMSI, imsi_py)
        c.maybe("requested_retransmission_time", "requestedRetransmissionTime",
                st.binary(min_size=4, max_size=4))
        c.maybe("user_identifier_alert", "userIdentifierAlert", IMSI, imsi_py)
    flags = {UnexpectedDataParam: [("unexpected_subscriber", "unexpectedSubscriber")],
             FacilityNotSupParam: [("shape_of_location_estimate_not_supported",
                                    "shapeOfLocationEstimateNotSupported"),
                                   ("needed_lcs_capability_not_supported_in_serving_node",
                                    "neededLcsCapabilityNotSupportedInServingNode")],
             BusySubscriberParam: [("ccbs_possible", "ccbs-Possible"),
                                   ("ccbs_busy", "ccbs-Busy")]}
    for attr, key in flags.get(cls, []):
        c.flag(attr, key)
    if cls is UnknownSubscriberParam:
        c.maybe("unknown_subscriber_diagnostic", "unknownSubscriberDiagnostic",
                st.integers(0, 2), names(ER.UnknownSubscriberDiagnostic).get)
    if cls is AbsentSubscriberParam:
        c.maybe("absent_subscriber_reason", "absentSubscriberReason", st.integers(0, 5),
                names(ER.AbsentSubscriberReason).get)
    return code, getattr(ER, name), c.obj, c.val, 3


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_diff_error_parameters(data) -> None:
    code, asn, obj, val, version = error_cases(data.draw)
    wire = encode_error_param(code, obj, version)
    assert wire == obj.encode(version)
    asn.from_ber(wire)
    assert asn.get_val() == val
    asn.set_val(val)
    theirs = asn.to_ber()
    assert theirs == wire
    assert decode_error(code, theirs, version) == decode_error(code, wire, version)
    assert decode_error(code, theirs, version).param == obj


def test_error_parameters_absent_before_v3() -> None:
    assert UnknownSubscriberParam(unknown_subscriber_diagnostic=0).encode(2) is None
    assert DataMissingParam().encode(1) is None
    assert SystemFailureParam(NetworkResource.HLR, extensible=True).encode(2) == b"\x0a\x01\x01"
    assert SystemFailureParam(NetworkResource.HLR).encode(3) == b"\x0a\x01\x01"
    assert SystemFailureParam(NetworkResource.HLR, extensible=True).encode(3) == bytes.fromhex(
        "30030a0101")
    assert AbsentSubscriberParam(mwd_set=True).encode(1) == b"\x01\x01\xff"
    assert AbsentSubscriberParam().encode(2) is None
    assert AbsentSubscriberSmParam(1).encode(2) == bytes.fromhex("3003020101")
    assert NumberChangedParam().encode(3) == b"\x30\x00"


# ============================================================================ behaviour

ARG = bytes.fromhex(PARAMS["srism_v3_begin"])
RES = bytes.fromhex(PARAMS["srism_v3_end_result"])


def test_unknown_extensions_are_skipped_and_kept() -> None:
    future = bytes.fromhex("9f3f0101") + bytes.fromhex("bf4003800100")  # [63], [64] {..}
    arg = RoutingInfoForSmArg.decode(b"\x30" + bytes((len(ARG) - 2 + len(future),))
                                     + ARG[2:] + future)
    assert arg.unknown == (bytes.fromhex("9f3f0101"), bytes.fromhex("bf4003800100"))
    assert arg.msisdn.digits == "447700900123"
    assert arg.encode()[-len(future):] == future
    liwl = bytes.fromhex("a00f810791447700990010" "8e00" "a7028000")  # + [14] NULL + [7] {..}
    res = RoutingInfoForSmRes.decode(bytes.fromhex("301b" "0408" "32140599999999f9") + liwl)
    assert res.location_info_with_lmsi.unknown == (b"\x8e\x00", b"\xa7\x02\x80\x00")
    assert res.location_info_with_lmsi.network_node_number == isdn("447700990001")


def test_indefinite_and_long_form_lengths() -> None:
    indefinite = b"\x30\x80" + ARG[2:] + b"\x00\x00"
    assert RoutingInfoForSmArg.decode(indefinite) == RoutingInfoForSmArg.decode(ARG)
    long_form = b"\x30\x81\x16" + b"\x80\x81\x07" + ARG[4:]
    assert RoutingInfoForSmArg.decode(long_form) == RoutingInfoForSmArg.decode(ARG)
    # 0x30 0x81 0x80: the long-form octet 0x81 plus 2 equals the total length (131)
    pad = bytes.fromhex("9f3f") + bytes((128 - len(ARG) + 2 - 3,)) + bytes(128 - len(ARG) + 2 - 3)
    tricky = b"\x30\x81\x80" + ARG[2:] + pad
    assert len(tricky) == 0x81 + 2
    assert RoutingInfoForSmArg.decode(tricky).unknown == (pad,)
    nested = bytes.fromhex("3080" "0408" "32140599999999f9" "a080810791447700990010" "0000"
                           "0000")
    assert RoutingInfoForSmRes.decode(nested) == RoutingInfoForSmRes.decode(RES)


def seq(body_hex: str, tag: int = 0x30) -> bytes:
    body = bytes.fromhex(body_hex)
    return bytes((tag, len(body))) + body


@pytest.mark.parametrize(("wire", "field", "offset"), [
    (seq("8101ff820791447700090000" "8e00" "8d00"), "msisdn", 0),  # msisdn missing
    (seq("8007914477000910328101ff"), "serviceCentreAddress", 0),  # SC address missing
    (seq("8007914477f10910328101ff820791447700090000"), "msisdn", 7),  # filler inside digits
    (seq("8007914477000910328102ffff820791447700090000"), "sm-RP-PRI", 13),  # 2-octet BOOLEAN
    (seq("8007914477000910328101ff820791447700090000", 0x31), "RoutingInfoForSM-Arg", 0),
    (bytes.fromhex("30168007914477000910328101ff820791447700090000"), "RoutingInfoForSM-Arg",
     1),  # outer length one too long
    (seq("8007914477000910328101ff820891447700090000"), "RoutingInfoForSM-Arg", 15),
    (seq("8007914477000910328101ff820791447700090000") + b"\x00", "RoutingInfoForSM-Arg", 1),
])
def test_malformed_argument_names_field_and_offset(wire: bytes, field: str, offset: int) -> None:
    with pytest.raises(CodecError) as info:
        RoutingInfoForSmArg.decode(wire)
    assert info.value.layer is Layer.MAP
    assert info.value.field == field
    assert info.value.offset == offset


def test_malformed_result_fields() -> None:
    with pytest.raises(CodecError) as info:
        RoutingInfoForSmRes.decode(bytes.fromhex("300ba009810791447700990010"))
    assert info.value.field == "imsi"
    with pytest.raises(CodecError) as info:  # IMSI of 2 octets
        RoutingInfoForSmRes.decode(bytes.fromhex("30040402" "3214"))
    assert (info.value.field, info.value.offset) == ("imsi", 4)
    with pytest.raises(CodecError) as info:  # LocationInfoWithLMSI without a number
        RoutingInfoForSmRes.decode(bytes.fromhex("300c0408" "32140599999999f9" "a000"))
    assert info.value.field == "networkNode-Number"
    with pytest.raises(CodecError) as info:  # CGI of 6 octets
        AnyTimeInterrogationRes.decode(bytes.fromhex("300c300aa008a30680" "0432f45100"))
    assert info.value.field in ("cellGlobalIdOrServiceAreaIdFixedLength", "SubscriberInfo",
                                "LocationInformation")


def test_version_differences_srism() -> None:
    arg = RoutingInfoForSmArg(isdn("1234"), False, isdn("5678"), teleservice=0x21,
                              gprs_support_indicator=True, imsi=Imsi("001010123456789"))
    v1, v2, v3 = arg.encode(1), arg.encode(2), arg.encode(3)
    assert v1 == bytes.fromhex("30108003912143810100820391658785" "0121")
    assert v2 == v1[:-3].replace(b"\x30\x10", b"\x30\x0d", 1)
    assert b"\x87\x00" in v3 and b"\x85\x01" not in v3
    assert RoutingInfoForSmArg.decode(v1, 1).teleservice == 0x21
    res = RoutingInfoForSmRes(Imsi("001010123456789"),
                              LocationInfoWithLmsi(roaming_number=isdn("4477"), lmsi=b"\1\2\3\4"),
                              mwd_set=True)
    v1 = res.encode(1)
    assert RoutingInfoForSmRes.decode(v1, 1) == res
    with pytest.raises(CodecError):
        res.encode(2)  # roamingNumber is version 1 only


def test_registry_and_send_imsi() -> None:
    assert set(ARGUMENTS) == set(RESULTS) == {22, 45, 58, 71}
    assert SendImsiArg(isdn("4477")).encode() == bytes.fromhex("0403914477")
    assert decode_argument(58, bytes.fromhex("0403914477")) == SendImsiArg(isdn("4477"))
    wire = b"\x04\x08" + bytes.fromhex("32140599999999f9")
    assert decode_result(58, wire) == SendImsiRes(Imsi("234150999999999"))
    assert encode_result(58, SendImsiRes(Imsi("234150999999999"))) == wire
    with pytest.raises(CodecError):
        decode_argument(2, ARG)
    with pytest.raises(CodecError):
        encode_argument(45, SendImsiArg(isdn("1")))
    with pytest.raises(CodecError):
        encode_result(22, SendImsiRes(Imsi("234150999999999")))


def test_sri_result_versions() -> None:
    res = SendRoutingInfoRes(Imsi("234150999999999"), roaming_number=isdn("447700990099"))
    v3, v2 = res.encode(3), res.encode(2)
    assert v3[0] == 0xA3 and v2[0] == 0x30
    assert SendRoutingInfoRes.decode(v3) == SendRoutingInfoRes.decode(v2, 2) == res
    fwd = SendRoutingInfoRes(Imsi("234150999999999"),
                             forwarding_data=ForwardingData(isdn("447700123456"),
                                                            forwarding_options=0x20))
    assert SendRoutingInfoRes.decode(fwd.encode()).forwarding_data.forwarded_to_number == isdn(
        "447700123456")
    with pytest.raises(CodecError):
        dataclasses.replace(fwd, roaming_number=isdn("1")).encode()
    with pytest.raises(CodecError):  # v2 needs the routing info
        SendRoutingInfoRes(Imsi("234150999999999")).encode(2)
    with pytest.raises(CodecError):  # v3 argument needs interrogationType
        SendRoutingInfoArg(isdn("4477")).encode(3)
    assert SendRoutingInfoArg(isdn("4477")).encode(2) == bytes.fromhex("30058003914477")


def test_encode_rejects_bad_values_with_codec_error() -> None:
    for bad in (RoutingInfoForSmArg("4477", True, isdn("1")),  # type: ignore[arg-type]
                RoutingInfoForSmRes(Imsi("12"), LocationInfoWithLmsi(isdn("1"))),
                AnyTimeInterrogationArg("x", RequestedInfo(), isdn("1")),  # type: ignore
                RoutingInfoForSmArg(isdn("12x"), True, isdn("1"))):
        with pytest.raises(CodecError) as info:
            bad.encode()
        assert info.value.layer is Layer.MAP


@given(st.text("0123456789", max_size=20), NAT, NPI)
def test_fast_address_paths_match_tbcd(digits: str, nature, plan) -> None:
    from protocols.map.common import address, enc_address, enc_imsi, imsi
    a = AddressString(digits, nature, plan)
    wire = enc_address(a)
    assert wire == a.encode()
    assert address(wire, 0, len(wire), "x") == AddressString.decode(wire)
    if 5 <= len(digits) <= 16:
        assert enc_imsi(Imsi(digits)) == Imsi(digits).encode()
        raw = Imsi(digits).encode()
        assert imsi(raw, 0, len(raw)) == Imsi.decode(raw)


# ============================================================================ fuzz

DECODERS = [
    *((f"arg{op}", lambda d, c=cls: c.decode(d)) for op, cls in ARGUMENTS.items()),
    *((f"res{op}", lambda d, c=cls: c.decode(d)) for op, cls in RESULTS.items()),
    ("arg45v1", lambda d: RoutingInfoForSmArg.decode(d, 1)),
    ("res22v2", lambda d: SendRoutingInfoRes.decode(d, 2)),
    ("arg22v2", lambda d: SendRoutingInfoArg.decode(d, 2)),
    *((f"err{code}", lambda d, c=code: decode_error(c, d)) for code in ERROR_PARAMS),
    ("err99", lambda d: decode_error(99, d)),
]


def only_codec_errors(data: bytes) -> None:
    """Every decoder raises CodecError (layer MAP) or decodes; whatever decodes re-encodes
    (or raises CodecError: a v1-only component cannot be written in v3), and a re-encoding
    decodes again."""
    for _, decode in DECODERS:
        try:
            value = decode(data)
        except CodecError as exc:
            assert exc.layer is Layer.MAP
            assert isinstance(exc.offset, int) and isinstance(exc.field, str)
            continue
        try:
            if hasattr(value, "encode"):
                wire = value.encode(3)
                type(value).decode(wire)
            elif value.param is not None:
                wire = encode_error_param(value.code, value.param)
                decode(wire)
        except CodecError as exc:
            assert exc.layer is Layer.MAP


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data: bytes) -> None:
    only_codec_errors(data)


TAGS = [0x01, 0x02, 0x04, 0x05, 0x0A, 0x30, *range(0x80, 0x91), *range(0xA0, 0xB1)]


def ber_tree(max_leaves: int = 12):
    values = st.one_of(st.binary(max_size=10), st.sampled_from(
        [b"", b"\x01", b"\xff", bytes.fromhex("91447700091032"), bytes.fromhex("32140599999999f9"),
         bytes.fromhex("32f4510001000a"), bytes.fromhex("32f4510001")]))
    leaf = st.tuples(st.sampled_from(TAGS), values).map(
        lambda tv: bytes((tv[0] & 0xDF, len(tv[1]))) + tv[1])
    return st.recursive(leaf, lambda kids: st.tuples(
        st.sampled_from([t for t in TAGS if t & 0x20]), st.lists(kids, max_size=4)).map(
        lambda tk: (lambda body: bytes((tk[0], len(body))) + body if len(body) < 128
                    else bytes((tk[0], 0x81, len(body))) + body if len(body) < 256
                    else b"\x30\x00")(b"".join(tk[1]))), max_leaves=max_leaves)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([0x30, 0xA3, 0x04, 0x0A, 0x01]), st.lists(ber_tree(), max_size=6))
def test_fuzz_structured_ber(outer_tag: int, kids: list[bytes]) -> None:
    body = b"".join(kids)
    if len(body) < 128:
        only_codec_errors(bytes((outer_tag, len(body))) + body)


SEEDS = [*(bytes.fromhex(h) for h in PARAMS.values()),
         bytes.fromhex("30108003912143810100820391658785" "0121"),
         SendRoutingInfoRes(Imsi("234150999999999"), roaming_number=isdn("447700990099"),
                            subscriber_info=SubscriberInfo(
                                subscriber_state=SubscriberState.CAMEL_BUSY)).encode()]


def test_fuzz_every_mutation_of_the_vectors() -> None:
    for seed in SEEDS:
        for i in range(len(seed)):
            only_codec_errors(seed[:i])
            for value in (0x00, 0x01, 0x1F, 0x7F, 0x80, 0x81, 0x84, 0xFF, seed[i] ^ 0x20):
                only_codec_errors(seed[:i] + bytes((value,)) + seed[i + 1:])
            only_codec_errors(seed[:i] + b"\x80" + seed[i:])


def test_decoders_take_bytes_like_and_refuse_the_rest() -> None:
    assert RoutingInfoForSmArg.decode(bytearray(ARG)) == RoutingInfoForSmArg.decode(ARG)
    assert RoutingInfoForSmRes.decode(memoryview(RES)) == RoutingInfoForSmRes.decode(RES)
    assert decode_error(13, bytearray(b"\x0a\x01\x01")).param == CallBarredParam(1)
    for junk in (None, 5, "30", [0x30, 0]):
        for name, decode in DECODERS:
            if junk is None and name.startswith("err"):
                continue  # no parameter: a valid error
            with pytest.raises(CodecError):
                decode(junk)


def test_decoders_do_not_hang_on_deep_nesting() -> None:
    deep = b"\x00\x00"
    for _ in range(200):
        deep = b"\xa0\x80" + deep + b"\x00\x00"
    only_codec_errors(b"\x30\x80" + deep + b"\x00\x00")
    nested = b""
    for _ in range(60):
        nested = b"\xa0" + bytes((len(nested),)) + nested if len(nested) < 127 else nested
    only_codec_errors(b"\x30" + bytes((len(nested),)) + nested)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(ber_tree(6), max_size=3), st.data())
def test_fuzz_valid_messages_with_inserted_components(seed: bytes, extra: list[bytes],
                                                      data) -> None:
    if seed[1] & 0x80 or seed[0] & 0x20 == 0:
        return
    kids, pos = [], 2
    while pos < len(seed):
        _, _, _, nxt = read_tlv(seed, pos, len(seed))
        kids.append(seed[pos:nxt])
        pos = nxt
    for kid in extra:
        kids.insert(data.draw(st.integers(0, len(kids))), kid)
    body = b"".join(kids)
    if len(body) < 128:
        only_codec_errors(bytes((seed[0], len(body))) + body)
