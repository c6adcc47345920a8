"""SIGTRAN runtime over real loopback TCP: Association <-> AssociationServer, reconnection with
backoff, heartbeats, graceful close, LinkSet selection and fail-over; SCTP when the kernel has it.

Everything listens on 127.0.0.1 with short timers; each test stops by itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re

import pytest

from gateway.sigtran import (
    AspConfig,
    AspNotActive,
    AspState,
    Association,
    AssociationConfig,
    AssociationDown,
    AssociationServer,
    LinkSet,
    LinkSetDown,
    LinkSetMode,
    Role,
    TransportKind,
    backoff_delay,
    sctp_unavailable_reason,
)
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
    Data,
    Error,
    ErrorCode,
    Heartbeat,
    MessageFramer,
    ProtocolData,
)
from protocols.m3ua_asp import AspStateChanged, DestinationState, LossReason, PeerLost
from tests.vectors import VECTORS

HOST = "127.0.0.1"
RC = 100
PD = ProtocolData(opc=1, dpc=2, si=3, ni=2, mp=0, sls=0, data=b"ping")
FAST = dict(reconnect_initial=0.02, reconnect_max=0.1, reconnect_factor=2.0,
            reconnect_jitter=0.0, connect_timeout=1.0)


def client_asp(**kw) -> AspConfig:
    kw.setdefault("routing_context", RC)
    kw.setdefault("t_ack", 0.1)
    kw.setdefault("heartbeat_interval", 0.25)
    return AspConfig(**kw)


def server_asp(**kw) -> AspConfig:
    kw.setdefault("accepted_routing_contexts", frozenset({RC}))
    kw.setdefault("heartbeat_interval", 0.25)
    return AspConfig(**kw)


def client(port: int, name: str = "", **kw) -> Association:
    asp = kw.pop("asp", None) or client_asp()
    on_payload = kw.pop("on_payload", None)
    cfg = AssociationConfig(host=HOST, port=port, asp=asp, name=name, **{**FAST, **kw})
    return Association(cfg, on_payload=on_payload)


async def until(pred, timeout: float = 2.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


class RawSgp:
    """A bare M3UA peer over TCP that answers ASP Up/Active/Inactive/Down and records what it
    gets; it never answers BEAT unless told to (a peer whose heartbeat is broken)."""

    def __init__(self, *, answer_beats: bool = False, answer_asptm: bool = True) -> None:
        self.answer_beats = answer_beats
        self.answer_asptm = answer_asptm
        self.received: list[m3ua.Message] = []
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        framer = MessageFramer()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    msg = m3ua.decode(frame)
                    self.received.append(msg)
                    reply: m3ua.Message | None = None
                    if isinstance(msg, AspUp):
                        reply = AspUpAck()
                    elif isinstance(msg, AspDown):
                        reply = AspDownAck()
                    elif isinstance(msg, AspActive) and self.answer_asptm:
                        reply = AspActiveAck(traffic_mode_type=msg.traffic_mode_type,
                                             routing_context=msg.routing_context)
                    elif isinstance(msg, AspInactive) and self.answer_asptm:
                        reply = AspInactiveAck(routing_context=msg.routing_context)
                    elif isinstance(msg, Heartbeat) and self.answer_beats:
                        reply = m3ua.HeartbeatAck(data=msg.data)
                    if reply is not None:
                        writer.write(m3ua.encode(reply))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def kinds(self) -> list[str]:
        return [type(m).__name__ for m in self.received]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()
        if self._server is not None:
            await self._server.wait_closed()


@pytest.fixture
async def server():
    got: list[tuple[Association, Data]] = []

    def echo(assoc: Association, data: Data) -> None:
        got.append((assoc, data))
        pd = data.protocol_data
        assoc.send(ProtocolData(pd.dpc, pd.opc, pd.si, pd.ni, pd.mp, pd.sls, b"pong:" + pd.data))

    srv = AssociationServer(HOST, 0, server_asp(), on_payload=echo)
    srv.received = got  # type: ignore[attr-defined]
    await srv.start()
    yield srv
    await srv.close()


# --------------------------------------------------------------------------- bring-up, payload


async def test_client_comes_up_active_and_payload_flows_both_ways(server):
    back: list[Data] = []
    states: list[AspState] = []
    c = client(server.port, on_payload=lambda a, d: back.append(d))
    c.add_state_listener(lambda a, s: states.append(s))
    with pytest.raises(AssociationDown):
        c.send(PD)  # not started yet
    c.start()
    try:
        assert await c.wait_active(2.0)
        assert states == [AspState.INACTIVE, AspState.ACTIVE]
        assert await server.wait_active(1, 1.0)
        (sassoc,) = server.associations
        assert sassoc.asp.active_routing_contexts == (RC,)
        for i in range(3):
            c.send(ProtocolData(1, 2, 3, 2, 0, i, b"ping%d" % i))
        assert await until(lambda: len(back) == 3)
        assert [d.protocol_data.data for d in back] == [b"pong:ping0", b"pong:ping1",
                                                        b"pong:ping2"]
        assert all(d.routing_context == RC for d in back)
        assert [d.protocol_data.data for _, d in server.received] == [b"ping0", b"ping1",
                                                                      b"ping2"]
        st = c.stats
        assert st.payloads_out == 3 and st.payloads_in == 3 and st.connects == 1
        assert st.messages_out >= 5 and st.messages_in >= 7  # ASPUP/ASPAC + 3 DATA; acks...
        assert st.bytes_out > 0 and st.bytes_in > 0
        assert c.uptime > 0 and c.connected
    finally:
        await c.close()


async def test_the_data_vector_crosses_the_wire_unchanged(server):
    vec = VECTORS["srism_v3_begin"].m3ua
    c = client(server.port)
    c.start()
    try:
        assert await c.wait_active(2.0)
        c.send(m3ua.decode(vec).protocol_data)
        assert await until(lambda: len(server.received) == 1)
        assert m3ua.encode(server.received[0][1]) == vec
    finally:
        await c.close()


async def test_heartbeats_measure_rtt(server):
    c = client(server.port, asp=client_asp(heartbeat_interval=0.02))
    c.start()
    try:
        assert await c.wait_active(2.0)
        assert await until(lambda: c.rtt is not None)
        assert 0 <= c.rtt < 0.5
        beats = c.stats.messages_out
        await asyncio.sleep(0.1)
        assert c.stats.messages_out > beats  # BEATs keep going
        assert c.state is AspState.ACTIVE
    finally:
        await c.close()


# --------------------------------------------------------------------------- reconnection


def test_backoff_delay_is_exponential_capped_and_jittered():
    assert [backoff_delay(n, 0.5, 2.0, 4.0, 0.0) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    rng = random.Random(1)
    for n in range(10):
        d = backoff_delay(n, 0.5, 2.0, 4.0, 0.25, rng)
        base = min(4.0, 0.5 * 2 ** n)
        assert 0.75 * base <= d <= min(4.0, 1.25 * base)
    assert backoff_delay(10_000, 0.5, 2.0, 30.0, 0.0) == 30.0  # no overflow


async def test_server_killed_client_reconnects_with_backoff(server, caplog):
    caplog.set_level(logging.INFO, logger="gateway.sigtran.association")
    events: list = []
    c = client(server.port)
    c.on_event = lambda a, e: events.append(e)
    c.start()
    try:
        assert await c.wait_active(2.0)
        port = server.port
        server.abort()  # crash: listener gone, connections reset
        assert await c.wait_state(AspState.DOWN, 1.0)
        assert AspStateChanged(AspState.ACTIVE, AspState.DOWN) in events
        with pytest.raises(AspNotActive):
            c.send(PD)
        await asyncio.sleep(0.35)  # refused attempts, backing off
        assert c.stats.connect_failures >= 2
        delays = [float(x) for x in re.findall(r"(?:retry|reconnecting) in ([\d.]+) s",
                                               caplog.text)]
        assert delays[:4] == [0.02, 0.04, 0.08, 0.1]  # doubling from 0.02, capped at 0.1
        assert all(d <= 0.1 for d in delays)
        srv2 = AssociationServer(HOST, port, server_asp())
        await srv2.start()
        try:
            assert await c.wait_active(2.0)
            assert c.stats.connects == 2
            c.send(PD)
        finally:
            await c.close()
            await srv2.close()
    finally:
        await c.close()


async def test_silent_heartbeat_peer_is_dropped_and_reconnected():
    raw = RawSgp(answer_beats=False)
    await raw.start()
    lost: list[PeerLost] = []
    c = client(raw.port, asp=client_asp(heartbeat_interval=0.03, heartbeat_max_missed=2))
    c.on_event = lambda a, e: lost.append(e) if isinstance(e, PeerLost) else None
    c.start()
    try:
        assert await c.wait_active(2.0)
        assert await until(lambda: lost, 2.0)
        assert lost[0].reason is LossReason.HEARTBEAT_TIMEOUT
        assert await until(lambda: raw.connections >= 2, 2.0)  # it came back
        assert await c.wait_active(2.0)
        assert c.stats.peer_lost >= 1
        assert raw.kinds().count("Heartbeat") >= 2
    finally:
        await c.close()
        await raw.close()


async def test_peer_that_never_acknowledges_asp_active_is_given_up():
    raw = RawSgp(answer_asptm=False)
    await raw.start()
    lost: list[PeerLost] = []
    c = client(raw.port, asp=client_asp(t_ack=0.02, max_ack_tries=2, heartbeat_interval=0))
    c.on_event = lambda a, e: lost.append(e) if isinstance(e, PeerLost) else None
    c.start()
    try:
        assert await until(lambda: lost, 2.0)
        assert lost[0].reason is LossReason.ACK_TIMEOUT
        assert raw.kinds()[:3] == ["AspUp", "AspActive", "AspActive"]
        assert await until(lambda: raw.connections >= 2, 2.0)
    finally:
        await c.close(timeout=0.1)
        await raw.close()


# --------------------------------------------------------------------------- close


async def test_graceful_close_sends_asp_inactive_then_asp_down():
    raw = RawSgp(answer_beats=True)
    await raw.start()
    c = client(raw.port)
    c.start()
    try:
        assert await c.wait_active(2.0)
        await c.close()
        assert c.closed and c.state is AspState.DOWN and not c.connected
        assert raw.kinds()[-2:] == ["AspInactive", "AspDown"]
        assert raw.received[-2] == AspInactive(routing_context=[RC])
        await asyncio.sleep(0.1)
        assert raw.connections == 1  # no reconnection after close
        with pytest.raises(AspNotActive):
            c.send(PD)
    finally:
        await raw.close()


async def test_graceful_close_as_seen_by_the_server(server):
    seen: list[AspState] = []
    server.on_state = lambda a, s: seen.append(s)
    c = client(server.port)
    c.start()
    assert await c.wait_active(2.0)
    await c.close()
    assert await until(lambda: not server.associations)
    assert seen == [AspState.INACTIVE, AspState.ACTIVE, AspState.INACTIVE, AspState.DOWN]


async def test_close_does_not_hang_when_the_peer_is_mute():
    raw = RawSgp(answer_asptm=True)
    await raw.start()
    c = client(raw.port, asp=client_asp(t_ack=0.05))
    c.start()
    assert await c.wait_active(2.0)
    raw.answer_asptm = False
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await c.close()  # ASP Inactive unanswered: waits 2 * T(ack) at most
    assert loop.time() - t0 < 1.0
    assert c.closed
    await raw.close()


async def test_close_while_connecting_or_backing_off():
    c = client(1)  # nothing listens on port 1
    c.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(c.close(), 1.0)
    assert c.closed and c.stats.connect_failures >= 1


# --------------------------------------------------------------------------- faults


async def test_broken_framing_is_answered_and_the_connection_reset(server):
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.write(b"\x02\x00\x03\x01\x00\x00\x00\x08")  # version 2
    data = await asyncio.wait_for(reader.read(), 2.0)  # ERR, then EOF
    err = m3ua.decode(data)
    assert isinstance(err, Error) and err.error_code == ErrorCode.INVALID_VERSION
    writer.close()


async def test_ssnm_and_destination_state_over_the_wire(server):
    c = client(server.port)
    c.start()
    try:
        assert await c.wait_active(2.0)
        assert not c.destination_available(99) or True
        (sassoc,) = server.associations
        sassoc.announce_destinations([2], DestinationState.UNAVAILABLE)
        assert await until(lambda: not c.destination_available(2))
        c.audit_destinations([2, 3])
        await asyncio.sleep(0.05)
        assert not c.destination_available(2) and c.destination_available(3)
        assert c.destination_state(3) is DestinationState.AVAILABLE
    finally:
        await c.close()
    assert not c.destination_available(3)  # down: nothing is reachable through it


# --------------------------------------------------------------------------- link sets


class _Servers:
    def __init__(self) -> None:
        self.servers: list[AssociationServer] = []
        self.got: dict[int, list[Data]] = {}

    async def add(self, port: int = 0) -> AssociationServer:
        idx = len(self.servers) if port == 0 else None
        srv = AssociationServer(HOST, port, server_asp())
        await srv.start()
        key = srv.port
        self.got.setdefault(key, [])
        srv.on_payload = lambda a, d, k=key: self.got[k].append(d)
        if idx is not None:
            self.servers.append(srv)
        return srv

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.servers))


async def test_linkset_loadshare_consistent_failover_and_down():
    sv = _Servers()
    srv_a, srv_b = await sv.add(), await sv.add()
    a, b = client(srv_a.port, "a"), client(srv_b.port, "b")
    lost: list[str] = []
    updown: list[bool] = []
    ls = LinkSet("hlr", [a, b], LinkSetMode.LOADSHARE,
                 on_lost=lambda _ls, m: lost.append(m.name),
                 on_up_down=lambda _ls, up: updown.append(up))
    with pytest.raises(LinkSetDown, match="no ASP-ACTIVE"):
        ls.pick(1)
    ls.start()
    try:
        assert await ls.wait_up(2, 2.0)
        keys = range(400)
        first = {k: ls.pick(k).name for k in keys}
        assert {k: ls.pick(k).name for k in keys} == first  # consistent by key
        share = sum(v == "a" for v in first.values())
        assert 120 < share < 280  # both carry traffic
        for k in range(20):
            ls.send(k, ProtocolData(1, 2, 3, 2, 0, 0, b"%d" % k))
        await until(lambda: len(sv.got[srv_a.port]) + len(sv.got[srv_b.port]) == 20)
        assert {bytes(d.protocol_data.data) for d in sv.got[srv_a.port]} == {
            b"%d" % k for k in range(20) if first[k] == "a"}
        # fail-over: A dies, its dialogues are reported lost at once, B takes every key
        port_a = srv_a.port
        srv_a.abort()
        assert await until(lambda: lost == ["a"])
        assert all(ls.pick(k) is b for k in keys)
        assert ls.active == (b,)
        # A comes back: the keys return to where they were
        srv_a2 = AssociationServer(HOST, port_a, server_asp())
        await srv_a2.start()
        try:
            assert await ls.wait_up(2, 2.0)
            assert {k: ls.pick(k).name for k in keys} == first
            srv_a2.abort()
            srv_b.abort()
            assert await until(lambda: not ls.is_up)
            with pytest.raises(LinkSetDown) as exc:
                ls.pick(5)
            assert isinstance(exc.value, AspNotActive)
            with pytest.raises(LinkSetDown):
                ls.send(5, PD)
            assert updown == [True, False]
            assert sorted(lost) == ["a", "a", "b"]
        finally:
            await srv_a2.close()
    finally:
        await ls.close()
        await sv.close()


async def test_linkset_override_priority_failover_and_failback():
    sv = _Servers()
    srv_a, srv_b = await sv.add(), await sv.add()
    a, b = client(srv_a.port, "a"), client(srv_b.port, "b")
    ls = LinkSet("hlr", [a, b], LinkSetMode.OVERRIDE)
    ls.start()
    try:
        assert await ls.wait_up(2, 2.0)
        assert {ls.pick(k).name for k in range(50)} == {"a"}  # first in priority order
        port_a = srv_a.port
        srv_a.abort()
        assert await until(lambda: a.state is AspState.DOWN)
        assert {ls.pick(k).name for k in range(50)} == {"b"}
        srv_a2 = AssociationServer(HOST, port_a, server_asp())
        await srv_a2.start()
        try:
            assert await a.wait_active(2.0)
            assert ls.pick(7) is a  # fail-back
        finally:
            await ls.close()
            await srv_a2.close()
    finally:
        await ls.close()
        await sv.close()


class _Member:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state = AspState.ACTIVE
        self.sent: list[ProtocolData] = []
        self._cbs: list = []

    def send(self, pd: ProtocolData) -> None:
        if self.state is not AspState.ACTIVE:
            raise AspNotActive(self.name)
        self.sent.append(pd)

    def add_state_listener(self, cb) -> None:
        self._cbs.append(cb)

    def remove_state_listener(self, cb) -> None:
        self._cbs.remove(cb)

    def set(self, state: AspState) -> None:
        self.state = state
        for cb in list(self._cbs):
            cb(self, state)


def test_linkset_rendezvous_moves_only_the_lost_members_keys():
    members = [_Member(n) for n in "abc"]
    lost: list[str] = []
    ls = LinkSet("x", members, on_lost=lambda _l, m: lost.append(m.name))
    keys = range(3000)
    before = {k: ls.pick(k).name for k in keys}
    counts = {n: sum(v == n for v in before.values()) for n in "abc"}
    assert all(800 < c < 1200 for c in counts.values()), counts
    members[1].set(AspState.INACTIVE)
    assert lost == ["b"]
    after = {k: ls.pick(k).name for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != "b")
    assert {after[k] for k in keys if before[k] == "b"} == {"a", "c"}
    ls.remove(members[0])
    assert lost == ["b", "a"] and ls.active == (members[2],)
    ls.remove(members[2])
    with pytest.raises(LinkSetDown):
        ls.pick(1)


# --------------------------------------------------------------------------- uvloop, SCTP


def test_bring_up_payload_and_reconnect_under_uvloop():
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        got: list[Data] = []
        srv = AssociationServer(HOST, 0, server_asp(),
                                on_payload=lambda a, d: a.send(d.protocol_data))
        await srv.start()
        c = client(srv.port, on_payload=lambda a, d: got.append(d))
        c.start()
        try:
            assert await c.wait_active(2.0)
            c.send(PD)
            assert await until(lambda: got)
            srv.abort()
            assert await c.wait_state(AspState.DOWN, 1.0)
            srv2 = AssociationServer(HOST, srv.port, server_asp())
            await srv2.start()
            assert await c.wait_active(2.0)
            await c.close()
            await srv2.close()
        finally:
            await c.close()
            await srv.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(scenario(), 10))


SCTP_MISSING = sctp_unavailable_reason()


@pytest.mark.skipif(SCTP_MISSING is not None, reason=f"M3UA over SCTP: {SCTP_MISSING}")
async def test_sctp_bring_up_and_payload_on_stream_1():
    got: list[Data] = []
    srv = AssociationServer(HOST, 0, server_asp(), transport=TransportKind.SCTP,
                            on_payload=lambda a, d: got.append(d))
    await srv.start()
    c = client(srv.port, transport=TransportKind.SCTP)
    c.start()
    try:
        assert await c.wait_active(3.0)
        c.send(PD)
        assert await until(lambda: got)
        assert got[0].protocol_data == PD
    finally:
        await c.close()
        await srv.close()


def test_sctp_reason_is_clear_when_missing():
    if SCTP_MISSING is None:
        pytest.skip("this kernel has SCTP")
    assert "SCTP" in SCTP_MISSING or "pysctp" in SCTP_MISSING


async def test_server_role_ipsp_and_client_role_validation():
    # an IPSP server answers like an SGP (single exchange)
    srv = AssociationServer(HOST, 0, server_asp(), role=Role.IPSP)
    await srv.start()
    c = client(srv.port)
    c.start()
    try:
        assert await c.wait_active(2.0)
    finally:
        await c.close()
        await srv.close()
    with pytest.raises(ValueError):
        AssociationConfig(reconnect_initial=0)
    with pytest.raises(ValueError):
        AssociationConfig(reconnect_jitter=1.5)


class _FakeSctpModule:
    """Just enough of pysctp for :class:`SctpTransport`: flags and notification classes."""

    FLAG_NOTIFICATION = 0x8000
    FLAG_EOR = 0x80

    class shutdown_event:  # noqa: N801 - pysctp's names
        pass

    class assoc_change:  # noqa: N801
        state_COMM_UP = 0

        def __init__(self, state: int) -> None:
            self.state = state

    class sndrcvinfo:  # noqa: N801
        def __init__(self, stream: int) -> None:
            self.stream = stream


class _FakeSctpSocket:
    """A pysctp-like socket over one end of a socketpair: the real fd drives the event loop's
    reader and writer callbacks, the messages come from a queue."""

    def __init__(self) -> None:
        import socket as _socket
        from collections import deque

        self._sock, self.peer = _socket.socketpair()
        self._sock.setblocking(False)
        self.inbox: deque = deque()
        self.sent: list[tuple[bytes, int, int]] = []
        self.blocked = False
        self.closed = False
        self.events = type("Ev", (), {"data_io": False, "flush": lambda self: None})()
        self.nodelay = False

    def push(self, flags: int, msg: bytes, info: object) -> None:
        self.inbox.append((flags, msg, info))
        self.peer.send(b"!")

    def sctp_recv(self, maxlen: int):
        self._sock.recv(1)  # BlockingIOError when nothing is pending
        flags, msg, info = self.inbox.popleft()
        return ("127.0.0.1", 2905), flags, msg, info

    def sctp_send(self, data: bytes, ppid: int = 0, stream: int = 0) -> int:
        if self.blocked:
            raise BlockingIOError
        self.sent.append((data, ppid, stream))
        return len(data)

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        pass

    def getpeername(self):
        return ("127.0.0.1", 2905)

    def getsockname(self):
        return ("127.0.0.1", 40000)

    def close(self) -> None:
        self.closed = True
        self._sock.close()
        self.peer.close()


async def test_sctp_transport_logic_on_a_stand_in_socket():
    from gateway.sigtran.transport import M3UA_PPID, SctpTransport

    class Listener:
        def __init__(self) -> None:
            self.messages: list[tuple[bytes, int]] = []
            self.lost: list[object] = []

        def transport_data(self, data: bytes) -> None:
            raise AssertionError("SCTP delivers whole messages")

        def transport_message(self, data: bytes, stream_id: int) -> None:
            self.messages.append((data, stream_id))

        def transport_lost(self, exc) -> None:
            self.lost.append(exc)

    mod = _FakeSctpModule
    sk = _FakeSctpSocket()
    listener = Listener()
    loop = asyncio.get_running_loop()
    tr = SctpTransport(loop, sk, lambda t: listener, mod)
    assert sk.events.data_io and sk.nodelay and tr.peername == ("127.0.0.1", 2905)
    eor = mod.FLAG_EOR
    sk.push(eor, b"whole", mod.sndrcvinfo(1))
    sk.push(0, b"par", mod.sndrcvinfo(0))  # partial delivery
    sk.push(eor, b"tial", mod.sndrcvinfo(0))
    sk.push(mod.FLAG_NOTIFICATION, b"", mod.assoc_change(0))  # COMM_UP: nothing to do
    assert await until(lambda: len(listener.messages) == 2, 1.0)
    assert listener.messages == [(b"whole", 1), (b"partial", 0)]
    assert tr.bytes_received == 12
    tr.send_many([(0, b"mgmt"), (1, b"data")])
    assert sk.sent == [(b"mgmt", M3UA_PPID, 0), (b"data", M3UA_PPID, 1)]
    sk.blocked = True
    tr.send(1, b"later")  # would block: queued until the socket is writable
    tr.send(0, b"after")
    assert tr.write_paused and len(sk.sent) == 2
    sk.blocked = False
    assert await until(lambda: len(sk.sent) == 4, 1.0)
    assert [s[0] for s in sk.sent[2:]] == [b"later", b"after"] and not tr.write_paused
    sk.push(mod.FLAG_NOTIFICATION, b"", mod.shutdown_event())
    assert await until(lambda: listener.lost, 1.0)
    assert listener.lost == [None] and sk.closed and tr.is_closing()
    tr.send(1, b"dropped")  # after the end: silently dropped
    assert len(sk.sent) == 4
