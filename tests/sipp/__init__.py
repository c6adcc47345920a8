"""Run SIPp (Debian ``sip-tester``) scenarios from the tests and the benchmark.

The scenario files sit beside this module. :class:`Sipp` starts one sipp process on
127.0.0.1 with free ports (its SIP port, and the RTP-echo and control ports sipp always
opens), in a scratch directory where it writes its message trace, error log and response
times; :meth:`Sipp.wait` returns a :class:`SippRun` with the exit status and those files.

Without sipp the calling test is skipped with the reason, unless ``HLRGW_REQUIRE_SIPP=1``
(exported by ``scripts/test`` when sipp is installed): then it fails.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


def scenario(name: str) -> Path:
    return HERE / name


def sipp_missing_reason() -> str | None:
    if shutil.which("sipp") is None:
        return "sipp is not installed (Debian: apt-get install -y sip-tester)"
    return None


def require_sipp() -> None:
    """Skip (or, with HLRGW_REQUIRE_SIPP=1, fail) the calling test when sipp is missing."""
    reason = sipp_missing_reason()
    if reason is not None:
        if os.environ.get("HLRGW_REQUIRE_SIPP") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if _bindable(port, socket.SOCK_STREAM):
            return port
    raise RuntimeError("no free port")


def _free_media_port() -> int:
    """sipp's RTP echo takes port P and P+2 (audio, video) over UDP."""
    for _ in range(200):
        port = random.randrange(20000, 60000, 2)
        if all(_bindable(p, socket.SOCK_DGRAM) for p in (port, port + 1, port + 2, port + 3)):
            return port
    raise RuntimeError("no free media port pair")


def port_in_use(port: int, transport: str) -> bool:
    return not _bindable(port, socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM)


@dataclass
class SippRun:
    """What one sipp run left behind."""

    returncode: int
    stdout: str
    messages: str  # -trace_msg: every message sent and received
    errors: str  # -trace_err: unexpected messages, failed regexps...
    log: str  # -trace_logs: what the scenarios' <log> actions wrote
    workdir: Path
    rtt: list[float] = field(default_factory=list)  # -trace_rtt: response times, ms

    def received(self, start: str) -> list[str]:
        """The messages sipp received whose first line starts with ``start``."""
        return [m for m in _messages(self.messages, "received") if m.startswith(start)]

    def sent(self, start: str) -> list[str]:
        return [m for m in _messages(self.messages, "sent") if m.startswith(start)]

    def report(self) -> str:
        return (f"sipp exit {self.returncode}\n--- errors\n{self.errors[-4000:]}\n"
                f"--- log\n{self.log[-2000:]}\n"
                f"--- stdout\n{self.stdout[-3000:]}\n--- messages\n{self.messages[-6000:]}")


def _messages(trace: str, direction: str) -> list[str]:
    """Split a -trace_msg file into messages of one direction (first line first)."""
    out = []
    for block in re.split(r"^-{10,} .*$", trace, flags=re.M):
        head, _, body = block.strip("\n").partition("\n")
        if direction in head:
            out.append(body.strip("\n"))
    return out


class Sipp:
    """One sipp process.

    ``Sipp("np_server.xml", "-m", "1")`` plays the scenario as given; ``port`` is sipp's own
    SIP port (chosen free when not given), ``remote`` the peer of a UAC scenario,
    ``local_ip`` the loopback address sipp sends from (127.0.0.2: a source outside an
    allow-list of 127.0.0.1).
    """

    def __init__(self, scenario_name: str, *args: str, transport: str = "udp",
                 remote: tuple[str, int] | None = None, port: int | None = None,
                 inf: str | None = None, trace_messages: bool = True,
                 local_ip: str = HOST) -> None:
        require_sipp()
        self.scenario = scenario(scenario_name)
        self.transport = transport
        self.port = port if port is not None else free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="hlrgw-sipp-"))
        self.args = list(args)
        self.remote = remote
        self.inf = inf
        self.trace_messages = trace_messages  # off at load: tracing costs sipp more than SIP
        self.local_ip = local_ip  # the source address of what sipp sends
        self.proc: asyncio.subprocess.Process | None = None

    def command(self) -> list[str]:
        cmd = ["sipp"]
        if self.remote is not None:
            cmd.append(f"{self.remote[0]}:{self.remote[1]}")
        cmd += ["-sf", str(self.scenario), "-i", self.local_ip, "-p", str(self.port),
                "-t", "t1" if self.transport == "tcp" else "u1",
                "-mp", str(_free_media_port()), "-cp", str(free_port()),
                "-nostdin", "-trace_err", "-error_file", str(self.workdir / "errors.log"),
                "-trace_logs", "-log_file", str(self.workdir / "log.log")]
        if self.trace_messages:
            cmd += ["-trace_msg", "-message_file", str(self.workdir / "messages.log")]
        if self.inf is not None:
            path = self.workdir / "inject.csv"
            path.write_text(self.inf)
            cmd += ["-inf", str(path)]
        return cmd + self.args

    async def start(self, listening: bool = False) -> Sipp:
        """Start sipp; with ``listening`` (a UAS), return once its SIP port is bound."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.command(), cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        if listening:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not port_in_use(self.port, self.transport):
                if self.proc.returncode is not None or loop.time() > deadline:
                    run = await self.wait(1)
                    raise RuntimeError(f"sipp did not start listening\n{run.report()}")
                await asyncio.sleep(0.02)
        return self

    async def wait(self, timeout: float = 20) -> SippRun:
        """Wait for sipp to end (killing it after ``timeout`` s) and collect its output."""
        assert self.proc is not None
        try:
            stdout, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.kill()
            stdout, _ = await self.proc.communicate()
        return SippRun(
            self.proc.returncode if self.proc.returncode is not None else -1,
            stdout.decode(errors="replace"), _read(self.workdir / "messages.log"),
            _read(self.workdir / "errors.log"), _read(self.workdir / "log.log"), self.workdir,
            self._rtt())

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def _rtt(self) -> list[float]:
        out: list[float] = []
        for path in self.workdir.glob("*_rtt.csv"):
            for line in path.read_text().splitlines()[1:]:
                cells = line.split(";")
                if len(cells) >= 2:
                    try:
                        out.append(float(cells[1]))
                    except ValueError:
                        continue
        return out

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
