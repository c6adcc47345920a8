"""In-process HLRs for the engine, admin and trace tests: each is an AssociationServer (SGP)
on a free loopback port whose payloads a MapResponder answers, plus a writer of gateway
configuration files pointing at them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.sigtran.association import AssociationServer
from gateway.sigtran.map_responder import Invocation, MapResponder, Reply, ReplyError
from protocols import map as map_
from protocols.m3ua_asp import AspConfig
from protocols.tbcd import Imsi, isdn

GW = "447700900000"
MSC = "447700990001"
TOKEN = "admin-token-for-tests-0123456789"


def number_of(inv: Invocation) -> str:
    arg = inv.argument
    return arg.msisdn.digits if hasattr(arg, "msisdn") else arg.subscriber_identity.digits


def answer(inv: Invocation, imsi_prefix: str = "23415"):
    """Numbers ending 0 are absent, 1 unknown, 6 system failure; others connected."""
    number = number_of(inv)
    last = number[-1]
    if last == "0":
        return ReplyError(map_.ErrorCode.ABSENT_SUBSCRIBER_SM, map_.AbsentSubscriberSmParam(
            absent_subscriber_diagnostic_sm=map_.AbsentSubscriberDiagnosticSM.IMSI_DETACHED))
    if last == "1":
        return ReplyError(map_.ErrorCode.UNKNOWN_SUBSCRIBER, map_.UnknownSubscriberParam(
            unknown_subscriber_diagnostic=map_.UnknownSubscriberDiagnostic.IMSI_UNKNOWN))
    if last == "6":
        return ReplyError(map_.ErrorCode.SYSTEM_FAILURE)
    imsi = Imsi((imsi_prefix + number)[:15])
    if inv.opcode == map_.Opcode.ANY_TIME_INTERROGATION:
        return Reply(map_.AnyTimeInterrogationRes(map_.SubscriberInfo(
            location_information=map_.LocationInformation(vlr_number=isdn(MSC)),
            subscriber_state=map_.SubscriberState.ASSUMED_IDLE)))
    return Reply(map_.RoutingInfoForSmRes(imsi, map_.LocationInfoWithLmsi(
        network_node_number=isdn(MSC))))


@dataclass
class Hlr:
    """One in-process HLR: its server, responder and what it saw."""

    name: str
    rc: int
    server: AssociationServer
    responder: MapResponder
    seen: list[tuple[float, str]] = field(default_factory=list)  # (loop time, number)
    delay: float = 0.0
    handler: Callable[[Invocation], object] | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def begun(self) -> int:
        return self.responder.stats.begun


@contextlib.asynccontextmanager
async def hlrs(*names: str, rc_base: int = 100) -> AsyncIterator[dict[str, Hlr]]:
    """Start one HLR per name (routing contexts rc_base, rc_base+1, ...)."""
    out: dict[str, Hlr] = {}
    loop = asyncio.get_running_loop()
    for i, name in enumerate(names):
        rc = rc_base + i

        def make(hlr_ref: list[Hlr]):
            def handle(inv: Invocation):
                h = hlr_ref[0]
                h.seen.append((loop.time(), number_of(inv)))
                if h.handler is not None:
                    return h.handler(inv)
                if h.delay:
                    async def later():
                        await asyncio.sleep(h.delay)
                        return answer(inv)
                    return later()
                return answer(inv)
            return handle

        ref: list[Hlr] = []
        responder = MapResponder(make(ref))
        server = AssociationServer(asp_config=AspConfig(routing_context=rc),
                                   on_payload=responder.on_payload, name=name)
        await server.start()
        hlr = Hlr(name, rc, server, responder)
        ref.append(hlr)
        out[name] = hlr
    try:
        yield out
    finally:
        for h in out.values():
            await h.server.close()


def association(name: str, hlr: Hlr, *, dpc: int = 2, extra: str = "") -> str:
    return f'''
[[associations]]
name = "{name}"
transport = "tcp"
remote_addresses = ["127.0.0.1"]
remote_port = {hlr.port}
routing_context = {hlr.rc}
opc = 1
dpc = {dpc}
heartbeat = 0
reconnect_max = 0.1
{extra}
'''


def linkset(name: str, members: list[str], extra: str = "") -> str:
    quoted = ", ".join(f'"{m}"' for m in members)
    return f'''
[[linksets]]
name = "{name}"
associations = [{quoted}]
{extra}
'''


def route(name: str, prefixes: list[str] | None, methods: list[str], extra: str = "") -> str:
    head = "default = true" if prefixes is None else \
        "prefixes = [" + ", ".join(f'"{p}"' for p in prefixes) + "]"
    body = "".join(f"\n  [[routes.methods]]\n  {m}\n" for m in methods)
    return f'''
[[routes]]
name = "{name}"
{head}
{extra}
{body}'''


def base(*, timer_m: float = 2.0, admin_port: int = 0, traces: Path | None = None,
         extra: str = "") -> str:
    trace_dir = f'\n[traces]\ndirectory = "{traces}"\nexpire_after = 3600\n' if traces else ""
    return f'''
[sccp]
global_title = "{GW}"

[map]
smsc_address = "{GW}"
timer_m = {timer_m}

[admin]
listen = "127.0.0.1"
port = {admin_port}
token_env = "HLRGW_TEST_ADMIN_TOKEN"

[logging]
level = "warning"
format = "console"
{trace_dir}
{extra}
'''


def write(path: Path, *parts: str) -> Path:
    path.write_text("".join(parts))
    return path
