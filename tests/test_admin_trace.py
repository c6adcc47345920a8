"""The running service: the admin API (token, associations, routes, stats, reload, drain,
metrics), signalling traces (a number, a link, a route; a private directory; expiry; read
by tshark down to the MAP operation and numbers), and the CLI against it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import stat
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.cli import main
from gateway.service import Service
from gateway.trace import TraceManager
from tests import wireshark
from tests.hlrnet import GW, TOKEN, association, base, hlrs, linkset, route, write

SRI = 'kind = "map_sri_sm"\n  linkset = "{}"'
ATI = 'kind = "map_ati"\n  linkset = "{}"'
ENV = {"HLRGW_TEST_ADMIN_TOKEN": TOKEN}


def gw_config(tmp_path: Path, h, *, extra: str = "") -> Path:
    return write(tmp_path / "gw.toml", base(traces=tmp_path / "traces", extra=extra),
                 association("a1", h["a"]), association("b1", h["b"]),
                 linkset("lsa", ["a1"]), linkset("lsb", ["b1"]),
                 route("uk", ["44"], [SRI.format("lsa"), ATI.format("lsa")]),
                 route("de", ["49"], [SRI.format("lsb")]),
                 route("rest", None, ['kind = "reject"']))


@contextlib.asynccontextmanager
async def service(path: Path) -> AsyncIterator[tuple[Service, aiohttp.ClientSession, str]]:
    svc = Service(path, env=ENV, log_stream=io.StringIO())
    await svc.start(wait_up=5)
    url = f"http://127.0.0.1:{svc.port_of('admin')}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession(url, headers=headers) as session:
            yield svc, session, url
    finally:
        await svc.stop()


async def test_token_is_required(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, _, url):
        async with aiohttp.ClientSession(url) as anon:
            for path in ("/associations", "/routes", "/metrics"):
                async with anon.get(path) as r:
                    assert r.status == 401
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
            async with anon.post("/reload") as r:
                assert r.status == 401
            bad = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
            async with anon.get("/associations", headers=bad) as r:
                assert r.status == 401
            ok = {"Authorization": f"Bearer {TOKEN}"}
            async with anon.get("/associations", headers=ok) as r:
                assert r.status == 200


async def test_associations_routes_stats_metrics(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, s, _):
        for n in ("447700900123", "447700900120", "4915110000003"):
            await svc.engine.lookup(n)
        async with s.get("/associations") as r:
            assocs = {a["name"]: a for a in (await r.json())["associations"]}
        a1 = assocs["a1"]
        assert (a1["asp_state"], a1["linkset"], a1["routing_context"]) == ("ACTIVE", "lsa",
                                                                          h["a"].rc)
        assert a1["as_state"] == "AS_ACTIVE" and a1["uptime"] > 0
        assert a1["in_flight"] == 0 and a1["counters"]["payloads_out"] == 2
        assert a1["remote"] == f"127.0.0.1:{h['a'].port}" and not a1["draining"]
        async with s.get("/routes") as r:
            routes = {x["name"]: x for x in (await r.json())["routes"]}
        assert routes["uk"]["prefixes"] == ["44"]
        assert [m["kind"] for m in routes["uk"]["methods"]] == ["map_sri_sm", "map_ati"]
        assert routes["uk"]["methods"][0]["breaker"] == "closed"
        assert "link set lsa UP" in routes["uk"]["methods"][0]["link_state"]
        async with s.get("/routes/uk/stats") as r:
            stats = await r.json()
        assert stats["lookups"] == 2 and stats["by_status"] == {"answered": 2}
        assert stats["methods"][0]["attempts"] == 2
        async with s.get("/routes/nope/stats") as r:
            assert r.status == 404
        async with s.get("/explain", params={"number": "+49 151 10000003"}) as r:
            ex = await r.json()
        assert (ex["route"], ex["prefix"]) == ("de", "49")
        assert "link set lsb UP" in ex["methods"][0]["state"]
        async with s.get("/metrics") as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
        assert 'hlrgw_association_up{association="a1",linkset="lsa"} 1.0' in text
        assert 'hlrgw_lookups_total{route="uk",status="answered"} 2.0' in text
        assert 'hlrgw_lookup_duration_seconds_count{route="uk"} 2.0' in text
        assert 'hlrgw_method_attempts_total{kind="map_sri_sm",method="0",route="uk",' \
               'status="answered"} 2.0' in text
        assert 'hlrgw_map_answers_total{type="user_error"} 1.0' in text
        assert 'hlrgw_linkset_up{linkset="lsb"} 1.0' in text


async def test_metrics_without_token_when_configured(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        path = gw_config(tmp_path, h)
        path.write_text(path.read_text().replace(
            'token_env = "HLRGW_TEST_ADMIN_TOKEN"',
            'token_env = "HLRGW_TEST_ADMIN_TOKEN"\nmetrics_need_token = false'))
        async with service(path) as (_, _, url), aiohttp.ClientSession(url) as anon:
            async with anon.get("/metrics") as r:
                assert r.status == 200
            async with anon.get("/routes") as r:
                assert r.status == 401


async def test_reload_good_and_bad_file(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        path = gw_config(tmp_path, h)
        good = path.read_text()
        async with service(path) as (svc, s, _):
            path.write_text(good.replace('prefixes = ["49"]', 'prefixes = ["49", "43"]')
                            .replace("remote_port", "remote_prot", 1))
            async with s.post("/reload") as r:
                assert r.status == 422
                body = await r.json()
            assert any("associations[0].remote_prot: unknown key 'remote_prot'; did you mean "
                       "'remote_port'?" in p for p in body["problems"])
            assert svc.engine.generation == 1 and svc.engine.route_of("4312345") == "rest"
            path.write_text(good.replace('prefixes = ["49"]', 'prefixes = ["49", "43"]'))
            async with s.post("/reload") as r:
                assert r.status == 200
                assert (await r.json())["report"]["generation"] == 2
            assert svc.engine.route_of("4312345") == "de"
            path.write_text(good.replace("port = 0", "port = 1", 1))  # the admin listener
            async with s.post("/reload") as r:
                assert r.status == 422
                assert "listeners are bound at start" in (await r.json())["problems"][0]
            async with s.get("/metrics") as r:
                text = await r.text()
            assert 'hlrgw_config_reloads_total{result="failed"} 2.0' in text
            assert 'hlrgw_config_reloads_total{result="ok"} 1.0' in text


async def test_drain_and_restore_a_link(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, s, _):
        async with s.post("/links/lsa/drain") as r:
            assert (await r.json()) == {"drained": ["a1"], "closed": False}
        async with s.get("/associations") as r:
            a1 = next(a for a in (await r.json())["associations"] if a["name"] == "a1")
        assert a1["draining"] and a1["asp_state"] == "ACTIVE"
        out = await svc.engine.lookup("447700900123")
        assert out.attempts[0].detail.startswith("link_down")
        async with s.post("/links/a1/restore") as r:
            assert (await r.json()) == {"restored": ["a1"]}
        async with s.post("/links/nothing/drain") as r:
            assert r.status == 404


# --------------------------------------------------------------------------- traces


async def _wait_done(s: aiohttp.ClientSession, tid: str) -> dict:
    for _ in range(200):
        async with s.get(f"/traces/{tid}") as r:
            info = await r.json()
        if info["state"] != "running":
            return info
        await asyncio.sleep(0.05)
    raise AssertionError("trace did not end")


def tshark_rows(pcap: Path) -> list[list[str]]:
    if shutil.which("tshark") is None:
        wireshark.decode([])  # skips, or fails under HLRGW_REQUIRE_TSHARK=1, with the reason
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-E", "occurrence=a",
                          "-E", "aggregator=,", "-e", "m3ua.protocol_data_opc",
                          "-e", "gsm_old.localValue", "-e", "e164.msisdn",
                          "-e", "sccp.called.digits", "-e", "sccp.calling.digits",
                          "-e", "e212.imsi"],
                         capture_output=True, text=True, check=True, timeout=60)
    bad = subprocess.run(["tshark", "-r", str(pcap), "-Y", "_ws.malformed", "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, timeout=60)
    assert bad.stdout.strip() == "", f"malformed frames: {bad.stdout}"
    return [line.split("\t") for line in out.stdout.splitlines()]


@pytest.mark.wireshark
async def test_number_trace_opens_in_tshark_with_operation_and_numbers(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, s, _):
        async with s.post("/traces", json={"number": "+447700900123", "seconds": 0.6}) as r:
            assert r.status == 201
            tid = (await r.json())["id"]
        await svc.engine.lookup("447700900123")  # SRI-SM: traced
        await svc.engine.lookup("447700900124")  # another number: not traced
        await svc.engine.lookup("447700900123", operation="ati")  # ATI: traced
        info = await _wait_done(s, tid)
        assert info["packets"] == 4 and info["state"] == "done"
        async with s.get(f"/traces/{tid}/pcap") as r:
            assert r.status == 200
            pcap = tmp_path / "out.pcap"
            pcap.write_bytes(await r.read())
    rows = tshark_rows(pcap)
    assert len(rows) == 4
    begin_sri, end_sri, begin_ati, end_ati = rows
    assert begin_sri[:5] == ["1", "45", f"447700900123,{GW}", "447700900123", GW]
    assert end_sri[:2] == ["2", "45"] and end_sri[5].startswith("23415447700900123"[:15])
    assert end_sri[3:5] == [GW, "447700900123"]  # the answer, addresses swapped
    assert begin_ati[:4] == ["1", "71", f"447700900123,{GW}", "447700900123"]  # + gsmSCF
    assert end_ati[:2] == ["2", "71"]


@pytest.mark.wireshark
async def test_link_and_route_traces(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, s, _):
        async with s.post("/traces", json={"link": "lsb", "seconds": 0.5}) as r:
            link = (await r.json())["id"]
        async with s.post("/traces", json={"route": "uk", "seconds": 0.5}) as r:
            uk = (await r.json())["id"]
        await svc.engine.lookup("447700900123")
        await svc.engine.lookup("4915110000003")
        await svc.engine.lookup("4915110000004")
        link_info, uk_info = await _wait_done(s, link), await _wait_done(s, uk)
        assert (link_info["packets"], uk_info["packets"]) == (4, 2)
        for tid, name in ((link, "link.pcap"), (uk, "uk.pcap")):
            async with s.get(f"/traces/{tid}/pcap") as r:
                (tmp_path / name).write_bytes(await r.read())
        for assoc in svc.engine.all_associations():
            assert assoc.tap is None  # no trace running: no tap, no cost
    link_rows = tshark_rows(tmp_path / "link.pcap")
    assert [r[3] for r in link_rows] == ["4915110000003", GW, "4915110000004", GW]
    assert [r[3] for r in tshark_rows(tmp_path / "uk.pcap")] == ["447700900123", GW]


async def test_trace_requests_are_checked(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (_, s, _):
        for body, why in (({"link": "nope"}, "no association or link set named 'nope'"),
                          ({"route": "nope"}, "no route named 'nope'"),
                          ({"number": "0044"}, "is not an E.164 number"),
                          ({"number": "44", "seconds": 10000}, "seconds must be in"),
                          ({"number": "44", "route": "uk"}, "exactly one of")):
            async with s.post("/traces", json=body) as r:
                assert r.status == 400
                assert why in (await r.json())["error"]
        async with s.get("/traces/0123") as r:
            assert r.status == 404


async def test_trace_files_are_private_and_expire(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, s, _):
        traces: TraceManager = svc.traces
        d = tmp_path / "traces"
        async with s.post("/traces", json={"link": "a1", "seconds": 0.2}) as r:
            info = await r.json()
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
        files = list(d.glob("trace-*.pcap"))
        assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
        await _wait_done(s, info["id"])
        assert traces.sweep(now=time.time() + 3599) == []
        assert traces.sweep(now=time.time() + 3601) == [info["id"]]
        assert not files[0].exists()
        async with s.get(f"/traces/{info['id']}") as r:
            assert r.status == 404
        os.chmod(d, 0o755)  # someone widened it: the next trace narrows it again
        async with s.post("/traces", json={"link": "a1", "seconds": 0.1}) as r:
            assert r.status == 201
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


# --------------------------------------------------------------------------- CLI


@pytest.mark.wireshark
async def test_cli_trace_and_route_explain_against_the_service(tmp_path: Path, capsys) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (svc, _, url):
        out_pcap = tmp_path / "cli.pcap"
        argv = ["trace", "--admin", url, "--token", TOKEN, "--number", "447700900123",
                "--seconds", "0.5", "-o", str(out_pcap)]
        cli = asyncio.ensure_future(asyncio.to_thread(main, argv))
        for _ in range(100):
            if svc.traces.running:
                break
            await asyncio.sleep(0.02)
        await svc.engine.lookup("447700900123")
        assert await cli == 0
        assert stat.S_IMODE(out_pcap.stat().st_mode) == 0o600
        assert [r[1] for r in tshark_rows(out_pcap)] == ["45", "45"]
        rc = await asyncio.to_thread(main, ["route", "explain", "447700900123", "--config",
                                            str(tmp_path / "gw.toml"), "--admin", url,
                                            "--token", TOKEN])
        assert rc == 0
        out = capsys.readouterr().out
        assert "route    uk: longest matching prefix 44" in out
        assert "1. map_sri_sm via lsa (GT = MSISDN)" in out
        assert "link set lsa UP [a1 ACTIVE]; breaker closed" in out
        bad = await asyncio.to_thread(main, ["trace", "--admin", url, "--token", "wrong" * 4,
                                             "--link", "a1", "-o", str(tmp_path / "x")])
        assert bad == 1
        assert "HTTP 401" in capsys.readouterr().err


async def test_test_lookup_through_the_admin_api_and_cli(tmp_path: Path, capsys) -> None:
    async with hlrs("a", "b") as h, service(gw_config(tmp_path, h)) as (_, s, url):
        async with s.post("/lookup", json={"number": "+44 7700 900123"}) as r:
            o = await r.json()
        assert (o["status"], o["route"], o["prefix"]) == ("answered", "uk", "44")
        assert o["answer"]["imsi"] == "234154477009001" and o["answer"]["msc"]
        assert o["attempts"][0]["label"] == "map_sri_sm via lsa (GT = MSISDN)"
        async with s.post("/lookup", json={"number": "447700900123",
                                            "operation": "ati"}) as r:
            o = await r.json()
        assert o["answer"]["subscriber_state"] == "ASSUMED_IDLE"
        async with s.post("/lookup", json={"number": 44}) as r:
            assert r.status == 400
        rc = await asyncio.to_thread(main, ["route", "test", "447700900120", "--admin", url,
                                            "--token", TOKEN])
        assert rc == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "number   447700900120 -> route uk (prefix 44)"
        assert out[1].startswith("status   answered in ")
        assert out[1].endswith(": MAP error absent_subscriber_sm (imsi_detached)")
        assert out[3].startswith("answer   map error, operation 45, error absent_subscriber_sm")
        rc = await asyncio.to_thread(main, ["route", "test", "3312345", "--admin", url,
                                            "--token", TOKEN])
        assert rc == 1
        assert "status   rejected" in capsys.readouterr().out
