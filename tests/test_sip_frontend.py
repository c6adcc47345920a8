"""The SIP redirect front end of the gateway (``[sip_redirect]``, gateway/sip/frontend.py):

- :func:`decide` and :func:`refusal`: every MNP answer and every problem to its SIP answer;
- :class:`RoutingNumbers` and the ``[[routing_numbers]]`` table in the NP client;
- a :class:`~gateway.service.Service` started in-process from config/demo.toml with the
  front end on (and no HTTP API), against the in-process example network: our NP client
  as the softswitch over UDP and TCP (302 with rn for ported numbers, npdi alone for the
  others, 404, 604, 502, 504), the audit and cache of the MNP lookup, the customer's
  entitlement, state and rate limit, a source outside the allow-list, reload.

(sipp as the softswitch against ``hlrgw serve`` as a process: test_sip_gateway_e2e.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from gateway.config import ConfigInvalid, load_config
from gateway.config.schema import RoutingNumberSection
from gateway.customers import Customers
from gateway.demo import demo_config
from gateway.http.problems import ProblemError, ProblemType, invalid_number
from gateway.service import Service
from gateway.sip.frontend import decide, refusal
from gateway.sip.np_client import NpOutcome, NpTarget, RnNetwork, RnTable, SipNpClient
from gateway.sip.redirect import DecisionKind, RedirectDecision
from gateway.sip.settings import RoutingNumbers, rn_table
from gateway.store import open_store

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOKEN = "frontend-admin-token-0123456789"
RNS = RoutingNumbers((
    RoutingNumberSection("447700115", "Vodafone UK", "23415"),
    RoutingNumberSection("447700130", "EE", "23430"),
    RoutingNumberSection("4917002", "Vodafone GmbH"),
    RoutingNumberSection("447700199", "EE", "23430"),  # a second rn: the first one is given
))


# --------------------------------------------------------------------------- the mapping


def mnp(ported, rn=None, network=None, status="connected") -> dict:
    return {"number": "447555100007", "ported": ported, "routing_number": rn,
            "current_network": network, "hlr_status": status}


EE = {"name": "EE", "mcc": "234", "mnc": "30"}


@pytest.mark.parametrize("doc, kind, rn", [
    (mnp(True, "447700130", EE), DecisionKind.PORTED, "447700130"),  # the answer's own rn
    (mnp(True, None, EE), DecisionKind.PORTED, "447700130"),  # by MCC+MNC
    (mnp(True, None, {"name": "vodafone gmbh", "mcc": None, "mnc": None}),
     DecisionKind.PORTED, "4917002"),  # by name, case-insensitive
    (mnp(True, None, {"name": "Telekom Deutschland", "mcc": "262", "mnc": "01"}),
     DecisionKind.ERROR, None),  # no entry names it: 500
    (mnp(False, None, EE), DecisionKind.NOT_PORTED, None),
    (mnp(None, None, None, "absent"), DecisionKind.NOT_PORTED, None),
    (mnp(None, None, None, "not_found"), DecisionKind.NOT_FOUND, None),
    ({**mnp(True, "447700130"), "hlr_status": None}, DecisionKind.PORTED, "447700130"),
])
def test_decide(doc: dict, kind: DecisionKind, rn: str | None) -> None:
    d = decide(doc, RNS)
    assert (d.kind, d.routing_number) == (kind, rn)
    if kind is DecisionKind.ERROR:
        assert d.reason == "No Routing Number"


@pytest.mark.parametrize("exc, kind, retry", [
    (invalid_number("+447700900123", "not-in-numbering-plan"), DecisionKind.NOWHERE, None),
    (invalid_number("+999", "invalid-country-code"), DecisionKind.NOWHERE, None),
    (invalid_number("+44123", "too-short"), DecisionKind.INVALID, None),
    (ProblemError(422, ProblemType.NO_ROUTE, "no route"), DecisionKind.FORBIDDEN, None),
    (ProblemError(503, ProblemType.UNAVAILABLE, "cap", retry_after=7),
     DecisionKind.UNAVAILABLE, 7),
    (ProblemError(503, ProblemType.UNAVAILABLE, "cap"), DecisionKind.UNAVAILABLE, 1),
    (ProblemError(504, ProblemType.UPSTREAM_TIMEOUT, "late"), DecisionKind.TIMED_OUT, None),
    (ProblemError(502, ProblemType.UPSTREAM_FAILURE, "abort"), DecisionKind.FAILED, None),
    (ProblemError(500, ProblemType.INTERNAL, "?"), DecisionKind.ERROR, None),
])
def test_refusal(exc: ProblemError, kind: DecisionKind, retry: int | None) -> None:
    d = refusal(exc)
    assert d.kind is kind and d.retry_after == retry


def test_routing_numbers_both_ways() -> None:
    assert RNS.for_network({"name": "Nobody", "mcc": "234", "mnc": "15"}) == "447700115"
    assert RNS.for_network({"name": "EE"}) == "447700130"
    assert RNS.for_network(None) is None and RNS.for_network({"name": "x"}) is None
    table = RnTable({"447700130": RnNetwork("EE", "23430"), "4477001": "uk-other"})
    assert table.entry_for("+44 7700 1301") == RnNetwork("EE", "23430")  # longest prefix
    assert table.network_for("4477001999") == "uk-other"
    assert table.entry_for("4917") is None
    config = load_config(ROOT / "config" / "demo.toml")
    assert rn_table(config).entry_for("4477001301") == RnNetwork("EE", "23430")
    assert rn_table(config) is rn_table(config)  # built once per table


# --------------------------------------------------------------------------- in-process


@dataclasses.dataclass
class Gateway:
    service: Service
    path: Path
    customers: Customers

    @property
    def front(self):
        return self.service.sip_redirect

    async def ask(self, number: str, transport: str = "udp", local: str = HOST,
                  timeout: float = 8.0):
        port = self.front.udp_port if transport == "udp" else self.front.tcp_port
        client = SipNpClient([NpTarget(HOST, port, transport, timeout=timeout)],
                             local_host=local)
        await client.start()
        try:
            return await client.query(number)
        finally:
            await client.close()


async def make_gateway(tmp_path: Path, simulator, text_edit=None) -> Gateway:
    ports = {ep.routing_context: ep.port for ep in simulator.endpoints.values()}
    db = tmp_path / "hlrgw.db"
    text = demo_config(ports, http_port=0, admin_port=0, storage_url=f"sqlite:///{db}",
                       traces_dir=tmp_path / "traces", log_level="warning", timer_m=1.0,
                       route_timeout=2.5, breaker_failures=100000, hub_tps=0,
                       sip_redirect_port=0)
    if text_edit is not None:
        text = text_edit(text)
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    store = await open_store(f"sqlite:///{db}")
    try:
        customers = Customers(store)
        await customers.add("softswitch", ["mnp"], rate=1000, burst=100, inflight=100)
        await customers.add("nosy", ["hlr"], rate=1000)
        await customers.add("tiny", ["mnp"], rate=0.01, burst=1, inflight=10)
    finally:
        await store.close()
    service = Service(path, env={"HLRGW_ADMIN_TOKEN": TOKEN}, http=False)
    await service.start(wait_up=5.0)
    return Gateway(service, path, Customers(service.store))


@pytest.fixture
async def gateway(tmp_path: Path, simulator):
    gw = await make_gateway(tmp_path, simulator)
    yield gw
    await gw.service.stop()


# number -> (outcome, SIP status, rn): the example network through demo.toml's routes
ANSWERS = {
    "447555100001": (NpOutcome.NOT_PORTED, 302, None),  # Vodafone UK's own
    "447555100007": (NpOutcome.PORTED, 302, "447700130"),  # Vodafone UK -> EE
    "447534200002": (NpOutcome.PORTED, 302, "447700110"),  # EE -> O2 (SRI-SM v2)
    "4915110000003": (NpOutcome.PORTED, 302, "4917002"),  # Telekom -> Vodafone GmbH (v1)
    "447555100002": (NpOutcome.NOT_PORTED, 302, None),  # absent: no porting record
    "447555100003": (NpOutcome.NOT_FOUND, 404, None),  # unknownSubscriber
    "447700900123": (NpOutcome.NOT_FOUND, 604, None),  # in no range of the UK plan
    "447555800002": (NpOutcome.SERVER_ERROR, 502, None),  # the HLR aborts
    "447555800001": (NpOutcome.SERVER_ERROR, 504, None),  # the HLR never answers
}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_answers_from_the_gateways_mnp_lookup(gateway: Gateway, simulator,
                                                    transport: str) -> None:
    assert gateway.service.port_of("http") is None  # no [http]: the front end alone

    async def one(number: str) -> None:
        r = await gateway.ask(number, transport)
        outcome, status, rn = ANSWERS[number]
        assert (r.outcome, r.status, r.routing_number) == (outcome, status, rn), r
        if status == 302:
            assert r.npdi is True
            want = f"sip:+{number};npdi" + (f";rn=+{rn}" if rn else "")
            assert r.contact.startswith(want + "@127.0.0.1:"), r.contact

    await asyncio.gather(*(one(n) for n in ANSWERS))
    # every lookup is audited as the customer of the source network
    await gateway.service.store.flush()
    customer = await gateway.customers.get("softswitch")
    rows = await gateway.service.store.lookups(customer_id=customer.id)
    assert {r.number for r in rows if r.service == "mnp"} >= set(ANSWERS) - {"447700900123"}
    # cached: asked again, the network is not asked again
    before = simulator.counters()["total"]
    r = await gateway.ask("447555100007", transport)
    assert (r.outcome, r.routing_number) == (NpOutcome.PORTED, "447700130")
    assert simulator.counters()["total"] == before


async def test_customers_entitlement_state_and_rate(gateway: Gateway, tmp_path: Path) -> None:
    front = gateway.front
    section = load_config(gateway.path).sip_redirect
    clients = {"127.0.0.1/32": "softswitch", "127.0.0.2/32": "nosy", "127.0.0.3/32": "tiny",
               "127.0.0.4/32": "ghost"}
    front.server.reconfigure(dataclasses.replace(front.server.config, allow=clients))
    assert section is not None
    r = await gateway.ask("447555100001", local="127.0.0.2")  # not entitled to mnp
    assert (r.status, r.reason) == (403, "Not Entitled")
    r = await gateway.ask("447555100001", local="127.0.0.4")  # no such customer
    assert (r.status, r.reason) == (403, "Unknown Customer")
    r = await gateway.ask("447555100001", local="127.0.0.5")  # in no listed network
    assert (r.status, r.outcome) == (403, NpOutcome.REJECTED)
    assert front.server.stats.refused >= 1
    first = await gateway.ask("447555100001", local="127.0.0.3")  # rate 0.01/s, burst 1
    assert first.status == 302
    over = await gateway.ask("447555100010", local="127.0.0.3")
    assert (over.status, over.reason) == (503, "Rate Limited")
    await gateway.customers.update("softswitch", disabled_at=1.0)
    front._known.clear()  # as after CUSTOMER_TTL seconds
    r = await gateway.ask("447555100001")
    assert (r.status, r.reason) == (403, "Customer Disabled")


async def test_reload_applies_clients_and_refuses_a_listener_change(gateway: Gateway) -> None:
    text = gateway.path.read_text()
    gateway.path.write_text(text.replace('networks = ["127.0.0.1", "::1"]',
                                         'networks = ["127.0.0.9"]'))
    await gateway.service.reload()
    r = await gateway.ask("447555100001")  # 127.0.0.1 is no longer a client
    assert (r.status, r.reason) == (403, "Forbidden"), r
    gateway.path.write_text(re.sub(r"(?m)^port = 0(\s+# the simulator)", r"port = 5999\1",
                                   text))
    with pytest.raises(ConfigInvalid) as exc:
        await gateway.service.reload()
    assert [p.key_path for p in exc.value.problems] == ["sip_redirect.port"]
    assert "restart" in exc.value.problems[0].message
    gateway.path.write_text(text)
    await gateway.service.reload()
    assert (await gateway.ask("447555100001")).status == 302


async def test_the_listener_is_closed_on_stop(tmp_path: Path, simulator) -> None:
    gw = await make_gateway(tmp_path, simulator)
    front = gw.front
    port = front.tcp_port
    await gw.service.stop()
    assert gw.service.sip_redirect is None
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)


def test_decisions_have_their_statuses() -> None:
    from gateway.sip.redirect import _STATUS
    assert {k: _STATUS[k] for k in DecisionKind} == {
        DecisionKind.PORTED: 302, DecisionKind.NOT_PORTED: 302, DecisionKind.NOT_FOUND: 404,
        DecisionKind.NOWHERE: 604, DecisionKind.INVALID: 484, DecisionKind.UNAVAILABLE: 503,
        DecisionKind.FORBIDDEN: 403, DecisionKind.FAILED: 502, DecisionKind.TIMED_OUT: 504,
        DecisionKind.ERROR: 500}
    assert RedirectDecision.forbidden("No Route").reason == "No Route"
