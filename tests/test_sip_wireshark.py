"""What we send over SIP dissects cleanly in Wireshark's SIP dissector (tshark).

The messages are the bytes our own SipNpClient and SipRedirectServer put on the wire in a
real loopback exchange (every send is recorded), over UDP and over TCP: INVITEs, ACKs, 100
Trying, 302 with rn/npdi (sip: and tel: Contacts), 404, 604, 484, 503 with Retry-After, 403.
They are wrapped in UDP or TCP port 5060 with text2pcap and dissected; tshark must mark none
malformed nor raise an expert error, and must read back the method, status code, Request-URI,
Contact URI and Via branch we wrote.

Without tshark/text2pcap the test skips with the reason, unless HLRGW_REQUIRE_TSHARK=1.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from gateway.sip import transport as sip_transport
from gateway.sip.np_client import NpOutcome, NpTarget, SipNpClient
from gateway.sip.redirect import (
    RedirectClient,
    RedirectConfig,
    RedirectDecision,
    SipRedirectServer,
)
from protocols.sip.message import Request, decode, encode
from protocols.sip.transaction import Timers

pytestmark = pytest.mark.wireshark

HOST = "127.0.0.1"
FIELDS = ["sip.Method", "sip.Status-Code", "sip.r-uri", "sip.contact.uri", "sip.Via.branch",
          "sip.Retry-After", "sip.CSeq.method"]
DB = {"447700900123": RedirectDecision.ported("447700123"),
      "447700900124": RedirectDecision.not_ported(),
      "447700900604": RedirectDecision.nowhere(),
      "447700900484": RedirectDecision.invalid(),
      "447700900503": RedirectDecision.unavailable(15)}


def _require() -> None:
    missing = [p for p in ("tshark", "text2pcap") if shutil.which(p) is None]
    if missing:
        reason = (f"SIP Wireshark check needs {', '.join(missing)} "
                  "(Debian: apt-get install -y tshark)")
        if os.environ.get("HLRGW_REQUIRE_TSHARK") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def dissect(messages: list[bytes], transport: str) -> list[dict[str, str]]:
    """One dict of FIELDS per message; fails on any malformed mark or expert error."""
    _require()
    with tempfile.TemporaryDirectory() as tmp:
        dump, pcap = Path(tmp) / "dump", Path(tmp) / "sip.pcap"
        dump.write_text("".join("0000 " + " ".join(f"{b:02x}" for b in m) + "\n"
                                for m in messages))
        flag = "-u" if transport == "udp" else "-T"
        subprocess.run(["text2pcap", "-q", flag, "5060,5060", str(dump), str(pcap)],
                       check=True, capture_output=True, timeout=60)
        args = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=/t",
                "-E", "occurrence=f"] + [a for f in FIELDS for a in ("-e", f)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        bad = subprocess.run(["tshark", "-r", str(pcap), "-Y",
                              '_ws.malformed || _ws.expert.severity >= "error"',
                              "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"],
                             capture_output=True, text=True, timeout=60)
        assert bad.stdout.strip() == "", f"tshark flags frames: {bad.stdout}"
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert len(rows) == len(messages)
    return [dict(zip(FIELDS, row)) for row in rows]


@pytest.fixture
def recorded(monkeypatch) -> list[bytes]:
    """Every SIP message our UDP endpoints and TCP connections send."""
    sent: list[bytes] = []
    udp_sendto = sip_transport.UdpEndpoint.sendto
    tcp_send = sip_transport.TcpConnection.send

    def record_udp(self, data, addr):
        sent.append(data)
        udp_sendto(self, data, addr)

    def record_tcp(self, data):
        sent.append(data)
        tcp_send(self, data)

    monkeypatch.setattr(sip_transport.UdpEndpoint, "sendto", record_udp)
    monkeypatch.setattr(sip_transport.TcpConnection, "send", record_tcp)
    return sent


async def lookup(number: str, client: RedirectClient) -> RedirectDecision:
    if number == "447700900100":
        await asyncio.sleep(0.1)  # slow enough for the 100 Trying
    return DB.get(number, RedirectDecision.not_found())


async def exchange(transport: str) -> None:
    """Our client asks our server about a set of numbers (both sides record their sends)."""
    server = SipRedirectServer(lookup, RedirectConfig(
        allow=["127.0.0.0/8"], host=HOST, udp_port=0, tcp_port=0, timers=Timers(trying=0.02)))
    await server.start()
    port = server.udp_port if transport == "udp" else server.tcp_port
    client = SipNpClient([NpTarget(HOST, port, transport, timeout=2),
                          NpTarget(HOST, port, transport, timeout=2, uri_scheme="tel")],
                         local_host=HOST)
    await client.start()
    try:
        for number in ["447700900123", "447700900124", "447700900999", "447700900604",
                       "447700900484", "447700900100"]:
            r = await client.query(number)
            assert r.outcome is not NpOutcome.TIMEOUT
        client.targets.reverse()  # now the tel: Request-URI, answered with a tel: Contact
        assert (await client.query("447700900123")).outcome is NpOutcome.PORTED
        assert (await client.query("447700900503")).status == 503
        await asyncio.sleep(0.1)
    finally:
        await client.close()
        await server.close()
    refused = SipRedirectServer(lookup, RedirectConfig(allow=["10.0.0.0/8"], host=HOST,
                                                       udp_port=0, tcp_port=0))
    await refused.start()
    port = refused.udp_port if transport == "udp" else refused.tcp_port
    client = SipNpClient([NpTarget(HOST, port, transport, timeout=2)], local_host=HOST)
    await client.start()
    try:
        assert (await client.query("447700900123")).status == 403
        await asyncio.sleep(0.05)
    finally:
        await client.close()
        await refused.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_what_we_send_dissects_cleanly(recorded: list[bytes], transport: str) -> None:
    _require()
    await exchange(transport)
    messages = list(recorded)
    # one more: the compact-form writer
    messages.append(encode(decode(messages[0]), compact=True))
    rows = dissect(messages, transport)
    seen_status, seen_methods = set(), set()
    for wire, row in zip(messages, rows):
        msg = decode(wire)
        assert row["sip.Via.branch"] == msg.via[0].branch
        assert row["sip.CSeq.method"] == msg.cseq.method
        if isinstance(msg, Request):
            seen_methods.add(msg.method)
            assert row["sip.Method"] == msg.method
            assert row["sip.r-uri"] == str(msg.uri)
        else:
            seen_status.add(msg.status)
            assert row["sip.Status-Code"] == str(msg.status)
            if msg.contact:
                assert row["sip.contact.uri"] == str(msg.contact[0].uri)
            if msg.status == 503:
                assert row["sip.Retry-After"] == "15"
    assert seen_methods == {"INVITE", "ACK"}
    assert {100, 302, 404, 604, 484, 503, 403} <= seen_status
    contacts = {r["sip.contact.uri"] for r in rows}
    port = decode(messages[0]).uri.port
    assert f"sip:+447700900123;npdi;rn=+447700123@127.0.0.1:{port};user=phone" in contacts
    assert "tel:+447700900123;npdi;rn=+447700123" in contacts
