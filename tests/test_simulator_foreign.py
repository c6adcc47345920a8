"""A client that is not ours against the simulator: M3UA over a plain TCP socket built with
``struct`` (RFC 4666 headers and parameters by hand), SCCP UDT by hand (Q.713), TCAP/MAP
encoded and decoded by pycrate. It brings the ASP up, runs SRI-SM dialogues, takes the ASP
down, and every message on the wire, both ways, dissects cleanly in tshark.

Nothing here uses the project's codecs to build or read a message.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from pycrate_asn1dir import TCAP_MAPv2v3

from tests import wireshark

PDU = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
SHORT_MSG_GATEWAY_V3 = (0, 4, 0, 0, 1, 0, 20, 3)
DIALOGUE_AS = (0, 0, 17, 773, 1, 1, 1)
GATEWAY_GT, GATEWAY_PC = "447700900000", 77

# M3UA (RFC 4666 §3.1.2): message class and type
ASPSM, ASPTM, MGMT, TRANSFER = 3, 4, 0, 1
ASPUP, ASPDN, ASPUP_ACK, ASPDN_ACK = 1, 2, 4, 5
ASPAC, ASPAC_ACK = 1, 3
NTFY, DATA = 1, 1
TAG_ROUTING_CONTEXT, TAG_TRAFFIC_MODE, TAG_PROTOCOL_DATA = 0x0006, 0x000B, 0x0210


# --------------------------------------------------------------------------- by hand


def tbcd(digits: str) -> bytes:
    """TBCD digits, low nibble first, 0xF filler (TS 29.002 §17.7.8)."""
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16)
                 for i in range(0, len(digits), 2))


def untbcd(data: bytes) -> str:
    out = "".join(f"{b & 0xF:x}{b >> 4:x}" for b in data)
    return out.rstrip("f")


def address_string(digits: str) -> bytes:
    return b"\x91" + tbcd(digits)  # international, E.164


def m3ua(cls: int, typ: int, params: list[tuple[int, bytes]] = ()) -> bytes:
    body = b""
    for tag, value in params:
        body += struct.pack("!HH", tag, 4 + len(value)) + value + b"\0" * (-len(value) % 4)
    return struct.pack("!BBBBI", 1, 0, cls, typ, 8 + len(body)) + body


def m3ua_params(msg: bytes) -> dict[int, bytes]:
    out, pos = {}, 8
    while pos < len(msg):
        tag, length = struct.unpack_from("!HH", msg, pos)
        out[tag] = msg[pos + 4:pos + length]
        pos += length + (-length % 4)
    return out


def sccp_gt_address(digits: str, ssn: int) -> bytes:
    """Route on GT, GT indicator 4, SSN present; TT 0, E.164 + BCD odd/even, international."""
    scheme = 1 if len(digits) % 2 else 2
    body = bytes((0x12, ssn, 0x00, 0x10 | scheme, 0x04)) + tbcd(digits)
    return bytes((len(body),)) + body


def sccp_udt(called: bytes, calling: bytes, data: bytes) -> bytes:
    """UDT (Q.713 §4.10), class 0 with return on error; the three pointers by hand."""
    p1 = 3
    p2 = p1 + len(called) - 1
    p3 = p2 + len(calling) - 1
    return bytes((0x09, 0x80, p1, p2, p3)) + called + calling + bytes((len(data),)) + data


def sccp_udt_parts(udt: bytes) -> tuple[bytes, bytes, bytes]:
    assert udt[0] == 0x09, f"not a UDT: {udt[:1].hex()}"

    def at(pointer_offset: int) -> bytes:
        start = pointer_offset + udt[pointer_offset]
        return udt[start + 1:start + 1 + udt[start]]

    return at(2), at(3), at(4)


def srism_begin(otid: bytes, msisdn: str, invoke_id: int = 1) -> bytes:
    PDU.set_val(("begin", {
        "otid": otid,
        "dialoguePortion": {
            "direct-reference": DIALOGUE_AS,
            "encoding": ("single-ASN1-type", ("DialoguePDU", ("dialogueRequest", {
                "protocol-version": (1, 1),
                "application-context-name": SHORT_MSG_GATEWAY_V3})))},
        "components": [("basicROS", ("invoke", {
            "invokeId": ("present", invoke_id), "opcode": ("local", 45),
            "argument": (("MAP-SM-DataTypes", "RoutingInfoForSM-Arg"), {
                "msisdn": address_string(msisdn), "sm-RP-PRI": True,
                "serviceCentreAddress": address_string(GATEWAY_GT)})}))]}))
    return PDU.to_ber()


class RawAsp:
    """An M3UA ASP on a blocking socket, run in a thread (the simulator owns the loop)."""

    def __init__(self, port: int, rc: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.rc = rc
        self.buf = b""
        self.wire: list[bytes] = []  # every message both ways, for tshark

    def send(self, msg: bytes) -> None:
        self.wire.append(msg)
        self.sock.sendall(msg)

    def recv(self) -> bytes:
        while True:
            if len(self.buf) >= 8:
                (length,) = struct.unpack_from("!I", self.buf, 4)
                if len(self.buf) >= length:
                    msg, self.buf = self.buf[:length], self.buf[length:]
                    self.wire.append(msg)
                    return msg
            chunk = self.sock.recv(65536)
            assert chunk, "the simulator closed the connection"
            self.buf += chunk

    def expect(self, cls: int, typ: int) -> bytes:
        """The next message of this class and type, skipping NTFYs (RFC 4666 §4.3.4.5)."""
        while True:
            msg = self.recv()
            if msg[2:4] == bytes((cls, typ)):
                return msg
            assert msg[2:4] == bytes((MGMT, NTFY)), f"unexpected M3UA {msg.hex()}"

    def data(self, dpc: int, sccp: bytes, sls: int = 0) -> None:
        pd = struct.pack("!IIBBBB", GATEWAY_PC, dpc, 3, 2, 0, sls) + sccp
        self.send(m3ua(TRANSFER, DATA, [(TAG_ROUTING_CONTEXT, struct.pack("!I", self.rc)),
                                        (TAG_PROTOCOL_DATA, pd)]))

    def close(self) -> None:
        self.sock.close()


def run_dialogues(port: int, rc: int, dpc: int, numbers: list[str]) -> tuple[list, RawAsp]:
    """ASP Up, ASP Active, one SRI-SM Begin per number, ASP Down; the decoded Ends."""
    asp = RawAsp(port, rc)
    try:
        asp.send(m3ua(ASPSM, ASPUP))
        asp.expect(ASPSM, ASPUP_ACK)
        asp.send(m3ua(ASPTM, ASPAC, [(TAG_TRAFFIC_MODE, struct.pack("!I", 2)),
                                     (TAG_ROUTING_CONTEXT, struct.pack("!I", rc))]))
        ack = asp.expect(ASPTM, ASPAC_ACK)
        assert m3ua_params(ack)[TAG_ROUTING_CONTEXT] == struct.pack("!I", rc)
        answers = []
        for i, number in enumerate(numbers):
            otid = struct.pack("!I", 0x0A0B0C00 + i)
            called = sccp_gt_address(number, 6)
            calling = sccp_gt_address(GATEWAY_GT, 8)
            asp.data(dpc, sccp_udt(called, calling, srism_begin(otid, number)), sls=i)
            msg = asp.expect(TRANSFER, DATA)
            params = m3ua_params(msg)
            assert params[TAG_ROUTING_CONTEXT] == struct.pack("!I", rc)
            opc, rdpc, si, ni, _mp, sls = struct.unpack_from("!IIBBBB", params[TAG_PROTOCOL_DATA])
            assert (opc, rdpc, si, ni, sls) == (dpc, GATEWAY_PC, 3, 2, i)
            r_called, r_calling, tcap = sccp_udt_parts(params[TAG_PROTOCOL_DATA][12:])
            assert r_called == calling[1:]  # answered back to us
            PDU.from_ber(tcap)
            answers.append((otid, PDU.get_val()))
        asp.send(m3ua(ASPSM, ASPDN))
        asp.expect(ASPSM, ASPDN_ACK)
        return answers, asp
    finally:
        asp.close()


# --------------------------------------------------------------------------- tests


async def test_plain_socket_m3ua_and_pycrate_srism_dialogue(simulator) -> None:
    ep = simulator.endpoint("uk-vodafone")
    numbers = ["447555100001", "447555100007", "447555100002"]
    answers, asp = await asyncio.to_thread(run_dialogues, ep.port, ep.routing_context,
                                           ep.point_code, numbers)
    # connected: IMSI and MSC, in an End for our transaction, dialogue accepted (AARE)
    otid, (kind, end) = answers[0]
    assert kind == "end" and end["dtid"] == otid
    aare = end["dialoguePortion"]["encoding"][1][1]
    assert aare[0] == "dialogueResponse" and aare[1]["result"] == 0
    assert aare[1]["application-context-name"] == SHORT_MSG_GATEWAY_V3
    comp = end["components"][0][1]
    assert comp[0] == "returnResult"
    ref, res = comp[1]["result"]["result"]
    assert ref == ("MAP-SM-DataTypes", "RoutingInfoForSM-Res")
    assert untbcd(res["imsi"]) == "234150555100001"
    nnn = res["locationInfoWithLMSI"]["networkNode-Number"]
    assert nnn[0] == 0x91 and untbcd(nnn[1:]) == "447785010101"
    # ported to EE: EE's IMSI and MSC
    res = answers[1][1][1]["components"][0][1][1]["result"]["result"][1]
    assert untbcd(res["imsi"]) == "234301640692592"
    assert untbcd(res["locationInfoWithLMSI"]["networkNode-Number"][1:]) == "447958010202"
    # absent: returnError absentSubscriberSM (6) with the imsiDetached diagnostic
    err = answers[2][1][1]["components"][0][1]
    assert err[0] == "returnError" and err[1]["errcode"] == ("local", 6)
    assert err[1]["parameter"][1]["absentSubscriberDiagnosticSM"] == 1

    # every message of the exchange, both ways, dissects cleanly in Wireshark
    rows = wireshark.decode(asp.wire, fields=["m3ua.message_class", "gsm_old.localValue",
                                              "e212.imsi", "e164.msisdn"]).splitlines()
    assert len(rows) == len(asp.wire)
    imsis = [r.split("\t")[2] for r in rows if len(r.split("\t")) > 2 and r.split("\t")[2]]
    assert imsis == ["234150555100001", "234301640692592"]
    text = wireshark.decode(asp.wire)
    assert "Malformed" not in text
    assert "447785010101" in text and "absentSubscriberSM" in text


def test_sccp_helpers_match_the_spec_layout() -> None:
    # a UDT from the shared conformance vectors' layout: pointers 03 0e 19 for 11-octet GTs
    called, calling = sccp_gt_address("447555100001", 6), sccp_gt_address(GATEWAY_GT, 8)
    udt = sccp_udt(called, calling, b"\x62\x00")
    assert udt[:5] == bytes.fromhex("0980030e19")
    assert sccp_udt_parts(udt) == (called[1:], calling[1:], b"\x62\x00")
    assert tbcd("12345") == bytes.fromhex("2143f5") and untbcd(bytes.fromhex("2143f5")) == "12345"


async def test_plain_socket_client_sees_the_context_refused(simulator) -> None:
    """O2's HLR serves SRI-SM v2: a v3 Begin gets an Abort whose AARE proposes v2."""
    ep = simulator.endpoint("uk-o2")

    def refused() -> tuple:
        asp = RawAsp(ep.port, ep.routing_context)
        try:
            asp.send(m3ua(ASPSM, ASPUP))
            asp.expect(ASPSM, ASPUP_ACK)
            asp.send(m3ua(ASPTM, ASPAC, [(TAG_ROUTING_CONTEXT,
                                          struct.pack("!I", ep.routing_context))]))
            asp.expect(ASPTM, ASPAC_ACK)
            begin = srism_begin(b"\x00\x00\x00\x2a", "447511300001")
            asp.data(ep.point_code, sccp_udt(sccp_gt_address("447511300001", 6),
                                             sccp_gt_address(GATEWAY_GT, 8), begin))
            msg = asp.expect(TRANSFER, DATA)
            PDU.from_ber(sccp_udt_parts(m3ua_params(msg)[TAG_PROTOCOL_DATA][12:])[2])
            return PDU.get_val(), asp.wire
        finally:
            asp.close()

    (kind, abort), wire = await asyncio.to_thread(refused)
    assert kind == "abort" and abort["dtid"] == b"\x00\x00\x00\x2a"
    reason = abort["reason"]
    assert reason[0] == "u-abortCause"
    aare = reason[1]["encoding"][1][1]
    assert aare[0] == "dialogueResponse"
    assert aare[1]["result"] == 1  # reject-permanent
    assert aare[1]["result-source-diagnostic"] == ("dialogue-service-user", 2)  # AC not supported
    assert aare[1]["application-context-name"] == (0, 4, 0, 0, 1, 0, 20, 2)
    assert "Malformed" not in wireshark.decode(wire)


@pytest.mark.parametrize("rc", [999])
async def test_plain_socket_wrong_routing_context_gets_err(simulator, rc: int) -> None:
    ep = simulator.endpoint("uk-vodafone")

    def attempt() -> bytes:
        asp = RawAsp(ep.port, rc)
        try:
            asp.send(m3ua(ASPSM, ASPUP))
            asp.expect(ASPSM, ASPUP_ACK)
            asp.send(m3ua(ASPTM, ASPAC, [(TAG_ROUTING_CONTEXT, struct.pack("!I", rc))]))
            return asp.expect(MGMT, 0)  # ERR
        finally:
            asp.close()

    err = await asyncio.to_thread(attempt)
    assert m3ua_params(err)[0x000C] == struct.pack("!I", 0x19)  # Invalid Routing Context
