"""SIP redirect front end under load: SIPp as the softswitch, rising call rates.

    .venv/bin/python benchmarks/sip_redirect.py [--seconds S] [--rates 500,1000,...]
        [--modes cached,uncached,uncached-sip] [--late-ms MS] [--delay-ms MS] [--tcp]
        [--retries N] [--max-in-flight N]

SipRedirectServer runs in this process on uvloop (UDP on 127.0.0.1 by default), as
``hlrgw serve`` would run it: one process, one event loop, ``gc.freeze()`` once started.
For every rate, SIPp (tests/sipp/softswitch_bench.xml) places ``rate`` calls per second for
``--seconds``: INVITE for a number, expect a 302 whose Contact carries ``;npdi;rn=+...``,
ACK. A step passes when every call succeeded, SIPp never had to retransmit an INVITE, no
answer took longer than ``--late-ms`` (100 ms by default), and SIPp really offered the rate
(at least 95 % of it). Rates are tried in order and a mode stops at its first failing rate;
a failing rate is run once more (``--retries``, marked ``*``) since the machine may be shared.
The summary gives, per mode, the highest rate that passed, with its p50/p99 answer time.

What the lookup modes mean, honestly:

- ``cached``: the lookup is a dict read returning a ready RedirectDecision, i.e. what the
  gateway does when its MNP cache holds the number. This measures the front end itself:
  SIP parsing, the server transaction, building and writing the 302, timers, the ACK, and
  the asyncio task per INVITE.
- ``uncached``: the lookup awaits ``asyncio.sleep(--delay-ms)`` (5 ms by default) before
  answering, a stand-in for the round trip to an HLR or NP database. It does no work while
  it waits, so it shows what holding many lookups open costs the front end (transactions
  and tasks in flight), not the cost of a real query.
- ``uncached-sip``: the lookup is a real SipNpClient query (an INVITE client transaction
  over UDP) to a second SIPp playing the operator's NP server (tests/sipp/np_server.xml),
  and the RedirectDecision is made from its 302. This is real work on both legs, but the
  NP server is on the same machine and shares its CPUs.

Each line also shows the CPU time per call of this process and of the softswitch SIPp (the
summary turns it into calls per CPU-second, a figure that holds up on a shared machine
where the wall-clock rate does not), and
the longest event-loop stall and garbage-collection pause seen during the step, which tell
a stall of ours from one of SIPp or of a busy machine. Answer times come from SIPp's
``-trace_rtt`` (INVITE sent to 302 received), which SIPp counts in whole milliseconds of its
own clock, so small figures are +-1 ms. The SIPps and this process share the machine's CPUs;
``os.cpu_count()`` and the load average are printed with the report.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop  # noqa: E402

from gateway.sip.np_client import NpOutcome, NpTarget, SipNpClient  # noqa: E402
from gateway.sip.redirect import RedirectConfig, RedirectDecision, SipRedirectServer  # noqa: E402
from tests.sipp import HOST, Sipp, sipp_missing_reason  # noqa: E402

DEFAULT_RATES = "250,500,1000,1500,2000,2500,3000,4000,5000,6000"


def numbers(count: int) -> list[str]:
    """Distinct UK mobile numbers; none ends in 999 (np_server.xml answers those 404)."""
    out = []
    i = 0
    while len(out) < count:
        n = f"4477009{i:05d}"
        if not n.endswith("999"):
            out.append(n)
        i += 1
    return out


@dataclass
class Step:
    rate: int
    offered: float  # calls per second SIPp really placed (its CallRate(C))
    calls: int
    successful: int
    failed: int
    retransmissions: int
    rtt: list[float] = field(default_factory=list)
    late: int = 0
    cpu_us: float = 0.0  # this process's CPU time per call (front end + lookups)
    sipp_cpu_us: float = 0.0  # the softswitch SIPp's CPU time per call
    answers: dict[int, int] = field(default_factory=dict)  # our responses by status
    retried: bool = False
    loop_lag_ms: float = 0.0  # the longest our event loop was late for a 5 ms tick
    gc_pause_ms: float = 0.0  # the longest garbage collection in this process

    def passed(self) -> bool:
        return (self.failed == 0 and self.retransmissions == 0 and self.late == 0
                and self.successful == self.calls and self.offered >= 0.95 * self.rate)

    def pct(self, p: float) -> float:
        if not self.rtt:
            return float("nan")
        ordered = sorted(self.rtt)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _stats(path: Path) -> dict[str, str]:
    """The last row of SIPp's -trace_stat CSV, by column name."""
    rows = list(csv.reader(path.read_text().splitlines(), delimiter=";"))
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


class Watch:
    """Longest event-loop lag (a 5 ms ticker) and garbage-collection pause during a step:
    separates stalls of this process from those of SIPp or the kernel."""

    def __init__(self) -> None:
        self.lag = self.gc_pause = 0.0
        self._gc_start = 0.0
        self._task: asyncio.Task[None] | None = None

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pause = max(self.gc_pause, time.perf_counter() - self._gc_start)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            self.lag = max(self.lag, loop.time() - t - 0.005)

    def __enter__(self) -> Watch:
        gc.callbacks.append(self._gc)
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._gc)
        assert self._task is not None
        self._task.cancel()


async def run_step(server: SipRedirectServer, rate: int, seconds: float, late_ms: float,
                   inf: str, transport: str) -> Step:
    calls = int(rate * seconds)
    port = server.udp_port if transport == "udp" else server.tcp_port
    answers_before = dict(server.stats.responses)
    sipp = Sipp("softswitch_bench.xml", "-m", str(calls), "-r", str(rate),
                "-l", str(max(1000, rate * 4)), "-trace_rtt", "-rtt_freq", "1",
                "-trace_stat", "-fd", "1", "-buff_size", str(4 * 1024 * 1024),
                "-timeout", f"{int(seconds) + 30}s",
                transport=transport, remote=(HOST, port), inf=inf, trace_messages=False)
    sipp.args += ["-stf", str(sipp.workdir / "stat.csv")]
    cpu0 = time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Watch() as watch:
        await sipp.start()
        run = await sipp.wait(seconds + 60)
    cpu = time.process_time() - cpu0
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime
                                                            + children0.ru_stime)
    stats = _stats(sipp.workdir / "stat.csv")
    sipp.cleanup()
    created = int(stats.get("TotalCallCreated", 0) or 0)
    step = Step(rate, float(stats.get("CallRate(C)", 0) or 0), calls,
                int(stats.get("SuccessfulCall(C)", 0) or 0),
                int(stats.get("FailedCall(C)", 0) or 0),
                int(stats.get("Retransmissions(C)", 0) or 0), run.rtt)
    step.late = sum(1 for r in run.rtt if r > late_ms)
    step.loop_lag_ms, step.gc_pause_ms = watch.lag * 1000, watch.gc_pause * 1000
    step.cpu_us = cpu / max(created, 1) * 1e6
    step.sipp_cpu_us = sipp_cpu / max(created, 1) * 1e6
    step.answers = {k: v - answers_before.get(k, 0) for k, v in server.stats.responses.items()
                    if v - answers_before.get(k, 0)}
    if run.returncode not in (0, 1):
        print(f"    sipp exit {run.returncode}: {run.errors[-300:]!r}", file=sys.stderr)
    return step


def report(mode: str, step: Step, client: SipNpClient | None) -> None:
    others = {k: v for k, v in step.answers.items() if k != 302}
    print(f"  {mode:13s} {step.rate:5d}/s{'*' if step.retried else ' '} "
          f"offered {step.offered:5.0f}/s  ok {step.successful:5d}/{step.calls:<5d} "
          f"failed {step.failed:3d} retrans {step.retransmissions:4d} late {step.late:4d}  "
          f"answer ms p50 {step.pct(50):3.0f} p99 {step.pct(99):4.0f} "
          f"max {max(step.rtt, default=float('nan')):4.0f}  "
          f"cpu us/call {step.cpu_us:3.0f} (sipp {step.sipp_cpu_us:3.0f})  "
          f"stall ms: loop {step.loop_lag_ms:3.0f} gc {step.gc_pause_ms:3.0f}"
          f"{'  other answers ' + str(others) if others else ''}"
          f"  {'PASS' if step.passed() else 'fail'}", flush=True)
    if client is not None and not step.passed():
        print(f"    NP client outcomes so far: {dict(client.stats.outcomes)}", flush=True)


async def bench_mode(mode: str, args: argparse.Namespace, nums: list[str]) -> list[Step]:
    decisions = {n: RedirectDecision.ported("4477001" + n[-3:]) for n in nums}
    np_sipp: Sipp | None = None
    client: SipNpClient | None = None

    if mode == "cached":
        async def lookup(number: str) -> RedirectDecision:
            return decisions[number]
    elif mode == "uncached":
        delay = args.delay_ms / 1000

        async def lookup(number: str) -> RedirectDecision:
            await asyncio.sleep(delay)
            return RedirectDecision.ported("4477001" + number[-3:])
    else:
        np_sipp = await Sipp("np_server.xml", "-buff_size", str(4 * 1024 * 1024),
                             trace_messages=False).start(listening=True)
        client = SipNpClient([NpTarget(HOST, np_sipp.port, "udp", timeout=2)],
                             local_host=HOST)
        await client.start()

        async def lookup(number: str) -> RedirectDecision:
            assert client is not None
            r = await client.query(number)
            if r.outcome is NpOutcome.PORTED:
                return RedirectDecision.ported(r.routing_number)
            if r.outcome is NpOutcome.NOT_PORTED:
                return RedirectDecision.not_ported()
            if r.outcome is NpOutcome.NOT_FOUND:
                return RedirectDecision.not_found()
            return RedirectDecision.unavailable(1)

    server = SipRedirectServer(lookup, RedirectConfig(
        allow=["127.0.0.0/8"], host=HOST, udp_port=0 if not args.tcp else None,
        tcp_port=0 if args.tcp else None, max_in_flight=args.max_in_flight))
    await server.start()
    # what `hlrgw serve` should do once started: move everything allocated so far (modules,
    # configuration, tables) out of the collector's way, so a full collection only walks
    # the objects of calls in flight
    gc.collect()
    gc.freeze()
    inf = "SEQUENTIAL\n" + "\n".join(nums) + "\n"
    steps: list[Step] = []
    transport = "tcp" if args.tcp else "udp"
    try:
        for rate in args.rates:
            step = await run_step(server, rate, args.seconds, args.late_ms, inf, transport)
            report(mode, step, client)
            if not step.passed() and args.retries:
                await asyncio.sleep(2)
                step = await run_step(server, rate, args.seconds, args.late_ms, inf, transport)
                step.retried = True
                report(mode, step, client)
            steps.append(step)
            if not step.passed():
                break
            await asyncio.sleep(1)  # let Timer I end the last transactions
    finally:
        gc.unfreeze()
        await server.close()
        if client is not None:
            await client.close()
        if np_sipp is not None:
            await np_sipp.stop()
            np_sipp.cleanup()
    return steps


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each rate step")
    p.add_argument("--rates", default=DEFAULT_RATES,
                   type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--modes", default="cached,uncached,uncached-sip",
                   type=lambda s: s.split(","))
    p.add_argument("--late-ms", type=float, default=100.0,
                   help="an answer slower than this is late (default 100 ms)")
    p.add_argument("--delay-ms", type=float, default=5.0,
                   help="the 'uncached' lookup's simulated upstream latency")
    p.add_argument("--max-in-flight", type=int, default=20000)
    p.add_argument("--tcp", action="store_true", help="SIP over TCP instead of UDP")
    p.add_argument("--retries", type=int, default=1,
                   help="re-run a failing rate this many times (marked * in the report)")
    args = p.parse_args()
    reason = sipp_missing_reason()
    if reason:
        sys.exit(f"sip_redirect benchmark: {reason}")
    nums = numbers(20000)
    print(f"SIP redirect front end, {'TCP' if args.tcp else 'UDP'} on {HOST}, "
          f"{os.cpu_count()} CPUs shared by SIPp and this process (load average "
          f"{os.getloadavg()[0]:.2f} at start); {args.seconds:g} s per rate; "
          f"late = answer > {args.late_ms:g} ms")
    summary = []
    for mode in args.modes:
        steps = await bench_mode(mode, args, nums)
        good = [s for s in steps if s.passed()]
        best = good[-1] if good else None
        summary.append((mode, best))
    print("\nhighest rate with no failed, retransmitted or late answer (rates tried in "
          "order, up to the first that failed):")
    for mode, best in summary:
        if best is None:
            print(f"  {mode:13s} not even the first rate")
        else:
            rtts = best.rtt
            print(f"  {mode:13s} {best.rate:6d} calls/s  answer p50 {best.pct(50):.0f} ms, "
                  f"p99 {best.pct(99):.0f} ms, mean {statistics.fmean(rtts):.2f} ms "
                  f"({len(rtts)} answers); {1e6 / best.cpu_us:,.0f} calls per CPU-second "
                  f"of this process")


if __name__ == "__main__":
    uvloop.run(main())
