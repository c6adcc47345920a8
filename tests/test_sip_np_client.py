"""SipNpClient against a scriptable in-process NP server over real loopback UDP and TCP:
every outcome with its SIP status, rn -> network, fail-over, per-target timeout, rate cap,
503 Retry-After, retransmission, ACK, and lost connections.

(The same client against SIPp, an NP server we did not write, is in test_sip_sipp.py.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from gateway.sip.np_client import (
    NpOutcome,
    NpTarget,
    RnTable,
    SipNpClient,
    TokenBucket,
)
from gateway.sip.transport import Flow, TcpServer, UdpEndpoint, open_udp
from protocols.sip.message import Address, Request, Response, encode, make_response
from protocols.sip.transaction import Timers
from protocols.sip.uri import SipUri, TelUri, np_sip_uri, np_tel_uri, parse_uri

HOST = "127.0.0.1"
NETWORKS = {"4477001": "vodafone-uk", "44770012": "o2-uk", "+33 6": "orange-fr"}
FAST = Timers(t1=0.05)


@dataclass
class Answer:
    """What the fake server does with an INVITE for one number."""

    status: int = 302
    contacts: tuple[str, ...] | None = None  # None: ported, rn 4477001 + last 3 digits
    headers: tuple[tuple[str, str], ...] = ()
    drop: int = 0  # ignore this many INVITEs first
    silent: bool = False  # never answer
    close: bool = False  # close the TCP connection instead of answering


@dataclass
class FakeNpServer:
    """An NP server scripted per number (digits), on UDP and TCP."""

    answers: dict[str, Answer] = field(default_factory=dict)
    invites: list[Request] = field(default_factory=list)
    acks: list[Request] = field(default_factory=list)
    udp: UdpEndpoint | None = None
    tcp: TcpServer | None = None

    async def start(self) -> FakeNpServer:
        self.udp = await open_udp(HOST, 0, self.handle)
        self.tcp = TcpServer(self.handle)
        await self.tcp.start(HOST, 0)
        return self

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            await self.tcp.close()

    def target(self, transport: str = "udp", **kw) -> NpTarget:
        port = self.udp.local[1] if transport == "udp" else self.tcp.port
        kw.setdefault("timeout", 1.0)
        return NpTarget(HOST, port, transport, **kw)

    def handle(self, msg: Request | Response, flow: Flow) -> None:
        if not isinstance(msg, Request):
            return
        if msg.method == "ACK":
            self.acks.append(msg)
            return
        self.invites.append(msg)
        sub = msg.uri.subscriber
        answer = self.answers.get(sub.digits, Answer())
        if answer.drop:
            answer.drop -= 1
            return
        if answer.silent:
            return
        if answer.close:
            flow.close()
            return
        texts = answer.contacts
        if texts is None:
            texts = (str(np_sip_uri(sub.digits, "4477001" + sub.digits[-3:], "np.example")),) \
                if answer.status == 302 else ()
        contacts = tuple(Address(parse_uri(c.split(">")[0].lstrip("<")), None,
                                 tuple(tuple(p.split("=")) if "=" in p else (p, None)
                                       for p in c.split(">")[1].split(";") if p))
                         if c.startswith("<") else Address(parse_uri(c))
                         for c in texts)
        flow.send(encode(make_response(msg, answer.status, to_tag="np1", contact=contacts,
                                       headers=answer.headers)))


@pytest.fixture
async def server():
    s = await FakeNpServer().start()
    yield s
    await s.close()


async def client_for(*targets: NpTarget, **kw) -> SipNpClient:
    kw.setdefault("rn_networks", NETWORKS)
    kw.setdefault("local_host", HOST)
    kw.setdefault("timers", FAST)
    c = SipNpClient(list(targets), **kw)
    await c.start()
    return c


PORTED = str(np_sip_uri("447700900123", "447700123", "np.example"))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_outcomes(server: FakeNpServer, transport: str) -> None:
    server.answers.update({
        "447700900123": Answer(302, (PORTED,)),
        "447700900124": Answer(302, (str(np_tel_uri("447700900124", None)),)),
        "447700900125": Answer(302, ("sip:+447700900125@np.example;user=phone",)),
        "447700900404": Answer(404),
        "447700900604": Answer(604),
        "447700900484": Answer(484),
        "447700900403": Answer(403),
        "447700900500": Answer(500),
        "447700900200": Answer(200, ("sip:np@127.0.0.1",)),
        "447700900300": Answer(300, ()),
        "447700900301": Answer(301, ("sip:alice@np.example",)),
    })
    c = await client_for(server.target(transport))
    try:
        r = await c.query("+44 7700 900123")
        assert r.outcome is NpOutcome.PORTED and r.ported
        assert (r.number, r.status, r.reason) == ("447700900123", 302, "Moved Temporarily")
        assert (r.routing_number, r.npdi, r.network) == ("447700123", True, "o2-uk")
        assert r.contact == PORTED and r.attempts == 1 and r.target.startswith(transport)
        r = await c.query("447700900124")
        assert (r.outcome, r.npdi, r.routing_number) == (NpOutcome.NOT_PORTED, True, None)
        r = await c.query("447700900125")
        assert (r.outcome, r.npdi) == (NpOutcome.NOT_PORTED, False)
        expected = {"447700900404": (NpOutcome.NOT_FOUND, "Not Found"),
                    "447700900604": (NpOutcome.NOT_FOUND, "Does Not Exist Anywhere"),
                    "447700900484": (NpOutcome.INVALID, "Address Incomplete"),
                    "447700900403": (NpOutcome.REJECTED, "Forbidden"),
                    "447700900500": (NpOutcome.SERVER_ERROR, "Server Internal Error"),
                    "447700900200": (NpOutcome.PROTOCOL_ERROR, "OK"),
                    "447700900300": (NpOutcome.PROTOCOL_ERROR, "Multiple Choices (no Contact)"),
                    "447700900301": (NpOutcome.PROTOCOL_ERROR,
                                     "Moved Permanently (no telephone number in Contact)")}
        for number, (outcome, reason) in expected.items():
            r = await c.query(number)
            assert (r.outcome, r.status, r.reason) == (outcome, int(number[-3:]), reason), number
        await asyncio.sleep(0.1)
        # every non-2xx final was ACKed on the INVITE's branch (§17.1.1.3); the 2xx by the
        # TU in a new transaction (§13.2.2.4)
        invite_branch = {i.call_id: i.branch for i in server.invites}
        for ack in server.acks:
            same = ack.branch == invite_branch[ack.call_id]
            assert same == (ack.to.uri.subscriber.digits != "447700900200")
        assert len(server.acks) == len(server.invites)
    finally:
        await c.close()


async def test_what_we_send(server: FakeNpServer) -> None:
    c = await client_for(server.target(), user="np-gw", user_agent="test-ua")
    try:
        await c.query("447700900123")
    finally:
        await c.close()
    (inv,) = server.invites
    port = server.udp.local[1]
    assert str(inv.uri) == f"sip:+447700900123@127.0.0.1:{port};user=phone"
    assert inv.to.uri == inv.uri and inv.to.tag is None and inv.from_.tag
    assert inv.via[0].transport == "UDP" and inv.via[0].has_rport
    assert inv.branch.startswith("z9hG4bK") and inv.max_forwards == 70
    assert inv.contact[0].uri.user == "np-gw" and inv.header("User-Agent") == "test-ua"
    assert inv.body == b""


async def test_request_uri_forms(server: FakeNpServer) -> None:
    c = await client_for(server.target(uri_scheme="tel"),
                         server.target(domain="np.example"))
    try:
        await c.query("447700900123")
        c.targets.reverse()
        await c.query("447700900123")
    finally:
        await c.close()
    assert [str(i.uri) for i in server.invites] == [
        "tel:+447700900123", "sip:+447700900123@np.example;user=phone"]
    assert isinstance(server.invites[0].uri, TelUri)
    assert isinstance(server.invites[1].uri, SipUri)


async def test_contact_preference_and_uri_param_rn(server: FakeNpServer) -> None:
    """The highest-q Contact is read (RFC 3261 §8.1.3.4); rn/npdi as URI parameters (seen
    in the field, not RFC 4694) are read too."""
    server.answers["447700900123"] = Answer(302, (
        "<sip:+447700900123;npdi;rn=+4477001999@a>;q=0.2",
        "<sip:+447700900123@b;user=phone;rn=+33612;npdi>;q=0.9"))
    c = await client_for(server.target())
    try:
        r = await c.query("447700900123")
    finally:
        await c.close()
    assert (r.outcome, r.routing_number, r.network) == (NpOutcome.PORTED, "33612", "orange-fr")


async def test_invalid_number_sends_nothing(server: FakeNpServer) -> None:
    c = await client_for(server.target())
    try:
        r = await c.query("44-abc")
        assert r.outcome is NpOutcome.INVALID and r.attempts == 0
        r = await c.query("1234567890123456")  # 16 digits: not E.164
        assert r.outcome is NpOutcome.INVALID
    finally:
        await c.close()
    assert server.invites == []


async def test_retransmits_until_answered(server: FakeNpServer) -> None:
    """Timer A (§17.1.1.2): the server ignores two INVITEs, the third is answered."""
    server.answers["447700900123"] = Answer(302, (PORTED,), drop=2)
    c = await client_for(server.target())
    try:
        r = await c.query("447700900123")
    finally:
        await c.close()
    assert r.outcome is NpOutcome.PORTED
    assert len(server.invites) == 3 and c.stats.retransmissions == 2
    assert len({i.branch for i in server.invites}) == 1
    assert 0.15 - 0.02 < r.elapsed < 0.5  # T1 + 2*T1 with T1 = 50 ms


async def test_timeout_and_timer_b(server: FakeNpServer) -> None:
    server.answers["447700900123"] = Answer(silent=True)
    c = await client_for(server.target(timeout=0.2))
    try:
        r = await c.query("447700900123")
        assert (r.outcome, r.status, r.reason) == (NpOutcome.TIMEOUT, None,
                                                   "no final answer within 0.2 s")
        assert 0.19 < r.elapsed < 0.5
    finally:
        await c.close()
    c = await client_for(server.target(timeout=5), timers=Timers(t1=0.005))
    try:
        r = await c.query("447700900123")  # Timer B = 64 * 5 ms
        assert r.outcome is NpOutcome.TIMEOUT and r.reason.startswith("Timer B")
        assert r.elapsed < 1
        assert c.in_flight == 0
    finally:
        await c.close()


async def test_fail_over(server: FakeNpServer) -> None:
    """Timeouts, 5xx, other rejections and unreachable targets try the next target; an
    answer about the number (here 404) stops there."""
    other = await FakeNpServer().start()
    try:
        server.answers["447700900123"] = Answer(silent=True)
        server.answers["447700900500"] = Answer(500)
        server.answers["447700900404"] = Answer(404)
        dead = NpTarget(HOST, other.tcp.port, "tcp", timeout=0.5)
        await other.tcp.close()  # nothing listens there any more
        c = await client_for(dead, server.target(timeout=0.2), other.target(name="backup"))
        try:
            r = await c.query("447700900123")
            assert (r.outcome, r.target, r.attempts) == (NpOutcome.PORTED, "backup", 3)
            r = await c.query("447700900500")
            assert (r.outcome, r.attempts) == (NpOutcome.PORTED, 3)
            r = await c.query("447700900404")
            assert (r.outcome, r.attempts, r.target) == (NpOutcome.NOT_FOUND, 2,
                                                         server.target().name)
        finally:
            await c.close()
        assert [i.uri.subscriber.digits for i in other.invites] == ["447700900123",
                                                                   "447700900500"]
    finally:
        await other.close()


async def test_last_outcome_when_all_fail(server: FakeNpServer) -> None:
    server.answers["447700900123"] = Answer(500)
    c = await client_for(server.target(), server.target("tcp"))
    try:
        r = await c.query("447700900123")
    finally:
        await c.close()
    assert (r.outcome, r.status, r.attempts) == (NpOutcome.SERVER_ERROR, 500, 2)
    assert r.target.startswith("tcp")


async def test_503_retry_after_rests_the_target(server: FakeNpServer) -> None:
    server.answers["447700900123"] = Answer(503, headers=(("Retry-After", "60 (maintenance)"),))
    c = await client_for(server.target())
    try:
        r = await c.query("447700900123")
        assert (r.outcome, r.status) == (NpOutcome.SERVER_ERROR, 503)
        r = await c.query("447700900124")
        assert r.outcome is NpOutcome.SERVER_ERROR and r.attempts == 0
        assert c.stats.skipped_backoff == 1
    finally:
        await c.close()
    assert len(server.invites) == 1


async def test_rate_cap(server: FakeNpServer) -> None:
    c = await client_for(server.target(rate=5, burst=2))
    try:
        results = [await c.query("447700900123") for _ in range(3)]
        assert [r.outcome for r in results] == [NpOutcome.PORTED, NpOutcome.PORTED,
                                                NpOutcome.RATE_LIMITED]
        assert results[2].attempts == 0 and c.stats.skipped_rate == 1
        await asyncio.sleep(0.25)  # one token back at 5/s
        assert (await c.query("447700900123")).outcome is NpOutcome.PORTED
    finally:
        await c.close()
    assert len(server.invites) == 3
    # a capped target is skipped, the next one answers
    c = await client_for(server.target(rate=1, burst=1), server.target("tcp"))
    try:
        first, second = await c.query("447700900123"), await c.query("447700900123")
    finally:
        await c.close()
    assert first.target.startswith("udp") and second.target.startswith("tcp")


def test_token_bucket() -> None:
    b = TokenBucket(10, burst=3)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.1) and not b.take(0.1)
    assert b.take(10.0) and b.tokens == pytest.approx(2.0)


def test_rn_table() -> None:
    t = RnTable(NETWORKS)
    assert t.network_for("+447700123") == "o2-uk"  # longest prefix
    assert t.network_for("4477001999") == "vodafone-uk"
    assert t.network_for("+33-6-12") == "orange-fr"
    assert t.network_for("4412") is None and len(t) == 3
    assert RnTable().network_for("44") is None


async def test_tcp_connection_lost_mid_query(server: FakeNpServer) -> None:
    server.answers["447700900123"] = Answer(close=True)
    c = await client_for(server.target("tcp"))
    try:
        r = await c.query("447700900123")
        assert r.outcome is NpOutcome.TRANSPORT_ERROR and "lost" in r.reason
        server.answers["447700900123"] = Answer(302, (PORTED,))
        r = await c.query("447700900123")  # a new connection
        assert r.outcome is NpOutcome.PORTED
    finally:
        await c.close()


async def test_tcp_connection_reused(server: FakeNpServer) -> None:
    c = await client_for(server.target("tcp"))
    try:
        results = await asyncio.gather(*(c.query(f"4477009001{i:02d}") for i in range(20)))
    finally:
        await c.close()
    assert all(r.outcome is NpOutcome.PORTED for r in results)
    assert {i.via[0].port for i in server.invites} == {server.invites[0].via[0].port}
    assert len({i.branch for i in server.invites}) == 20


async def test_many_concurrent_udp_queries(server: FakeNpServer) -> None:
    c = await client_for(server.target())
    try:
        results = await asyncio.gather(*(c.query(f"447700{i:06d}") for i in range(300)))
    finally:
        await c.close()
    assert [r.number for r in results] == [f"447700{i:06d}" for i in range(300)]
    assert all(r.outcome is NpOutcome.PORTED for r in results)


async def test_stray_responses_ignored(server: FakeNpServer) -> None:
    c = await client_for(server.target())
    try:
        await c.query("447700900123")
        inv = server.invites[0]
        stray = make_response(inv, 302, to_tag="x")
        stray.via = (stray.via[0].with_param("branch", "z9hG4bKnobody"),)
        server.udp.sendto(encode(stray), (HOST, inv.via[0].port))
        await asyncio.sleep(0.05)
        assert c.stats.stray_responses == 1
    finally:
        await c.close()


def test_target_validation() -> None:
    assert NpTarget("h").name == "udp:h:5060"
    assert NpTarget("h", transport="TCP").transport == "tcp"
    for bad in (dict(port=0), dict(timeout=0), dict(rate=0), dict(uri_scheme="http")):
        with pytest.raises(ValueError):
            NpTarget("h", **bad)
    with pytest.raises(ValueError):
        SipNpClient([])
