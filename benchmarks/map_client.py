"""MAP client benchmark: SRI-SM dialogues over one M3UA/TCP association, against the
transport's own limit measured in the same run.

    .venv/bin/python benchmarks/map_client.py [--seconds S] [--rounds R] [--concurrency N]
                                              [--open N]

Everything runs in one process on uvloop, over loopback TCP, with the same Association
classes the gateway uses:

1. bare echo: the client sends M3UA DATA messages the size of an SRI-SM Begin and the peer
   echoes each one back, both through ``Association.send_payload`` (the way the MAP client
   and responder send); N requests in flight; round trips per second;
2. dialogues: the MapClient runs SRI-SM dialogues (TCAP Begin / End with the result) against
   an in-process MapResponder; N in flight; dialogues per second;
3. open dialogues: ``--open`` dialogues (10,000 by default) held open at once on the one
   association, then all answered; memory per open dialogue (tracemalloc, client side).

The two rates are measured in alternating phases of the same length (echo, dialogues, echo,
dialogues, ...: ``--rounds`` of each, ``--seconds`` of each kind in all), so that a change
in the machine's load during the run falls on both alike; every phase is printed, then the
median of each kind's phases and the ratio of the two medians. Nothing is best-of.

Goals (issue: SIGTRAN runtime): 10,000 open dialogues on one association, and a dialogue
rate of at least a third of the bare echo rate (the ratio of the medians).

Each rate comes with the CPU time the process spent per round trip or dialogue
(``time.process_time``): on a machine shared with other work the wall-clock rates move with
the load, the CPU per operation much less; the ratio of the medians of those is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop  # noqa: E402

from gateway.sigtran.association import (  # noqa: E402
    Association,
    AssociationConfig,
    AssociationServer,
)
from gateway.sigtran.linkset import LinkSet  # noqa: E402
from gateway.sigtran.map_client import MapClient, MapResult, MapRoute  # noqa: E402
from gateway.sigtran.map_responder import Invocation, MapResponder, Reply  # noqa: E402
from protocols import m3ua  # noqa: E402
from protocols import map as map_  # noqa: E402
from protocols.m3ua_asp import AspConfig  # noqa: E402
from protocols.tbcd import Imsi, isdn  # noqa: E402

RC = 100
GW, MSC = "447700900000", "447700990001"
VECTORS = Path(__file__).resolve().parent.parent / "tests" / "conformance" / "vectors.json"


def _begin_data() -> m3ua.Data:
    import json

    raw = {v["name"]: v for v in json.loads(VECTORS.read_text())["vectors"]}
    return m3ua.decode(bytes.fromhex(raw["srism_v3_begin"]["m3ua"]))


async def _pair(on_payload) -> tuple[AssociationServer, Association, LinkSet]:
    server = AssociationServer(asp_config=AspConfig(routing_context=RC), on_payload=on_payload)
    await server.start()
    assoc = Association(AssociationConfig(host="127.0.0.1", port=server.port,
                                          asp=AspConfig(routing_context=RC), name="bench"))
    linkset = LinkSet("bench", [assoc])
    return server, assoc, linkset


async def bare_echo(seconds: float, concurrency: int) -> tuple[float, float]:
    """Round trips per second of same-size M3UA DATA echoed by the peer, and the CPU
    microseconds per round trip."""
    def echo(assoc, data: m3ua.Data) -> None:
        p = data.protocol_data
        assoc.send_payload(p.opc, p.dpc, p.si, p.ni, p.mp, p.sls, p.data)

    server, assoc, linkset = await _pair(echo)
    waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    def answered(_assoc, _data) -> None:
        waiting.popleft().set_result(None)

    assoc.on_payload = answered
    linkset.start()
    await linkset.wait_up(timeout=5)
    pd = _begin_data().protocol_data
    opc, dpc, si, ni, mp, sls, payload = pd.opc, pd.dpc, pd.si, pd.ni, pd.mp, pd.sls, pd.data
    loop = asyncio.get_running_loop()
    count = 0
    stop_at = loop.time() + seconds

    async def worker() -> None:
        nonlocal count
        while loop.time() < stop_at:
            fut = loop.create_future()
            waiting.append(fut)
            assoc.send_payload(opc, dpc, si, ni, mp, sls, payload)
            await fut
            count += 1

    t0, c0 = loop.time(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = count / (loop.time() - t0)
    cpu = (time.process_time() - c0) / count * 1e6
    await linkset.close()
    await server.close()
    return rate, cpu


def _hlr(inv: Invocation) -> Reply:
    return Reply(map_.RoutingInfoForSmRes(Imsi("234150999999999"), map_.LocationInfoWithLmsi(
        network_node_number=isdn(MSC))))


async def dialogues(seconds: float, concurrency: int) -> tuple[float, float, dict]:
    """SRI-SM dialogues per second through MapClient and MapResponder, and the CPU
    microseconds per dialogue."""
    responder = MapResponder(_hlr)
    server, assoc, linkset = await _pair(responder.on_payload)
    client = MapClient(smsc_address=GW, timer_m=30.0)
    client.attach(linkset)
    linkset.start()
    await linkset.wait_up(timeout=5)
    route = MapRoute("bench", linkset, opc=1, dpc=2, calling_gt=GW)
    loop = asyncio.get_running_loop()
    count = 0
    bad = 0
    stop_at = loop.time() + seconds

    async def worker(w: int) -> None:
        nonlocal count, bad
        i = 0
        while loop.time() < stop_at:
            out = await client.sri_sm(f"4477{w:04d}{i % 10000:04d}", route)
            i += 1
            if isinstance(out, MapResult):
                count += 1
            else:
                bad += 1

    t0, c0 = loop.time(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    rate = count / (loop.time() - t0)
    cpu = (time.process_time() - c0) / max(1, count + bad) * 1e6
    stats = {"results": count, "not results": bad}
    await linkset.close()
    await server.close()
    return rate, cpu, stats


async def open_dialogues(n: int) -> tuple[int, float, float]:
    """Hold ``n`` dialogues open on one association; returns (answered, bytes per open
    dialogue on the client side, seconds to answer them all)."""
    release = asyncio.Event()

    async def held(inv: Invocation) -> Reply:
        await release.wait()
        return _hlr(inv)

    responder = MapResponder(held)
    server, assoc, linkset = await _pair(responder.on_payload)
    client = MapClient(smsc_address=GW, timer_m=120.0)
    client.attach(linkset)
    linkset.start()
    await linkset.wait_up(timeout=5)
    route = MapRoute("bench", linkset, opc=1, dpc=2, calling_gt=GW)
    numbers = [f"4477{i:08d}" for i in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    calls = [asyncio.ensure_future(client.sri_sm(number, route)) for number in numbers]
    while responder.stats.begun < n:
        await asyncio.sleep(0.05)
    gc.collect()
    after = tracemalloc.take_snapshot()
    # the client's share: what the client's modules, TCAP and asyncio futures allocated
    client_files = ("map_client.py", "tcap_dialogue.py", "futures.py", "tasks.py",
                    "base_events.py", "sccp.py", "tcap.py", "map/", "tbcd.py")
    grown = sum(s.size_diff for s in after.compare_to(before, "filename")
                if any(f in (s.traceback[0].filename if s.traceback else "")
                       for f in client_files))
    tracemalloc.stop()
    open_now = client.open_dialogues
    t0 = time.perf_counter()
    release.set()
    results = await asyncio.gather(*calls)
    seconds = time.perf_counter() - t0
    answered = sum(isinstance(r, MapResult) for r in results)
    await linkset.close()
    await server.close()
    assert open_now == n, f"only {open_now} of {n} dialogues were open at once"
    return answered, grown / n, seconds


async def main_async(args: argparse.Namespace) -> int:
    # as `hlrgw serve` does once started (Service.run): the start-up's objects frozen out of
    # the collector's walks
    gc.collect()
    gc.freeze()
    rounds = max(1, args.rounds)
    phase = args.seconds / rounds
    echoes: list[tuple[float, float]] = []  # (round trips/s, µs CPU each) per phase
    runs: list[tuple[float, float]] = []  # (dialogues/s, µs CPU each) per phase
    stats = {"results": 0, "not results": 0}
    for i in range(rounds):
        echo, echo_cpu = await bare_echo(phase, args.concurrency)
        echoes.append((echo, echo_cpu))
        print(f"phase {2 * i + 1:2d} bare echo       : {echo:10.0f} round trips/s  "
              f"({echo_cpu:.1f} µs CPU each)")
        rate, cpu, got = await dialogues(phase, args.concurrency)
        runs.append((rate, cpu))
        for k, v in got.items():
            stats[k] += v
        print(f"phase {2 * i + 2:2d} SRI-SM dialogues: {rate:10.0f} dialogues/s    "
              f"({cpu:.1f} µs CPU each)")
    answered, per_dialogue, drain = await open_dialogues(args.open)
    echo, echo_cpu = (statistics.median(x[0] for x in echoes),
                      statistics.median(x[1] for x in echoes))
    rate, cpu = statistics.median(x[0] for x in runs), statistics.median(x[1] for x in runs)
    ratio = rate / echo
    each = f"median of {rounds} phases of {phase:.2f} s, {args.concurrency} in flight"
    print(f"bare M3UA DATA echo     : {echo:10.0f} round trips/s  ({each}; median "
          f"{echo_cpu:.1f} µs CPU each)")
    print(f"SRI-SM dialogues        : {rate:10.0f} dialogues/s    ({each}; median "
          f"{cpu:.1f} µs CPU each; all phases: {stats})")
    print(f"dialogue rate / echo    : {ratio:10.2f}             (ratio of the medians) "
          f"goal >= 0.33: {'met' if ratio >= 1 / 3 else 'NOT met'} (by median CPU per "
          f"operation: {echo_cpu / cpu:.2f})")
    print(f"open at once            : {args.open:10d} dialogues on one association; "
          f"{answered} answered in {drain:.2f} s; goal 10,000: "
          f"{'met' if answered == args.open >= 10000 else 'NOT met'}")
    print(f"memory per open dialogue: {per_dialogue:10.0f} bytes (client side, tracemalloc)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="time for each kind of rate phase in all (echo, dialogues)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="phases of each kind, alternating echo and dialogues")
    ap.add_argument("--concurrency", type=int, default=500, help="requests in flight")
    ap.add_argument("--open", type=int, default=10000, help="dialogues held open at once")
    args = ap.parse_args(argv)
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
