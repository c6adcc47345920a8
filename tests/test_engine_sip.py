"""The routing method ``sip`` (SIP NP via named targets) in the engine: SIPp as the NP server
answers first (ported with rn, 404 as not_found); with no NP server listening (UDP timeout,
TCP refused) the route falls back to MAP SRI-SM against an in-process HLR. And how a SIP
answer reads in the MNP and HLR answers (:func:`gateway.lookup.normalise`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.engine import Engine, LookupStatus
from gateway.lookup import normalise
from gateway.methods import MethodStatus, SipMethod
from gateway.networks import NetworkDirectory
from gateway.numbers import parse_number
from gateway.sigtran.map_client import MapResult
from gateway.sip.np_client import NpOutcome, NpResult
from tests.hlrnet import association, base, hlrs, linkset, route, write
from tests.sipp import HOST, Sipp, free_port

SIP = 'kind = "sip"\n  targets = ["np1"]'
SRI = 'kind = "map_sri_sm"\n  linkset = "lsa"'


def sip_config(tmp_path: Path, h, np_port: int, *, transport: str = "udp",
               timeout: float = 2.0) -> Path:
    return write(tmp_path / "gw.toml", base(timer_m=2.0),
                 association("a1", h["a"]), linkset("lsa", ["a1"]),
                 route("uk", ["44"], [SIP, SRI], "timeout = 10"),
                 route("rest", None, [SRI]),
                 f'\n[[sip_targets]]\nname = "np1"\nuri = "sip:{HOST}:{np_port}"\n'
                 f'transport = "{transport}"\ntimeout = {timeout}\n'
                 f'\n[sip]\nlisten = "{HOST}"\nport = 0\n')


@contextlib.asynccontextmanager
async def engine_for(path: Path) -> AsyncIterator[Engine]:
    engine = Engine(load_config(path))
    await engine.start(wait_up=5)
    try:
        yield engine
    finally:
        await engine.close()


@pytest.mark.sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sip_method_answers_from_sipp_np_server(tmp_path: Path, transport: str) -> None:
    sipp = await Sipp("np_server.xml", "-m", "2", transport=transport).start(listening=True)
    try:
        async with hlrs("a") as h:
            async with engine_for(sip_config(tmp_path, h, sipp.port,
                                             transport=transport)) as e:
                out = await e.lookup("+44 7700 900123")
                assert out.status is LookupStatus.ANSWERED, out.as_dict()
                assert [a.status for a in out.attempts] == [MethodStatus.ANSWERED]
                assert out.final.kind.value == "sip" and not out.final.retryable
                local = out.local
                assert local is not None and local.ported
                assert local.routing_number == "4477001123"
                assert local.network == "4477001123"  # no rn -> network data: the rn
                assert local.source == "sip:np1"
                assert out.final.sip.outcome is NpOutcome.PORTED
                assert out.as_dict()["answer"]["source"] == "sip:np1"
                # 404 from the NP server: the number does not exist, no MAP query
                gone = await e.lookup("447700900999")
                assert gone.status is LookupStatus.ANSWERED
                assert [a.status for a in gone.attempts] == [MethodStatus.ANSWERED]
                assert gone.final.sip.outcome is NpOutcome.NOT_FOUND
                assert gone.local is None and "not_found" in gone.detail
                assert not h["a"].seen  # SIP answered both: the HLR was never asked
                await asyncio.sleep(0.2)  # let the last ACK go
        run = await sipp.wait(10)
        assert run.returncode == 0, run.report()
    finally:
        sipp.cleanup()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sip_method_falls_back_to_map_without_np_server(tmp_path: Path,
                                                              transport: str) -> None:
    port = free_port()  # nothing listens there
    async with hlrs("a") as h:
        async with engine_for(sip_config(tmp_path, h, port, transport=transport,
                                         timeout=0.5)) as e:
            out = await e.lookup("447700900123")
            assert out.status is LookupStatus.ANSWERED, out.as_dict()
            assert [a.kind.value for a in out.attempts] == ["sip", "map_sri_sm"]
            first = out.attempts[0]
            assert first.status is MethodStatus.FAILED and first.retryable
            assert first.sip.outcome in (NpOutcome.TIMEOUT, NpOutcome.TRANSPORT_ERROR)
            assert isinstance(out.map, MapResult)
            assert h["a"].seen[-1][1] == "447700900123"
            stats = e.route_stats("uk")
            assert [m.label for m in stats.methods][0] == "sip via np1"


async def test_sip_method_bounded_by_route_deadline(tmp_path: Path) -> None:
    port = free_port()
    async with hlrs("a") as h:
        path = write(tmp_path / "gw.toml", base(timer_m=2.0),
                     association("a1", h["a"]), linkset("lsa", ["a1"]),
                     route("uk", ["44"], [SIP], "timeout = 0.3"),
                     route("rest", None, [SRI]),
                     f'\n[[sip_targets]]\nname = "np1"\nuri = "sip:{HOST}:{port}"\n'
                     'timeout = 5\n')
        async with engine_for(path) as e:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            out = await e.lookup("447700900123")
            assert loop.time() - t0 < 2
            assert out.status is LookupStatus.FAILED
            assert "deadline" in out.attempts[0].detail


class _Handle:
    """A stand-in for NpClientHandle: answers with a fixed result."""

    def __init__(self, result: NpResult) -> None:
        self.result = result
        self.client = self

    async def ready(self):
        return self

    async def query(self, number: str) -> NpResult:
        return self.result


async def _outcome(result: NpResult):
    from gateway.engine import LookupOutcome
    m = SipMethod(0, _Handle(result), targets=("np1",))
    out = await m.run("447700900123", asyncio.get_running_loop().time() + 5)
    return LookupOutcome("447700900123", LookupStatus.ANSWERED if out.status is
                         MethodStatus.ANSWERED else LookupStatus.FAILED, "uk", "44", None,
                         (out,), 0.01, out.detail)


@pytest.mark.parametrize("result, retryable", [
    (NpResult(NpOutcome.TIMEOUT, "447700900123", target="np1"), True),
    (NpResult(NpOutcome.TRANSPORT_ERROR, "447700900123", target="np1"), True),
    (NpResult(NpOutcome.SERVER_ERROR, "447700900123", 503, "Service Unavailable",
              target="np1"), True),
    (NpResult(NpOutcome.RATE_LIMITED, "447700900123"), True),
    (NpResult(NpOutcome.NOT_FOUND, "447700900123", 404, "Not Found", target="np1"), False),
    (NpResult(NpOutcome.INVALID, "447700900123", 484, "Address Incomplete", target="np1"),
     False),
    (NpResult(NpOutcome.NOT_PORTED, "447700900123", 302, "Moved Temporarily",
              target="np1"), False),
])
async def test_sip_outcomes_and_retry(result: NpResult, retryable: bool) -> None:
    out = (await _outcome(result)).attempts[0]
    assert out.retryable is retryable
    if result.outcome is NpOutcome.RATE_LIMITED:  # every target at its cap: throttled
        assert out.status is MethodStatus.THROTTLED
    else:
        assert out.status is (MethodStatus.FAILED if retryable else MethodStatus.ANSWERED)


async def test_sip_answers_in_mnp_and_hlr_documents() -> None:
    d = NetworkDirectory()
    number = parse_number("+447700900123")
    ported = await _outcome(NpResult(NpOutcome.PORTED, "447700900123", 302,
                                     "Moved Temporarily", routing_number="4477001123",
                                     network="vodafone-uk", target="np1"))
    doc = normalise(ported, number, d, now=0.0)
    assert (doc["status"], doc["source"], doc["ported"]) == ("unknown", "sip:np1", True)
    assert doc["routing_number"] == "4477001123"
    assert doc["home_network"]["name"] == "vodafone-uk"
    assert doc["lookup"]["method"] == "sip"
    not_ported = normalise(await _outcome(NpResult(NpOutcome.NOT_PORTED, "447700900123",
                                                   302, "Moved Temporarily", target="np1")),
                           number, d, now=0.0)
    assert not_ported["ported"] is False and not_ported["routing_number"] is None
    gone = normalise(await _outcome(NpResult(NpOutcome.NOT_FOUND, "447700900123", 404,
                                             "Not Found", target="np1")), number, d, now=0.0)
    assert (gone["status"], gone["source"], gone["ported"]) == ("not_found", "sip:np1", None)


async def test_reload_keeps_or_replaces_the_np_client(tmp_path: Path) -> None:
    port = free_port()
    async with hlrs("a") as h:
        path = sip_config(tmp_path, h, port, timeout=0.3)
        async with engine_for(path) as e:
            assert (await e.lookup("447700900123")).status is LookupStatus.ANSWERED
            (handle,) = e._sip.values()
            await e.reload(load_config(path))  # same targets: the same client
            assert list(e._sip.values()) == [handle]
            await e.reload(load_config(sip_config(tmp_path, h, free_port(), timeout=0.3)))
            (other,) = e._sip.values()
            assert other is not handle
            await asyncio.sleep(0.05)  # the old client is closed in the background
            assert handle.client.udp is None or handle.client.udp.closed
            out = await e.lookup("447700900125")
            assert [a.kind.value for a in out.attempts] == ["sip", "map_sri_sm"]
            assert out.status is LookupStatus.ANSWERED
