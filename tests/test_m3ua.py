"""M3UA codec (RFC 4666): conformance vectors, every message type, Wireshark, framing, fuzzing."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import CodecError, Layer
from protocols.m3ua import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    MESSAGE_TYPES,
    AspActive,
    AspActiveAck,
    AspDown,
    AspDownAck,
    AspInactive,
    AspInactiveAck,
    AspsmType,
    AsptmType,
    AspUp,
    AspUpAck,
    AsState,
    CongestionLevel,
    Data,
    DeregistrationRequest,
    DeregistrationResponse,
    DeregistrationResult,
    DeregistrationStatus,
    DestinationAvailable,
    DestinationRestricted,
    DestinationStateAudit,
    DestinationUnavailable,
    DestinationUserPartUnavailable,
    Error,
    ErrorCode,
    Heartbeat,
    HeartbeatAck,
    MessageClass,
    MessageFramer,
    MgmtType,
    Notify,
    OtherStatus,
    ParameterTag,
    PointCode,
    ProtocolData,
    RegistrationRequest,
    RegistrationResponse,
    RegistrationResult,
    RegistrationStatus,
    RkmType,
    RoutingKey,
    RoutingKeyDestination,
    SignallingCongestion,
    SsnmType,
    StatusType,
    TrafficModeType,
    TransferType,
    UnavailabilityCause,
    UserIdentity,
    decode,
    encode,
)
from tests import wireshark
from tests.vectors import VECTORS

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _params(msg: bytes, start: int = 8) -> list[tuple[int, int, int]]:
    """(tag, offset, length) of each top-level parameter; an independent walker for tests."""
    out, pos = [], start
    while pos + 4 <= len(msg):
        tag, length = struct.unpack_from(">HH", msg, pos)
        out.append((tag, pos, length))
        pos += (length + 3) & ~3
    return out


# --------------------------------------------------------------------------- conformance vectors

# The DATA vectors: (OPC, DPC) from vectors-dissected.txt; all are SI 3 (SCCP), NI 2
# (national), MP 0, SLS 0, routing context 100. Begins go 1 -> 2, answers 2 -> 1.
DATA_ROUTES = {
    "srism_v3_begin": (1, 2),
    "srism_v3_end_result": (2, 1),
    "srism_end_error_absent": (2, 1),
    "srism_end_error_unknown": (2, 1),
    "srism_end_error_barred": (2, 1),
    "srism_end_error_teleservice": (2, 1),
    "srism_abort_acn_not_supported": (2, 1),
    "srism_v2_begin": (1, 2),
    "tcap_pabort_unrecognized_tid": (2, 1),
    "ati_v3_begin": (1, 2),
    "ati_v3_end_result": (2, 1),
    "ati_end_not_reachable": (2, 1),
    "srism_v3_begin_xudt": (1, 2),
    "sccp_udts_no_translation": (2, 1),
    "srism_v3_begin_odd_gt": (1, 2),
}


def _data_vector(name: str) -> Data:
    opc, dpc = DATA_ROUTES[name]
    return Data(routing_context=100,
                protocol_data=ProtocolData(opc=opc, dpc=dpc, si=3, ni=2, mp=0, sls=0,
                                           data=VECTORS[name].sccp))


# Each vector's message, built from the values its note describes.
EXPECTED = {
    "m3ua_aspup": AspUp(),
    "m3ua_aspup_ack": AspUpAck(),
    "m3ua_aspac_loadshare_rc100": AspActive(traffic_mode_type=TrafficModeType.LOADSHARE,
                                            routing_context=[100]),
    "m3ua_aspac_ack_rc100": AspActiveAck(traffic_mode_type=TrafficModeType.LOADSHARE,
                                         routing_context=[100]),
    "m3ua_ntfy_as_active": Notify(status_type=StatusType.AS_STATE_CHANGE,
                                  status_info=AsState.AS_ACTIVE, routing_context=[100]),
    "m3ua_beat": Heartbeat(data=b"hello"),
    "m3ua_beat_ack": HeartbeatAck(data=b"hello"),
    "m3ua_err_invalid_rc": Error(error_code=ErrorCode.INVALID_ROUTING_CONTEXT,
                                 routing_context=[7]),
    "m3ua_duna_pc2": DestinationUnavailable(routing_context=[100],
                                            affected_point_codes=[PointCode(2, mask=0)]),
    "m3ua_dava_pc2": DestinationAvailable(routing_context=[100],
                                          affected_point_codes=[PointCode(2, mask=0)]),
    "m3ua_aspdn": AspDown(),
    "m3ua_aspia_rc100": AspInactive(routing_context=[100]),
    **{name: _data_vector(name) for name in DATA_ROUTES},
}


def test_every_vector_has_an_expected_message():
    assert set(EXPECTED) == set(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_decodes_to_expected(name):
    assert decode(VECTORS[name].m3ua) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_encodes_from_values(name):
    assert encode(EXPECTED[name]) == VECTORS[name].m3ua


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_round_trip(name):
    raw = VECTORS[name].m3ua
    assert encode(decode(raw)) == raw


def test_vector_fields_aspac():
    msg = decode(VECTORS["m3ua_aspac_loadshare_rc100"].m3ua)
    assert type(msg) is AspActive
    assert msg.traffic_mode_type is TrafficModeType.LOADSHARE
    assert msg.routing_context == [100]
    assert msg.info_string is None and msg.unknown == ()
    ack = decode(VECTORS["m3ua_aspac_ack_rc100"].m3ua)
    assert type(ack) is AspActiveAck
    assert ack.traffic_mode_type is TrafficModeType.LOADSHARE and ack.routing_context == [100]


def test_vector_fields_aspsm():
    assert type(decode(VECTORS["m3ua_aspup"].m3ua)) is AspUp
    assert type(decode(VECTORS["m3ua_aspup_ack"].m3ua)) is AspUpAck
    assert type(decode(VECTORS["m3ua_aspdn"].m3ua)) is AspDown
    beat = decode(VECTORS["m3ua_beat"].m3ua)
    assert type(beat) is Heartbeat and beat.data == b"hello"
    ack = decode(VECTORS["m3ua_beat_ack"].m3ua)
    assert type(ack) is HeartbeatAck and ack.data == b"hello"
    aspia = decode(VECTORS["m3ua_aspia_rc100"].m3ua)
    assert type(aspia) is AspInactive and aspia.routing_context == [100]


def test_vector_fields_mgmt():
    err = decode(VECTORS["m3ua_err_invalid_rc"].m3ua)
    assert type(err) is Error
    assert err.error_code is ErrorCode.INVALID_ROUTING_CONTEXT and err.error_code == 0x19
    assert err.routing_context == [7]
    assert err.network_appearance is None and err.diagnostic_information is None
    ntfy = decode(VECTORS["m3ua_ntfy_as_active"].m3ua)
    assert type(ntfy) is Notify
    assert ntfy.status_type is StatusType.AS_STATE_CHANGE
    assert ntfy.status_info is AsState.AS_ACTIVE
    assert ntfy.routing_context == [100] and ntfy.asp_identifier is None


@pytest.mark.parametrize("name, cls", [("m3ua_duna_pc2", DestinationUnavailable),
                                       ("m3ua_dava_pc2", DestinationAvailable)])
def test_vector_fields_ssnm(name, cls):
    msg = decode(VECTORS[name].m3ua)
    assert type(msg) is cls
    assert msg.routing_context == [100]
    assert len(msg.affected_point_codes) == 1
    assert msg.affected_point_codes[0].point_code == 2
    assert msg.affected_point_codes[0].mask == 0


@pytest.mark.parametrize("name", sorted(DATA_ROUTES))
def test_vector_fields_data(name):
    msg = decode(VECTORS[name].m3ua)
    assert type(msg) is Data
    assert msg.routing_context == 100
    assert msg.network_appearance is None and msg.correlation_id is None
    pd = msg.protocol_data
    assert (pd.opc, pd.dpc) == DATA_ROUTES[name]
    assert (pd.si, pd.ni, pd.mp, pd.sls) == (3, 2, 0, 0)
    assert type(pd.data) is bytes
    assert pd.data == VECTORS[name].sccp


# --------------------------------------------------------------------------- every message type

SCCP = VECTORS["srism_v3_begin"].sccp

SAMPLES = [
    Error(error_code=ErrorCode.INVALID_ROUTING_CONTEXT, routing_context=[7, 8],
          network_appearance=1, affected_point_codes=[PointCode(2), PointCode(0x10, mask=3)],
          diagnostic_information=bytes.fromhex("0100040100000008")),
    Notify(status_type=StatusType.OTHER, status_info=OtherStatus.ALTERNATE_ASP_ACTIVE,
           asp_identifier=42, routing_context=[100], info_string="alternate"),
    Data(network_appearance=8, routing_context=100,
         protocol_data=ProtocolData(1, 2, 3, 2, 0, 5, SCCP), correlation_id=77),
    DestinationUnavailable(network_appearance=8, routing_context=[100],
                           affected_point_codes=[PointCode(2), PointCode(5)], info_string="duna"),
    DestinationAvailable(routing_context=[100], affected_point_codes=[PointCode(2)]),
    DestinationStateAudit(routing_context=[100, 101], affected_point_codes=[PointCode(2)],
                          info_string="audit"),
    SignallingCongestion(routing_context=[100], affected_point_codes=[PointCode(2)],
                         concerned_destination=5, congestion_level=CongestionLevel.LEVEL_2,
                         info_string="scon"),
    DestinationUserPartUnavailable(routing_context=[100], affected_point_code=PointCode(2),
                                   cause=UnavailabilityCause.UNEQUIPPED_REMOTE_USER,
                                   user=UserIdentity.SCCP),
    DestinationRestricted(routing_context=[100], affected_point_codes=[PointCode(2)]),
    AspUp(asp_identifier=1, info_string="hlr-gateway"),
    AspDown(info_string="bye"),
    Heartbeat(data=b"hello"),
    AspUpAck(asp_identifier=1),
    AspDownAck(),
    HeartbeatAck(data=b"hello"),
    AspActive(traffic_mode_type=TrafficModeType.LOADSHARE, routing_context=[100, 101],
              info_string="active"),
    AspInactive(routing_context=[100]),
    AspActiveAck(traffic_mode_type=TrafficModeType.OVERRIDE, routing_context=[100]),
    AspInactiveAck(routing_context=[100], info_string="inactive"),
    RegistrationRequest(routing_keys=[
        RoutingKey(local_rk_identifier=1, routing_context=100,
                   traffic_mode_type=TrafficModeType.LOADSHARE, network_appearance=8,
                   destinations=[RoutingKeyDestination(PointCode(2), [3], [PointCode(1)]),
                                 RoutingKeyDestination(PointCode(4), [3, 5])]),
        RoutingKey(local_rk_identifier=2, destinations=[RoutingKeyDestination(PointCode(3))]),
    ]),
    RegistrationResponse(results=[
        RegistrationResult(local_rk_identifier=1,
                           registration_status=RegistrationStatus.SUCCESSFULLY_REGISTERED,
                           routing_context=100),
        RegistrationResult(local_rk_identifier=2,
                           registration_status=RegistrationStatus.INVALID_DPC, routing_context=0),
    ]),
    DeregistrationRequest(routing_context=[100, 101]),
    DeregistrationResponse(results=[
        DeregistrationResult(routing_context=100,
                             deregistration_status=DeregistrationStatus.SUCCESSFULLY_DEREGISTERED),
        DeregistrationResult(routing_context=101,
                             deregistration_status=DeregistrationStatus.NOT_REGISTERED),
    ]),
]


def test_samples_cover_every_message_type():
    assert sorted(type(m).__name__ for m in SAMPLES) == sorted(
        c.__name__ for c in MESSAGE_TYPES.values())
    assert len(MESSAGE_TYPES) == 23


def test_message_type_table_matches_rfc():
    expected = {
        (0, 0): Error, (0, 1): Notify, (1, 1): Data,
        (2, 1): DestinationUnavailable, (2, 2): DestinationAvailable,
        (2, 3): DestinationStateAudit, (2, 4): SignallingCongestion,
        (2, 5): DestinationUserPartUnavailable, (2, 6): DestinationRestricted,
        (3, 1): AspUp, (3, 2): AspDown, (3, 3): Heartbeat, (3, 4): AspUpAck,
        (3, 5): AspDownAck, (3, 6): HeartbeatAck,
        (4, 1): AspActive, (4, 2): AspInactive, (4, 3): AspActiveAck, (4, 4): AspInactiveAck,
        (9, 1): RegistrationRequest, (9, 2): RegistrationResponse,
        (9, 3): DeregistrationRequest, (9, 4): DeregistrationResponse,
    }
    assert MESSAGE_TYPES == expected
    assert (MessageClass.RKM, RkmType.DEREG_RSP) == (9, 4)
    assert (MgmtType.NTFY, TransferType.DATA, SsnmType.DRST) == (1, 1, 6)
    assert (AspsmType.BEAT_ACK, AsptmType.ASPIA_ACK) == (6, 4)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_every_message_type(msg):
    raw = encode(msg)
    assert len(raw) % 4 == 0
    assert struct.unpack_from(">BBBBI", raw) == (1, 0, msg.MESSAGE_CLASS, msg.MESSAGE_TYPE,
                                                 len(raw))
    assert decode(raw) == msg
    assert encode(decode(raw)) == raw


def test_routing_key_wire_layout():
    raw = encode(SAMPLES[19])
    keys = _params(raw)
    assert [t for t, _, _ in keys] == [ParameterTag.ROUTING_KEY] * 2
    _, off, length = keys[0]
    inner = [t for t, _, _ in _params(raw[:off + length], off + 4)]
    assert inner == [0x020A, 0x0006, 0x000B, 0x020B, 0x0200, 0x020C, 0x020E, 0x020B, 0x020C]


def test_data_general_path_and_order():
    msg = SAMPLES[2]
    raw = encode(msg)
    assert [t for t, _, _ in _params(raw)] == [0x0200, 0x0006, 0x0210, 0x0013]  # §3.3.1 order
    # Parameters in another order, without RC, and an unpadded last parameter all decode.
    pd = struct.pack(">HHIIBBBB", 0x0210, 16 + 3, 1, 2, 3, 2, 0, 0) + b"abc"
    body = struct.pack(">HHI", 0x0013, 8, 9) + pd
    msg = decode(struct.pack(">BBBBI", 1, 0, 1, 1, 8 + len(body)) + body)
    assert msg == Data(correlation_id=9, protocol_data=ProtocolData(1, 2, 3, 2, 0, 0, b"abc"))


def test_data_without_routing_context_round_trip():
    msg = Data(protocol_data=ProtocolData(0x3FFF, 0, 3, 0, 3, 15, b""))
    assert decode(encode(msg)) == msg


def test_unknown_parameters_are_kept_and_written_back():
    raw = bytearray(VECTORS["m3ua_aspac_loadshare_rc100"].m3ua)
    extra = struct.pack(">HH", 0x7F01, 7) + b"xyz" + b"\x00"
    raw[8:8] = extra  # an unknown parameter before the known ones
    struct.pack_into(">I", raw, 4, len(raw))
    msg = decode(bytes(raw))
    assert msg == AspActive(traffic_mode_type=TrafficModeType.LOADSHARE, routing_context=[100],
                            unknown=((0x7F01, b"xyz"),))
    again = decode(encode(msg))
    assert again == msg
    data = Data(routing_context=100, protocol_data=ProtocolData(1, 2, 3, 2, 0, 0, b"x"),
                unknown=((0x7F02, b""),))
    assert decode(encode(data)) == data


def test_unknown_enum_values_are_kept_as_int():
    raw = encode(Error(error_code=0x7F, routing_context=[1]))
    msg = decode(raw)
    assert msg.error_code == 0x7F and not isinstance(msg.error_code, ErrorCode)
    ntfy = decode(encode(Notify(status_type=9, status_info=1)))
    assert (ntfy.status_type, ntfy.status_info) == (9, 1)
    other = decode(encode(Notify(status_type=StatusType.OTHER, status_info=3)))
    assert other.status_info is OtherStatus.ASP_FAILURE


def test_info_string_utf8_and_undecodable_bytes_round_trip():
    msg = AspUp(info_string="Zürich ☎")
    assert decode(encode(msg)) == msg
    raw = bytearray(encode(AspUp(info_string="abcd")))
    raw[12] = 0xFF  # not UTF-8: kept losslessly
    msg = decode(bytes(raw))
    assert encode(msg) == bytes(raw)


def test_heartbeat_empty_data_is_present():
    raw = encode(Heartbeat(data=b""))
    assert raw == bytes.fromhex("010003030000000c00090004")
    assert decode(raw) == Heartbeat(data=b"")
    assert encode(Heartbeat()) == bytes.fromhex("0100030300000008")


# --------------------------------------------------------------------------- decode errors


def _err(raw: bytes) -> CodecError:
    with pytest.raises(CodecError) as info:
        decode(raw)
    assert info.value.layer is Layer.M3UA
    return info.value


def _with_length(body: bytes, cls: int, typ: int) -> bytes:
    return struct.pack(">BBBBI", 1, 0, cls, typ, 8 + len(body)) + body


def test_decode_header_errors():
    e = _err(b"\x01\x00\x03")
    assert (e.field, e.offset) == ("common header", 0)
    e = _err(bytes.fromhex("0200030100000008"))
    assert (e.field, e.offset) == ("version", 0)
    e = _err(bytes.fromhex("0100030100000010"))
    assert (e.field, e.offset) == ("message length", 4)
    e = _err(bytes.fromhex("0100030100000008") + b"\x00" * 4)
    assert (e.field, e.offset) == ("message length", 4)
    e = _err(bytes.fromhex("0100070100000008"))
    assert (e.field, e.offset) == ("message class", 2)
    e = _err(bytes.fromhex("0100030700000008"))
    assert (e.field, e.offset) == ("message type", 3)
    e = _err(bytes.fromhex("0100010200000008"))
    assert (e.field, e.offset) == ("message type", 3)


def test_decode_reserved_byte_is_ignored():
    assert decode(bytes.fromhex("01ff030100000008")) == AspUp()


def test_decode_parameter_errors():
    e = _err(_with_length(struct.pack(">HH", 6, 3) + b"\x00" * 4, 4, 2))
    assert (e.field, e.offset) == ("parameter length", 10)
    e = _err(_with_length(struct.pack(">HHI", 6, 12, 100), 4, 2))
    assert (e.field, e.offset) == ("parameter length", 10)
    e = _err(_with_length(struct.pack(">HHI", 6, 8, 100) + b"\x00\x06", 4, 2))
    assert (e.field, e.offset) == ("parameter header", 16)
    e = _err(_with_length(struct.pack(">HH", 6, 6) + b"\x00\x01\x00\x00", 4, 2))
    assert (e.field, e.offset) == ("Routing Context", 12)
    e = _err(_with_length(struct.pack(">HHIHHI", 6, 8, 1, 6, 8, 2), 4, 2))
    assert (e.field, e.offset) == ("Routing Context", 16)
    assert "repeated" in e.reason
    e = _err(_with_length(struct.pack(">HHI", 0x000B, 12, 2) + b"\x00" * 4, 4, 1))
    assert (e.field, e.offset) == ("Traffic Mode Type", 12)


def test_decode_missing_mandatory_parameters():
    e = _err(_with_length(struct.pack(">HHI", 6, 8, 100), 1, 1))
    assert e.field == "Protocol Data" and e.offset == 16
    assert _err(_with_length(b"", 0, 0)).field == "Error Code"
    assert _err(_with_length(b"", 0, 1)).field == "Status"
    assert _err(_with_length(struct.pack(">HHI", 6, 8, 1), 2, 1)).field == "Affected Point Code"
    dupu = struct.pack(">HHI", 0x12, 8, 2)
    assert _err(_with_length(dupu, 2, 5)).field == "User/Cause"
    assert _err(_with_length(b"", 9, 1)).field == "Routing Key"
    assert _err(_with_length(b"", 9, 2)).field == "Registration Result"
    assert _err(_with_length(b"", 9, 3)).field == "Routing Context"
    assert _err(_with_length(b"", 9, 4)).field == "Deregistration Result"
    # Inside a Routing Key: Local-RK-Identifier and a DPC are mandatory.
    key = struct.pack(">HHI", 0x020A, 8, 1)
    e = _err(_with_length(struct.pack(">HH", 0x0207, 4 + len(key)) + key, 9, 1))
    assert e.field == "Destination Point Code"
    result = struct.pack(">HHI", 0x0006, 8, 1)
    e = _err(_with_length(struct.pack(">HH", 0x0209, 4 + len(result)) + result, 9, 4))
    assert e.field == "Deregistration Status"


def test_decode_value_errors():
    pd = struct.pack(">HH", 0x0210, 4 + 11) + b"\x00" * 12
    assert _err(_with_length(pd, 1, 1)).field == "Protocol Data"
    two_rc = struct.pack(">HHII", 6, 12, 1, 2)
    data = _with_length(two_rc + struct.pack(">HHIIBBBB", 0x0210, 16, 1, 2, 3, 2, 0, 0), 1, 1)
    assert _err(data).field == "Routing Context"
    apc = struct.pack(">HHII", 0x12, 12, 2, 3) + struct.pack(">HHHH", 0x204, 8, 1, 3)
    assert _err(_with_length(apc, 2, 5)).field == "Affected Point Code"  # DUPU: exactly one
    si_first = struct.pack(">HHI", 0x020A, 8, 1) + struct.pack(">HHBxxx", 0x020C, 5, 3)
    e = _err(_with_length(struct.pack(">HH", 0x0207, 4 + len(si_first)) + si_first, 9, 1))
    assert e.field == "Service Indicators"


# --------------------------------------------------------------------------- encode errors


@pytest.mark.parametrize("msg, field", [
    (Error(error_code=None), "Error Code"),
    (DestinationUnavailable(routing_context=[1]), "Affected Point Code"),
    (RegistrationRequest(), "Routing Key"),
    (DeregistrationRequest(), "Routing Context"),
    (AspUp(info_string="x" * 256), "INFO String"),
    (DestinationAvailable(affected_point_codes=[PointCode(1 << 24)]), "Affected Point Code"),
    (SignallingCongestion(affected_point_codes=[PointCode(1)], congestion_level=256),
     "Congestion Indications"),
    (RegistrationRequest(routing_keys=[RoutingKey(local_rk_identifier=1)]),
     "Destination Point Code"),
    (Heartbeat(data=b"x" * 65532), "Heartbeat Data"),
])
def test_encode_errors(msg, field):
    with pytest.raises(CodecError) as info:
        encode(msg)
    assert info.value.field == field and info.value.layer is Layer.M3UA


@pytest.mark.parametrize("msg", [
    Data(routing_context=1 << 32, protocol_data=ProtocolData(1, 2, 3, 2, 0, 0, b"")),
    Data(routing_context=1, protocol_data=ProtocolData(1, 2, 256, 2, 0, 0, b"")),
    Data(routing_context=1, protocol_data=ProtocolData(1, 2, 3, 2, 0, 0, b"x" * 65520)),
    Data(network_appearance=-1, protocol_data=ProtocolData(1, 2, 3, 2, 0, 0, b"")),
    Data(routing_context=1, protocol_data=ProtocolData(1, 2, 3, 2, 0, 0, "text")),
    AspActive(routing_context=[1 << 32]),
    AspUp(asp_identifier="1"),
    Heartbeat(data=5),
    AspDown(info_string=b"bytes"),
    Notify(status_type=StatusType.OTHER, status_info=None),
    "not a message",
])
def test_encode_rejects_unencodable_values(msg):
    with pytest.raises(CodecError):
        encode(msg)


# --------------------------------------------------------------------------- Wireshark


@pytest.mark.wireshark
def test_wireshark_dissects_every_message_type():
    raws = [encode(m) for m in SAMPLES]
    fields = ["m3ua.message_class", "m3ua.message_type", "m3ua.parameter_tag",
              "m3ua.routing_context", "m3ua.info_string"]
    lines = wireshark.decode(raws, fields=fields).splitlines()
    assert len(lines) == len(SAMPLES)
    for msg, raw, line in zip(SAMPLES, raws, lines):
        cls, typ, tags, rcs, info = (line.split("\t") + [""] * 5)[:5]
        name = type(msg).__name__
        assert (int(cls), int(typ)) == (msg.MESSAGE_CLASS, msg.MESSAGE_TYPE), name
        seen = [int(t) for t in tags.split(",") if t]
        for tag, _, _ in _params(raw):
            assert tag in seen, (name, hex(tag), seen)
        rc = getattr(msg, "routing_context", None)
        if isinstance(rc, list) and rc:
            assert [int(v) for v in rcs.split(",")] == rc, name
        if getattr(msg, "info_string", None):
            assert info == msg.info_string, name


@pytest.mark.wireshark
def test_wireshark_data_fields():
    raws = [encode(SAMPLES[2]), encode(_data_vector("srism_v3_begin"))]
    fields = ["m3ua.network_appearance", "m3ua.routing_context", "m3ua.protocol_data_opc",
              "m3ua.protocol_data_dpc", "m3ua.protocol_data_si", "m3ua.protocol_data_ni",
              "m3ua.protocol_data_sls", "m3ua.correlation_identifier", "sccp.message_type"]
    lines = [line.split("\t") for line in wireshark.decode(raws, fields=fields).splitlines()]
    assert lines[0] == ["8", "100", "1", "2", "3", "2", "5", "77", "0x09"]
    assert lines[1] == ["", "100", "1", "2", "3", "2", "0", "", "0x09"]


# --------------------------------------------------------------------------- TCP framing

STREAM = [VECTORS[n].m3ua for n in ("m3ua_aspup_ack", "m3ua_ntfy_as_active", "srism_v3_begin",
                                    "m3ua_beat", "srism_v3_end_result")] + [encode(SAMPLES[19])]


def test_framer_whole_stream_in_one_read():
    framer = MessageFramer()
    assert framer.feed(b"".join(STREAM)) == STREAM
    assert framer.buffered == 0 and framer.position == sum(map(len, STREAM))


def test_framer_byte_by_byte():
    framer = MessageFramer()
    out = []
    for b in b"".join(STREAM):
        out += framer.feed(bytes([b]))
    assert out == STREAM
    assert framer.buffered == 0


def test_framer_holds_partial_message():
    framer = MessageFramer()
    msg = VECTORS["srism_v3_begin"].m3ua
    assert framer.feed(msg[:5]) == []
    assert framer.buffered == 5
    assert framer.feed(msg[5:40]) == []
    assert framer.buffered == 40
    assert framer.feed(msg[40:] + STREAM[0][:3]) == [msg]
    assert framer.buffered == 3 and framer.position == len(msg)
    assert framer.feed(STREAM[0][3:]) == [STREAM[0]]
    assert framer.feed(bytearray(STREAM[1])) == [STREAM[1]]


@given(st.lists(st.sampled_from(STREAM), min_size=1, max_size=8), st.randoms())
@settings(max_examples=200, deadline=None)
def test_framer_random_chunks(messages, rnd):
    stream = b"".join(messages)
    framer = MessageFramer()
    out, pos = [], 0
    while pos < len(stream):
        step = rnd.randint(1, 64)
        out += framer.feed(stream[pos:pos + step])
        pos += step
    assert out == messages
    assert [type(decode(m)) for m in out] == [type(decode(m)) for m in messages]


def test_framer_bad_length_names_stream_offset():
    good = b"".join(STREAM[:2])
    framer = MessageFramer()
    # the whole messages before the fault are delivered; the fault is raised next time
    assert framer.feed(good + bytes.fromhex("0100030100000004")) == STREAM[:2]
    assert framer.error is not None
    assert (framer.error.field, framer.error.offset) == ("message length", len(good) + 4)
    with pytest.raises(CodecError) as info:  # the framer stays failed
        framer.feed(STREAM[0])
    assert info.value is framer.error
    framer = MessageFramer()
    with pytest.raises(CodecError) as info:
        framer.feed(bytes.fromhex("0100030100000004"))
    assert (info.value.field, info.value.offset) == ("message length", 4)

    framer = MessageFramer(max_length=64)
    assert framer.feed(STREAM[0]) == [STREAM[0]]
    with pytest.raises(CodecError) as info:
        framer.feed(VECTORS["srism_v3_begin"].m3ua[:8])
    assert (info.value.field, info.value.offset) == ("message length", len(STREAM[0]) + 4)

    framer = MessageFramer()
    with pytest.raises(CodecError) as info:
        framer.feed(struct.pack(">BBBBI", 1, 0, 1, 1, DEFAULT_MAX_MESSAGE_LENGTH + 1))
    assert info.value.field == "message length"
    assert MessageFramer().feed(struct.pack(">BBBBI", 1, 0, 3, 1, 65543)) == []


def test_framer_bad_version():
    framer = MessageFramer()
    assert framer.feed(STREAM[0]) == [STREAM[0]]
    with pytest.raises(CodecError) as info:
        framer.feed(b"\x02")  # detected before the rest of the header arrives
    assert (info.value.field, info.value.offset) == ("version", len(STREAM[0]))


def test_framer_rejects_silly_max_length():
    with pytest.raises(ValueError):
        MessageFramer(max_length=4)


# --------------------------------------------------------------------------- fuzzing

ALL_RAW = [v.m3ua for v in VECTORS.values()] + [encode(m) for m in SAMPLES]


def _decode_or_codec_error(raw: bytes) -> None:
    try:
        msg = decode(raw)
    except CodecError as exc:
        assert exc.layer is Layer.M3UA and 0 <= exc.offset <= len(raw)
        return
    # whatever decodes must encode again (possibly normalised) and decode to the same value
    try:
        again = encode(msg)
    except CodecError:
        return  # e.g. an over-long INFO String accepted on input
    assert decode(again) == msg


@given(st.binary(max_size=300))
@FUZZ
def test_fuzz_random_bytes(raw):
    _decode_or_codec_error(raw)


_KNOWN = sorted(MESSAGE_TYPES)


@given(st.sampled_from(_KNOWN + [(2, 9), (5, 1)]), st.binary(max_size=200))
@FUZZ
def test_fuzz_random_body_valid_header(class_type, body):
    _decode_or_codec_error(_with_length(body, *class_type))


@given(st.lists(st.tuples(st.sampled_from(list(ParameterTag) + [0x7F00]),
                          st.binary(max_size=24)), max_size=6),
       st.sampled_from(_KNOWN))
@FUZZ
def test_fuzz_well_formed_tlvs_of_any_tag(params, class_type):
    body = b"".join(struct.pack(">HH", t, 4 + len(v)) + v + b"\x00" * (-len(v) % 4)
                    for t, v in params)
    _decode_or_codec_error(_with_length(body, *class_type))


def test_every_truncation_of_every_message():
    for raw in ALL_RAW:
        for cut in range(len(raw)):
            try:
                decode(raw[:cut])
            except CodecError:
                pass
            else:
                pytest.fail(f"truncated message decoded: {raw[:cut].hex()}")
            # the same, with the header length fixed up so the parameters are what is cut
            if cut >= 8:
                fixed = bytearray(raw[:cut])
                struct.pack_into(">I", fixed, 4, cut)
                _decode_or_codec_error(bytes(fixed))


@given(st.sampled_from(ALL_RAW), st.data())
@FUZZ
def test_fuzz_bit_flips(raw, data):
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, len(buf) * 8 - 1))
        buf[bit >> 3] ^= 1 << (bit & 7)
    _decode_or_codec_error(bytes(buf))


@given(st.sampled_from(ALL_RAW), st.integers(0, 2**32 - 1))
@FUZZ
def test_fuzz_lied_header_length(raw, length):
    buf = bytearray(raw)
    struct.pack_into(">I", buf, 4, length)
    try:
        decode(bytes(buf))
    except CodecError as exc:
        assert (exc.field, exc.offset) == ("message length", 4) or length == len(raw)
    else:
        assert length == len(raw)


def _all_param_offsets(raw: bytes) -> list[int]:
    """Offsets of every parameter header, nested ones (one level) included."""
    out = []
    for tag, off, length in _params(raw):
        out.append(off)
        if tag in (0x0207, 0x0208, 0x0209):
            out += [o for _, o, _ in _params(raw[:off + length], off + 4)]
    return out


@given(st.sampled_from([r for r in ALL_RAW if len(r) > 8]), st.data())
@FUZZ
def test_fuzz_lied_parameter_length(raw, data):
    buf = bytearray(raw)
    off = data.draw(st.sampled_from(_all_param_offsets(raw)))
    struct.pack_into(">H", buf, off + 2, data.draw(st.integers(0, 0xFFFF)))
    _decode_or_codec_error(bytes(buf))


@given(st.binary(max_size=400), st.lists(st.integers(1, 50), min_size=1, max_size=20))
@FUZZ
def test_fuzz_framer(stream, chunks):
    framer = MessageFramer(max_length=256)
    pos, i = 0, 0
    out = []
    try:
        while pos < len(stream):
            step = chunks[i % len(chunks)]
            out += framer.feed(stream[pos:pos + step])
            pos, i = pos + step, i + 1
    except CodecError as exc:
        assert exc.field in ("version", "message length")
        assert 0 <= exc.offset <= len(stream)
    for msg in out:
        assert 8 <= len(msg) <= 256 and msg[0] == 1
        _decode_or_codec_error(msg)


@given(st.lists(st.sampled_from(ALL_RAW), max_size=6), st.sampled_from(ALL_RAW), st.data())
@FUZZ
def test_fuzz_framer_corrupted_stream(before, victim, data):
    bad = bytearray(victim)
    bit = data.draw(st.integers(0, 63))  # corrupt the header
    bad[bit >> 3] ^= 1 << (bit & 7)
    stream = b"".join(before) + bytes(bad) + STREAM[0]
    framer = MessageFramer()
    try:
        out = framer.feed(stream)
    except CodecError as exc:
        assert exc.offset >= sum(map(len, before))
    else:
        assert out[:len(before)] == before


# --------------------------------------------------------------------------- property round trip

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 2**32 - 1)
opt_u32 = st.none() | u32
rcs = st.lists(u32, max_size=4)
info = st.none() | st.text(max_size=40)
pcs = st.builds(PointCode, st.integers(0, 0xFFFFFF), u8)
unknown = st.lists(st.tuples(st.integers(0x0300, 0xFFFF), st.binary(max_size=12)),
                   max_size=2).map(tuple)


def _enum_or_int(enum_cls):
    return st.sampled_from(list(enum_cls)) | u32


protocol_data = st.builds(ProtocolData, u32, u32, u8, u8, u8, u8, st.binary(max_size=300))
destination_state = dict(network_appearance=opt_u32, routing_context=rcs,
                         affected_point_codes=st.lists(pcs, min_size=1, max_size=3),
                         info_string=info, unknown=unknown)
routing_key = st.builds(
    RoutingKey, local_rk_identifier=u32, routing_context=opt_u32,
    traffic_mode_type=st.none() | _enum_or_int(TrafficModeType),
    destinations=st.lists(st.builds(RoutingKeyDestination, pcs, st.lists(u8, max_size=5),
                                    st.lists(pcs, max_size=3)), min_size=1, max_size=3),
    network_appearance=opt_u32, unknown=unknown)

MESSAGES = st.one_of(
    st.builds(Error, error_code=_enum_or_int(ErrorCode), routing_context=rcs,
              network_appearance=opt_u32, affected_point_codes=st.lists(pcs, max_size=3),
              diagnostic_information=st.none() | st.binary(max_size=40), unknown=unknown),
    st.builds(Notify, status_type=st.sampled_from([1, 2, 3]), status_info=st.integers(0, 0xFFFF),
              asp_identifier=opt_u32, routing_context=rcs, info_string=info, unknown=unknown),
    st.builds(Data, network_appearance=opt_u32, routing_context=opt_u32,
              protocol_data=protocol_data, correlation_id=opt_u32, unknown=unknown),
    st.builds(Data, routing_context=u32, protocol_data=protocol_data),  # the fast path
    *(st.builds(c, **destination_state) for c in (DestinationUnavailable, DestinationAvailable,
                                                  DestinationStateAudit, DestinationRestricted)),
    st.builds(SignallingCongestion, **destination_state,
              concerned_destination=st.none() | st.integers(0, 0xFFFFFF),
              congestion_level=st.none() | st.sampled_from(list(CongestionLevel)) | u8),
    st.builds(DestinationUserPartUnavailable, network_appearance=opt_u32, routing_context=rcs,
              affected_point_code=pcs, cause=st.integers(0, 0xFFFF),
              user=st.integers(0, 0xFFFF), info_string=info, unknown=unknown),
    *(st.builds(c, asp_identifier=opt_u32, info_string=info, unknown=unknown)
      for c in (AspUp, AspUpAck)),
    *(st.builds(c, info_string=info, unknown=unknown) for c in (AspDown, AspDownAck)),
    *(st.builds(c, data=st.none() | st.binary(max_size=64), unknown=unknown)
      for c in (Heartbeat, HeartbeatAck)),
    *(st.builds(c, traffic_mode_type=st.none() | _enum_or_int(TrafficModeType),
                routing_context=rcs, info_string=info, unknown=unknown)
      for c in (AspActive, AspActiveAck)),
    *(st.builds(c, routing_context=rcs, info_string=info, unknown=unknown)
      for c in (AspInactive, AspInactiveAck)),
    st.builds(RegistrationRequest, routing_keys=st.lists(routing_key, min_size=1, max_size=3),
              unknown=unknown),
    st.builds(RegistrationResponse, results=st.lists(st.builds(
        RegistrationResult, local_rk_identifier=u32,
        registration_status=_enum_or_int(RegistrationStatus), routing_context=u32,
        unknown=unknown), min_size=1, max_size=3), unknown=unknown),
    st.builds(DeregistrationRequest, routing_context=st.lists(u32, min_size=1, max_size=4),
              unknown=unknown),
    st.builds(DeregistrationResponse, results=st.lists(st.builds(
        DeregistrationResult, routing_context=u32,
        deregistration_status=_enum_or_int(DeregistrationStatus), unknown=unknown),
        min_size=1, max_size=3), unknown=unknown),
)


@given(MESSAGES)
@settings(max_examples=400, deadline=None)
def test_property_round_trip(msg):
    raw = encode(msg)
    assert len(raw) % 4 == 0
    assert decode(raw) == msg
    assert encode(decode(raw)) == raw
    assert MessageFramer().feed(raw) == [raw]


def test_random_streams_of_every_type_frame_and_decode():
    rnd = random.Random(4666)
    messages = [rnd.choice(SAMPLES) for _ in range(200)]
    stream = b"".join(encode(m) for m in messages)
    framer = MessageFramer()
    out, pos = [], 0
    while pos < len(stream):
        step = rnd.randint(1, 300)
        out += framer.feed(stream[pos:pos + step])
        pos += step
    assert [decode(m) for m in out] == messages
