"""The asyncio MAP client against an in-process HLR (MapResponder) over real loopback TCP.

Each test brings up a client association, a link set and a MapClient toward an
AssociationServer whose payloads a MapResponder answers with the test's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.sigtran.association import Association, AssociationConfig, AssociationServer
from gateway.sigtran.linkset import LinkSet
from gateway.sigtran.map_client import (
    FailureKind,
    MapClient,
    MapFailure,
    MapResult,
    MapRoute,
    MapUserError,
)
from gateway.sigtran.map_responder import (
    DEFAULT_MAX_VERSIONS,
    Invocation,
    MapResponder,
    NoReply,
    ProviderAbort,
    RawReply,
    Reply,
    ReplyError,
    UserAbort,
)
from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.m3ua_asp import AspConfig
from protocols.tbcd import Imsi, isdn
from tests import wireshark

IMSI, MSC, GW = "234150999999999", "447700990001", "447700900000"
RC = 100


def hlr(inv: Invocation):
    """A small HLR: numbers ending 0 are absent, 1 unknown, 2 barred; others connected."""
    number = inv.argument.msisdn.digits if hasattr(inv.argument, "msisdn") else \
        inv.argument.subscriber_identity.digits
    last = number[-1]
    if last == "0":
        if inv.opcode == map_.Opcode.ANY_TIME_INTERROGATION:
            return Reply(map_.AnyTimeInterrogationRes(map_.SubscriberInfo(
                subscriber_state=map_.SubscriberState.NET_DET_NOT_REACHABLE,
                not_reachable_reason=map_.NotReachableReason.IMSI_DETACHED)))
        return ReplyError(map_.ErrorCode.ABSENT_SUBSCRIBER_SM, map_.AbsentSubscriberSmParam(
            absent_subscriber_diagnostic_sm=map_.AbsentSubscriberDiagnosticSM.IMSI_DETACHED))
    if last == "1":
        return ReplyError(map_.ErrorCode.UNKNOWN_SUBSCRIBER, map_.UnknownSubscriberParam(
            unknown_subscriber_diagnostic=map_.UnknownSubscriberDiagnostic.IMSI_UNKNOWN))
    if last == "2":
        return ReplyError(map_.ErrorCode.CALL_BARRED, map_.CallBarredParam(
            call_barring_cause=map_.CallBarringCause.BARRING_SERVICE_ACTIVE))
    if inv.opcode == map_.Opcode.SEND_ROUTING_INFO_FOR_SM:
        return Reply(map_.RoutingInfoForSmRes(Imsi(IMSI), map_.LocationInfoWithLmsi(
            network_node_number=isdn(MSC))))
    if inv.opcode == map_.Opcode.ANY_TIME_INTERROGATION:
        return Reply(map_.AnyTimeInterrogationRes(map_.SubscriberInfo(
            location_information=map_.LocationInformation(vlr_number=isdn(MSC)),
            subscriber_state=map_.SubscriberState.ASSUMED_IDLE)))
    return Reply(map_.SendRoutingInfoRes(imsi=Imsi(IMSI), roaming_number=isdn("447700990099")))


@dataclass
class Net:
    server: AssociationServer
    responder: MapResponder
    assoc: Association
    linkset: LinkSet
    client: MapClient
    route: MapRoute


@contextlib.asynccontextmanager
async def network(handler: Callable = hlr, *, max_versions=None, timer_m: float = 5.0,
                  max_dialogues: int = 65536, on_payload=None) -> AsyncIterator[Net]:
    responder = MapResponder(handler, max_versions=max_versions)
    server = AssociationServer(asp_config=AspConfig(routing_context=RC),
                               on_payload=on_payload or responder.on_payload)
    await server.start()
    assoc = Association(AssociationConfig(
        host="127.0.0.1", port=server.port, asp=AspConfig(routing_context=RC),
        reconnect_initial=0.02, reconnect_max=0.1, name="to-hlr"))
    linkset = LinkSet("uk-hlr", [assoc])
    client = MapClient(smsc_address=GW, timer_m=timer_m, max_dialogues=max_dialogues)
    client.attach(linkset)
    linkset.start()
    assert await linkset.wait_up(timeout=5)
    route = MapRoute("uk", linkset, opc=1, dpc=2, calling_gt=GW)
    try:
        yield Net(server, responder, assoc, linkset, client, route)
    finally:
        await linkset.close()
        await server.close()


async def test_results_and_errors_are_typed() -> None:
    async with network() as net:
        ok = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(ok, MapResult) and ok.version == 3
        assert ok.value.imsi == Imsi(IMSI)
        assert ok.value.location_info_with_lmsi.network_node_number.digits == MSC
        absent = await net.client.sri_sm("447700900120", net.route)
        assert isinstance(absent, MapUserError)
        assert (absent.code, absent.name, absent.diagnostic) == (6, "absent_subscriber_sm",
                                                                 "imsi_detached")
        unknown = await net.client.sri_sm("447700900121", net.route)
        assert (unknown.name, unknown.diagnostic) == ("unknown_subscriber", "imsi_unknown")
        barred = await net.client.sri_sm("447700900122", net.route)
        assert (barred.name, barred.diagnostic) == ("call_barred", "barring_service_active")
        ati = await net.client.ati("447700900123", net.route)
        assert ati.value.subscriber_info.subscriber_state is map_.SubscriberState.ASSUMED_IDLE
        ati_absent = await net.client.ati("447700900120", net.route)
        assert ati_absent.value.subscriber_info.not_reachable_reason == 1
        sri = await net.client.sri("447700900123", net.route)
        assert sri.value.roaming_number.digits == "447700990099"
        assert net.client.open_dialogues == 0
        assert net.responder.stats.answered == 4 and net.responder.stats.errors == 3


async def test_context_fallback_v3_to_v2_is_remembered() -> None:
    async with network(max_versions={**DEFAULT_MAX_VERSIONS, 45: 2}) as net:
        first = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(first, MapResult) and first.version == 2
        assert net.client.stats.fallbacks == 1 and net.responder.stats.refused == 1
        assert net.client.version_for(net.route, 45) == 2
        second = await net.client.sri_sm("447700900124", net.route)
        assert second.version == 2
        assert net.responder.stats.refused == 1  # no second refusal: v2 was remembered
        ati = await net.client.ati("447700900123", net.route)
        assert ati.version == 3  # per operation


async def test_context_fallback_to_v1_sends_no_dialogue_portion() -> None:
    async with network(max_versions={**DEFAULT_MAX_VERSIONS, 45: 1}) as net:
        # v3 refused proposing v1: one retry, straight to v1 (no AARQ at all)
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapResult) and out.version == 1


@pytest.mark.parametrize(("answer", "kind", "cause"), [
    (NoReply(), FailureKind.TIMEOUT, None),
    (UserAbort(), FailureKind.ABORT, None),
    (ProviderAbort(tcap.PAbortCause.RESOURCE_LIMITATION), FailureKind.PROVIDER_ABORT, 4),
    (RawReply(b"\x64\x03\x49\x01"), FailureKind.TIMEOUT, None),  # undecodable: dropped
])
async def test_failures_are_typed(answer, kind: FailureKind, cause) -> None:
    async with network(lambda inv: answer, timer_m=0.3) as net:
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapFailure)
        assert (out.kind, out.cause) == (kind, cause)
        assert net.client.open_dialogues == 0


async def test_malformed_answer_for_our_dialogue_is_a_protocol_error() -> None:
    def broken(inv: Invocation):
        # an End for our dialogue whose component is cut short
        return RawReply(bytes.fromhex("640d4904000000016c05a203020101"))
    async with network(broken, timer_m=2.0) as net:
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.PROTOCOL


async def test_result_that_does_not_decode_is_a_protocol_error() -> None:
    """The End with one ReturnResultLast takes the client's hot path; a result it cannot
    decode is still a protocol error, not a result."""
    def broken(inv: Invocation):
        return RawReply(tcap.encode(tcap.End(b"\x00\x00\x00\x01", None, [
            tcap.ReturnResultLast(1, 45, bytes.fromhex("30020400"))])))  # an empty IMSI
    async with network(broken, timer_m=2.0) as net:
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.PROTOCOL
        assert "did not decode" in out.detail and net.client.open_dialogues == 0


async def test_answer_with_a_malformed_sccp_address_is_dropped() -> None:
    """The client's hot path reads the End without building the SCCP addresses, but still
    checks them: an answer whose calling GT has a filler inside its digits does not decode,
    is dropped, and the dialogue runs into timer m."""
    def bad_calling_gt(assoc, data: m3ua.Data) -> None:
        pd = data.protocol_data
        udt = sccp.decode(pd.data)
        otid = tcap.decode(udt.data).otid
        end = tcap.encode(tcap.End(otid, None, [tcap.ReturnResultLast(1, 45, hlr_result())]))
        called = udt.calling._lv
        calling = bytearray(udt.called._lv)
        calling[7] = 0xF3  # a filler nibble inside the digits
        assoc.send(m3ua.ProtocolData(pd.dpc, pd.opc, 3, pd.ni, 0, pd.sls,
                                     sccp.encode_unitdata_lv(called, bytes(calling), end)))

    async with network(on_payload=bad_calling_gt, timer_m=0.3) as net:
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.TIMEOUT
        assert net.client.stats.sccp_undecodable == 1


async def test_learned_shapes_answer_what_the_general_path_answers() -> None:
    """From the second SRI-SM on, the responder reads the Begins and the client the Ends by
    the shapes learned from the first ones; the answers are the same typed outcomes."""
    async with network() as net:
        for number in ("447700900123", "447700900124", "4477009001235", "447700900125",
                       "447700900120", "447700900126", "44770090013"):
            out = await net.client.sri_sm(number, net.route)
            if number.endswith("0"):
                assert isinstance(out, MapUserError) and out.name == "absent_subscriber_sm"
                continue
            assert isinstance(out, MapResult) and out.value == map_.RoutingInfoForSmRes(
                Imsi(IMSI), map_.LocationInfoWithLmsi(network_node_number=isdn(MSC)))
            assert out.value.location_info_with_lmsi.network_node_number is not None
        assert net.client._shapes and net.responder._shapes
        assert net.client.stats.results == 6 and net.client.open_dialogues == 0
        assert net.responder.stats.answered == 6 and net.responder.stats.begun == 7


async def test_learned_end_shape_leaves_a_bad_imsi_to_the_general_path() -> None:
    """An End of the learned shape whose IMSI does not decode is still a protocol error."""
    calls = []

    def hlr_then_bad_imsi(inv: Invocation):
        calls.append(inv)
        if len(calls) < 3:
            return hlr(inv)
        res = bytearray(hlr_result())
        res[6] = 0xFF  # a filler inside the IMSI digits, the length unchanged
        return RawReply(tcap.encode_end_result(len(calls).to_bytes(4, "big"),
                                               tcap.DialogueResponse(map_.context_for(45, 3)),
                                               1, 45, bytes(res)))

    async with network(hlr_then_bad_imsi, timer_m=2.0) as net:
        for _ in range(2):
            assert isinstance(await net.client.sri_sm("447700900123", net.route), MapResult)
        assert net.client._shapes
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.PROTOCOL
        assert "did not decode" in out.detail and net.client.open_dialogues == 0


def hlr_result() -> bytes:
    return map_.RoutingInfoForSmRes(Imsi("234150999999999"), map_.LocationInfoWithLmsi(
        isdn("447700990001"))).encode()


async def test_unknown_operation_is_rejected() -> None:
    async with network(max_versions={45: 3}) as net:  # this HLR serves no ATI
        out = await net.client.ati("447700900123", net.route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.REJECT
        assert out.cause == tcap.InvokeProblem.UNRECOGNIZED_OPERATION


async def test_sccp_return_names_the_cause() -> None:
    def sccp_returns(assoc, data: m3ua.Data) -> None:
        pd = data.protocol_data
        udt = sccp.decode(pd.data)
        udts = sccp.UnitdataService(udt.calling, udt.called, udt.data,
                                    sccp.ReturnCause.NO_TRANSLATION_FOR_SPECIFIC_ADDRESS)
        assoc.send(m3ua.ProtocolData(pd.dpc, pd.opc, 3, pd.ni, 0, pd.sls, sccp.encode(udts)))

    async with network(on_payload=sccp_returns) as net:
        out = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.SCCP_RETURN
        assert out.cause == 1 and "NO_TRANSLATION" in out.detail
        assert net.client.open_dialogues == 0


async def test_link_down_fails_at_once() -> None:
    async with network() as net:
        await net.linkset.close()
        out = await asyncio.wait_for(net.client.sri_sm("447700900123", net.route), 1)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.LINK_DOWN


async def test_bound_on_open_dialogues() -> None:
    release = asyncio.Event()

    async def slow(inv: Invocation):
        await release.wait()
        return hlr(inv)

    async with network(slow, max_dialogues=10) as net:
        calls = [asyncio.ensure_future(net.client.sri_sm(f"4477009001{i:02d}", net.route))
                 for i in range(11)]
        await asyncio.sleep(0.1)
        done = [c for c in calls if c.done()]
        assert len(done) == 1 and done[0].result().kind is FailureKind.OVERLOAD
        release.set()
        results = await asyncio.gather(*calls)
        # numbers ...00 to ...09 answered: 0 absent, 1 unknown, 2 barred, 3 to 9 connected
        assert sum(isinstance(r, MapResult) for r in results[:10]) == 7
        assert sum(isinstance(r, MapUserError) for r in results[:10]) == 3
        await net.responder.drain()


async def test_association_reset_with_1000_open_dialogues() -> None:
    """All 1,000 in-flight dialogues fail fast with link_down, none hang, and the
    association comes back and serves again."""
    hold = asyncio.Event()

    async def held(inv: Invocation):
        await hold.wait()
        return NoReply()

    async with network(held, timer_m=30.0) as net:
        calls = [asyncio.ensure_future(net.client.sri_sm(f"44770{i:07d}3", net.route))
                 for i in range(1000)]
        for _ in range(200):
            if net.responder.stats.begun == 1000:
                break
            await asyncio.sleep(0.02)
        assert net.responder.stats.begun == 1000
        assert net.client.open_dialogues == 1000
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        net.assoc.reset()  # the transport drops under the dialogues
        results = await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert loop.time() - t0 < 2.0  # failed at once, not by timer m (30 s)
        assert {r.kind for r in results} == {FailureKind.LINK_DOWN}
        assert net.client.open_dialogues == 0
        hold.set()
        await net.responder.drain()
        assert await net.linkset.wait_up(timeout=5)
        net.responder.handler = hlr
        again = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(again, MapResult)


@pytest.mark.wireshark
async def test_what_the_client_sends_dissects_in_tshark(tmp_path: Path) -> None:
    """Capture the client's traffic on loopback with tshark, cut the TCP streams into M3UA
    messages by their length field, and dissect them: opcode, MSISDN and SCCP addresses."""
    if shutil.which("tshark") is None:
        wireshark.decode([])  # skips, or fails under HLRGW_REQUIRE_TSHARK=1, with the reason
    async with network() as net:
        pcap = tmp_path / "client.pcap"
        cap = subprocess.Popen(["tshark", "-i", "lo", "-f", f"tcp port {net.server.port}",
                                "-w", str(pcap), "-q"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        try:
            for _ in range(100):  # wait until the capture runs
                await asyncio.sleep(0.05)
                if pcap.exists() and pcap.stat().st_size > 0:
                    break
            await asyncio.sleep(0.3)
            assert isinstance(await net.client.sri_sm("447700900123", net.route), MapResult)
            assert isinstance(await net.client.ati("447700900456", net.route), MapResult)
            await asyncio.sleep(0.5)
        finally:
            cap.terminate()
            cap.wait(10)
    fields = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", f"tcp.dstport == {net.server.port} && tcp.len > 0",
         "-T", "fields", "-e", "tcp.payload"], capture_output=True, text=True, check=True)
    stream = bytes.fromhex("".join(fields.stdout.split()))
    messages = []
    while len(stream) >= 8:  # M3UA common header: the length at octets 4-7 (RFC 4666 §3.1)
        n = int.from_bytes(stream[4:8], "big")
        messages.append(stream[:n])
        stream = stream[n:]
    data = [m for m in messages if m[2:4] == b"\x01\x01"]  # Transfer / DATA
    assert len(data) == 2
    out = wireshark.decode(data, fields=["gsm_old.localValue", "e164.msisdn",
                                         "sccp.called.digits", "sccp.calling.digits",
                                         "sccp.called.ssn", "sccp.calling.ssn"])
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["45", f"447700900123,{GW}", "447700900123", GW, "6", "8"]
    assert rows[1] == ["71", f"447700900456,{GW}", "447700900456", GW, "6", "147"]


async def test_set_version_reaches_a_route_already_in_use() -> None:
    # the client remembers each route's version and template for SRI-SM; a version set
    # later is what the next dialogue starts with
    async with network() as net:
        first = await net.client.sri_sm("447700900123", net.route)
        assert isinstance(first, MapResult) and first.version == 3
        net.client.set_version(net.route, map_.Opcode.SEND_ROUTING_INFO_FOR_SM, 2)
        second = await net.client.sri_sm("447700900124", net.route)
        assert isinstance(second, MapResult) and second.version == 2
        third = await net.client.sri_sm("447700900125", net.route, sm_rp_pri=False)
        assert isinstance(third, MapResult) and third.version == 2
        assert net.responder.stats.refused == 0
