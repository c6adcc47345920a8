"""Simulator benchmark: MAP dialogues per second one simulated HLR sustains on one core.

    .venv/bin/python benchmarks/simulator.py [--seconds 5] [--concurrency 200] [--op sri_sm]
                                             [--endpoint uk-vodafone] [--associations 1]
                                             [--loop uvloop|asyncio] [--network FILE]

This process runs the simulator (the example network by default) on one event loop, so on one
core. A second process (this script with ``--client``) runs a ``MapClient`` over M3UA/TCP on
its own core and keeps ``--concurrency`` dialogues in flight toward one endpoint, each on a
different connected number, for ``--seconds`` after a one-second warm-up. It prints the
dialogues per second completed, the latency percentiles the client saw, and how busy each
process was (CPU seconds per wall second): a simulator near 100 % is the figure's limit; a
client near 100 % means the client was, and the simulator can do more. It also prints the
dialogues per CPU-second the simulator spent, which is what one fully busy core sustains and
holds up on a machine shared with other work, where the wall-clock rate does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "network.example.toml"
WARMUP = 1.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _use_loop(name: str) -> str:
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            return "asyncio (uvloop not installed)"
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return name


def _numbers(op: str) -> list[str]:
    # connected numbers of uk-vodafone's 447555 range with no per-number override or fault
    return [f"4475552{i:05d}" for i in range(100_000)]


# --------------------------------------------------------------------------- the client


async def _client(args: argparse.Namespace) -> dict:
    from simulators.client import SimulatorPeer
    from simulators.runner import EndpointInfo

    ep = EndpointInfo(args.endpoint, "", "127.0.0.1", args.port, None, args.gt, args.pc,
                      args.rc)
    peer = SimulatorPeer([ep], timer_m=10.0, associations=args.associations)
    await peer.start()
    route = peer.route(args.endpoint)
    call = getattr(peer.client, args.op)
    numbers = _numbers(args.op)
    loop = asyncio.get_running_loop()
    counts = {"ok": 0, "error": 0, "failure": 0}
    latencies: list[float] = []
    state = {"i": 0, "measuring": False}
    stop_at = loop.time() + WARMUP + args.seconds

    async def worker() -> None:
        from gateway.sigtran.map_client import MapFailure, MapResult

        while True:
            if loop.time() >= stop_at:
                return
            began = time.perf_counter()
            n = numbers[state["i"] % len(numbers)]
            state["i"] += 1
            out = await call(n, route)
            if state["measuring"] and loop.time() <= stop_at:
                latencies.append(time.perf_counter() - began)
                kind = ("ok" if isinstance(out, MapResult)
                        else "failure" if isinstance(out, MapFailure) else "error")
                counts[kind] += 1

    async def clock() -> dict:
        await asyncio.sleep(WARMUP)
        state["measuring"] = True
        print("START", flush=True)
        t0, c0 = time.perf_counter(), _cpu()
        await asyncio.sleep(max(0.0, stop_at - loop.time()))
        return {"wall": time.perf_counter() - t0, "cpu": _cpu() - c0}

    timing, *_ = await asyncio.gather(clock(), *(worker() for _ in range(args.concurrency)))
    await peer.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {**counts, **timing, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": latencies[-1] * 1000}


# --------------------------------------------------------------------------- the simulator


async def _serve_and_measure(args: argparse.Namespace, loop_name: str) -> dict:
    from simulators.runner import Simulator

    sim = Simulator.from_file(args.network, control_port=None)
    sim.clear_faults()  # the example's test-block faults would only add noise
    await sim.start()
    try:
        ep = sim.endpoint(args.endpoint)
        cmd = [sys.executable, __file__, "--client", "--endpoint", ep.name,
               "--port", str(ep.port), "--gt", ep.gt, "--pc", str(ep.point_code),
               "--rc", str(ep.routing_context), "--seconds", str(args.seconds),
               "--concurrency", str(args.concurrency), "--op", args.op,
               "--associations", str(args.associations), "--loop", args.loop]
        child = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
        assert child.stdout is not None
        sim_cpu = sim_wall = None
        result = None
        while line := await child.stdout.readline():
            text = line.decode().strip()
            if text == "START":
                c0, t0 = _cpu(), time.perf_counter()
            elif text.startswith("{"):
                sim_cpu, sim_wall = _cpu() - c0, time.perf_counter() - t0
                result = json.loads(text)
        if await child.wait() != 0 or result is None:
            raise SystemExit("the client process failed")
        counters = sim.counters()["endpoints"][ep.name]
    finally:
        await sim.stop()
    return {**result, "sim_cpu": sim_cpu, "sim_wall": sim_wall, "endpoint": ep,
            "counted": counters["total"], "loop": loop_name}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--op", choices=["sri_sm", "ati", "sri"], default="sri_sm")
    p.add_argument("--endpoint", default="uk-vodafone")
    p.add_argument("--associations", type=int, default=1)
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--network", default=str(EXAMPLE))
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--gt", help=argparse.SUPPRESS)
    p.add_argument("--pc", type=int, help=argparse.SUPPRESS)
    p.add_argument("--rc", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    loop_name = _use_loop(args.loop)
    if args.client:
        print(json.dumps(asyncio.run(_client(args))), flush=True)
        return 0

    r = asyncio.run(_serve_and_measure(args, loop_name))
    n = r["ok"] + r["error"] + r["failure"]
    command = " ".join([".venv/bin/python", "benchmarks/simulator.py",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    ep = r["endpoint"]
    print(f"command:    {command}")
    print(f"machine:    {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, event loop {r['loop']}")
    print(f"target:     {ep.name} at {ep.host}:{ep.port} (M3UA/TCP), {args.op}, "
          f"{args.concurrency} dialogues in flight, {args.associations} association(s)")
    print(f"dialogues:  {n} in {r['wall']:.2f} s = {n / r['wall']:,.0f} dialogues/s "
          f"(results {r['ok']}, MAP errors {r['error']}, failures {r['failure']})")
    print(f"latency:    p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
          f"max {r['max_ms']:.2f} ms")
    print(f"CPU:        simulator {100 * r['sim_cpu'] / r['sim_wall']:.0f} % of one core, "
          f"client {100 * r['cpu'] / r['wall']:.0f} % of one core")
    print(f"per core:   {n / r['sim_cpu']:,.0f} dialogues per CPU-second of the simulator "
          "(what one fully busy core sustains)")
    if r["counted"] < n:
        print(f"warning: the simulator counted {r['counted']} dialogues, fewer than {n}")
    return 0 if r["failure"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
