"""Faults of the simulated HLRs, over the wire: each documented dialogue fault gives the
documented MapClient outcome; association faults (resets, refused ASP Active, heartbeat
silence) take the client's link down the way docs/simulator.md says; seeds repeat.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.sigtran.association import Association, AssociationConfig
from gateway.sigtran.linkset import LinkSet
from gateway.sigtran.map_client import FailureKind, MapClient, MapFailure, MapResult, MapRoute
from gateway.sigtran.transport import TransportKind, sctp_unavailable_reason
from protocols.m3ua_asp import AspConfig, LossReason, PeerLost
from simulators.client import SimulatorPeer, describe_outcome
from tests.test_simulator_examples import doc_table

NUMBER = "447555100001"  # connected, in uk-vodafone's range
DIALOGUE_FAULTS = doc_table("### Dialogue faults")


def fresh(route: MapRoute, tag: str) -> MapRoute:
    """The same link set under another name: no application context version remembered."""
    return MapRoute(f"{route.name}/{tag}", route.linkset, route.opc, route.dpc, route.calling_gt)


async def until(pred, timeout: float = 3.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


def test_the_fault_table_covers_every_dialogue_fault_kind() -> None:
    from simulators.faults import ASSOCIATION_FAULTS, FaultKind

    assert {row[0] for row in DIALOGUE_FAULTS} == set(FaultKind) - ASSOCIATION_FAULTS
    association = {row[0] for row in doc_table("### Association faults")}
    assert association == set(ASSOCIATION_FAULTS)


async def test_each_dialogue_fault_gives_the_documented_outcome(simulator) -> None:
    loop = asyncio.get_running_loop()
    mismatches = []
    async with SimulatorPeer([simulator.endpoint("uk-vodafone")], timer_m=0.5) as peer:
        route = peer.route("uk-vodafone")
        for i, (kind, params, _what, expected) in enumerate(DIALOGUE_FAULTS):
            spec = {"kind": kind, "number": NUMBER, **json.loads(params)}
            fault = simulator.add_fault(spec)
            start = loop.time()
            out = await peer.client.sri_sm(NUMBER, fresh(route, str(i)))
            elapsed = loop.time() - start
            simulator.remove_fault(fault.id)
            got = describe_outcome(out)
            if got != expected:
                mismatches.append(f"{spec}: documented {expected!r}, got {got!r}")
            if kind == "latency":
                low = spec.get("ms", spec.get("min_ms", 0)) / 1000
                high = (spec.get("max_ms") or spec.get("ms")) / 1000
                assert low * 0.9 <= elapsed <= high + 1.0, (spec, elapsed)
            if kind == "reset":  # the client reconnects by itself
                assert await route.linkset.wait_up(timeout=3.0)
    assert not mismatches, "\n".join(mismatches)
    # the simulator counted each one under its fault's name
    counted = simulator.counters()["endpoints"]["uk-vodafone"]["dialogues"]["sri_sm"]
    for name, n in (("no_answer", 1), ("tcap_abort", 1), ("p_abort", 2), ("malformed", 3),
                    ("reset", 1), ("result", 3)):
        assert counted.get(name) == n, (name, counted)


async def test_the_example_files_fault_numbers(simulator, simulator_peer) -> None:
    loop = asyncio.get_running_loop()
    route = simulator_peer.route("uk-vodafone")
    start = loop.time()
    out = await simulator_peer.client.sri_sm("447555800005", route)  # 300 ms fixed
    assert isinstance(out, MapResult) and loop.time() - start >= 0.29
    start = loop.time()
    out = await simulator_peer.client.sri_sm("447555800009", route)  # the block: 5-20 ms
    assert isinstance(out, MapResult) and 0.004 <= loop.time() - start < 0.25


async def test_reset_every_nth_dialogue_drops_it_and_the_client_reconnects(simulator) -> None:
    simulator.add_fault({"kind": "reset", "network": "uk-ee", "every": 2})
    async with SimulatorPeer([simulator.endpoint("uk-ee")], timer_m=1.0) as peer:
        route = peer.route("uk-ee")
        kinds = []
        for i in range(4):
            assert await route.linkset.wait_up(timeout=3.0)
            out = await peer.client.sri_sm(f"44753420000{i + 4}", route)
            kinds.append(out.kind if isinstance(out, MapFailure) else "ok")
        assert kinds == ["ok", FailureKind.LINK_DOWN, "ok", FailureKind.LINK_DOWN]
    ee = simulator.counters()["endpoints"]["uk-ee"]
    assert ee["associations"]["reset"] == 2 and ee["associations"]["accepted"] >= 2
    assert ee["dialogues"]["sri_sm"] == {"result": 2, "reset": 2}


async def test_reset_on_command_fails_dialogues_in_flight_at_once(simulator) -> None:
    simulator.add_fault({"kind": "latency", "number": "447511300001", "ms": 3000})
    async with SimulatorPeer([simulator.endpoint("uk-o2")], timer_m=5.0) as peer:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = asyncio.ensure_future(peer.client.sri_sm("447511300001", peer.route("uk-o2")))
        assert await until(lambda: simulator.counters()["endpoints"]["uk-o2"]["total"] >= 1)
        assert simulator.reset_associations("uk-o2") == 1
        out = await pending
        assert isinstance(out, MapFailure) and out.kind is FailureKind.LINK_DOWN
        assert loop.time() - start < 1.0  # not its timer: the association's loss
        assert await peer.route("uk-o2").linkset.wait_up(timeout=3.0)  # reconnected
        out = await peer.client.sri_sm("447511300009", peer.route("uk-o2"))
        assert isinstance(out, MapResult)


def _quick_peer(simulator, name: str, **asp) -> tuple[MapClient, LinkSet, MapRoute, list]:
    """One association with fast M3UA timers, and the PeerLost events it reports."""
    ep = simulator.endpoint(name)
    lost: list[PeerLost] = []
    assoc = Association(
        AssociationConfig(host=ep.host, port=ep.port, name=name, reconnect_initial=0.05,
                          reconnect_max=0.2, reconnect_jitter=0.0,
                          asp=AspConfig(routing_context=ep.routing_context, **asp)),
        on_event=lambda a, e: lost.append(e) if isinstance(e, PeerLost) else None)
    linkset = LinkSet(name, [assoc])
    client = MapClient(smsc_address="447700900000", timer_m=5.0)
    client.attach(linkset)
    route = MapRoute(name, linkset, opc=1, dpc=ep.point_code, calling_gt="447700900000")
    return client, linkset, route, lost


async def test_refused_asp_active_keeps_the_link_down_until_cleared(simulator) -> None:
    client, linkset, route, lost = _quick_peer(simulator, "uk-o2", t_ack=0.05, max_ack_tries=2,
                                               heartbeat_interval=0)
    linkset.start()
    try:
        assert await linkset.wait_up(timeout=3.0)
        fault = simulator.add_fault({"kind": "refuse_aspac", "network": "uk-o2"})
        simulator.reset_associations("uk-o2")
        errors = lambda: simulator.counters()["endpoints"]["uk-o2"]["m3ua_errors_sent"]  # noqa: E731
        assert await until(lambda: errors().get("refused_management_blocking", 0) >= 4)
        assert not linkset.is_up
        assert any(e.reason is LossReason.ACK_TIMEOUT for e in lost)  # gave up, reconnected
        out = await client.sri_sm("447511300001", route)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.LINK_DOWN
        simulator.remove_fault(fault.id)
        assert await linkset.wait_up(timeout=3.0)
        assert isinstance(await client.sri_sm("447511300001", route), MapResult)
    finally:
        await linkset.close()


async def test_heartbeat_silence_makes_the_client_drop_the_association(simulator) -> None:
    client, linkset, route, lost = _quick_peer(simulator, "uk-ee", heartbeat_interval=0.05,
                                               heartbeat_max_missed=3)
    linkset.start()
    try:
        assert await linkset.wait_up(timeout=3.0)
        assoc = linkset.members[0]
        assert await until(lambda: assoc.rtt is not None)  # BEATs are answered
        assert not lost
        simulator.add_fault({"kind": "latency", "number": "447534200001", "ms": 4000})
        pending = asyncio.ensure_future(client.sri_sm("447534200001", route))
        await asyncio.sleep(0.02)
        simulator.add_fault({"kind": "heartbeat_silence", "network": "uk-ee"})
        out = await pending
        assert isinstance(out, MapFailure) and out.kind is FailureKind.LINK_DOWN
        assert lost and lost[0].reason is LossReason.HEARTBEAT_TIMEOUT
        simulator.clear_faults()
        assert await linkset.wait_up(timeout=3.0)
        n = len(lost)
        await asyncio.sleep(0.3)  # several heartbeat intervals: answered again
        assert len(lost) == n and linkset.is_up
        assert isinstance(await client.sri_sm("447534200001", route), MapResult)
    finally:
        await linkset.close()


async def test_data_for_another_point_code_is_dropped_and_counted(simulator) -> None:
    async with SimulatorPeer([simulator.endpoint("uk-vodafone")], timer_m=0.3) as peer:
        good = peer.route("uk-vodafone")
        wrong = MapRoute("wrong-dpc", good.linkset, good.opc, 4000, good.calling_gt)
        out = await peer.client.sri_sm(NUMBER, wrong)
        assert isinstance(out, MapFailure) and out.kind is FailureKind.TIMEOUT
    assert simulator.counters()["endpoints"]["uk-vodafone"]["misrouted"] == 1


async def test_another_routing_context_is_refused(simulator) -> None:
    ep = simulator.endpoint("uk-vodafone")
    assoc = Association(AssociationConfig(host=ep.host, port=ep.port, reconnect_initial=0.05,
                                          asp=AspConfig(routing_context=999, t_ack=0.05,
                                                        heartbeat_interval=0)))
    assoc.start()
    try:
        errors = lambda: simulator.counters()["endpoints"]["uk-vodafone"]["m3ua_errors_sent"]  # noqa: E731
        assert await until(lambda: errors().get("invalid_routing_context", 0) >= 1)
        assert not await assoc.wait_active(0.2)
    finally:
        await assoc.close(timeout=0.2)


async def _abort_pattern(simulator_factory, seed: int) -> list[bool]:
    sim = await simulator_factory(seed=seed)
    sim.add_fault({"kind": "tcap_abort", "prefix": "447534", "probability": 0.5})
    async with SimulatorPeer([sim.endpoint("uk-ee")], timer_m=1.0) as peer:
        numbers = [f"4475343{i:05d}" for i in range(24)] * 2
        outs = await asyncio.gather(*(peer.client.sri_sm(n, peer.route("uk-ee"))
                                      for n in numbers))
    return [isinstance(o, MapFailure) and o.kind is FailureKind.ABORT for o in outs]


async def test_a_seed_makes_random_faults_repeatable(simulator_factory) -> None:
    a = await _abort_pattern(simulator_factory, 7)
    b = await _abort_pattern(simulator_factory, 7)
    c = await _abort_pattern(simulator_factory, 8)
    assert a == b
    assert a != c
    assert 8 <= sum(a) <= 40


@pytest.mark.skipif(sctp_unavailable_reason() is not None,
                    reason=f"M3UA over SCTP: {sctp_unavailable_reason()}")
async def test_sctp_endpoint_answers(simulator) -> None:
    ep = simulator.endpoint("uk-vodafone")  # sctp = true in the example file
    assert ep.sctp_port is not None
    async with SimulatorPeer([ep], transport=TransportKind.SCTP) as peer:
        out = await peer.client.sri_sm(NUMBER, peer.route("uk-vodafone"))
    assert describe_outcome(out) == "IMSI 234150555100001, MSC 447785010101"


def test_without_kernel_sctp_the_endpoint_says_why(simulator) -> None:
    reason = sctp_unavailable_reason()
    if reason is None:
        pytest.skip("this kernel has SCTP")
    hlr = simulator.hlr("uk-vodafone")
    assert hlr.sctp_port is None and hlr.sctp_unavailable == reason
    assert "sctp_unavailable" in hlr.info()


def test_answer_heartbeat_flag_in_the_sans_io_asp() -> None:
    """The AspConfig flag behind heartbeat_silence, on its own (RFC 4666 §4.3.4.6)."""
    from protocols import m3ua
    from protocols.m3ua_asp import Asp, Role

    config = AspConfig(routing_context=1, heartbeat_interval=0)
    asp = Asp(Role.SGP, config)
    asp.start(0.0)
    beat = m3ua.encode(m3ua.Heartbeat(data=b"hello"))
    asp.receive_bytes(beat, 0.0)
    assert [m3ua.decode(d) for _, d in asp.data_to_send()] == [m3ua.HeartbeatAck(data=b"hello")]
    config.answer_heartbeat = False  # read at each BEAT: a running ASP goes silent
    asp.receive_bytes(beat, 1.0)
    assert asp.data_to_send() == []
    config.answer_heartbeat = True
    asp.receive_bytes(beat, 2.0)
    assert len(asp.data_to_send()) == 1
