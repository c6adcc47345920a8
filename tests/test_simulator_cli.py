"""``hlrgw simulate`` as a process: it prints every endpoint and the control API, answers MAP
over M3UA and HTTP, and stops cleanly on SIGINT and SIGTERM; a bad network file exits 1 with
the key named."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import main
from simulators.client import SimulatorPeer, describe_outcome
from simulators.runner import EndpointInfo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "network.example.toml"
LINE = re.compile(r"^\s+(?P<name>[a-z0-9-]+)\s+m3ua tcp (?P<host>[\d.]+):(?P<port>\d+).*?"
                  r"GT (?P<gt>\d+)\s+PC (?P<pc>\d+)\s+RC (?P<rc>\d+)")


def start(*extra: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "simulate", "--network", str(EXAMPLE), "--ephemeral",
         "--control-port", "0", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:  # the banner, up to "ready"
        lines.append(line.rstrip("\n"))
        if line.startswith("ready"):
            break
    else:
        proc.kill()
        pytest.fail(f"no banner: {lines} {proc.stderr.read() if proc.stderr else ''}")
    return proc, lines


def stop(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"did not stop on signal {sig}: {out} {err}")
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_runs_answers_and_stops_cleanly(sig: int) -> None:
    proc, banner = await asyncio.to_thread(start, "--seed", "5")
    try:
        assert banner[0].startswith("hlrgw simulate: 5 networks from ")
        assert banner[0].endswith("(seed 5)")
        endpoints = {}
        for line in banner:
            m = LINE.match(line)
            if m:
                endpoints[m["name"]] = EndpointInfo(
                    m["name"], "", m["host"], int(m["port"]), None, m["gt"], int(m["pc"]),
                    int(m["rc"]))
        assert list(endpoints) == ["uk-vodafone", "uk-ee", "uk-o2", "de-telekom",
                                   "de-vodafone", "hub"]
        assert endpoints["uk-vodafone"].gt == "447785016005"
        assert (endpoints["uk-vodafone"].point_code, endpoints["uk-vodafone"].routing_context) \
            == (2101, 101)
        url = next(re.search(r"http://[\d.:]+", ln)[0] for ln in banner
                   if ln.startswith("control API"))

        async with SimulatorPeer(endpoints.values(), timer_m=2.0) as peer:
            out = await peer.client.sri_sm("447555100007", peer.route("uk-vodafone"))
            assert describe_outcome(out) == "IMSI 234301640692592, MSC 447958010202"
            out = await peer.client.sri_sm("4915110000001", peer.route("hub"))
            assert describe_outcome(out) == "IMSI 262015110000001, MSC 491710760102"

        def get(path: str) -> dict:
            with urllib.request.urlopen(url + path, timeout=5) as resp:
                return json.loads(resp.read())

        index = await asyncio.to_thread(get, "/")
        assert index["seed"] == 5
        counters = await asyncio.to_thread(get, "/counters")
        assert counters["endpoints"]["uk-vodafone"]["dialogues"] == {"sri_sm": {"result": 1}}
        assert counters["endpoints"]["hub"]["total"] == 1
    except BaseException:
        proc.kill()
        raise
    code, out, err = await asyncio.to_thread(stop, proc, sig)
    assert code == 0, err
    assert out.splitlines()[-2:] == ["hlrgw simulate: stopping", "hlrgw simulate: stopped"]
    assert "Traceback" not in err


def test_a_bad_network_file_exits_1_naming_the_key(tmp_path, capsys) -> None:
    bad = tmp_path / "net.toml"
    bad.write_text(EXAMPLE.read_text().replace('mnc = "30"', 'mnc = "3O"'))
    assert main(["simulate", "--network", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hlrgw simulate: {bad}: networks[1].mnc: must be 2 to 3 decimal digits")
    assert main(["simulate", "--network", str(tmp_path / "none.toml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_port_in_use_exits_1(tmp_path, capsys) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        net = tmp_path / "net.toml"
        net.write_text(EXAMPLE.read_text().replace("port = 2905", f"port = {port}"))
        assert main(["simulate", "--network", str(net), "--control-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "cannot listen" in err and "--ephemeral" in err


def test_help_documents_the_options(capsys) -> None:
    assert main(["simulate", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--network", "--seed", "--control-port", "--ephemeral"):
        assert option in out
