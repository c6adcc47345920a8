"""The SIP redirect front end end to end, as a carrier runs it: ``hlrgw simulate`` (the
example network) and ``hlrgw serve`` (config/demo.toml with ``[sip_redirect]`` on a free
port) as processes, the customer made with ``hlrgw customers add``, and **SIPp** as the
softswitch (tests/sipp/softswitch.xml) over UDP and over TCP:

- every answer's status, and every 302's exact Contact: ``npdi;rn=+RN`` for numbers ported
  in the example network (the rn of the network their HLR names, from
  ``[[routing_numbers]]``), ``npdi`` alone for numbers not ported (and for an absent one:
  no porting record), 404 for a number its HLR does not know, 604 for one in no range of
  its country's plan, 502 when the HLR aborts, 504 when it never answers;
- a softswitch outside the allow-list (SIPp sending from 127.0.0.2) gets 403 for each call;
- every lookup is in the store's audit under the customer;
- what the gateway sent (as SIPp received it) dissects cleanly in tshark's SIP dissector;
- the gateway stops cleanly on SIGTERM.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from protocols.sip.message import decode
from tests.sipp import Sipp, free_port, require_sipp
from tests.test_e2e import Gateway, add_customer, make_gateway, start_simulator, stop_stack
from tests.test_sip_wireshark import dissect

pytestmark = [pytest.mark.slow, pytest.mark.sipp]

# NUMBER;EXPECTED_STATUS;EXPECTED_RN (softswitch.xml's injection file)
CALLS = """SEQUENTIAL
447555100001;302;
447555100007;302;447700130
447534200002;302;447700110
4915110000003;302;4917002
447555100002;302;
447555100003;404;
447700900123;604;
447555800002;502;
447555800001;504;
"""
REFUSED = """SEQUENTIAL
447555100001;403;
447555100007;403;
"""


@dataclass
class Stack:
    gateway: Gateway
    sip_port: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    require_sipp()
    sim, _control, ports = start_simulator()
    sip_port = free_port()  # free for UDP and TCP alike
    gw = make_gateway(tmp_path_factory.mktemp("gw"), ports, sip_redirect_port=sip_port)
    try:
        add_customer(gw, "softswitch", "--services", "mnp", "--rate", "1000",
                     "--inflight", "200")
        gw.start()
        yield Stack(gw, sip_port)
    finally:
        stop_stack(gw, sim)


async def softswitch(stack: Stack, transport: str, calls: str, local_ip: str = "127.0.0.1"):
    n = len(calls.strip().splitlines()) - 1
    sipp = Sipp("softswitch.xml", "-m", str(n), "-r", "20", "-timeout", "40s",
                transport=transport, remote=("127.0.0.1", stack.sip_port), inf=calls,
                local_ip=local_ip)
    try:
        await sipp.start()
        run = await sipp.wait(45)
    finally:
        await sipp.stop()
    return sipp, run, n


def _wire(text: str) -> bytes:
    """A message as sipp's trace shows it, back to its bytes (CRLF line ends)."""
    head = "\r\n".join(text.splitlines())
    return (head + "\r\n\r\n").encode()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_softswitch_against_hlrgw_serve(stack: Stack, transport: str) -> None:
    sipp, run, n = await softswitch(stack, transport, CALLS)
    try:
        assert run.returncode == 0, run.report()
        assert f"{n} " in run.stdout and "Successful call" in run.stdout, run.report()
        finals = [m for m in run.received("SIP/2.0") if not m.startswith("SIP/2.0 100")]
        assert len(finals) == n, run.report()
        want = [line.split(";") for line in CALLS.strip().splitlines()[1:]]
        by_number = {}
        for text in finals:
            msg = decode(_wire(text))
            by_number[msg.to.uri.subscriber.digits] = msg
        for number, status, rn in want:
            msg = by_number[number]
            assert msg.status == int(status), (number, text)
            if msg.status == 302:
                (contact,) = msg.contact
                sub = contact.uri.subscriber
                assert (sub.digits, sub.npdi, sub.rn) == \
                    (number, True, f"+{rn}" if rn else None), str(contact.uri)
        assert len(run.sent("ACK ")) == n
        # what the gateway sent dissects cleanly (no malformed frame, no expert error)
        wires = [_wire(t) for t in run.received("SIP/2.0")]
        rows = dissect(wires, transport)
        for wire, row in zip(wires, rows):
            msg = decode(wire)
            assert row["sip.Status-Code"] == str(msg.status)
            assert row["sip.Via.branch"] == msg.via[0].branch
            if msg.contact:
                assert row["sip.contact.uri"] == str(msg.contact[0].uri)
    finally:
        sipp.cleanup()
    # audited as the customer of the source network
    db = stack.gateway.config.parent / "hlrgw.db"
    with sqlite3.connect(db) as conn:
        audited = {r[0] for r in conn.execute(
            "SELECT l.number FROM lookups l JOIN customers c ON c.id = l.customer_id "
            "WHERE c.name = 'softswitch' AND l.service = 'mnp'")}
    assert {w[0] for w in want} - {"447700900123"} <= audited


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_source_outside_the_allow_list_gets_403(stack: Stack, transport: str) -> None:
    sipp, run, n = await softswitch(stack, transport, REFUSED, local_ip="127.0.0.2")
    try:
        assert run.returncode == 0, run.report()
        finals = run.received("SIP/2.0 403 Forbidden")
        assert len(finals) == n, run.report()
        rows = dissect([_wire(t) for t in finals], transport)
        assert {r["sip.Status-Code"] for r in rows} == {"403"}
    finally:
        sipp.cleanup()
