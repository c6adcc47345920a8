"""SIP redirect front end under load: SIPp as the softswitch, rising call rates.

    .venv/bin/python benchmarks/sip_redirect.py [--seconds S] [--rates 500,1000,...]
        [--modes serve-cached,serve-uncached,cached,uncached,uncached-sip] [--late-ms MS]
        [--delay-ms MS] [--tcp] [--retries N] [--max-in-flight N] [--cached-numbers N]

By default against ``hlrgw serve`` as a process (below); the in-process modes run
SipRedirectServer in this process on uvloop (UDP on 127.0.0.1 by default), as ``hlrgw serve``
runs it: one process, one event loop, ``gc.freeze()`` once started.
For every rate, SIPp (tests/sipp/softswitch_bench.xml) places ``rate`` calls per second for
``--seconds``: INVITE for a number, expect a 302 whose Contact carries ``;npdi;rn=+...``,
ACK. A step passes when every call succeeded, SIPp never had to retransmit an INVITE, no
answer took longer than ``--late-ms`` (100 ms by default), and SIPp really offered the rate
(at least 95 % of it). Rates are tried in order and a mode stops at its first failing rate;
a failing rate is run once more (``--retries``, marked ``*``) since the machine may be shared.
The summary gives, per mode, the highest rate that passed, with its p50/p99 answer time.

What the modes mean, honestly:

- ``serve-cached`` and ``serve-uncached`` (the default): the real thing. ``hlrgw simulate``
  (the example network, plus a block of Vodafone UK numbers ported to EE, 07555 6xxxxx) and
  ``hlrgw serve`` (config/demo.toml with ``[sip_redirect]``, UDP or TCP, a customer for
  127.0.0.1 with limits far above the rates tried) run as processes; each INVITE goes
  through the allow-list, the customer's limits, the MNP lookup with its audit row in SQLite,
  and the 302 carries EE's rn from ``[[routing_numbers]]``. ``serve-cached`` asks
  ``--cached-numbers`` numbers the cache holds (one unmeasured pass warms it);
  ``serve-uncached`` asks numbers never asked before, so every call is a live SRI-SM over
  M3UA to the simulated HLR (after an unmeasured warm-up of 500 other numbers). The CPU per
  call is the gateway process's (from /proc). The simulator, SIPp and the gateway share the
  machine's CPUs.

The in-process modes (SipRedirectServer in this process, the lookup a stand-in):

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
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop  # noqa: E402

from gateway.sip.np_client import NpOutcome, NpTarget, SipNpClient  # noqa: E402
from gateway.sip.redirect import (  # noqa: E402
    RedirectClient,
    RedirectConfig,
    RedirectDecision,
    SipRedirectServer,
)
from tests.sipp import HOST, Sipp, free_port, sipp_missing_reason  # noqa: E402

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


class InProcess:
    """The front end under test is a SipRedirectServer of this process."""

    def __init__(self, server: SipRedirectServer) -> None:
        self.server = server

    def port(self, transport: str) -> int:
        port = self.server.udp_port if transport == "udp" else self.server.tcp_port
        assert port is not None
        return port

    def answers(self) -> dict[int, int]:
        return dict(self.server.stats.responses)

    def cpu(self) -> float:
        return time.process_time()


async def run_step(target: InProcess | ServeProcess, rate: int, seconds: float,
                   late_ms: float, inf: str, transport: str) -> Step:
    calls = int(rate * seconds)
    port = target.port(transport)
    answers_before = target.answers()
    sipp = Sipp("softswitch_bench.xml", "-m", str(calls), "-r", str(rate),
                "-l", str(max(1000, rate * 4)), "-trace_rtt", "-rtt_freq", "1",
                "-trace_stat", "-fd", "1", "-buff_size", str(4 * 1024 * 1024),
                "-timeout", f"{int(seconds) + 30}s",
                transport=transport, remote=(HOST, port), inf=inf, trace_messages=False)
    sipp.args += ["-stf", str(sipp.workdir / "stat.csv")]
    cpu0 = target.cpu()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Watch() as watch:
        await sipp.start()
        run = await sipp.wait(seconds + 60)
    cpu = target.cpu() - cpu0
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
    step.answers = {k: v - answers_before.get(k, 0) for k, v in target.answers().items()
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
        async def lookup(number: str, who: RedirectClient) -> RedirectDecision:
            return decisions[number]
    elif mode == "uncached":
        delay = args.delay_ms / 1000

        async def lookup(number: str, who: RedirectClient) -> RedirectDecision:
            await asyncio.sleep(delay)
            return RedirectDecision.ported("4477001" + number[-3:])
    else:
        np_sipp = await Sipp("np_server.xml", "-buff_size", str(4 * 1024 * 1024),
                             trace_messages=False).start(listening=True)
        client = SipNpClient([NpTarget(HOST, np_sipp.port, "udp", timeout=2)],
                             local_host=HOST)
        await client.start()

        async def lookup(number: str, who: RedirectClient) -> RedirectDecision:
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
            target = InProcess(server)
            step = await run_step(target, rate, args.seconds, args.late_ms, inf, transport)
            report(mode, step, client)
            if not step.passed() and args.retries:
                await asyncio.sleep(2)
                step = await run_step(target, rate, args.seconds, args.late_ms, inf, transport)
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

# --------------------------------------------------------------------------- hlrgw serve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "network.example.toml"
#: a block of the example network's Vodafone UK numbers, all ported to EE: every one is a
#: live SRI-SM whose IMSI names EE, answered 302 with EE's rn from [[routing_numbers]]
BENCH_RANGE = """
  [[networks.ranges]]               # benchmarks/sip_redirect.py: 07555 6xxxxx, ported to EE
  prefix = "4475556"
  length = 12
  ported_to = "uk-ee"
"""
_BANNER = re.compile(r"^\s+(?P<name>[a-z0-9-]+)\s+m3ua tcp [\d.]+:(?P<port>\d+).*?RC (?P<rc>\d+)")


def bench_network(directory: Path) -> Path:
    """The example network with :data:`BENCH_RANGE` added to its first network (uk-vodafone)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    first = text.index("[[networks]]")
    second = text.index("[[networks]]", first + 1)
    path = directory / "network.toml"
    path.write_text(text[:second] + BENCH_RANGE + "\n" + text[second:], encoding="utf-8")
    return path


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_numbers(start: int, count: int) -> list[str]:
    return [f"4475556{i:05d}" for i in range(start, start + count)]


class ServeProcess:
    """``hlrgw simulate`` (the example network plus :data:`BENCH_RANGE`) and ``hlrgw serve``
    (config/demo.toml with [sip_redirect] on a free port, the in-process cache with a TTL of
    an hour, SQLite audit) as processes; a customer ``softswitch`` for 127.0.0.1 with limits
    far above any rate tried. What is measured is the gateway process."""

    def __init__(self, directory: Path, transport: str) -> None:
        self.directory = directory
        self.transport = transport
        self.sim: subprocess.Popen[str] | None = None
        self.gw: subprocess.Popen[bytes] | None = None
        self.sip_port = free_port()
        self.http_port = 0

    def port(self, transport: str) -> int:
        return self.sip_port

    def answers(self) -> dict[int, int]:
        return {}  # the gateway does not count SIP answers by status: SIPp's counts stand

    def cpu(self) -> float:
        assert self.gw is not None
        return _proc_cpu(self.gw.pid)

    def start(self) -> None:
        from gateway.demo import demo_config

        network = bench_network(self.directory)
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "gateway", "simulate", "--network", str(network),
             "--ephemeral", "--control-port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        ports: dict[int, int] = {}
        assert self.sim.stdout is not None
        for line in self.sim.stdout:
            m = _BANNER.match(line)
            if m:
                ports[int(m["rc"])] = int(m["port"])
            if line.startswith("ready"):
                break
        else:
            raise RuntimeError("hlrgw simulate did not start")
        self.http_port = free_port()
        config = self.directory / "gateway.toml"
        config.write_text(demo_config(
            ports, http_port=self.http_port, admin_port=free_port(),
            storage_url=f"sqlite:///{self.directory / 'hlrgw.db'}",
            traces_dir=self.directory / "traces", log_level="warning", log_format="json",
            cache_ttl=3600.0, sip_redirect_port=self.sip_port), encoding="utf-8")
        env = {**os.environ, "HLRGW_ADMIN_TOKEN": "bench-admin-token-0123456789"}
        subprocess.run([sys.executable, "-m", "gateway", "customers", "add", "softswitch",
                        "--services", "mnp", "--rate", "1000000", "--burst", "1000000",
                        "--inflight", "1000000", "--config", str(config)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        log = (self.directory / "gateway.log").open("ab")
        self.gw = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                                    str(config)], cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.gw.poll() is not None:
                raise RuntimeError(f"hlrgw serve exited; see {self.directory}/gateway.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz",
                                            timeout=1) as r:
                    doc = json.loads(r.read())
                    if doc["ready"] and all(doc["linksets"].values()):
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError("hlrgw serve did not get ready")

    def stop(self) -> None:
        for proc in (self.gw, self.sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def bench_serve(mode: str, args: argparse.Namespace) -> list[Step]:
    """``serve-cached``: every call asks a number whose answer the gateway's cache holds
    (warmed by one pass first). ``serve-uncached``: every call asks a number never asked
    before: a live MNP lookup, i.e. SRI-SM over M3UA to the simulated HLR."""
    transport = "tcp" if args.tcp else "udp"
    directory = Path(tempfile.mkdtemp(prefix="hlrgw-sipbench-"))
    gw = ServeProcess(directory, transport)
    steps: list[Step] = []
    try:
        gw.start()
        warm = bench_numbers(90000, args.cached_numbers)
        if mode == "serve-cached":
            inf = "SEQUENTIAL\n" + "\n".join(warm) + "\n"
            step = await run_step(gw, 500, len(warm) / 500, 10_000, inf, transport)
            print(f"  {mode:13s} cache warmed: {step.successful}/{step.calls} lookups, "
                  f"p99 {step.pct(99):.0f} ms", flush=True)
        used = 0
        if mode == "serve-uncached":  # the first live lookups after start open the paths
            fresh = bench_numbers(89000, 500)
            step = await run_step(gw, 100, 5, 10_000, "SEQUENTIAL\n" + "\n".join(fresh)
                                  + "\n", transport)
            print(f"  {mode:13s} warm-up: {step.successful}/{step.calls} live lookups "
                  "(numbers not used again)", flush=True)
        for rate in args.rates:
            for attempt in range(1 + args.retries):
                if mode == "serve-cached":
                    nums = warm
                else:  # numbers never asked before: each call a live lookup
                    need = int(rate * args.seconds)
                    if used + need > 90000:
                        print(f"  {mode}: out of fresh numbers at {rate}/s", flush=True)
                        return steps
                    nums = bench_numbers(used, need)
                    used += need
                inf = "SEQUENTIAL\n" + "\n".join(nums) + "\n"
                step = await run_step(gw, rate, args.seconds, args.late_ms, inf, transport)
                step.retried = attempt > 0
                report(mode, step, None)
                if step.passed():
                    break
                await asyncio.sleep(2)
            steps.append(step)
            if not step.passed():
                break
            await asyncio.sleep(1)
    finally:
        gw.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return steps


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each rate step")
    p.add_argument("--rates", default=DEFAULT_RATES,
                   type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--modes", default="serve-cached,serve-uncached",
                   type=lambda s: s.split(","),
                   help="serve-cached, serve-uncached (hlrgw serve + hlrgw simulate as "
                   "processes; the default), cached, uncached, uncached-sip (in-process)")
    p.add_argument("--cached-numbers", type=int, default=5000,
                   help="distinct numbers the serve-cached mode warms and then asks")
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
          f"{os.cpu_count()} CPUs shared by SIPp, the gateway and the simulator (load average "
          f"{os.getloadavg()[0]:.2f} at start); {args.seconds:g} s per rate; "
          f"late = answer > {args.late_ms:g} ms")
    summary = []
    for mode in args.modes:
        if mode.startswith("serve-"):
            steps = await bench_serve(mode, args)
        else:
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
            who = "of hlrgw serve" if mode.startswith("serve-") else "of this process"
            print(f"  {mode:13s} {best.rate:6d} calls/s  answer p50 {best.pct(50):.0f} ms, "
                  f"p99 {best.pct(99):.0f} ms, mean {statistics.fmean(rtts):.2f} ms "
                  f"({len(rtts)} answers); {1e6 / best.cpu_us:,.0f} calls per CPU-second "
                  f"{who}")


if __name__ == "__main__":
    uvloop.run(main())
