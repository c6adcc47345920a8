"""One M3UA association driven by asyncio: :class:`Association` (client, reconnecting) and
:class:`AssociationServer` (accepting, for the simulator and the tests).

An :class:`Association` owns a transport (:mod:`.transport`) and a sans-IO
:class:`~protocols.m3ua_asp.Asp`. It feeds received bytes to the ASP, writes what the ASP queues
(coalesced into one write per event-loop turn), schedules the ASP's timers (T(ack) and
heartbeat) with ``loop.call_at`` and turns the ASP's events into callbacks:

- ``on_payload(assoc, data)`` for each DATA (:class:`protocols.m3ua.Data`) received;
- ``on_state(assoc, state)`` for each ASP state change (:class:`~protocols.m3ua_asp.AspState`);
- ``on_event(assoc, event)`` for every other event (NTFY, ERR, SSNM, peer lost, ...).

A client association connects, runs ASP Up / ASP Active (RFC 4666 §4.3.4.1, §4.3.4.3) and, when
the transport breaks or the peer is lost, reconnects after an exponential backoff with jitter,
capped (:func:`backoff_delay`); the backoff starts over once an association reached
ASP-ACTIVE. :meth:`Association.close` is graceful: ASP Inactive, then ASP Down
(§4.3.4.4, §4.3.4.2), then the transport is closed.

The clock given to the ASP is the event loop's (``loop.time()``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from protocols.m3ua import Data, PointCode, ProtocolData
from protocols.m3ua_asp import (
    Asp,
    AspConfig,
    AspNotActive,
    AspState,
    AspStateChanged,
    DestinationState,
    Event,
    PayloadReceived,
    PeerLost,
    ProtocolViolation,
    Role,
)

from .transport import Transport, TransportKind, open_transport, serve_transport

__all__ = [
    "AssociationConfig",
    "AssociationStats",
    "AssociationDown",
    "Association",
    "AssociationServer",
    "backoff_delay",
    "PayloadCallback",
    "StateCallback",
    "EventCallback",
    "TapCallback",
]

log = logging.getLogger(__name__)

PayloadCallback = Callable[["Association", Data], None]
StateCallback = Callable[["Association", AspState], None]
EventCallback = Callable[["Association", Event], None]
#: ``tap(assoc, outgoing, protocol_data)``: each DATA sent (True) or received (False)
TapCallback = Callable[["Association", bool, ProtocolData], None]


class AssociationDown(AspNotActive):
    """DATA was offered while the association has no connected transport."""


def backoff_delay(attempt: int, initial: float, factor: float, cap: float, jitter: float,
                  rng: random.Random | None = None) -> float:
    """Delay before reconnection attempt ``attempt`` (0-based): ``initial * factor**attempt``
    capped at ``cap``, then spread by ±``jitter`` (a fraction) and capped again."""
    base = min(cap, initial * factor ** min(attempt, 64))
    if jitter > 0:
        base *= 1.0 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, min(cap, base))


@dataclass(slots=True)
class AssociationConfig:
    """Where a client association connects and how it behaves.

    ``asp`` configures the M3UA ASP (routing context, timers, heartbeat). Reconnection waits
    ``reconnect_initial * reconnect_factor**n`` seconds, at most ``reconnect_max``, spread by
    ±``reconnect_jitter``. :meth:`Association.close` waits ``close_timeout`` seconds at most for
    the ASP Inactive / ASP Down Acks (default: ``2 * asp.t_ack``).
    """

    host: str = "127.0.0.1"
    port: int = 2905
    transport: TransportKind = TransportKind.TCP
    asp: AspConfig = field(default_factory=AspConfig)
    role: Role = Role.ASP
    name: str = ""
    local_addr: tuple[str, int] | None = None
    connect_timeout: float = 5.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    reconnect_factor: float = 2.0
    reconnect_jitter: float = 0.25
    close_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.reconnect_initial <= 0 or self.reconnect_max < self.reconnect_initial:
            raise ValueError("need 0 < reconnect_initial <= reconnect_max")
        if self.reconnect_factor < 1:
            raise ValueError("reconnect_factor must be >= 1")
        if not 0 <= self.reconnect_jitter < 1:
            raise ValueError("reconnect_jitter must be in [0, 1)")
        self.transport = TransportKind(self.transport)


@dataclass(slots=True)
class AssociationStats:
    """Counters over the association's whole life (all its connections)."""

    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    payloads_in: int = 0
    payloads_out: int = 0
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    peer_lost: int = 0
    protocol_violations: int = 0


class Association:
    """One M3UA association over TCP or SCTP: an :class:`~protocols.m3ua_asp.Asp` plus its
    transport, timers and callbacks. See the module docstring."""

    def __init__(self, config: AssociationConfig | None = None, *,
                 on_payload: PayloadCallback | None = None,
                 on_state: StateCallback | None = None,
                 on_event: EventCallback | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config if config is not None else AssociationConfig()
        self.name = self.config.name or f"{self.config.host}:{self.config.port}"
        self.on_payload = on_payload
        self.on_event = on_event
        self.tap: TapCallback | None = None  # signalling traces (gateway.trace); None: off
        self.stats = AssociationStats()
        self._state_listeners: list[StateCallback] = [on_state] if on_state else []
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # bound lazily
        self._asp: Asp | None = None
        self._transport: Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._server: AssociationServer | None = None
        self._closing = False
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._lost: asyncio.Future[BaseException | None] | None = None
        self._progress: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._seen_in = 0
        self._active_since: float | None = None
        self._was_active = False
        self._last_rtt: float | None = None
        self._connecting = False
        self.next_attempt_at: float | None = None  # loop time of the next reconnection

    def __repr__(self) -> str:
        return f"<Association {self.name} {self.state.name}>"

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> AspState:
        """The ASP state (ASP-DOWN when there is no connection)."""
        asp = self._asp
        return asp.state if asp is not None else AspState.DOWN

    @property
    def asp(self) -> Asp | None:
        """The state machine of the current connection, if any."""
        return self._asp

    @property
    def transport(self) -> Transport | None:
        return self._transport

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def rtt(self) -> float | None:
        """Last heartbeat round-trip time in seconds (kept across reconnections)."""
        asp = self._asp
        if asp is not None and asp.rtt is not None:
            self._last_rtt = asp.rtt
        return self._last_rtt

    @property
    def uptime(self) -> float:
        """Seconds since the association became ASP-ACTIVE (0.0 when it is not)."""
        if self._active_since is None or self._loop is None:
            return 0.0
        return self._loop.time() - self._active_since

    def add_state_listener(self, cb: StateCallback) -> None:
        self._state_listeners.append(cb)

    def remove_state_listener(self, cb: StateCallback) -> None:
        try:
            self._state_listeners.remove(cb)
        except ValueError:
            pass

    def start(self) -> None:
        """Client side: start connecting (in the running loop) and keep reconnecting."""
        if self._task is not None or self._server is not None:
            return
        if self._closing:
            raise RuntimeError(f"association {self.name} is closed")
        self._bind_loop()
        self._task = self._loop.create_task(self._run(), name=f"m3ua-{self.name}")

    def send(self, protocol_data: ProtocolData) -> None:
        """Send one DATA message (RFC 4666 §3.3.1) now (the write is coalesced with others of
        the same loop turn). Raises :class:`~protocols.m3ua_asp.AspNotActive` (or its subclass
        :class:`AssociationDown`) unless the association is ASP-ACTIVE."""
        asp = self._asp
        if asp is None or self._transport is None:
            raise AssociationDown(f"association {self.name} is not connected")
        asp.send_data(protocol_data, self._loop.time())
        self.stats.payloads_out += 1
        if self.tap is not None:
            self.tap(self, True, protocol_data)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def send_payload(self, opc: int, dpc: int, si: int, ni: int, mp: int, sls: int,
                     payload: bytes) -> None:
        """:meth:`send` from the Protocol Data's fields (the MAP client's and responder's
        path: no :class:`~protocols.m3ua.ProtocolData` is built unless :attr:`tap` wants
        one)."""
        asp = self._asp
        if asp is None or self._transport is None:
            raise AssociationDown(f"association {self.name} is not connected")
        asp.send_payload(opc, dpc, si, ni, mp, sls, payload, self._loop.time())
        self.stats.payloads_out += 1
        if self.tap is not None:
            self.tap(self, True, ProtocolData(opc, dpc, si, ni, mp, sls, payload))
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    async def wait_state(self, state: AspState, timeout: float | None = None) -> bool:
        """Wait until the ASP is in ``state``; False on timeout."""
        return await self._wait_until(lambda: self.state is state, timeout)

    async def wait_active(self, timeout: float | None = None) -> bool:
        """Wait until the ASP is ASP-ACTIVE; False on timeout."""
        return await self.wait_state(AspState.ACTIVE, timeout)

    def destination_available(self, pc: int) -> bool:
        """What SSNM said of point code ``pc`` on the current connection (False when the
        association is down)."""
        asp = self._asp
        return asp is not None and not asp.closed and asp.destination_available(pc)

    def destination_state(self, pc: int) -> DestinationState | None:
        asp = self._asp
        return asp.destination_state(pc) if asp is not None else None

    def audit_destinations(self, point_codes: Iterable[PointCode | int]) -> None:
        """Send DAUD (RFC 4666 §4.5.3)."""
        asp = self._require_asp()
        asp.audit_destinations(point_codes, self._loop.time())
        self._service()

    def announce_destinations(self, point_codes: Iterable[PointCode | int],
                              state: DestinationState) -> None:
        """Server side: DUNA/DAVA/DRST (RFC 4666 §4.5.1)."""
        asp = self._require_asp()
        asp.announce_destinations(point_codes, state, self._loop.time())
        self._service()

    def reset(self) -> None:
        """Drop the transport at once (no M3UA procedure); a client then reconnects."""
        tr = self._transport
        if tr is not None:
            tr.abort()

    async def close(self, timeout: float | None = None) -> None:
        """Graceful close: ASP Inactive and ASP Down (each under T(ack), RFC 4666 §4.3.4.4,
        §4.3.4.2), then the transport is closed and reconnection stops."""
        if self._closed:
            return
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        loop = self._loop
        asp, tr = self._asp, self._transport
        if self._connecting and self._task is not None:
            self._task.cancel()  # still connecting: nothing to take down gracefully
        if loop is not None and asp is not None and tr is not None and not tr.is_closing():
            if timeout is None:
                timeout = self.config.close_timeout
            if timeout is None:
                timeout = 2 * asp.config.t_ack
            if not asp.closed and (asp.state is not AspState.DOWN or asp.awaiting):
                asp.stop(loop.time())
                self._service()
                await self._wait_until(lambda: asp.stopped or asp.closed or self._is_lost(),
                                       timeout)
            self._flush()
            tr.close()
            if self._lost is not None and not self._lost.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self._lost), 1.0)
                except TimeoutError:
                    tr.abort()
        elif tr is not None:
            tr.abort()
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._cancel_timer()
        self._closed = True

    # ------------------------------------------------------------------ transport listener

    def transport_data(self, data: bytes) -> None:
        asp = self._asp
        if asp is None:
            return
        self.stats.bytes_in += len(data)
        asp.receive_bytes(data, self._loop.time())
        self._service()

    def transport_message(self, data: bytes, stream_id: int) -> None:
        asp = self._asp
        if asp is None:
            return
        self.stats.bytes_in += len(data)
        asp.receive_datagram(data, self._loop.time(), stream_id)
        self._service()

    def transport_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        self.stats.disconnects += 1
        self._cancel_timer()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        asp = self._asp
        if asp is not None:
            if exc is not None:
                log.info("M3UA %s: transport lost: %s", self.name, exc)
            if asp.rtt is not None:
                self._last_rtt = asp.rtt
            asp.connection_lost(self._loop.time())
            self._dispatch_events(asp)
            self._count_in(asp)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(exc)
        if self._server is not None:
            self._server._forget(self)
            self._closed = True
        self._poke()

    # ------------------------------------------------------------------ internals

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()

    def _require_asp(self) -> Asp:
        asp = self._asp
        if asp is None or self._transport is None:
            raise AssociationDown(f"association {self.name} is not connected")
        return asp

    def _is_lost(self) -> bool:
        return self._lost is None or self._lost.done()

    def _attach(self, server: AssociationServer, transport: Transport) -> None:
        """Server side: take over an accepted transport."""
        self._bind_loop()
        self._server = server
        self._transport = transport
        self._lost = self._loop.create_future()
        self._asp = Asp(self.config.role, self.config.asp)
        self._seen_in = 0
        self.stats.connects += 1
        self._asp.start(self._loop.time())
        self._service()

    async def _run(self) -> None:
        """Client side: connect, run until the transport is lost, back off, reconnect."""
        loop = self._loop
        assert loop is not None and self._wake is not None
        cfg = self.config
        attempt = 0
        while not self._closing:
            asp = Asp(cfg.role, cfg.asp)
            self._asp = asp
            self._seen_in = 0
            self._was_active = False
            self._lost = loop.create_future()
            self._connecting = True
            try:
                transport = await asyncio.wait_for(
                    open_transport(cfg.transport, cfg.host, cfg.port, self,
                                   local_addr=cfg.local_addr),
                    cfg.connect_timeout)
            except (OSError, TimeoutError) as exc:
                self._connecting = False
                self._asp = None
                self.stats.connect_failures += 1
                delay = self._backoff(attempt)
                attempt += 1
                log.info("M3UA %s: connect to %s:%d failed (%s); retry in %.3f s", self.name,
                         cfg.host, cfg.port, exc or type(exc).__name__, delay)
                await self._pause(delay)
                continue
            self._connecting = False
            if self._closing:
                transport.abort()
                break
            if not self._lost.done():
                self._transport = transport
            self.stats.connects += 1
            log.info("M3UA %s: connected to %s over %s", self.name, transport.peername,
                     transport.kind.value)
            asp.start(loop.time())
            self._service()
            await asyncio.shield(self._lost)
            if self._closing:
                break
            if self._was_active:
                attempt = 0
            delay = self._backoff(attempt)
            attempt += 1
            log.info("M3UA %s: association down; reconnecting in %.3f s", self.name, delay)
            await self._pause(delay)
        self.next_attempt_at = None

    def _backoff(self, attempt: int) -> float:
        cfg = self.config
        return backoff_delay(attempt, cfg.reconnect_initial, cfg.reconnect_factor,
                             cfg.reconnect_max, cfg.reconnect_jitter, self._rng)

    async def _pause(self, delay: float) -> None:
        assert self._loop is not None and self._wake is not None
        self.next_attempt_at = self._loop.time() + delay
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except TimeoutError:
            pass

    def _service(self) -> None:
        """After the ASP was fed: deliver its events, flush its output, re-arm its timer."""
        asp = self._asp
        if asp is None:
            return
        self._dispatch_events(asp)
        self._count_in(asp)
        if self._asp is asp:
            self._flush()
            self._arm_timer()

    def _count_in(self, asp: Asp) -> None:
        n = asp.messages_received
        if n != self._seen_in:
            self.stats.messages_in += n - self._seen_in
            self._seen_in = n

    def _flush(self) -> None:
        self._flush_handle = None
        asp, tr = self._asp, self._transport
        if asp is None or tr is None:
            return
        out = asp.data_to_send()
        if not out:
            return
        if tr.is_closing():
            return
        self.stats.messages_out += len(out)
        before = tr.bytes_sent
        tr.send_many(out)
        self.stats.bytes_out += tr.bytes_sent - before

    def _arm_timer(self) -> None:
        asp = self._asp
        when = asp.get_timer() if asp is not None else None
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        due = self._timer_at
        self._timer = None
        self._timer_at = None
        asp = self._asp
        if asp is None:
            return
        now = self._loop.time()
        if due is not None and now < due:  # the loop may fire up to its resolution early
            now = due
        asp.handle_timer(now)
        self._service()

    def _dispatch_events(self, asp: Asp) -> None:
        on_event = self.on_event
        while (ev := asp.next_event()) is not None:
            if type(ev) is PayloadReceived:  # the hot path
                self.stats.payloads_in += 1
                if self.tap is not None:
                    self.tap(self, False, ev.data.protocol_data)
                cb = self.on_payload
                if cb is not None:
                    try:
                        cb(self, ev.data)
                    except Exception:
                        log.exception("M3UA %s: on_payload failed", self.name)
                continue
            if isinstance(ev, AspStateChanged):
                self._state_changed(ev)
            elif isinstance(ev, PeerLost):
                self.stats.peer_lost += 1
                log.warning("M3UA %s: peer lost (%s: %s); resetting the transport",
                            self.name, ev.reason.value, ev.detail)
                self._flush()
                self.reset()
            elif isinstance(ev, ProtocolViolation):
                self.stats.protocol_violations += 1
                log.warning("M3UA %s: protocol violation, answered ERR %s: %s", self.name,
                            ev.code, ev.reason)
                if ev.fatal:
                    self._flush()
                    tr = self._transport
                    if tr is not None:
                        tr.close()  # let the ERR go out, then reset
                        self._loop.call_later(1.0, tr.abort)
            if on_event is not None:
                try:
                    on_event(self, ev)
                except Exception:
                    log.exception("M3UA %s: on_event failed", self.name)

    def _state_changed(self, ev: AspStateChanged) -> None:
        if ev.new is AspState.ACTIVE:
            self._active_since = self._loop.time()
            self._was_active = True
        elif ev.old is AspState.ACTIVE:
            self._active_since = None
        log.info("M3UA %s: ASP %s -> %s", self.name, ev.old.name, ev.new.name)
        for cb in list(self._state_listeners):
            try:
                cb(self, ev.new)
            except Exception:
                log.exception("M3UA %s: state listener failed", self.name)
        self._poke()

    def _poke(self) -> None:
        fut = self._progress
        if fut is not None:
            self._progress = None
            if not fut.done():
                fut.set_result(None)

    async def _wait_until(self, pred: Callable[[], bool], timeout: float | None) -> bool:
        if pred():
            return True
        self._bind_loop()
        loop = self._loop
        assert loop is not None
        deadline = None if timeout is None else loop.time() + timeout
        while not pred():
            if self._progress is None:
                self._progress = loop.create_future()
            fut = self._progress
            if deadline is None:
                await asyncio.shield(fut)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return pred()
            try:
                await asyncio.wait_for(asyncio.shield(fut), remaining)
            except TimeoutError:
                return pred()
        return True


class AssociationServer:
    """Accepts M3UA associations (TCP, or SCTP) on ``host:port``; each connection gets an
    :class:`Association` whose ASP plays ``role`` (the SGP by default) with ``asp_config``.

    The callbacks are those of :class:`Association` and receive the accepted association, so
    the simulator answers a payload with ``assoc.send(...)``. ``port=0`` picks a free port
    (:attr:`port` tells which).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 asp_config: AspConfig | None = None, *, role: Role = Role.SGP,
                 transport: TransportKind = TransportKind.TCP, name: str = "sgp",
                 on_payload: PayloadCallback | None = None,
                 on_state: StateCallback | None = None,
                 on_event: EventCallback | None = None,
                 on_accept: Callable[[Association], None] | None = None) -> None:
        self.host = host
        self._port = port
        self.asp_config = asp_config if asp_config is not None else AspConfig()
        self.role = role
        self.transport = TransportKind(transport)
        self.name = name
        self.on_payload = on_payload
        self.on_state = on_state
        self.on_event = on_event
        self.on_accept = on_accept
        self.accepted = 0
        self._server: Any = None
        self._associations: list[Association] = []

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return self._port

    @property
    def associations(self) -> list[Association]:
        """The associations currently connected."""
        return list(self._associations)

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            return
        self._server = await serve_transport(self.transport, self.host, self._port, self._accept)
        if self.transport is TransportKind.TCP:
            self._port = self._server.sockets[0].getsockname()[1]
        else:
            self._port = self._server.port

    async def __aenter__(self) -> AssociationServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _accept(self, transport: Transport) -> Association:
        self.accepted += 1
        peer = transport.peername
        cfg = AssociationConfig(
            host=str(peer[0]) if peer else "?", port=int(peer[1]) if peer else 0,
            transport=self.transport, asp=self.asp_config, role=self.role,
            name=f"{self.name}<{peer[0]}:{peer[1]}>" if peer else self.name)
        assoc = Association(cfg, on_payload=self.on_payload, on_state=self.on_state,
                            on_event=self.on_event)
        self._associations.append(assoc)
        if self.on_accept is not None:
            try:
                self.on_accept(assoc)
            except Exception:
                log.exception("M3UA %s: on_accept failed", self.name)
        assoc._attach(self, transport)
        return assoc

    def _forget(self, assoc: Association) -> None:
        try:
            self._associations.remove(assoc)
        except ValueError:
            pass

    async def wait_active(self, count: int = 1, timeout: float | None = None) -> bool:
        """Wait until ``count`` accepted associations are ASP-ACTIVE; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while sum(a.state is AspState.ACTIVE for a in self._associations) < count:
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def abort(self) -> None:
        """Stop listening and reset every connection at once (a crash, for tests)."""
        self._stop_listening()
        for assoc in list(self._associations):
            assoc.reset()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self._stop_listening()
        await asyncio.gather(*(a.close() for a in list(self._associations)),
                             return_exceptions=True)

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
