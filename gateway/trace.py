"""Signalling traces: the M3UA DATA of a link, a route or one number, written to a pcap that
Wireshark dissects (M3UA -> SCCP -> TCAP -> GSM MAP) even when the link runs over TCP.

Each DATA message is wrapped with scapy in IP / SCTP / an SCTP DATA chunk of payload protocol
id 3 (M3UA, RFC 4666 §1.4.7), with the association's real addresses and ports and one TSN
sequence per association and direction; the M3UA message is the one on the wire (the
association's routing context and the Protocol Data sent or received).

What a trace takes:

- **link** (an association or a link set by name): every DATA on it;
- **route**: the dialogues of numbers that route there (:mod:`gateway.routing`);
- **number**: the dialogues of one number, matched on the MAP MSISDN of the invoke, else
  the SCCP called or calling digits; the answers are matched on the TCAP transaction ids.

Nothing is decoded unless a route or number trace is running, and nothing at all when no
trace runs: the association's ``tap`` is None then.

Trace files live in a private directory (created mode 0700, files 0600), are offered only to
clients on the same host (:mod:`gateway.admin`) and are deleted ``expire_after`` seconds after
they were written.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.errors import CodecError
from protocols.tbcd import Imsi

from .routing import InvalidNumber, normalize_number

__all__ = ["MessageNumbers", "TraceError", "TraceInfo", "TraceKind", "TraceManager",
           "TraceState", "number_of_message"]

log = logging.getLogger(__name__)

_PREFIX = "trace-"


class TraceKind(enum.StrEnum):
    LINK = "link"
    ROUTE = "route"
    NUMBER = "number"


class TraceState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TraceError(ValueError):
    """A trace cannot start (unknown target, bad duration, directory unusable)."""


@dataclass(slots=True)
class TraceInfo:
    """A trace as the admin API shows it."""

    id: str
    kind: TraceKind
    target: str
    seconds: float
    started: float  # epoch seconds
    ends: float
    expires: float
    file: str
    state: TraceState = TraceState.RUNNING
    packets: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        size = None
        try:
            size = os.stat(self.file).st_size
        except OSError:
            pass
        return {"id": self.id, "kind": self.kind.value, "target": self.target,
                "seconds": self.seconds, "started": self.started, "ends": self.ends,
                "expires": self.expires, "state": self.state.value, "packets": self.packets,
                "bytes": size, "error": self.error}


@dataclass(slots=True)
class MessageNumbers:
    """The numbers one DATA message names."""

    msisdn: set[str] = field(default_factory=set)  # the MAP argument's MSISDN
    called: str | None = None  # SCCP called party digits
    calling: str | None = None  # SCCP calling party digits
    tcap: Any = None  # the TCAP message (None when it does not decode)

    def all(self) -> set[str]:
        return self.msisdn | {d for d in (self.called, self.calling) if d}

    def subscriber(self) -> set[str]:
        """The subscriber's number: the MAP MSISDN, else the called GT of a Begin (answers
        are matched on their transaction ids, never on addresses)."""
        if self.msisdn:
            return self.msisdn
        return {self.called} if self.called and type(self.tcap) is tcap.Begin else set()


def number_of_message(pd: m3ua.ProtocolData) -> MessageNumbers:
    """The numbers a DATA message names (MAP MSISDN, SCCP called and calling digits) and its
    TCAP message."""
    out = MessageNumbers()
    try:
        msg = sccp.decode(pd.data)
    except CodecError:
        return out
    out.called = getattr(getattr(msg, "called", None), "digits", None) or None
    out.calling = getattr(getattr(msg, "calling", None), "digits", None) or None
    try:
        t = tcap.decode(msg.data)
    except (CodecError, AttributeError):
        return out
    out.tcap = t
    for c in getattr(t, "components", None) or ():
        if type(c) is tcap.Invoke and isinstance(c.opcode, int) and c.parameter:
            for version in (3, 2, 1):
                try:
                    arg = map_.decode_argument(c.opcode, c.parameter, version)
                except (CodecError, KeyError, ValueError):
                    continue
                for attr in ("msisdn", "subscriber_identity"):
                    value = getattr(arg, attr, None)
                    if isinstance(value, Imsi):
                        continue
                    digits = getattr(value, "digits", None)
                    if digits:
                        out.msisdn.add(digits)
                break
    return out


def _load_scapy() -> None:
    """Import what the writer needs (a few hundred ms the first time: run in a thread)."""
    import scapy.layers.inet  # noqa: F401
    import scapy.layers.inet6  # noqa: F401
    import scapy.layers.sctp  # noqa: F401
    import scapy.utils  # noqa: F401

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


class _Writer:
    """One pcap file, written packet by packet with scapy."""

    def __init__(self, path: Path) -> None:
        from scapy.utils import PcapWriter  # imported only when a trace starts

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._pcap = PcapWriter(self._file, sync=True)  # link type from the first packet: IP
        self._tsn: dict[tuple[int, bool], int] = {}

    def write(self, assoc: Any, outgoing: bool, pd: m3ua.ProtocolData) -> None:
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.sctp import SCTP, SCTPChunkData

        rc = getattr(getattr(assoc, "config", None), "asp", None)
        rc = getattr(rc, "routing_context", None)
        raw = m3ua.encode(m3ua.Data(routing_context=rc, protocol_data=pd))
        local, remote = _addresses(assoc)
        src, dst = (local, remote) if outgoing else (remote, local)
        key = (id(assoc), outgoing)
        tsn = self._tsn.get(key, 0) + 1
        self._tsn[key] = tsn
        ip = IPv6(src=src[0], dst=dst[0]) if ":" in src[0] or ":" in dst[0] else \
            IP(src=src[0], dst=dst[0])
        packet = ip / SCTP(sport=src[1], dport=dst[1]) / SCTPChunkData(
            tsn=tsn, stream_id=1, stream_seq=(tsn - 1) & 0xFFFF, proto_id=3, data=raw,
            beginning=1, ending=1)
        packet.time = time.time()
        self._pcap.write(packet)

    def close(self) -> None:
        try:
            self._pcap.close()
        except Exception:  # noqa: BLE001 - closing must not fail the caller
            self._file.close()


def _addresses(assoc: Any) -> tuple[tuple[str, int], tuple[str, int]]:
    tr = getattr(assoc, "transport", None)
    local = getattr(tr, "sockname", None) if tr is not None else None
    remote = getattr(tr, "peername", None) if tr is not None else None
    cfg = getattr(assoc, "config", None)
    if not remote and cfg is not None:
        remote = (cfg.host, cfg.port)
    if not local:
        local = ("127.0.0.1", 0)
    return (str(local[0]), int(local[1])), (str(remote[0]), int(remote[1]))


@dataclass(slots=True, eq=False)
class _Trace:
    info: TraceInfo
    writer: _Writer
    match: Callable[[Any, bool, m3ua.ProtocolData], bool]
    tids: set[bytes] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class TraceManager:
    """Runs traces over the engine's associations (see the module docstring).

    ``engine`` needs ``find_link(name)``, ``config``, ``all_associations()``,
    ``association_listeners`` and a ``linkset_of``-free interface: see
    :class:`gateway.engine.Engine`.
    """

    def __init__(self, engine: Any, directory: str | os.PathLike[str], *,
                 expire_after: float = 86400.0, max_seconds: float = 600.0) -> None:
        self.engine = engine
        self.directory = Path(directory)
        self.expire_after = expire_after
        self.max_seconds = max_seconds
        self._traces: dict[str, _Trace] = {}
        self._done: dict[str, TraceInfo] = {}
        self._running: list[_Trace] = []
        self._sweeper: asyncio.TimerHandle | None = None
        engine.association_listeners.append(self._new_association)

    # ------------------------------------------------------------------ directory

    def _ensure_directory(self) -> None:
        d = self.directory
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = d.stat()
            if st.st_uid != os.getuid():
                raise TraceError(f"trace directory {d} belongs to another user")
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.chmod(d, 0o700)
                log.warning("trace directory %s was mode %o; now 0700", d,
                            stat.S_IMODE(st.st_mode))
        except OSError as exc:
            raise TraceError(f"trace directory {d}: {exc.strerror or exc}") from exc

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete trace files older than ``expire_after``; returns the ids deleted."""
        now = time.time() if now is None else now
        gone = []
        try:
            entries = list(self.directory.glob(f"{_PREFIX}*.pcap"))
        except OSError:
            return gone
        running = {t.info.file for t in self._running}
        for p in entries:
            try:
                if str(p) in running or now - p.stat().st_mtime < self.expire_after:
                    continue
                p.unlink()
            except OSError:
                continue
            tid = p.stem.rsplit("-", 1)[-1]
            self._done.pop(tid, None)
            gone.append(tid)
        return gone

    def start_sweeping(self) -> None:
        """Sweep now and then every minute (or every ``expire_after`` if shorter)."""
        self.sweep()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(min(60.0, self.expire_after), self.start_sweeping)

    # ------------------------------------------------------------------ traces

    async def start(self, kind: TraceKind | str, target: str, seconds: float) -> TraceInfo:
        """Start a trace of ``kind`` on ``target`` for ``seconds``; raises TraceError."""
        kind = TraceKind(kind)
        if not 0 < seconds <= self.max_seconds:
            raise TraceError(f"seconds must be in (0, {self.max_seconds:g}]")
        match = self._matcher(kind, target)
        self._ensure_directory()
        await asyncio.to_thread(_load_scapy)  # the loop keeps serving meanwhile
        self.sweep()
        tid = secrets.token_hex(8)
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        path = self.directory / f"{_PREFIX}{stamp}-{tid}.pcap"
        writer = _Writer(path)
        info = TraceInfo(tid, kind, target, seconds, now, now + seconds,
                         now + seconds + self.expire_after, str(path))
        trace = _Trace(info, writer, match)
        if kind is not TraceKind.LINK:
            trace.match = self._dialogue_matcher(trace, match)
        self._traces[tid] = trace
        self._running.append(trace)
        trace.timer = asyncio.get_running_loop().call_later(seconds, self.stop, tid)
        self._install()
        log.info("trace %s of %s %s for %g s -> %s", tid, kind.value, target, seconds, path)
        return info

    def stop(self, tid: str) -> TraceInfo | None:
        """End a running trace now."""
        trace = self._traces.pop(tid, None)
        if trace is None:
            return self.get(tid)
        if trace.timer is not None:
            trace.timer.cancel()
        if trace in self._running:
            self._running.remove(trace)
        trace.writer.close()
        if trace.info.state is TraceState.RUNNING:
            trace.info.state = TraceState.DONE
        trace.info.ends = min(trace.info.ends, time.time())
        trace.info.expires = trace.info.ends + self.expire_after
        self._done[tid] = trace.info
        self._install()
        return trace.info

    def get(self, tid: str) -> TraceInfo | None:
        t = self._traces.get(tid)
        if t is not None:
            return t.info
        info = self._done.get(tid)
        if info is not None and not os.path.exists(info.file):
            self._done.pop(tid, None)
            return None
        return info

    def list(self) -> list[TraceInfo]:
        return [t.info for t in self._traces.values()] + [
            i for i in list(self._done.values()) if os.path.exists(i.file)]

    def delete(self, tid: str) -> bool:
        self.stop(tid)
        info = self._done.pop(tid, None)
        if info is None:
            return False
        try:
            os.unlink(info.file)
        except OSError:
            pass
        return True

    @property
    def running(self) -> int:
        return len(self._running)

    async def close(self) -> None:
        for tid in list(self._traces):
            self.stop(tid)
        if self._sweeper is not None:
            self._sweeper.cancel()
        try:
            self.engine.association_listeners.remove(self._new_association)
        except ValueError:
            pass

    # ------------------------------------------------------------------ matching

    def _matcher(self, kind: TraceKind, target: str) -> Callable[..., bool]:
        engine = self.engine
        if kind is TraceKind.LINK:
            if not engine.find_link(target):
                raise TraceError(f"no association or link set named {target!r}")

            def on_link(assoc: Any, outgoing: bool, pd: m3ua.ProtocolData) -> bool:
                return any(a is assoc for a in engine.find_link(target))
            return on_link
        if kind is TraceKind.ROUTE:
            if engine.config.route(target) is None:
                raise TraceError(f"no route named {target!r}")

            def on_route(numbers: MessageNumbers) -> bool:
                for n in numbers.subscriber():
                    try:
                        if engine.route_of(n) == target:
                            return True
                    except InvalidNumber:
                        continue
                return False
            return on_route
        try:
            number = normalize_number(target)
        except InvalidNumber as exc:
            raise TraceError(str(exc)) from exc

        def on_number(numbers: MessageNumbers) -> bool:
            return number in numbers.all()
        return on_number

    @staticmethod
    def _dialogue_matcher(trace: _Trace, wanted: Callable[[MessageNumbers], bool]
                          ) -> Callable[[Any, bool, m3ua.ProtocolData], bool]:
        """A message belongs to the trace when it names a wanted number, or carries a
        transaction id of a dialogue that did."""
        tids = trace.tids

        def match(assoc: Any, outgoing: bool, pd: m3ua.ProtocolData) -> bool:
            numbers = number_of_message(pd)
            t = numbers.tcap
            otid = getattr(t, "otid", None)
            dtid = getattr(t, "dtid", None)
            if wanted(numbers):
                if otid is not None:
                    tids.add(otid)
                if dtid is not None:
                    tids.add(dtid)
                return True
            if dtid is not None and dtid in tids:
                if otid is not None:
                    tids.add(otid)  # a Continue: the peer's id names the dialogue from now
                if type(t) in (tcap.End, tcap.Abort):
                    tids.discard(dtid)
                return True
            return False
        return match

    # ------------------------------------------------------------------ tapping

    def _install(self) -> None:
        tap = self._tap if self._running else None
        for assoc in self.engine.all_associations():
            assoc.tap = tap

    def _new_association(self, assoc: Any) -> None:
        if self._running:
            assoc.tap = self._tap

    def _tap(self, assoc: Any, outgoing: bool, pd: m3ua.ProtocolData) -> None:
        for trace in list(self._running):
            try:
                if trace.match(assoc, outgoing, pd):
                    trace.writer.write(assoc, outgoing, pd)
                    trace.info.packets += 1
            except Exception as exc:  # noqa: BLE001 - a trace must never hurt the traffic
                log.exception("trace %s failed; stopping it", trace.info.id)
                trace.info.state = TraceState.FAILED
                trace.info.error = str(exc)
                self.stop(trace.info.id)
