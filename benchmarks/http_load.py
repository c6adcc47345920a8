"""HTTP load on the lookup API: the full HLR path against a bare aiohttp handler, in one run.

    apt-get install wrk          # once: the load generator (Debian's wrk)
    .venv/bin/python benchmarks/http_load.py [--seconds 10] [--connections 64]
                                             [--log-level info|warning] [--numbers 20000]

1. **bare**: an aiohttp application on uvloop in its own process, one ``GET`` handler that
   answers a fixed JSON document the size and shape of an HLR answer; wrk drives it;
2. **full**: ``hlrgw simulate`` (the example network) and ``hlrgw serve`` (a configuration
   generated from config/demo.toml, like the tests' and the demo's) as processes, a customer
   created with ``hlrgw customers add`` with limits far above the load, the answer cache off
   (``[cache] ttl = 0``: every request is a live SRI-SM dialogue to the simulated HLR); wrk
   sends ``GET /v1/hlr/{number}`` over ``--numbers`` distinct connected numbers of EE's range,
   so no two requests in flight share a network query.

Each phase warms up for two seconds, then wrk runs ``--seconds`` with ``--connections`` open
connections on one thread. It prints both rates, the ratio full / bare, and the p50 and p99
latency wrk measured; the exit status is 1 when any response was not 200 (wrk's count) or the
simulator saw fewer dialogues than the requests answered. Goal (issue: the lookup gateway): the
full HLR path at 40 % or more of the bare handler's rate on the same machine.

wrk is C: the load generator is not what limits the figures. Without it the benchmark says
how to install it and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = {  # an HLR answer of the gateway, as the bare handler sends it back every time
    "number": "447534200001", "status": "connected", "source": "map",
    "map": {"operation": "sri_sm", "error": None, "subscriber_state": None,
            "not_reachable_reason": None},
    "imsi": "234301285866666", "imsi_masked": False,
    "home_network": {"name": "EE", "mcc": "234", "mnc": "30", "country": "GB",
                     "country_name": "United Kingdom"},
    "serving": {"msc": "447958010202", "vlr": None, "country": "GB",
                "country_name": "United Kingdom", "network": None, "location": None},
    "roaming": False, "ported": False, "routing_number": None,
    "original_network": {"name": "EE", "mcc": "234", "mnc": "30", "country": "GB",
                         "country_name": "United Kingdom", "prefix": "447534",
                         "source": "range_table:demo-ranges"},
    "lookup": {"id": "5f0c3e0d5c9a4e7f8d7f3a3b2c1d0e9f", "route": "uk-ee",
               "method": "map_sri_sm", "via": "uk-ee", "map_version": 3, "attempts": 1,
               "latency_ms": 0.9, "time": "2026-01-01T00:00:00.000Z", "cached": False,
               "cache_age": 0.0},
}

LUA = """
counter = 0
numbers = {}
for i = 0, %(count)d - 1 do numbers[#numbers + 1] = string.format("4475342%%05d", i) end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/hlr/" .. numbers[(counter %% #numbers) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_server(port: int) -> None:
    """The bare handler (run in its own process)."""
    import uvloop
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(SAMPLE)

    app = web.Application()
    app.router.add_get("/v1/hlr/{number}", handler)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def wait_http(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


def run_wrk(url: str, seconds: int, connections: int, script: Path | None,
            headers: dict[str, str]) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rate": rate, "requests": total, "p50": pct("50"), "p99": pct("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def phase_bare(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port)], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/v1/hlr/447534200001"
        wait_http(url)
        run_wrk(url, 2, args.connections, None, {})  # warm-up
        cpu0 = cpu_seconds(proc.pid)
        result = run_wrk(url, args.seconds, args.connections, None, {})
        result["server_cpu"] = (cpu_seconds(proc.pid) - cpu0) / args.seconds
        return result
    finally:
        stop(proc)


def phase_full(args: argparse.Namespace, work: Path) -> dict[str, float]:
    from gateway.demo import demo_config

    env = {**os.environ, "HLRGW_ADMIN_TOKEN": "benchmark-admin-token-0123456789",
           "PYTHONUNBUFFERED": "1"}
    sim = subprocess.Popen(
        [sys.executable, "-m", "gateway", "simulate", "--network",
         str(ROOT / "config" / "network.example.toml"), "--ephemeral", "--control-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    gw = None
    try:
        ports: dict[int, int] = {}
        control = ""
        assert sim.stdout is not None
        for line in sim.stdout:
            m = re.match(r"^\s+\S+\s+m3ua tcp [\d.]+:(\d+).*?RC (\d+)", line)
            if m:
                ports[int(m.group(2))] = int(m.group(1))
            if line.startswith("control API"):
                control = re.search(r"http://[\d.:]+", line).group(0)
            if line.startswith("ready"):
                break
        http_port = free_port()
        config = work / "gateway.toml"
        config.write_text(demo_config(
            ports, http_port=http_port, admin_port=free_port(),
            storage_url=f"sqlite:///{work / 'hlrgw.db'}", traces_dir=work / "traces",
            cache_ttl=0, log_format="json", log_level=args.log_level, hub_tps=0))
        added = subprocess.run(
            [sys.executable, "-m", "gateway", "customers", "add", "bench", "--services", "hlr",
             "--rate", "1000000", "--inflight", "100000", "--see-imsi", "--json",
             "--config", str(config)], cwd=ROOT, env=env, capture_output=True, text=True,
            check=True)
        key = json.loads(added.stdout)["key"]
        log = (work / "gateway.log").open("w")
        gw = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                               str(config)], cwd=ROOT, env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{http_port}"
        wait_http(base + "/readyz")
        headers = {"Authorization": f"Bearer {key}"}
        wait_http(base + "/v1/hlr/447534200001", headers=headers)
        script = work / "numbers.lua"
        script.write_text(LUA % {"count": args.numbers})
        run_wrk(base, 2, args.connections, script, headers)  # warm-up
        before = json.loads(urllib.request.urlopen(control + "/counters").read())["total"]
        cpu_gw, cpu_sim = cpu_seconds(gw.pid), cpu_seconds(sim.pid)
        result = run_wrk(base, args.seconds, args.connections, script, headers)
        result["server_cpu"] = (cpu_seconds(gw.pid) - cpu_gw) / args.seconds
        result["simulator_cpu"] = (cpu_seconds(sim.pid) - cpu_sim) / args.seconds
        after = json.loads(urllib.request.urlopen(control + "/counters").read())["total"]
        result["dialogues"] = after - before
        return result
    finally:
        if gw is not None:
            stop(gw)
        stop(sim)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--numbers", type=int, default=20000,
                   help="distinct numbers the full phase cycles through")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning"),
                   help="the gateway's [logging] level (info: a line per request)")
    p.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    if shutil.which("wrk") is None:
        print("benchmarks/http_load.py needs wrk, Debian's HTTP load generator: "
              "apt-get install wrk (as root, or with sudo)", file=sys.stderr)
        return 2
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s; {os.cpu_count()} CPUs; "
          f"Python {sys.version.split()[0]}; gateway log level {args.log_level}")
    bare = phase_bare(args)
    with tempfile.TemporaryDirectory(prefix="hlrgw-bench-") as tmp:
        full = phase_full(args, Path(tmp))
    ratio = full["rate"] / bare["rate"]
    for r in (bare, full):  # CPU time of the server process per request answered
        r["cpu_us"] = r["server_cpu"] * args.seconds / max(1, r["requests"]) * 1e6
    print(f"{'':28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'server CPU':>12}"
          f"{'CPU/request':>13}")
    print(f"{'bare aiohttp+uvloop JSON':28}{bare['rate']:>10,.0f}{bare['p50']:>9.2f}"
          f"{bare['p99']:>9.2f}{bare['server_cpu']:>11.0%}{bare['cpu_us']:>10.0f} µs")
    print(f"{'GET /v1/hlr (live SRI-SM)':28}{full['rate']:>10,.0f}{full['p50']:>9.2f}"
          f"{full['p99']:>9.2f}{full['server_cpu']:>11.0%}{full['cpu_us']:>10.0f} µs"
          f"   (simulator CPU {full['simulator_cpu']:.0%})")
    print(f"ratio full / bare: {ratio:.1%} (goal: 40 % or more)")
    print(f"CPU per request, bare / full: {bare['cpu_us'] / full['cpu_us']:.1%} (the ratio "
          "if each server had a core to itself; steadier than the rates on a shared machine)")
    ok = True
    for name, r in (("bare", bare), ("full", full)):
        if r["non2xx"] or r["socket_errors"]:
            print(f"{name}: {r['non2xx']} non-200 responses, {r['socket_errors']} socket "
                  "errors", file=sys.stderr)
            ok = False
    if full["dialogues"] < full["requests"]:
        print(f"full: the simulator saw {full['dialogues']} dialogues for "
              f"{full['requests']} requests: answers did not all come from the network",
              file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
