"""The simulator's SIP NP server (``[sip]`` in the network file) against the gateway's own
SipNpClient, over real loopback UDP and TCP: ported numbers answer 302 with the recipient
network's rn, others 302 with npdi alone, unknown ones 404; a run-time port (library call or
control API) changes the SIP answer as it changes the HLRs'."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.sip.np_client import NpOutcome, NpResult, NpTarget, SipNpClient
from protocols.sip.transaction import Timers
from simulators.config import ConfigError, load_config, parse_config
from simulators.runner import Simulator

from .test_simulator_cli import EXAMPLE

TRANSPORTS = ("udp", "tcp")


def rn_networks(sim: Simulator) -> dict[str, str]:
    return {n.routing_number: name for name, n in sim.config.model.networks.items()
            if n.routing_number}


async def query(sim: Simulator, transport: str, number: str) -> NpResult:
    ep = sim.sip_endpoint
    assert ep is not None
    port = ep.udp_port if transport == "udp" else ep.tcp_port
    target = NpTarget(ep.host, port, transport, timeout=2.0)
    async with SipNpClient([target], rn_networks=rn_networks(sim), local_host="127.0.0.1",
                           timers=Timers(t1=0.05)) as client:
        return await client.query(number)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_ported_not_ported_and_unknown(simulator: Simulator, transport: str) -> None:
    ported = await query(simulator, transport, "447555100007")  # Vodafone number with EE
    assert (ported.outcome, ported.status, ported.routing_number, ported.npdi,
            ported.network) == (NpOutcome.PORTED, 302, "447700130", True, "uk-ee")

    into_o2 = await query(simulator, transport, "447534200002")  # EE number with O2
    assert (into_o2.outcome, into_o2.routing_number) == (NpOutcome.PORTED, "447700110")

    home = await query(simulator, transport, "447555100001")
    assert (home.outcome, home.status, home.routing_number, home.npdi) == \
        (NpOutcome.NOT_PORTED, 302, None, True)

    unknown = await query(simulator, transport, "447999000001")  # in no network's ranges
    assert (unknown.outcome, unknown.status) == (NpOutcome.NOT_FOUND, 404)

    unallocated = await query(simulator, transport, "447555900001")  # status unknown
    assert (unallocated.outcome, unallocated.status) == (NpOutcome.NOT_FOUND, 404)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_runtime_port_changes_the_answer(simulator: Simulator, transport: str) -> None:
    number = "447555100001"
    simulator.patch_subscriber(number, {"ported_to": "uk-o2"})
    r = await query(simulator, transport, number)
    assert (r.outcome, r.routing_number, r.network) == (NpOutcome.PORTED, "447700110", "uk-o2")
    assert simulator.subscriber(number).network == "uk-o2"  # the HLRs see the same

    simulator.drop_subscriber(number)
    r = await query(simulator, transport, number)
    assert r.outcome is NpOutcome.NOT_PORTED

    # a ported number brought home: no rn any more
    simulator.patch_subscriber("447555100007", {"ported_to": ""})
    r = await query(simulator, transport, "447555100007")
    assert (r.outcome, r.routing_number) == (NpOutcome.NOT_PORTED, None)


async def test_control_api_port_changes_the_answer(simulator: Simulator) -> None:
    number = "4915220000001"
    assert (await query(simulator, "udp", number)).outcome is NpOutcome.NOT_PORTED
    async with aiohttp.ClientSession(simulator.control_url) as session:
        async with session.patch(f"/subscribers/{number}",
                                 json={"ported_to": "de-telekom"}) as resp:
            assert resp.status == 200
        r = await query(simulator, "tcp", number)
        assert (r.outcome, r.routing_number, r.network) == \
            (NpOutcome.PORTED, "4917001", "de-telekom")
        async with session.post("/reset") as resp:
            assert resp.status == 200
    assert (await query(simulator, "udp", number)).outcome is NpOutcome.NOT_PORTED


async def test_no_sip_table_no_server(tmp_path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("[sip]")
    end = text.index("\n\n", start)
    path = tmp_path / "net.toml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    async with Simulator.from_file(path, control_port=None) as sim:
        assert sim.config.sip is None and sim.sip_endpoint is None


def test_sip_config_checks() -> None:
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert load_config(EXAMPLE).sip is not None
    data["sip"] = {"enabled": False}
    assert parse_config(data).sip is None
    data["sip"] = {"udp_port": 0, "tcp_port": 2906}
    with pytest.raises(ConfigError, match=r"sip.tcp_port: 2906 is uk-ee's port"):
        parse_config(data)
    data["sip"] = {"udp_port": 0, "tcp_port": 0, "port": 1}
    with pytest.raises(ConfigError, match=r"sip.port: unknown key"):
        parse_config(data)
    data["sip"] = {}
    del data["networks"][1]["routing_number"]
    with pytest.raises(ConfigError, match=r"networks\[1\].routing_number: missing"):
        parse_config(data)


async def test_banner_shows_the_sip_addresses(simulator: Simulator) -> None:
    import io

    from simulators.cli import _banner

    out = io.StringIO()
    _banner(simulator, out)
    ep = simulator.sip_endpoint
    assert f"SIP NP server: udp 127.0.0.1:{ep.udp_port}, tcp 127.0.0.1:{ep.tcp_port}\n" \
        in out.getvalue()
