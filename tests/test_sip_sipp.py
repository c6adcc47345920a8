"""Proof with a real peer: SIPp (Debian sip-tester), an implementation we did not write.

(a) SIPp as an operator's NP server (tests/sipp/np_server.xml) answers our SipNpClient's
    INVITEs with 302 + rn, or 404, over UDP and over TCP; it checks that our ACK carries
    the INVITE's branch.
(b) SIPp drops our first INVITE (np_server_drop_first.xml, -nr): only Timer A's
    retransmission gets the 302, and the ACK must be on the same branch.
(c) SIPp as a softswitch (softswitch.xml) dips against SipRedirectServer over UDP and TCP
    and checks every answer: the status, and each 302's Contact against the exact URI with
    rn/npdi; 404, 604, 503 from the lookup, and 503 Retry-After from overload.
(d) SIPp misses our first 302 and retransmits the INVITE (softswitch_retransmit.xml, -nr):
    the server answers the retransmission with the same response, looking up once.

Negative controls show that the scenarios' checks can fail. Everything runs on 127.0.0.1
with free ports; without sipp the tests skip, unless HLRGW_REQUIRE_SIPP=1.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.sip.np_client import NpOutcome, NpTarget, SipNpClient
from gateway.sip.redirect import (
    RedirectClient,
    RedirectConfig,
    RedirectDecision,
    SipRedirectServer,
)
from protocols.sip.message import Address, CSeq, Method, Request, Via, decode, encode
from protocols.sip.transaction import Timers
from protocols.sip.uri import parse_uri
from tests.sipp import HOST, Sipp, SippRun

pytestmark = pytest.mark.sipp

NETWORKS = {"4477001": "vodafone-uk"}


def ok(run: SippRun) -> None:
    assert run.returncode == 0, run.report()


# --------------------------------------------------------------------------- (a), (b)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_np_client_against_sipp_np_server(transport: str) -> None:
    numbers = ["447700900123", "447700900456", "33612345678", "447700900999"]
    sipp = await Sipp("np_server.xml", "-m", str(len(numbers)), transport=transport).start(
        listening=True)
    try:
        client = SipNpClient([NpTarget(HOST, sipp.port, transport, timeout=3)],
                             rn_networks=NETWORKS, local_host=HOST)
        await client.start()
        try:
            results = [await client.query(n) for n in numbers]
            await asyncio.sleep(0.2)  # let the last ACK go
        finally:
            await client.close()
        run = await sipp.wait(10)
        ok(run)
        for number, r in zip(numbers[:3], results[:3]):
            assert r.outcome is NpOutcome.PORTED, r
            assert (r.status, r.reason, r.npdi) == (302, "Moved Temporarily", True)
            assert r.routing_number == "4477001" + number[-3:]
            assert r.network == "vodafone-uk"
            assert r.contact == (f"sip:+{number};npdi;rn=+4477001{number[-3:]}@{HOST}:"
                                 f"{sipp.port};user=phone")
        assert (results[3].outcome, results[3].status, results[3].reason) == \
            (NpOutcome.NOT_FOUND, 404, "Not Found")
        invites, acks = run.received("INVITE "), run.received("ACK ")
        assert len(invites) == len(acks) == len(numbers)
        assert all(f"SIP/2.0/{transport.upper()} " in m for m in invites)
    finally:
        sipp.cleanup()


async def test_sipp_np_server_rejects_ack_on_another_branch() -> None:
    """Negative control for (a): an ACK on a different branch than the INVITE fails the
    scenario, so its branch check is real."""
    sipp = await Sipp("np_server.xml", "-m", "1").start(listening=True)
    try:
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        class Peer(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                answers.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            ruri = parse_uri(f"sip:+447700900123@{HOST}:{sipp.port};user=phone")
            inv = Request(Method.INVITE, ruri, (Via("UDP", HOST, port, (("branch",
                                                                         "z9hG4bKone"),)),),
                          Address(parse_uri("sip:x@h"), None, (("tag", "1"),)), Address(ruri),
                          "neg@h", CSeq(1, "INVITE"))
            transport.sendto(encode(inv), (HOST, sipp.port))
            resp = decode(await asyncio.wait_for(answers.get(), 5))
            assert resp.status == 302
            ack = Request(Method.ACK, ruri, (Via("UDP", HOST, port, (("branch",
                                                                      "z9hG4bKtwo"),)),),
                          inv.from_, resp.to, inv.call_id, CSeq(1, "ACK"))
            transport.sendto(encode(ack), (HOST, sipp.port))
            run = await sipp.wait(10)
        finally:
            transport.close()
        assert run.returncode == 1, run.report()
    finally:
        sipp.cleanup()


async def test_timer_a_retransmission_against_sipp_dropping_first_invite() -> None:
    t1 = 0.2
    sipp = await Sipp("np_server_drop_first.xml", "-m", "1", "-nr").start(listening=True)
    try:
        client = SipNpClient([NpTarget(HOST, sipp.port, "udp", timeout=5)],
                             rn_networks=NETWORKS, local_host=HOST, timers=Timers(t1=t1))
        await client.start()
        try:
            r = await client.query("447700900123")
            await asyncio.sleep(0.2)
        finally:
            await client.close()
        run = await sipp.wait(10)
        ok(run)
        assert (r.outcome, r.routing_number) == (NpOutcome.PORTED, "4477001123")
        assert r.elapsed >= t1  # answered only after Timer A fired
        assert client.stats.retransmissions >= 1
        invites, acks = run.received("INVITE "), run.received("ACK ")
        assert len(invites) >= 2 and len(acks) == 1
        branches = {line for m in invites + acks for line in m.splitlines()
                    if line.startswith("Via:")}
        assert len(branches) == 1, branches  # one transaction: the same Via, same branch
    finally:
        sipp.cleanup()


# --------------------------------------------------------------------------- (c), (d)


class Lookups:
    """The gateway's MNP lookup stand-in; numbers in ``hold`` wait for ``release``."""

    DB = {"447700900123": RedirectDecision.ported("447700123"),
          "447700900124": RedirectDecision.not_ported(),
          "33612345678": RedirectDecision.ported("+33 6 99"),
          "447700900604": RedirectDecision.nowhere(),
          "447700900503": RedirectDecision.unavailable(20)}

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.hold: set[str] = set()
        self.release = asyncio.Event()

    async def __call__(self, number: str, client: RedirectClient) -> RedirectDecision:
        self.calls.append(number)
        if number in self.hold:
            await self.release.wait()
        return self.DB.get(number, RedirectDecision.not_found())


async def redirect_server(lookups: Lookups, **kw) -> SipRedirectServer:
    server = SipRedirectServer(lookups, RedirectConfig(
        allow=["127.0.0.0/8"], host=HOST, udp_port=0, tcp_port=0, **kw))
    await server.start()
    return server


SOFTSWITCH_CALLS = """SEQUENTIAL
447700900123;302;447700123
447700900124;302;
33612345678;302;33699
447700900999;404;
447700900604;604;
447700900503;503;
"""


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_softswitch_against_redirect_server(transport: str) -> None:
    lookups = Lookups()
    server = await redirect_server(lookups)
    port = server.udp_port if transport == "udp" else server.tcp_port
    calls = SOFTSWITCH_CALLS.strip().splitlines()[1:]
    sipp = Sipp("softswitch.xml", "-m", str(len(calls)), "-r", "20", "-timeout", "20s",
                transport=transport, remote=(HOST, port), inf=SOFTSWITCH_CALLS)
    try:
        await sipp.start()
        run = await sipp.wait(25)
        ok(run)
        assert "Successful call" in run.stdout
        assert sorted(lookups.calls) == sorted(c.split(";")[0] for c in calls)
        assert server.stats.responses == {302: 3, 404: 1, 604: 1, 503: 1}
        assert len(run.sent("ACK ")) == len(calls)
    finally:
        sipp.cleanup()
        await server.close()


async def test_sipp_softswitch_overload_gets_503_retry_after() -> None:
    """With max_in_flight lookups running, the next INVITE is answered 503 with
    Retry-After at once; the held call completes afterwards."""
    lookups = Lookups()
    lookups.hold.add("447700900123")
    server = await redirect_server(lookups, max_in_flight=1, retry_after=3)
    sipp = Sipp("softswitch.xml", "-m", "2", "-r", "10", "-timeout", "20s",
                remote=(HOST, server.udp_port),
                inf="SEQUENTIAL\n447700900123;302;447700123\n447700900124;503;\n")
    try:
        await sipp.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while server.stats.overloaded == 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        lookups.release.set()
        run = await sipp.wait(25)
        ok(run)
        assert server.stats.overloaded == 1
        assert lookups.calls == ["447700900123"]  # the refused one never reached it
        (answer,) = [m for m in run.received("SIP/2.0 503")]
        assert "Retry-After: 3" in answer
    finally:
        sipp.cleanup()
        await server.close()


async def test_sipp_softswitch_catches_a_wrong_contact() -> None:
    """Negative control for (c): when the expected rn differs from what the server says,
    the scenario's Contact check fails the call and sipp exits 1."""
    server = await redirect_server(Lookups())
    sipp = Sipp("softswitch.xml", "-m", "1", "-timeout", "20s", remote=(HOST, server.udp_port),
                inf="SEQUENTIAL\n447700900123;302;447700999\n")
    try:
        await sipp.start()
        run = await sipp.wait(25)
        assert run.returncode == 1, run.report()
        assert "Failed call" in run.stdout
    finally:
        sipp.cleanup()
        await server.close()


async def test_sipp_retransmitted_invite_answered_once() -> None:
    lookups = Lookups()
    server = await redirect_server(lookups)
    sipp = Sipp("softswitch_retransmit.xml", "-m", "1", "-nr", "-timeout", "20s",
                remote=(HOST, server.udp_port), inf="SEQUENTIAL\n447700900123\n")
    try:
        await sipp.start()
        run = await sipp.wait(25)
        ok(run)
        assert lookups.calls == ["447700900123"]
        assert server.stats.retransmissions == 1
        assert server.stats.responses == {302: 1}  # answered once, resent once
        first, second = run.received("SIP/2.0 302")
        assert first == second
        assert len(run.sent("INVITE ")) == 2
    finally:
        sipp.cleanup()
        await server.close()
