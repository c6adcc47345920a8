"""M3UA ASP state machine (RFC 4666 §4.3), sans-IO: both roles talking to each other in-process,
T(ack), heartbeat, ERR answers, SSNM tracking, stop; wire bytes checked against the shared
conformance vectors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import m3ua
from protocols.m3ua import (
    AspActive,
    AspActiveAck,
    AspDown,
    AspDownAck,
    AspInactive,
    AspInactiveAck,
    AspUp,
    AspUpAck,
    AsState,
    CongestionLevel,
    Data,
    DestinationAvailable,
    DestinationRestricted,
    DestinationStateAudit,
    DestinationUnavailable,
    DestinationUserPartUnavailable,
    Error,
    ErrorCode,
    Heartbeat,
    HeartbeatAck,
    Notify,
    OtherStatus,
    PointCode,
    ProtocolData,
    RegistrationRequest,
    RoutingKey,
    RoutingKeyDestination,
    SignallingCongestion,
    SsnmType,
    StatusType,
    TrafficModeType,
    UnavailabilityCause,
    UserIdentity,
)
from protocols.m3ua_asp import (
    Asp,
    AspConfig,
    AspNotActive,
    AspState,
    AspStateChanged,
    AsStateChanged,
    DestinationState,
    DestinationStateChanged,
    ErrorReceived,
    LossReason,
    Notified,
    PayloadReceived,
    PeerLost,
    ProtocolViolation,
    Role,
)
from tests.vectors import VECTORS

RC = 100
PD = ProtocolData(opc=1, dpc=2, si=3, ni=2, mp=0, sls=0, data=b"\x09\x80\x03payload")


def client_config(**kw) -> AspConfig:
    kw.setdefault("routing_context", RC)
    kw.setdefault("t_ack", 1.0)
    kw.setdefault("heartbeat_interval", 0)
    return AspConfig(**kw)


def server_config(**kw) -> AspConfig:
    kw.setdefault("accepted_routing_contexts", frozenset({RC}))
    kw.setdefault("heartbeat_interval", 0)
    return AspConfig(**kw)


class Wire:
    """Two ASPs joined back to back; records every message in flight."""

    def __init__(self, a: Asp, b: Asp) -> None:
        self.a, self.b = a, b
        self.log: list[tuple[str, int, m3ua.Message]] = []
        self.cut: set[str] = set()  # directions that lose everything ("a>b", "b>a")

    def pump(self, now: float = 0.0) -> list[tuple[str, int, m3ua.Message]]:
        start = len(self.log)
        moved = True
        while moved:
            moved = False
            for src, dst, tag in ((self.a, self.b, "a>b"), (self.b, self.a, "b>a")):
                for sid, raw in src.data_to_send():
                    moved = True
                    self.log.append((tag, sid, m3ua.decode(raw)))
                    if tag not in self.cut:
                        dst.receive_bytes(raw, now)
        return self.log[start:]


def names(flow) -> list[str]:
    return [f"{tag} {type(msg).__name__}" for tag, _sid, msg in flow]


def sent(asp: Asp) -> list[tuple[int, m3ua.Message]]:
    return [(sid, m3ua.decode(raw)) for sid, raw in asp.data_to_send()]


def up_pair(client_kw=None, server_kw=None, now: float = 0.0) -> tuple[Asp, Asp, Wire]:
    c = Asp(Role.ASP, client_config(**(client_kw or {})))
    s = Asp(Role.SGP, server_config(**(server_kw or {})))
    w = Wire(c, s)
    c.start(now)
    s.start(now)
    w.pump(now)
    assert c.state is AspState.ACTIVE and s.state is AspState.ACTIVE
    c.events()
    s.events()
    return c, s, w


def active_server(now: float = 0.0, **kw) -> Asp:
    s = Asp(Role.SGP, server_config(**kw))
    s.receive_message(AspUp(), now)
    s.receive_message(AspActive(traffic_mode_type=TrafficModeType.LOADSHARE,
                                routing_context=[RC]), now)
    assert s.state is AspState.ACTIVE
    s.data_to_send()
    s.events()
    return s


def active_client(now: float = 0.0, **kw) -> Asp:
    c = Asp(Role.ASP, client_config(**kw))
    c.start(now)
    c.receive_message(AspUpAck(), now)
    c.receive_message(AspActiveAck(traffic_mode_type=TrafficModeType.LOADSHARE,
                                   routing_context=[RC]), now)
    assert c.state is AspState.ACTIVE
    c.data_to_send()
    c.events()
    return c


def errors_in(out: list[tuple[int, m3ua.Message]]) -> list[Error]:
    return [m for _, m in out if isinstance(m, Error)]


# --------------------------------------------------------------------------- bring-up


def test_bring_up_both_roles_in_process():
    c = Asp(Role.ASP, client_config())
    s = Asp(Role.SGP, server_config())
    w = Wire(c, s)
    c.start(0.0)
    s.start(0.0)
    flow = w.pump(0.0)
    assert names(flow) == [
        "a>b AspUp",
        "b>a AspUpAck",
        "b>a Notify",  # §4.3.4.5: AS-INACTIVE after the ASP Up Ack
        "a>b AspActive",
        "b>a AspActiveAck",
        "b>a Notify",  # AS-ACTIVE
    ]
    assert all(sid == 0 for _, sid, _ in flow)  # §1.4.7: management on stream 0
    assert c.state is AspState.ACTIVE and s.state is AspState.ACTIVE
    ev = c.events()
    assert [e for e in ev if isinstance(e, AspStateChanged)] == [
        AspStateChanged(AspState.DOWN, AspState.INACTIVE),
        AspStateChanged(AspState.INACTIVE, AspState.ACTIVE)]
    assert [e.state for e in ev if isinstance(e, AsStateChanged)] == [
        AsState.AS_INACTIVE, AsState.AS_ACTIVE]
    assert c.as_state == AsState.AS_ACTIVE
    assert s.events() == [AspStateChanged(AspState.DOWN, AspState.INACTIVE),
                          AspStateChanged(AspState.INACTIVE, AspState.ACTIVE)]
    assert s.active_routing_contexts == (RC,)
    assert s.peer_traffic_mode == TrafficModeType.LOADSHARE
    assert c.get_timer() is None and s.get_timer() is None  # nothing pending, no heartbeat


def test_payload_both_ways_on_the_data_stream():
    c, s, w = up_pair()
    c.send_data(PD, 0.0)
    flow = w.pump()
    assert [(tag, sid) for tag, sid, _ in flow] == [("a>b", 1)]
    (ev,) = s.events()
    assert isinstance(ev, PayloadReceived)
    assert ev.data.routing_context == RC and ev.data.protocol_data == PD
    s.send_data(PD, 0.0)  # the SGP names the Routing Context the ASP activated
    (_, sid, msg), = w.pump()
    assert sid == 1 and isinstance(msg, Data) and msg.routing_context == RC
    assert isinstance(c.events()[0], PayloadReceived)


def test_data_stream_and_network_appearance_are_configurable():
    c = active_client(data_stream=7, network_appearance=8)
    c.send_data(PD, 0.0)
    ((sid, msg),) = sent(c)
    assert sid == 7 and msg.network_appearance == 8 and msg.routing_context == RC


def test_asp_identifier_and_info_string_travel():
    c, s, w = up_pair(client_kw={"asp_identifier": 42, "info_string": "hlrgw"},
                      server_kw={"asp_identifier": 7})
    up = next(m for _, _, m in w.log if isinstance(m, AspUp))
    assert up.asp_identifier == 42 and up.info_string == "hlrgw"
    assert s.peer_asp_identifier == 42 and c.peer_asp_identifier == 7


def test_ipsp_answers_and_starts():
    a = Asp(Role.IPSP, client_config())
    b = Asp(Role.IPSP, server_config())
    w = Wire(a, b)
    a.start(0.0)  # IPSP single exchange: only one side starts
    w.pump()
    assert a.state is AspState.ACTIVE and b.state is AspState.ACTIVE


def test_no_auto_activate_stays_inactive():
    c = Asp(Role.ASP, client_config(auto_activate=False))
    s = Asp(Role.SGP, server_config())
    w = Wire(c, s)
    c.start(0.0)
    w.pump()
    assert c.state is AspState.INACTIVE and s.state is AspState.INACTIVE
    with pytest.raises(AspNotActive):
        c.send_data(PD, 0.0)


# --------------------------------------------------------------------------- shared vectors


def test_wire_bytes_match_the_conformance_vectors():
    c = Asp(Role.ASP, client_config())
    s = Asp(Role.SGP, server_config(routing_context=RC))
    c.start(0.0)
    ((sid, aspup),) = c.data_to_send()
    assert aspup == VECTORS["m3ua_aspup"].m3ua
    s.receive_bytes(aspup, 0.0)
    (_, up_ack), (_, ntfy_inactive) = s.data_to_send()
    assert up_ack == VECTORS["m3ua_aspup_ack"].m3ua
    assert m3ua.decode(ntfy_inactive) == Notify(status_type=StatusType.AS_STATE_CHANGE,
                                                status_info=AsState.AS_INACTIVE,
                                                routing_context=[RC])
    c.receive_bytes(up_ack, 0.0)
    ((_, aspac),) = c.data_to_send()
    assert aspac == VECTORS["m3ua_aspac_loadshare_rc100"].m3ua
    s.receive_bytes(aspac, 0.0)
    (_, ac_ack), (_, ntfy_active) = s.data_to_send()
    assert ac_ack == VECTORS["m3ua_aspac_ack_rc100"].m3ua
    assert ntfy_active == VECTORS["m3ua_ntfy_as_active"].m3ua
    c.receive_bytes(ac_ack, 0.0)
    c.receive_bytes(ntfy_active, 0.0)
    assert c.state is AspState.ACTIVE and c.as_state == AsState.AS_ACTIVE
    c.stop(0.0)
    ((_, aspia),) = c.data_to_send()
    assert aspia == VECTORS["m3ua_aspia_rc100"].m3ua
    s.receive_bytes(aspia, 0.0)
    c.receive_bytes(s.data_to_send()[0][1], 0.0)
    ((_, aspdn),) = c.data_to_send()
    assert aspdn == VECTORS["m3ua_aspdn"].m3ua


def test_data_vector_round_trips_through_both_roles():
    vec = VECTORS["srism_v3_begin"].m3ua
    s = active_server()
    s.receive_bytes(vec, 0.0)
    (ev,) = s.events()
    assert isinstance(ev, PayloadReceived) and ev.data == m3ua.decode(vec)
    c = active_client()
    c.send_data(ev.data.protocol_data, 0.0)
    ((sid, raw),) = c.data_to_send()
    assert sid == 1 and raw == vec


def test_heartbeat_vector_is_echoed_in_every_state():
    for asp in (Asp(Role.ASP, client_config()), Asp(Role.SGP, server_config()),
                active_server(), active_client()):
        asp.receive_bytes(VECTORS["m3ua_beat"].m3ua, 0.0)
        ((sid, raw),) = asp.data_to_send()
        assert sid == 0 and raw == VECTORS["m3ua_beat_ack"].m3ua


def test_invalid_routing_context_vector():
    c = Asp(Role.ASP, client_config(routing_context=7))
    s = Asp(Role.SGP, server_config())
    w = Wire(c, s)
    c.start(0.0)
    w.pump()
    assert c.state is AspState.INACTIVE and s.state is AspState.INACTIVE
    err = next(m for tag, _, m in w.log if tag == "b>a" and isinstance(m, Error))
    assert err.diagnostic_information == m3ua.encode(
        AspActive(traffic_mode_type=TrafficModeType.LOADSHARE, routing_context=[7]))
    err.diagnostic_information = None  # §3.8.1: optional; the vector carries none
    assert m3ua.encode(err) == VECTORS["m3ua_err_invalid_rc"].m3ua
    received = [e for e in c.events() if isinstance(e, ErrorReceived)]
    assert received == [ErrorReceived(ErrorCode.INVALID_ROUTING_CONTEXT, (7,),
                                      diagnostic=err_diag(w), in_reply_to="ASPAC")]
    assert [e.code for e in s.events() if isinstance(e, ProtocolViolation)] == [
        ErrorCode.INVALID_ROUTING_CONTEXT]


def err_diag(w: Wire) -> bytes:
    return m3ua.encode(next(m for _, _, m in w.log if isinstance(m, AspActive)))[:40]


def test_duna_dava_vectors_track_point_code_2():
    c = active_client()
    assert c.destination_available(2)
    c.receive_bytes(VECTORS["m3ua_duna_pc2"].m3ua, 0.0)
    assert not c.destination_available(2) and c.destination_available(3)
    (ev,) = c.events()
    assert ev == DestinationStateChanged(SsnmType.DUNA, (PointCode(2),),
                                         DestinationState.UNAVAILABLE, routing_contexts=(RC,))
    c.receive_bytes(VECTORS["m3ua_dava_pc2"].m3ua, 0.0)
    assert c.destination_available(2)
    assert c.events()[0].state is DestinationState.AVAILABLE
    assert c.data_to_send() == []  # nothing to answer


# --------------------------------------------------------------------------- T(ack)


def test_t_ack_retransmits_asp_up_then_gives_up():
    c = Asp(Role.ASP, client_config(t_ack=2.0, max_ack_tries=3))
    c.start(10.0)
    assert [type(m) for _, m in sent(c)] == [AspUp]
    assert c.get_timer() == 12.0 and c.awaiting == "ASPUP"
    c.handle_timer(11.9)  # not yet
    assert c.data_to_send() == []
    c.handle_timer(12.0)
    assert [type(m) for _, m in sent(c)] == [AspUp]
    assert c.get_timer() == 14.0
    c.handle_timer(14.0)
    assert [type(m) for _, m in sent(c)] == [AspUp]  # third and last transmission
    c.handle_timer(16.0)
    assert c.data_to_send() == []
    (lost,) = c.events()
    assert isinstance(lost, PeerLost) and lost.reason is LossReason.ACK_TIMEOUT
    assert "AspUpAck" in lost.detail and "3 ASPUP" in lost.detail
    assert c.state is AspState.DOWN and c.closed and c.get_timer() is None
    c.receive_message(AspUpAck(), 17.0)  # closed: ignored
    assert c.state is AspState.DOWN and c.data_to_send() == []


def test_t_ack_retransmits_asp_active_and_ignores_duplicate_acks():
    c = Asp(Role.ASP, client_config(t_ack=1.0))
    s = Asp(Role.SGP, server_config())
    w = Wire(c, s)
    w.cut.add("a>b")  # the first ASP Up is lost
    c.start(0.0)
    w.pump(0.0)
    w.cut.clear()
    c.handle_timer(1.0)
    w.pump(1.0)
    assert c.state is AspState.ACTIVE
    # a late duplicate ASP Up Ack / ASP Active Ack is no error
    c.receive_message(AspUpAck(), 1.5)
    c.receive_message(AspActiveAck(), 1.5)
    assert c.data_to_send() == [] and c.state is AspState.ACTIVE
    assert not [e for e in c.events() if isinstance(e, ProtocolViolation)]


def test_t_ack_for_asp_active_gives_up():
    c = Asp(Role.ASP, client_config(t_ack=1.0, max_ack_tries=2))
    c.start(0.0)
    c.receive_message(AspUpAck(), 0.1)
    c.data_to_send()
    c.handle_timer(1.1)
    assert [type(m) for _, m in sent(c)] == [AspActive]
    c.handle_timer(2.1)
    lost = [e for e in c.events() if isinstance(e, PeerLost)]
    assert lost and "ASPAC" in lost[0].detail
    assert c.state is AspState.DOWN


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_rtt_is_measured():
    c, s, w = up_pair(client_kw={"heartbeat_interval": 5.0})
    assert c.get_timer() == 5.0
    c.handle_timer(5.0)
    ((sid, beat),) = c.data_to_send()
    assert sid == 0
    s.receive_bytes(beat, 5.0)
    ((_, beat_ack),) = s.data_to_send()
    assert m3ua.decode(beat_ack).data == m3ua.decode(beat).data
    c.receive_bytes(beat_ack, 5.25)
    assert c.rtt == pytest.approx(0.25)
    assert c.get_timer() == 10.0
    c.receive_message(HeartbeatAck(data=b"not ours"), 5.3)  # ignored
    c.receive_message(HeartbeatAck(data=beat_ack[12:28]), 6.0)  # a replay: ignored
    assert c.rtt == pytest.approx(0.25)


def test_heartbeat_loss_declares_the_peer_lost():
    c, s, w = up_pair(client_kw={"heartbeat_interval": 1.0, "heartbeat_max_missed": 2})
    w.cut.add("b>a")  # the SGP's answers no longer arrive
    c.handle_timer(1.0)  # BEAT 1
    w.pump(1.0)
    c.handle_timer(2.0)  # BEAT 1 missed, BEAT 2
    w.pump(2.0)
    assert c.state is AspState.ACTIVE and not c.events()
    c.handle_timer(3.0)  # BEAT 2 missed: two in a row
    ev = c.events()
    assert isinstance(ev[0], PeerLost) and ev[0].reason is LossReason.HEARTBEAT_TIMEOUT
    assert ev[1] == AspStateChanged(AspState.ACTIVE, AspState.DOWN)
    assert c.closed and c.get_timer() is None
    with pytest.raises(AspNotActive):
        c.send_data(PD, 3.0)


def test_heartbeat_answer_resets_the_miss_count():
    c, s, w = up_pair(client_kw={"heartbeat_interval": 1.0, "heartbeat_max_missed": 2})
    for t in range(1, 8):
        if t % 2:
            w.cut.add("b>a")  # every other BEAT goes unanswered
        else:
            w.cut.discard("b>a")
        c.handle_timer(float(t))
        w.pump(float(t))
    assert c.state is AspState.ACTIVE and not any(isinstance(e, PeerLost) for e in c.events())


def test_heartbeat_runs_in_inactive_and_stops_when_down():
    c = Asp(Role.ASP, client_config(heartbeat_interval=1.0, auto_activate=False))
    c.start(0.0)
    c.receive_message(AspUpAck(), 0.0)
    c.data_to_send()
    assert c.state is AspState.INACTIVE and c.get_timer() == 1.0
    c.handle_timer(1.0)
    assert [type(m) for _, m in sent(c)] == [Heartbeat]
    c.stop(1.5)
    c.receive_message(AspDownAck(), 1.6)
    assert c.state is AspState.DOWN and c.get_timer() is None and c.stopped


def test_heartbeat_disabled_with_zero_interval():
    c, s, w = up_pair(client_kw={"heartbeat_interval": 0})
    assert c.get_timer() is None


def test_server_side_heartbeat_detects_a_silent_client():
    c, s, w = up_pair(server_kw={"heartbeat_interval": 1.0, "heartbeat_max_missed": 1})
    w.cut.add("a>b")
    s.handle_timer(1.0)
    w.pump(1.0)
    s.handle_timer(2.0)
    assert any(isinstance(e, PeerLost) for e in s.events()) and s.state is AspState.DOWN


# --------------------------------------------------------------------------- DATA gating


def test_data_refused_unless_active():
    c = Asp(Role.ASP, client_config())
    with pytest.raises(AspNotActive, match="DOWN"):
        c.send_data(PD, 0.0)
    c.start(0.0)
    c.receive_message(AspUpAck(), 0.0)
    assert c.state is AspState.INACTIVE
    with pytest.raises(AspNotActive, match="INACTIVE"):
        c.send_data(PD, 0.0)
    c.receive_message(AspActiveAck(), 0.0)
    c.data_to_send()
    c.send_data(PD, 0.0)
    c.stop(0.0)  # ASP Inactive sent: no more DATA, though still ACTIVE until the Ack
    with pytest.raises(AspNotActive, match="stopping"):
        c.send_data(PD, 0.0)
    assert [type(m) for _, m in sent(c)] == [Data, AspInactive]


def test_data_while_not_active_is_answered_unexpected_message():
    vec = VECTORS["srism_v3_begin"].m3ua
    s = Asp(Role.SGP, server_config())
    s.receive_message(AspUp(), 0.0)
    s.data_to_send()
    s.events()
    s.receive_bytes(vec, 0.0)
    (err,) = errors_in(sent(s))
    assert err.error_code == ErrorCode.UNEXPECTED_MESSAGE
    assert err.diagnostic_information == vec[:40]  # §3.8.1: the first 40 octets
    (ev,) = s.events()
    assert isinstance(ev, ProtocolViolation) and not ev.fatal
    c = Asp(Role.ASP, client_config())  # the ASP answers too (§3.8.1 would allow silence)
    c.receive_bytes(vec, 0.0)
    assert errors_in(sent(c))[0].error_code == ErrorCode.UNEXPECTED_MESSAGE


def test_data_with_wrong_routing_context_or_network_appearance():
    s = active_server(network_appearance=5)
    bad_rc = Data(routing_context=7, protocol_data=PD)
    s.receive_message(bad_rc, 0.0)
    (err,) = errors_in(sent(s))
    assert err.error_code == ErrorCode.INVALID_ROUTING_CONTEXT and err.routing_context == [7]
    assert err.diagnostic_information == m3ua.encode(bad_rc)[:40]
    s.receive_message(Data(routing_context=RC, network_appearance=6, protocol_data=PD), 0.0)
    assert errors_in(sent(s))[0].error_code == ErrorCode.INVALID_NETWORK_APPEARANCE
    s.receive_message(Data(routing_context=RC, network_appearance=5, protocol_data=PD), 0.0)
    s.receive_message(Data(protocol_data=PD), 0.0)  # no RC at all: accepted
    assert s.data_to_send() == []
    assert sum(isinstance(e, PayloadReceived) for e in s.events()) == 2
    c = active_client()
    c.receive_message(bad_rc, 0.0)
    assert errors_in(sent(c))[0].error_code == ErrorCode.INVALID_ROUTING_CONTEXT


# --------------------------------------------------------------------------- unexpected / bad


@pytest.mark.parametrize("role, state, msg", [
    (Role.SGP, "down", AspActive(routing_context=[RC])),
    (Role.SGP, "down", AspInactive()),
    (Role.SGP, "down", DestinationStateAudit(affected_point_codes=[PointCode(2)])),
    (Role.SGP, "active", AspUpAck()),
    (Role.SGP, "active", AspActiveAck()),
    (Role.SGP, "active", AspInactiveAck()),
    (Role.SGP, "active", AspDownAck()),
    (Role.SGP, "active", DestinationUnavailable(affected_point_codes=[PointCode(2)])),
    (Role.ASP, "active", AspUp()),
    (Role.ASP, "active", AspDown()),
    (Role.ASP, "active", AspActive()),
    (Role.ASP, "active", AspInactive()),
    (Role.ASP, "active", DestinationStateAudit(affected_point_codes=[PointCode(2)])),
    (Role.ASP, "down", DestinationUnavailable(affected_point_codes=[PointCode(2)])),
])
def test_unexpected_messages_get_err_unexpected(role, state, msg):
    if state == "active":
        asp = active_server() if role is Role.SGP else active_client()
    else:
        asp = Asp(role, server_config() if role is Role.SGP else client_config())
    before = asp.state
    asp.receive_message(msg, 0.0)
    out = sent(asp)
    (err,) = errors_in(out)
    assert err.error_code == ErrorCode.UNEXPECTED_MESSAGE
    assert err.diagnostic_information == m3ua.encode(msg)[:40]
    assert asp.state is before
    assert any(isinstance(e, ProtocolViolation) for e in asp.events())


def _raw(mc: int, mt: int, body: bytes = b"", version: int = 1) -> bytes:
    return struct.pack(">BBBBI", version, 0, mc, mt, 8 + len(body)) + body


@pytest.mark.parametrize("raw, code", [
    (_raw(5, 1), ErrorCode.UNSUPPORTED_MESSAGE_CLASS),  # class 5 is not M3UA's
    (_raw(3, 9), ErrorCode.UNSUPPORTED_MESSAGE_TYPE),  # ASPSM type 9 does not exist
    (_raw(1, 1), ErrorCode.MISSING_PARAMETER),  # DATA without Protocol Data
    (_raw(0, 0), ErrorCode.MISSING_PARAMETER),  # ERR without Error Code
    (_raw(3, 1, b"\x00\x11\x00\x06\x00\x01\x00\x00"), ErrorCode.PARAMETER_FIELD_ERROR),
    (_raw(3, 1, b"\x00\x11\x00\x40"), ErrorCode.PARAMETER_FIELD_ERROR),  # runs past the end
    (m3ua.encode(RegistrationRequest(routing_keys=[RoutingKey(
        local_rk_identifier=1, destinations=[RoutingKeyDestination(PointCode(2))])])),
     ErrorCode.UNSUPPORTED_MESSAGE_CLASS),  # RKM is not supported (§3.6 is optional)
])
def test_bad_messages_get_the_matching_err(raw, code):
    for asp in (active_server(), active_client(), Asp(Role.SGP, server_config())):
        asp.receive_bytes(raw, 0.0)
        (err,) = errors_in(sent(asp))
        assert err.error_code == code
        assert err.diagnostic_information == raw[:40]
        assert not asp.closed


def test_invalid_version_on_sctp_is_answered_and_survived():
    s = active_server()
    s.receive_datagram(_raw(3, 1, version=2), 0.0, stream_id=0)
    assert errors_in(sent(s))[0].error_code == ErrorCode.INVALID_VERSION
    assert s.state is AspState.ACTIVE and not s.closed


def test_management_on_a_data_stream_is_an_invalid_stream_identifier():
    s = Asp(Role.SGP, server_config())
    s.receive_datagram(m3ua.encode(AspUp()), 0.0, stream_id=1)
    assert errors_in(sent(s))[0].error_code == ErrorCode.INVALID_STREAM_IDENTIFIER
    assert s.state is AspState.DOWN
    s.receive_datagram(m3ua.encode(AspUp()), 0.0, stream_id=0)
    assert s.state is AspState.INACTIVE
    s.receive_datagram(m3ua.encode(AspActive(routing_context=[RC])), 0.0, stream_id=1)
    assert s.state is AspState.ACTIVE  # ASPTM may use any stream


def test_err_is_never_answered():
    for asp in (active_client(), active_server(), Asp(Role.ASP, client_config())):
        asp.receive_message(Error(error_code=ErrorCode.PROTOCOL_ERROR, routing_context=[3],
                                  diagnostic_information=b"x"), 0.0)
        assert asp.data_to_send() == []
        (ev,) = asp.events()
        assert ev == ErrorReceived(ErrorCode.PROTOCOL_ERROR, (3,), diagnostic=b"x")


def test_broken_tcp_framing_closes_the_asp():
    c, s, w = up_pair()
    good = m3ua.encode(Data(routing_context=RC, protocol_data=PD))
    s.receive_bytes(good + b"\x02\x00\x03\x01\x00\x00\x00\x08", 1.0)  # version 2 after DATA
    ev = s.events()
    assert isinstance(ev[0], PayloadReceived)  # what came before the fault is delivered
    assert isinstance(ev[1], ProtocolViolation) and ev[1].fatal
    assert ev[1].code == ErrorCode.INVALID_VERSION
    assert ev[2] == AspStateChanged(AspState.ACTIVE, AspState.DOWN)
    assert errors_in(sent(s))[0].error_code == ErrorCode.INVALID_VERSION
    assert s.closed and s.get_timer() is None
    s.receive_bytes(good, 2.0)  # ignored from now on
    assert s.events() == [] and s.data_to_send() == []


def test_oversized_length_breaks_framing_with_protocol_error():
    s = Asp(Role.SGP, server_config(max_message_length=64))
    s.receive_bytes(struct.pack(">BBBBI", 1, 0, 3, 1, 1000), 0.0)
    assert errors_in(sent(s))[0].error_code == ErrorCode.PROTOCOL_ERROR
    assert s.closed


def test_bytes_may_arrive_in_any_chunks():
    c, s, w = up_pair()
    stream = b"".join(m3ua.encode(Data(routing_context=RC, protocol_data=PD)) for _ in range(5))
    for i in range(0, len(stream), 7):
        s.receive_bytes(stream[i:i + 7], 0.0)
    assert sum(isinstance(e, PayloadReceived) for e in s.events()) == 5


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=120), st.sampled_from([Role.ASP, Role.SGP, Role.IPSP]),
       st.booleans())
def test_nothing_the_peer_sends_raises(data, role, as_stream):
    asp = Asp(role, client_config() if role is Role.ASP else server_config())
    asp.start(0.0)
    if as_stream:
        asp.receive_bytes(data, 0.0)
    else:
        asp.receive_datagram(data, 0.0, 0)
    asp.handle_timer(5.0)
    asp.events()
    for _sid, raw in asp.data_to_send():
        m3ua.decode(raw)  # whatever it answers is well-formed


@FUZZ
@given(st.lists(st.sampled_from([
    AspUp(), AspUpAck(), AspDown(), AspDownAck(), AspActive(routing_context=[RC]),
    AspActiveAck(), AspInactive(), AspInactiveAck(), Heartbeat(data=b"x"), HeartbeatAck(),
    Data(routing_context=RC, protocol_data=PD), Notify(status_type=1, status_info=3),
    Error(error_code=6), DestinationUnavailable(affected_point_codes=[PointCode(2)]),
    DestinationStateAudit(affected_point_codes=[PointCode(2)]),
]), max_size=12), st.sampled_from([Role.ASP, Role.SGP, Role.IPSP]))
def test_any_message_sequence_keeps_the_machine_sane(msgs, role):
    asp = Asp(role, client_config(heartbeat_interval=1.0) if role is Role.ASP
              else server_config(heartbeat_interval=1.0))
    asp.start(0.0)
    for i, msg in enumerate(msgs):
        asp.receive_message(msg, float(i))
        asp.handle_timer(float(i) + 0.5)
        assert asp.state in AspState
        if asp.state is AspState.ACTIVE and not asp.stopping:
            asp.send_data(PD, float(i))
    asp.events()
    asp.data_to_send()


# --------------------------------------------------------------------------- server procedures


def test_asp_up_while_active_is_acked_with_err_and_goes_inactive():
    s = active_server()
    s.receive_message(AspUp(), 1.0)
    out = [type(m) for _, m in sent(s)]
    assert out == [Error, AspUpAck]
    assert s.state is AspState.INACTIVE


def test_asp_up_while_inactive_is_acked_only():
    s = Asp(Role.SGP, server_config())
    s.receive_message(AspUp(), 0.0)
    s.data_to_send()
    s.receive_message(AspUp(), 0.0)
    assert [type(m) for _, m in sent(s)] == [AspUpAck]


def test_asp_down_is_always_acked():
    s = Asp(Role.SGP, server_config())
    s.receive_message(AspDown(), 0.0)  # even in ASP-DOWN (§4.3.4.2)
    assert [type(m) for _, m in sent(s)] == [AspDownAck]
    s = active_server()
    s.receive_message(AspDown(), 0.0)
    assert [type(m) for _, m in sent(s)] == [AspDownAck] and s.state is AspState.DOWN


def test_asp_active_checks_traffic_mode_and_routing_context():
    s = Asp(Role.SGP, server_config(accepted_routing_contexts=frozenset({1, 2})))
    s.receive_message(AspUp(), 0.0)
    s.data_to_send()
    s.receive_message(AspActive(traffic_mode_type=9, routing_context=[1]), 0.0)
    assert errors_in(sent(s))[0].error_code == ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE
    s.receive_message(AspActive(routing_context=[1, 3]), 0.0)
    (err,) = errors_in(sent(s))
    assert err.error_code == ErrorCode.INVALID_ROUTING_CONTEXT and err.routing_context == [3]
    assert s.state is AspState.INACTIVE
    s.receive_message(AspActive(traffic_mode_type=TrafficModeType.OVERRIDE,
                                routing_context=[1, 2]), 0.0)
    ack, ntfy = (m for _, m in sent(s))
    assert ack == AspActiveAck(traffic_mode_type=TrafficModeType.OVERRIDE, routing_context=[1, 2])
    assert ntfy.routing_context == [1, 2] and ntfy.status_info == AsState.AS_ACTIVE
    s.receive_message(AspActive(routing_context=[1]), 0.0)  # again: acked, no new NTFY
    assert [type(m) for _, m in sent(s)] == [AspActiveAck]


def test_asp_active_without_routing_context_and_no_as_configured():
    s = Asp(Role.SGP, server_config(accepted_routing_contexts=frozenset()))
    s.receive_message(AspUp(), 0.0)
    s.data_to_send()
    s.receive_message(AspActive(), 0.0)
    assert errors_in(sent(s))[0].error_code == ErrorCode.NO_CONFIGURED_AS_FOR_ASP
    s = Asp(Role.SGP, AspConfig())  # accepts anything
    s.receive_message(AspUp(), 0.0)
    s.receive_message(AspActive(), 0.0)
    assert s.state is AspState.ACTIVE


def test_simulator_can_refuse_asp_up_and_asp_active():
    c = Asp(Role.ASP, client_config(max_ack_tries=2))
    s = Asp(Role.SGP, server_config(refuse_asp_up=ErrorCode.REFUSED_MANAGEMENT_BLOCKING))
    w = Wire(c, s)
    c.start(0.0)
    w.pump()
    assert s.state is AspState.DOWN and c.state is AspState.DOWN
    assert [e.code for e in c.events() if isinstance(e, ErrorReceived)] == [
        ErrorCode.REFUSED_MANAGEMENT_BLOCKING]
    c2 = Asp(Role.ASP, client_config())
    s2 = Asp(Role.SGP, server_config(refuse_asp_active=ErrorCode.INVALID_ROUTING_CONTEXT))
    w2 = Wire(c2, s2)
    c2.start(0.0)
    w2.pump()
    assert c2.state is AspState.INACTIVE and c2.awaiting == "ASPAC"
    (er,) = [e for e in c2.events() if isinstance(e, ErrorReceived)]
    assert er.in_reply_to == "ASPAC"


def test_asp_inactive_at_the_server():
    s = active_server()
    s.receive_message(AspInactive(routing_context=[RC]), 0.0)
    assert [m for _, m in sent(s)] == [AspInactiveAck(routing_context=[RC])]
    assert s.state is AspState.INACTIVE
    s.receive_message(AspInactive(), 0.0)  # again: acked
    assert [type(m) for _, m in sent(s)] == [AspInactiveAck]


def test_no_notify_when_disabled():
    s = Asp(Role.SGP, server_config(send_notify=False))
    s.receive_message(AspUp(), 0.0)
    s.receive_message(AspActive(routing_context=[RC]), 0.0)
    assert [type(m) for _, m in sent(s)] == [AspUpAck, AspActiveAck]


def test_server_stop_only_marks_down():
    s = active_server()
    s.stop(0.0)
    assert s.state is AspState.DOWN and s.stopped and s.data_to_send() == []


# --------------------------------------------------------------------------- client procedures


def test_stop_sequence_asp_inactive_then_asp_down():
    c, s, w = up_pair()
    c.stop(1.0)
    flow = w.pump(1.0)
    assert names(flow) == ["a>b AspInactive", "b>a AspInactiveAck",
                           "a>b AspDown", "b>a AspDownAck"]
    assert c.state is AspState.DOWN and s.state is AspState.DOWN
    assert c.stopped and c.get_timer() is None
    assert c.events() == [AspStateChanged(AspState.ACTIVE, AspState.INACTIVE),
                          AspStateChanged(AspState.INACTIVE, AspState.DOWN)]


def test_stop_retransmits_under_t_ack():
    c, s, w = up_pair()
    w.cut.add("a>b")
    c.stop(1.0)
    w.pump(1.0)
    w.cut.clear()
    assert c.awaiting == "ASPIA" and c.get_timer() == 2.0
    c.handle_timer(2.0)
    w.pump(2.0)
    assert c.stopped and s.state is AspState.DOWN


def test_stop_from_inactive_and_from_down():
    c = Asp(Role.ASP, client_config(auto_activate=False))
    c.start(0.0)
    c.receive_message(AspUpAck(), 0.0)
    c.data_to_send()
    c.stop(0.0)
    assert [type(m) for _, m in sent(c)] == [AspDown]
    c2 = Asp(Role.ASP, client_config())
    c2.start(0.0)
    c2.data_to_send()
    c2.stop(0.0)  # ASP Up never acknowledged: nothing to send
    assert c2.data_to_send() == [] and c2.stopped and c2.get_timer() is None
    c2.receive_message(AspUpAck(), 0.5)  # late: ignored
    assert c2.state is AspState.DOWN and c2.data_to_send() == []


def test_unsolicited_asp_down_ack_loses_the_peer():
    c = active_client()
    c.receive_message(AspDownAck(), 1.0)
    ev = c.events()
    assert isinstance(ev[0], PeerLost) and ev[0].reason is LossReason.PEER_DOWN
    assert c.state is AspState.DOWN and c.closed


def test_unsolicited_asp_inactive_ack_reactivates_after_t_ack():
    c = active_client(t_ack=1.0)
    c.receive_message(AspInactiveAck(), 5.0)
    assert c.state is AspState.INACTIVE and c.data_to_send() == []
    assert c.awaiting == "ASPAC" and c.get_timer() == 6.0
    c.handle_timer(6.0)
    assert [type(m) for _, m in sent(c)] == [AspActive]
    c.receive_message(AspActiveAck(), 6.1)
    assert c.state is AspState.ACTIVE


def test_notify_alternate_asp_active_makes_the_asp_inactive():
    c = active_client()
    c.receive_message(Notify(status_type=StatusType.OTHER,
                             status_info=OtherStatus.ALTERNATE_ASP_ACTIVE,
                             routing_context=[RC], asp_identifier=9), 0.0)
    ev = c.events()
    assert ev[0] == Notified(StatusType.OTHER, OtherStatus.ALTERNATE_ASP_ACTIVE, (RC,), 9)
    assert ev[1] == AspStateChanged(AspState.ACTIVE, AspState.INACTIVE)


def test_connection_lost_closes():
    c = active_client(heartbeat_interval=1.0)
    c.connection_lost(1.0)
    assert c.events() == [AspStateChanged(AspState.ACTIVE, AspState.DOWN)]
    assert c.closed and c.get_timer() is None


# --------------------------------------------------------------------------- SSNM


def test_destination_tracking_masks_restriction_congestion_and_user_parts():
    c = active_client()
    c.receive_message(DestinationUnavailable(routing_context=[RC], affected_point_codes=[
        PointCode(0x100, mask=8)]), 0.0)  # 0x100..0x1ff
    assert not c.destination_available(0x1AB) and c.destination_available(0x200)
    c.receive_message(DestinationAvailable(affected_point_codes=[PointCode(0x1AB)]), 0.0)
    assert c.destination_available(0x1AB) and not c.destination_available(0x1AC)
    c.receive_message(DestinationRestricted(affected_point_codes=[PointCode(0x1AC)]), 0.0)
    assert c.destination_state(0x1AC) is DestinationState.RESTRICTED
    assert c.destination_available(0x1AC)
    c.receive_message(DestinationAvailable(affected_point_codes=[PointCode(0x100, 8)]), 0.0)
    assert all(c.destination_available(pc) for pc in (0x100, 0x1AC, 0x1FF))
    c.receive_message(SignallingCongestion(affected_point_codes=[PointCode(5)],
                                           congestion_level=CongestionLevel.LEVEL_2), 0.0)
    assert c.congestion_level(5) == 2
    c.receive_message(DestinationUserPartUnavailable(
        affected_point_code=PointCode(5), cause=UnavailabilityCause.UNEQUIPPED_REMOTE_USER,
        user=UserIdentity.SCCP), 0.0)
    assert not c.user_part_available(5) and c.user_part_available(5, UserIdentity.ISUP)
    assert c.destination_available(5)
    c.receive_message(DestinationAvailable(affected_point_codes=[PointCode(5)]), 0.0)
    assert c.user_part_available(5) and c.congestion_level(5) == 0
    kinds = [e.message_type for e in c.events() if isinstance(e, DestinationStateChanged)]
    assert kinds == [SsnmType.DUNA, SsnmType.DAVA, SsnmType.DRST, SsnmType.DAVA,
                     SsnmType.SCON, SsnmType.DUPU, SsnmType.DAVA]
    assert c.data_to_send() == []


def test_ssnm_for_another_routing_context_is_refused():
    c = active_client()
    c.receive_message(DestinationUnavailable(routing_context=[5],
                                             affected_point_codes=[PointCode(2)]), 0.0)
    assert errors_in(sent(c))[0].error_code == ErrorCode.INVALID_ROUTING_CONTEXT
    assert c.destination_available(2)


def test_daud_is_answered_from_the_announced_states():
    c, s, w = up_pair()
    s.announce_destinations([2, 3], DestinationState.UNAVAILABLE, 0.0)
    flow = w.pump()
    assert names(flow) == ["b>a DestinationUnavailable"]
    assert not c.destination_available(2) and not c.destination_available(3)
    s.announce_destinations([3], DestinationState.AVAILABLE, 0.0)
    w.pump()
    assert c.destination_available(3)
    c.audit_destinations([2, 3, 4], 0.0)
    flow = w.pump()
    assert names(flow) == ["a>b DestinationStateAudit", "b>a DestinationUnavailable",
                           "b>a DestinationAvailable"]
    duna, dava = flow[1][2], flow[2][2]
    assert duna.affected_point_codes == [PointCode(2)] and duna.routing_context == [RC]
    assert dava.affected_point_codes == [PointCode(3), PointCode(4)]
    assert not c.destination_available(2) and c.destination_available(4)


def test_audit_and_announce_need_an_up_asp():
    c = Asp(Role.ASP, client_config())
    with pytest.raises(AspNotActive):
        c.audit_destinations([2], 0.0)
    s = Asp(Role.SGP, server_config())
    s.announce_destinations([2], DestinationState.UNAVAILABLE, 0.0)  # recorded, not sent
    assert s.data_to_send() == [] and not s.destination_available(2)


# --------------------------------------------------------------------------- misc


def test_server_notify_for_the_simulator():
    c, s, w = up_pair()
    s.notify(StatusType.OTHER, OtherStatus.ASP_FAILURE, 0.0, info_string="asp 2 failed")
    w.pump()
    (ev,) = c.events()
    assert ev == Notified(StatusType.OTHER, OtherStatus.ASP_FAILURE, (RC,), None, "asp 2 failed")


def test_counters():
    c, s, w = up_pair()
    assert c.messages_sent == 2 and c.messages_received == 4
    assert s.messages_sent == 4 and s.messages_received == 2


@pytest.mark.parametrize("kw", [{"t_ack": 0}, {"max_ack_tries": 0}, {"heartbeat_interval": -1},
                                {"heartbeat_max_missed": 0}, {"data_stream": 70000},
                                {"traffic_mode": 7}])
def test_config_is_validated(kw):
    with pytest.raises(ValueError):
        AspConfig(**kw)


def test_traffic_mode_given_as_plain_int_is_accepted():
    s = Asp(Role.SGP, server_config())
    s.receive_message(AspUp(), 0.0)
    s.receive_message(AspActive(traffic_mode_type=1, routing_context=[RC]), 0.0)
    assert s.state is AspState.ACTIVE and s.peer_traffic_mode is TrafficModeType.OVERRIDE


def test_data_to_send_returns_a_fresh_list():
    c = Asp(Role.ASP, client_config())
    empty = c.data_to_send()
    empty.append((0, b"junk"))
    assert c.data_to_send() == []
