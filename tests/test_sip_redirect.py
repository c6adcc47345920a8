"""SipRedirectServer over real loopback UDP and TCP, driven by a raw SIP client (so every
byte we send is ours to choose): 302 Contacts with rn/npdi, 404/604/484/503, the allow-list
(403), overload (503 Retry-After), lookup errors and timeouts, retransmissions absorbed and
answered once, Timer G/H, 100 Trying, CANCEL, OPTIONS, and broken TCP streams.

(The same server against SIPp as the softswitch is in test_sip_sipp.py.)
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from gateway.sip.redirect import (
    RedirectClient,
    RedirectConfig,
    RedirectDecision,
    SipRedirectServer,
)
from protocols.sip.message import (
    Address,
    CSeq,
    Method,
    Request,
    Response,
    StreamFramer,
    Via,
    decode,
    encode,
)
from protocols.sip.transaction import Timers, ack_for
from protocols.sip.uri import TelUri, parse_uri

HOST = "127.0.0.1"
DB = {
    "447700900123": RedirectDecision.ported("447700123"),
    "447700900124": RedirectDecision.not_ported(),
    "447700900404": RedirectDecision.not_found(),
    "447700900604": RedirectDecision.nowhere(),
    "447700900484": RedirectDecision.invalid(),
    "447700900503": RedirectDecision.unavailable(30),
    "15550100": RedirectDecision.ported("5440000", rn_context="+1-202"),
}
_ids = itertools.count(1)


class Lookups:
    """A lookup callable recording its calls; numbers in ``hold`` wait for ``release``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.clients: list[RedirectClient] = []
        self.hold: set[str] = set()
        self.release = asyncio.Event()

    async def __call__(self, number: str, client: RedirectClient) -> RedirectDecision:
        self.calls.append(number)
        self.clients.append(client)
        if number == "447700900666":
            raise RuntimeError("database on fire")
        if number in self.hold:
            await self.release.wait()
        return DB.get(number, RedirectDecision.not_found())


def invite(uri: str, port: int, transport: str = "UDP", branch: str | None = None,
           method: str = Method.INVITE) -> Request:
    n = next(_ids)
    ruri = parse_uri(uri)
    via = Via(transport, HOST, port, (("branch", branch or f"z9hG4bKt{n}"), ("rport", None)))
    return Request(method, ruri, (via,), Address(parse_uri(f"sip:ss@{HOST}"), None,
                                                 (("tag", f"f{n}"),)),
                   Address(ruri), f"call{n}@{HOST}", CSeq(1, method), 70)


class RawUdp(asyncio.DatagramProtocol):
    """A bare UDP SIP peer: send what we build, collect what comes back."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Response] = asyncio.Queue()
        self.raw: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr) -> None:
        self.raw.append(data)
        self.queue.put_nowait(decode(data))

    def send(self, msg: Request, port: int) -> None:
        self.transport.sendto(encode(msg), (HOST, port))

    async def recv(self, timeout: float = 2.0) -> Response:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def final(self, timeout: float = 2.0) -> Response:
        while True:
            r = await self.recv(timeout)
            if r.status >= 200:
                return r


@pytest.fixture
async def udp():
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(RawUdp, local_addr=(HOST, 0))
    yield peer
    transport.close()


async def serve(lookup, **kw) -> SipRedirectServer:
    kw.setdefault("allow", ["127.0.0.0/8"])
    kw.setdefault("host", HOST)
    kw.setdefault("udp_port", 0)
    kw.setdefault("tcp_port", 0)
    server = SipRedirectServer(lookup, RedirectConfig(**kw))
    await server.start()
    return server


async def ask(udp: RawUdp, server: SipRedirectServer, uri: str, ack: bool = True) -> Response:
    req = invite(uri, udp.port)
    udp.send(req, server.udp_port)
    resp = await udp.final()
    if ack:
        udp.send(ack_for(req, resp), server.udp_port)
    return resp


async def test_answers(udp: RawUdp) -> None:
    lookups = Lookups()
    server = await serve(lookups)
    port = server.udp_port
    try:
        r = await ask(udp, server, "sip:+447700900123@softswitch.example;user=phone")
        assert (r.status, r.reason) == (302, "Moved Temporarily")
        assert str(r.contact[0].uri) == \
            "sip:+447700900123;npdi;rn=+447700123@softswitch.example;user=phone"
        assert r.to.tag and r.header("Retry-After") is None
        r = await ask(udp, server, f"sip:+447700900124@{HOST}:{port};user=phone")
        assert str(r.contact[0].uri) == f"sip:+447700900124;npdi@{HOST}:{port};user=phone"
        r = await ask(udp, server, "tel:+447700900123")
        assert isinstance(r.contact[0].uri, TelUri)
        assert str(r.contact[0].uri) == "tel:+447700900123;npdi;rn=+447700123"
        r = await ask(udp, server, "sip:447700900123@h")  # bare digits taken as E.164
        assert r.status == 302 and r.contact[0].uri.subscriber.rn == "+447700123"
        r = await ask(udp, server, "tel:+1-555-0100")
        assert str(r.contact[0].uri) == "tel:+15550100;npdi;rn=5440000;rn-context=+1-202"
        for number, status, reason in [("447700900404", 404, "Not Found"),
                                       ("447700900604", 604, "Does Not Exist Anywhere"),
                                       ("447700900484", 484, "Address Incomplete"),
                                       ("447700900503", 503, "Service Unavailable"),
                                       ("447700900999", 404, "Not Found")]:
            r = await ask(udp, server, f"sip:+{number}@h;user=phone")
            assert (r.status, r.reason, r.contact) == (status, reason, ()), number
        assert r.header("Retry-After") is None
        r = await ask(udp, server, "sip:+447700900503@h;user=phone")
        assert r.header("Retry-After") == "30"
        assert lookups.calls[:2] == ["447700900123", "447700900124"]
        assert server.stats.responses == {302: 5, 404: 2, 604: 1, 484: 1, 503: 2}
    finally:
        await server.close()


async def test_refusals_before_lookup(udp: RawUdp) -> None:
    """A Request-URI that is not a number never reaches the lookup."""
    lookups = Lookups()
    server = await serve(lookups)
    try:
        for uri, status in [("sip:alice@h", 484), ("sip:+44abc@h;user=phone", 484),
                            ("mailto:a@b.example", 416), ("tel:7042;phone-context=ex.com", 484),
                            ("sip:1234567890123456@h", 484)]:
            r = await ask(udp, server, uri)
            assert r.status == status, uri
        no_e164 = await serve(lookups, assume_e164=False)
        try:
            assert (await ask(udp, no_e164, "sip:447700900123@h")).status == 484
        finally:
            await no_e164.close()
    finally:
        await server.close()
    assert lookups.calls == []


async def test_contact_knobs(udp: RawUdp) -> None:
    server = await serve(Lookups(), contact_host="np.carrier.example", contact_scheme="sip")
    try:
        r = await ask(udp, server, "tel:+447700900123")
        assert str(r.contact[0].uri) == \
            "sip:+447700900123;npdi;rn=+447700123@np.carrier.example;user=phone"
    finally:
        await server.close()
    server = await serve(Lookups(), contact_scheme="tel")
    try:
        r = await ask(udp, server, "sip:+447700900123@h;user=phone")
        assert str(r.contact[0].uri) == "tel:+447700900123;npdi;rn=+447700123"
    finally:
        await server.close()


async def test_allow_list(udp: RawUdp) -> None:
    lookups = Lookups()
    server = await serve(lookups, allow=["10.0.0.0/8", "2001:db8::/32"])
    try:
        r = await ask(udp, server, "sip:+447700900123@h;user=phone")
        assert (r.status, r.reason) == (403, "Forbidden")
        assert server.stats.refused == 1 and lookups.calls == []
    finally:
        await server.close()
    with pytest.raises(ValueError):
        RedirectConfig(allow=["not-a-network"])


async def test_overload_answers_503_with_retry_after(udp: RawUdp) -> None:
    lookups = Lookups()
    lookups.hold.add("447700900123")
    server = await serve(lookups, max_in_flight=2, retry_after=9,
                         timers=Timers(trying=10.0))
    try:
        held = [invite("sip:+447700900123@h;user=phone", udp.port) for _ in range(2)]
        for req in held:
            udp.send(req, server.udp_port)
        await asyncio.sleep(0.1)
        assert server.in_flight == 2
        r = await ask(udp, server, "sip:+447700900124@h;user=phone")
        assert (r.status, r.header("Retry-After")) == (503, "9")
        assert server.stats.overloaded == 1
        lookups.release.set()
        finals = [await udp.final(), await udp.final()]
        assert [f.status for f in finals] == [302, 302]
        assert server.in_flight == 0
        assert (await ask(udp, server, "sip:+447700900124@h;user=phone")).status == 302
    finally:
        await server.close()


async def test_lookup_error_and_timeout(udp: RawUdp) -> None:
    lookups = Lookups()
    lookups.hold.add("447700900123")
    server = await serve(lookups, lookup_timeout=0.1)
    try:
        r = await ask(udp, server, "sip:+447700900666@h;user=phone")
        assert (r.status, r.reason) == (500, "Server Internal Error")
        r = await ask(udp, server, "sip:+447700900123@h;user=phone")
        assert (r.status, r.reason) == (504, "Server Time-out")
        assert server.stats.lookup_errors == 1 and server.stats.lookup_timeouts == 1
        assert server.in_flight == 0
    finally:
        await server.close()


async def test_retransmission_answered_once_with_same_bytes(udp: RawUdp) -> None:
    """§17.2.1: a retransmitted INVITE gets the response already sent, byte for byte; the
    number is looked up once."""
    lookups = Lookups()
    server = await serve(lookups)
    try:
        req = invite("sip:+447700900123@h;user=phone", udp.port)
        udp.send(req, server.udp_port)
        first = await udp.final()
        udp.send(req, server.udp_port)
        udp.send(req, server.udp_port)
        again = [await udp.final(), await udp.final()]
        assert again == [first, first]
        assert udp.raw[1] == udp.raw[0] and udp.raw[2] == udp.raw[0]
        assert lookups.calls == ["447700900123"]
        assert server.stats.retransmissions == 2 and server.stats.responses == {302: 1}
        udp.send(ack_for(req, first), server.udp_port)
        await asyncio.sleep(0.05)
        udp.send(req, server.udp_port)  # Confirmed: absorbed silently
        with pytest.raises(TimeoutError):
            await udp.recv(0.2)
    finally:
        await server.close()


async def test_final_retransmitted_until_ack_then_timer_h(udp: RawUdp) -> None:
    """Timer G over UDP: the 302 is sent again at T1, 2*T1... until the ACK; without one,
    Timer H (64*T1) gives up."""
    server = await serve(Lookups(), timers=Timers(t1=0.02, t2=0.08))
    try:
        await ask(udp, server, "sip:+447700900123@h;user=phone", ack=False)
        await asyncio.sleep(64 * 0.02 + 0.3)
        copies = len(udp.raw)
        assert 5 <= copies <= 25  # 1 + G firings at 20, 60, 140, 220... ms until 1.28 s
        assert all(r == udp.raw[0] for r in udp.raw)
        assert server.stats.ack_timeouts == 1 and server.transactions == 0
    finally:
        await server.close()


async def test_100_trying_for_slow_lookups(udp: RawUdp) -> None:
    lookups = Lookups()
    lookups.hold.add("447700900123")
    server = await serve(lookups, timers=Timers(trying=0.05))
    try:
        req = invite("sip:+447700900123@h;user=phone", udp.port)
        udp.send(req, server.udp_port)
        trying = await udp.recv()
        assert trying.status == 100 and trying.to.tag is None
        udp.send(req, server.udp_port)
        assert (await udp.recv()).status == 100  # the retransmission gets the 100 again
        lookups.release.set()
        assert (await udp.final()).status == 302
    finally:
        await server.close()


async def test_cancel(udp: RawUdp) -> None:
    """§9.2: 200 to the CANCEL, 487 to the INVITE, with the same To tag."""
    lookups = Lookups()
    lookups.hold.add("447700900123")
    server = await serve(lookups)
    try:
        req = invite("sip:+447700900123@h;user=phone", udp.port)
        udp.send(req, server.udp_port)
        await asyncio.sleep(0.05)
        cancel = Request(Method.CANCEL, req.uri, req.via, req.from_, req.to, req.call_id,
                         CSeq(1, Method.CANCEL), 70)
        udp.send(cancel, server.udp_port)
        answers: dict[str, Response] = {}
        for _ in range(2):
            r = await udp.recv()
            answers[r.cseq.method] = r
        assert answers["CANCEL"].status == 200 and answers["INVITE"].status == 487
        assert answers["CANCEL"].to.tag == answers["INVITE"].to.tag
        assert server.in_flight == 0
        lone = invite("sip:+447700900123@h;user=phone", udp.port, method=Method.CANCEL)
        udp.send(lone, server.udp_port)
        assert (await udp.recv()).status == 481
    finally:
        await server.close()


async def test_options_and_other_methods(udp: RawUdp) -> None:
    server = await serve(Lookups())
    try:
        udp.send(invite("sip:np@h", udp.port, method=Method.OPTIONS), server.udp_port)
        r = await udp.recv()
        assert r.status == 200 and "INVITE" in r.header_values("Allow")
        udp.send(invite("sip:np@h", udp.port, method=Method.BYE), server.udp_port)
        r = await udp.recv()
        assert r.status == 405 and r.header("Allow")
    finally:
        await server.close()


async def test_via_stamped_with_source(udp: RawUdp) -> None:
    """§18.2.1 / RFC 3581: the response's top Via records where the request came from,
    and the response goes to that source address, whatever the Via says."""
    server = await serve(Lookups())
    try:
        req = invite("sip:+447700900123@h;user=phone", udp.port)
        req.via = (Via("UDP", "192.0.2.50", 5999, (("branch", "z9hG4bKnat"), ("rport", None))),)
        udp.send(req, server.udp_port)
        r = await udp.final()
        assert r.via[0].received == HOST and r.via[0].rport == udp.port
    finally:
        await server.close()


async def test_garbage_and_keepalives_ignored(udp: RawUdp) -> None:
    server = await serve(Lookups())
    try:
        udp.transport.sendto(b"\r\n\r\n", (HOST, server.udp_port))
        udp.transport.sendto(b"NOT SIP AT ALL\r\n\r\n", (HOST, server.udp_port))
        r = await ask(udp, server, "sip:+447700900123@h;user=phone")
        assert r.status == 302
        (stats,) = [s for s in server.transport_stats if s.keepalives]
        assert stats.undecodable == 1
    finally:
        await server.close()


async def tcp_exchange(server: SipRedirectServer, requests: list[Request], want: int
                       ) -> list[Response]:
    reader, writer = await asyncio.open_connection(HOST, server.tcp_port)
    framer = StreamFramer()
    out: list[Response] = []
    try:
        writer.write(b"".join(encode(r) for r in requests))
        await writer.drain()
        while len(out) < want:
            data = await asyncio.wait_for(reader.read(65536), 2)
            assert data, "connection closed"
            out += [decode(f, stream=True) for f in framer.feed(data)]
        for req, resp in zip(requests, out):
            if resp.status >= 300 and req.method == Method.INVITE:
                writer.write(encode(ack_for(req, resp)))
        await writer.drain()
        await asyncio.sleep(0.05)
    finally:
        writer.close()
    return out


async def test_tcp() -> None:
    server = await serve(Lookups())
    try:
        reqs = [invite(f"sip:+{n}@h;user=phone", 0, "TCP") for n in
                ("447700900123", "447700900404", "447700900124")]
        answers = await tcp_exchange(server, reqs, 3)
        assert sorted(a.status for a in answers) == [302, 302, 404]
        by_call = {a.call_id: a for a in answers}
        assert by_call[reqs[0].call_id].contact[0].uri.subscriber.rn == "+447700123"
        await asyncio.sleep(0.05)
        assert server.transactions == 0  # reliable: the ACK ends them at once
    finally:
        await server.close()


async def test_tcp_broken_framing_closes_connection() -> None:
    server = await serve(Lookups())
    try:
        reader, writer = await asyncio.open_connection(HOST, server.tcp_port)
        writer.write(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the server
        writer.close()
    finally:
        await server.close()


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        RedirectConfig(allow=[], udp_port=None, tcp_port=None)
    with pytest.raises(ValueError):
        RedirectConfig(allow=[], max_in_flight=0)
    with pytest.raises(ValueError):
        RedirectConfig(allow=[], contact_scheme="http")
    assert RedirectConfig(allow=["0.0.0.0/0"]).allow == ("0.0.0.0/0",)


async def test_allow_list_accounts_and_the_new_decisions(udp: RawUdp) -> None:
    """A mapping allow-list gives the lookup the account of the most specific network;
    forbidden/failed/timed_out/error decisions answer 403/502/504/500 with their reason."""
    extra = {"447700900403": RedirectDecision.forbidden("No Route"),
             "447700900502": RedirectDecision.failed(),
             "447700900514": RedirectDecision.timed_out(),
             "447700900500": RedirectDecision.error("No Routing Number")}
    DB.update(extra)
    lookups = Lookups()
    server = await serve(lookups, allow={"127.0.0.0/8": "wide", "127.0.0.1/32": "narrow",
                                         "10.0.0.0/8": "elsewhere"})
    try:
        r = await ask(udp, server, "sip:+447700900123@ss.example;user=phone")
        assert r.status == 302
        (client,) = lookups.clients
        assert (client.address, client.port, client.transport, client.account) == \
            (HOST, udp.port, "udp", "narrow")
        got = {}
        for number in extra:
            r = await ask(udp, server, f"tel:+{number}")
            got[number] = (r.status, r.reason)
        assert got == {"447700900403": (403, "No Route"), "447700900502": (502, "Bad Gateway"),
                       "447700900514": (504, "Server Time-out"),
                       "447700900500": (500, "No Routing Number")}
        server.reconfigure(RedirectConfig(allow={"127.0.0.0/8": "wide"}, host=HOST,
                                          udp_port=0))
        await ask(udp, server, "sip:+447700900124@ss.example;user=phone")
        assert lookups.clients[-1].account == "wide"
        server.reconfigure(RedirectConfig(allow=["10.0.0.0/8"], host=HOST, udp_port=0))
        r = await ask(udp, server, "sip:+447700900124@ss.example;user=phone", ack=False)
        assert r.status == 403 and server.stats.refused == 1
    finally:
        for number in extra:
            del DB[number]
        await server.close()
