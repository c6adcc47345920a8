"""Every example number of docs/simulator.md gives its documented answer, over M3UA/SCCP/TCAP
through the MAP client, routed to the range holder's HLR and through the hub; the example
network's numbers are valid mobile numbers of their countries, and its endpoints are as the
documentation's table says.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
import pytest

from gateway.sigtran.map_client import MapRoute
from simulators.client import SimulatorPeer, describe_outcome
from simulators.config import load_config
from simulators.model import Status, resolve
from simulators.pytest_plugin import EXAMPLE_NETWORK

DOC = Path(__file__).resolve().parent.parent / "docs" / "simulator.md"
OPERATIONS = ("sri_sm", "ati", "sri")


def doc_table(heading: str) -> list[list[str]]:
    """The rows (cells stripped, backticks removed) of the first table after ``heading``."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            cells = [c.strip().replace("`", "") for c in line.strip().strip("|").split(" | ")]
            rows.append(cells)
        elif rows:
            break
    assert len(rows) > 2, f"no table under {heading!r}"
    return rows[2:]  # past the header and the --- line


@dataclass(frozen=True)
class Row:
    number: str
    holder: str
    what: str
    expected: dict[str, str]


ROWS = [Row(c[0], c[1], c[2], dict(zip(OPERATIONS, c[3:6])))
        for c in doc_table("### Example numbers")]
CONFIG = load_config(EXAMPLE_NETWORK)


def test_the_table_covers_every_status_and_situation() -> None:
    model = CONFIG.model
    subs = [resolve(model, r.number) for r in ROWS]
    assert all(s is not None for s in subs)
    assert {s.status for s in subs} == set(Status)
    assert any(s.ported for s in subs) and any(s.roaming for s in subs)
    assert any(s.forward_to for s in subs)
    assert {s.network for s in subs} == set(model.networks)  # every network answers some
    for row, sub in zip(ROWS, subs):
        assert sub.range_holder == row.holder, row.number
    # every example number of the network file is in the table
    documented = {r.number for r in ROWS}
    assert set(model.overrides) <= documented
    assert {f.number for f in CONFIG.faults if f.number} <= documented
    assert len(documented) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.number for r in ROWS])
def test_example_numbers_are_valid_mobile_numbers_of_their_country(row: Row) -> None:
    parsed = phonenumbers.parse("+" + row.number)
    assert phonenumbers.is_valid_number(parsed), row.number
    assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    network = CONFIG.model.networks[row.holder]
    assert phonenumbers.region_code_for_number(parsed) == network.country


def test_every_range_is_a_mobile_range_of_its_country() -> None:
    for r in CONFIG.model.ranges:
        net = CONFIG.model.networks[r.network]
        sample = r.prefix + "1" * ((r.length or 12) - len(r.prefix))
        parsed = phonenumbers.parse("+" + sample)
        assert phonenumbers.is_valid_number(parsed), sample
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        assert phonenumbers.region_code_for_number(parsed) == net.country


def test_the_endpoint_table_matches_the_example_file() -> None:
    rows = {c[0]: c for c in doc_table("## The example network")}
    for ep in CONFIG.endpoints:
        cells = rows.pop(ep.name)
        assert cells[3:6] == [ep.gt, str(ep.point_code), str(ep.routing_context)], ep.name
        assert cells[6].split()[0] == str(ep.port)
        net = CONFIG.model.networks.get(ep.name)
        if net is not None:
            assert cells[2] == f"{net.mcc}-{net.mnc}"
            assert cells[1] == net.operator
            for r in CONFIG.model.ranges:
                if r.network == net.name:
                    assert r.prefix in cells[7]
    assert not rows


async def _run_all(peer: SimulatorPeer, route_for) -> list[str]:
    """Every row and operation at once; each on a route of its own, so the application
    context version one row falls back to is not remembered for another."""

    async def one(row: Row, op: str) -> str:
        base: MapRoute = route_for(row)
        route = MapRoute(f"{base.name}/{row.number}/{op}", base.linkset, base.opc, base.dpc,
                         base.calling_gt)
        outcome = await getattr(peer.client, op)(row.number, route)
        got = describe_outcome(outcome)
        want = row.expected[op]
        return "" if got == want else f"{row.number} {op}: documented {want!r}, got {got!r}"

    results = await asyncio.gather(*(one(r, op) for r in ROWS for op in OPERATIONS))
    return [r for r in results if r]


@pytest.mark.parametrize("via", ["range holder", "hub"])
async def test_each_example_number_answers_as_documented(simulator, via: str) -> None:
    async with SimulatorPeer(simulator.endpoints.values(), timer_m=1.0) as peer:
        if via == "hub":
            mismatches = await _run_all(peer, lambda row: peer.route("hub"))
        else:
            mismatches = await _run_all(peer, lambda row: peer.route(row.holder))
    assert not mismatches, "\n".join(mismatches)
    counters = simulator.counters()
    assert counters["total"] >= len(ROWS) * len(OPERATIONS)
    if via == "hub":
        assert set(counters["endpoints"]["hub"]["dialogues"]) == set(OPERATIONS)


async def test_versions_are_refused_then_served_lower(simulator, simulator_peer) -> None:
    # O2's HLR serves SRI-SM v2: v3 is refused once, then v2 is remembered for the route
    route = simulator_peer.route("uk-o2")
    first = await simulator_peer.client.sri_sm("447511300001", route)
    second = await simulator_peer.client.sri_sm("447511300004", route)
    assert (first.version, second.version) == (2, 2)
    o2 = simulator.counters()["endpoints"]["uk-o2"]["dialogues"]["sri_sm"]
    assert o2 == {"context_refused": 1, "result": 2}
    # Vodafone DE: straight from v3 to the v1 it proposes; no dialogue portion in v1
    out = await simulator_peer.client.sri_sm("4915220000001", simulator_peer.route("de-vodafone"))
    assert out.version == 1 and describe_outcome(out).endswith("[v1]")


async def test_ati_reports_mnp_information_when_asked(simulator, simulator_peer) -> None:
    from protocols.map import RequestedInfo

    asked = RequestedInfo(subscriber_state=True, mnp_requested_info=True)
    ported = await simulator_peer.client.ati("447555100007", simulator_peer.route("uk-vodafone"),
                                             requested=asked)
    home = await simulator_peer.client.ati("447555100001", simulator_peer.route("uk-vodafone"),
                                           requested=asked)
    # the routeing number is the subscription network's (routing_number in the network file)
    assert describe_outcome(ported) == "assumed_idle, MNP foreign_number_ported_in RN 447700130"
    assert describe_outcome(home) == "assumed_idle, MNP own_number_not_ported_out RN 447700115"
    mnp = ported.value.subscriber_info.mnp_info_res
    assert mnp.imsi.digits == "234301640692592" and mnp.msisdn.digits == "447555100007"
    assert ported.value.subscriber_info.location_information is None  # not requested


async def test_an_hlr_does_not_answer_for_other_networks_numbers(simulator, simulator_peer):
    # a German number sent to a UK HLR: not its subscriber
    out = await simulator_peer.client.sri_sm("4915110000001", simulator_peer.route("uk-ee"))
    assert describe_outcome(out) == "error unknown_subscriber (imsi_unknown)"
    # but the recipient of a ported number answers it directly too
    out = await simulator_peer.client.sri_sm("447555100007", simulator_peer.route("uk-ee"))
    assert describe_outcome(out) == "IMSI 234301640692592, MSC 447958010202"
    # a number in nobody's range, at the hub
    out = await simulator_peer.client.sri_sm("33612345678", simulator_peer.route("hub"))
    assert describe_outcome(out) == "error unknown_subscriber (imsi_unknown)"


def test_documented_numbers_match_the_range_length_rules() -> None:
    # a number one digit short is in no range: the length is part of the range
    assert resolve(CONFIG.model, "44755510000") is None
    assert resolve(CONFIG.model, "491511000000") is None
    assert re.fullmatch(r"\d{12,13}", ROWS[0].number)
