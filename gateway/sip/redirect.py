"""The SIP redirect front end: softswitches dip for number portability with an INVITE and
read the ``302 Moved Temporarily`` (RFC 4694 §5.3 "redirect" model, RFC 3261 §8.3).

:class:`SipRedirectServer` listens on UDP and/or TCP. For each INVITE it:

1. absorbs retransmissions: every INVITE goes through an
   :class:`~protocols.sip.transaction.InviteServerTransaction`, so a retransmitted INVITE is
   answered with the response already sent (or the 100 Trying) and never looked up twice;
   a non-2xx final is retransmitted over UDP until the ACK (Timer G/H);
2. refuses sources outside the allow-list (CIDRs) with ``403 Forbidden``; the allow-list
   may name an account for each network (the customer its softswitches query as), which
   the lookup receives in its :class:`RedirectClient` (the longest matching network wins);
3. refuses new work with ``503 Service Unavailable`` and ``Retry-After`` when
   ``max_in_flight`` lookups are already running;
4. reads the number from the Request-URI (``tel:+44...``, or
   ``sip:+44...@host;user=phone``; bare digits count as E.164 when ``assume_e164``): a URI
   scheme other than sip/sips/tel gets ``416``, a user part that is not an E.164 number
   ``484 Address Incomplete``;
5. awaits ``lookup(number, client)`` (E.164 digits, no ``+``; who asked) for a
   :class:`RedirectDecision` and answers it:

   ==================  ===========================================================
   decision            answer
   ==================  ===========================================================
   ``ported(rn)``      302, Contact ``<sip:+CCNUM;npdi;rn=+RN@host;user=phone>``
   ``not_ported()``    302, Contact ``<sip:+CCNUM;npdi@host;user=phone>`` (dipped)
   ``not_found()``     404 Not Found
   ``nowhere()``       604 Does Not Exist Anywhere
   ``invalid()``       484 Address Incomplete
   ``unavailable(s)``  503 Service Unavailable, ``Retry-After: s``
   ``forbidden()``     403 Forbidden (e.g. the client's account may not query)
   ``failed()``        502 Bad Gateway (the network behind the gateway failed)
   ``timed_out()``     504 Server Time-out (the network behind did not answer)
   ``error()``         500 Server Internal Error (no answer can be formed)
   ==================  ===========================================================

   A decision's ``reason`` becomes the reason phrase of the status line (§7.2).

   A lookup that raises is answered ``500``; one that outlasts ``lookup_timeout``,
   ``504 Server Time-out`` (§21.5.5: the server it consulted did not answer in time).

The Contact's host is ``contact_host`` when set, else the Request-URI's host and port, so
the switch routes the call on toward where it was going; ``contact_scheme`` chooses ``sip``,
``tel`` or the Request-URI's own scheme (``auto``).

Other requests: ``CANCEL`` of a pending INVITE answers 200 and ends the INVITE with 487
(§9.2); ``OPTIONS`` (the keep-alive softswitches send) gets 200 with Allow; ``ACK`` goes to
its transaction; anything else gets 405. These are answered statelessly (§8.2.7), as are
the 403 and the overload 503, so refused and excess traffic costs no transaction state.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from protocols.errors import CodecError
from protocols.sip.message import (
    Address,
    Method,
    Request,
    Response,
    encode,
    make_response,
)
from protocols.sip.transaction import (
    InviteServerTransaction,
    TimedOut,
    Timers,
    server_key,
)
from protocols.sip.uri import SipUri, TelUri, Uri, digits_of, np_sip_uri, np_tel_uri

from .timers import TimerQueue
from .transport import (
    DEFAULT_UDP_BUFFER,
    Flow,
    TcpServer,
    TransportStats,
    UdpEndpoint,
    open_udp,
)

__all__ = [
    "DecisionKind",
    "RedirectClient",
    "RedirectDecision",
    "RedirectConfig",
    "RedirectStats",
    "SipRedirectServer",
    "Lookup",
]

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, OPTIONS"


class DecisionKind(enum.StrEnum):
    """What the gateway's MNP lookup decided for a number."""

    PORTED = "ported"  # 302 with rn and npdi
    NOT_PORTED = "not_ported"  # 302 with npdi, no rn
    NOT_FOUND = "not_found"  # 404
    NOWHERE = "nowhere"  # 604 Does Not Exist Anywhere
    INVALID = "invalid"  # 484 Address Incomplete
    UNAVAILABLE = "unavailable"  # 503 with Retry-After
    FORBIDDEN = "forbidden"  # 403 Forbidden
    FAILED = "failed"  # 502 Bad Gateway
    TIMED_OUT = "timed_out"  # 504 Server Time-out
    ERROR = "error"  # 500 Server Internal Error


@dataclass(slots=True, frozen=True)
class RedirectDecision:
    """The answer for one number. Build with the class methods."""

    kind: DecisionKind
    routing_number: str | None = None
    rn_context: str | None = None
    retry_after: int | None = None
    reason: str | None = None

    @classmethod
    def ported(cls, routing_number: str, rn_context: str | None = None) -> RedirectDecision:
        """Ported to the network of ``routing_number`` (E.164 digits, ``+`` optional; with
        ``rn_context`` a local routing number, RFC 4694 §4)."""
        return cls(DecisionKind.PORTED, routing_number, rn_context)

    @classmethod
    def not_ported(cls) -> RedirectDecision:
        return cls(DecisionKind.NOT_PORTED)

    @classmethod
    def not_found(cls, reason: str | None = None) -> RedirectDecision:
        return cls(DecisionKind.NOT_FOUND, reason=reason)

    @classmethod
    def nowhere(cls, reason: str | None = None) -> RedirectDecision:
        return cls(DecisionKind.NOWHERE, reason=reason)

    @classmethod
    def invalid(cls, reason: str | None = None) -> RedirectDecision:
        return cls(DecisionKind.INVALID, reason=reason)

    @classmethod
    def unavailable(cls, retry_after: int = 5, reason: str | None = None) -> RedirectDecision:
        return cls(DecisionKind.UNAVAILABLE, retry_after=retry_after, reason=reason)

    @classmethod
    def forbidden(cls, reason: str | None = None) -> RedirectDecision:
        """403 (§21.4.3): refused, and asking again will not help."""
        return cls(DecisionKind.FORBIDDEN, reason=reason)

    @classmethod
    def failed(cls, reason: str | None = None) -> RedirectDecision:
        """502 Bad Gateway (§21.5.3): what the gateway asked failed."""
        return cls(DecisionKind.FAILED, reason=reason)

    @classmethod
    def timed_out(cls, reason: str | None = None) -> RedirectDecision:
        """504 Server Time-out (§21.5.5): what the gateway asked did not answer in time."""
        return cls(DecisionKind.TIMED_OUT, reason=reason)

    @classmethod
    def error(cls, reason: str | None = None) -> RedirectDecision:
        """500 Server Internal Error (§21.5.1): no answer can be formed."""
        return cls(DecisionKind.ERROR, reason=reason)


@dataclass(slots=True, frozen=True)
class RedirectClient:
    """Who sent an INVITE: the source address and port, the transport (``udp``/``tcp``),
    and the account its allow-list entry names (None for a plain list of networks)."""

    address: str
    port: int
    transport: str
    account: str | None = None


Lookup = Callable[[str, RedirectClient], Awaitable[RedirectDecision]]

_STATUS = {DecisionKind.PORTED: 302, DecisionKind.NOT_PORTED: 302,
           DecisionKind.NOT_FOUND: 404, DecisionKind.NOWHERE: 604,
           DecisionKind.INVALID: 484, DecisionKind.UNAVAILABLE: 503,
           DecisionKind.FORBIDDEN: 403, DecisionKind.FAILED: 502,
           DecisionKind.TIMED_OUT: 504, DecisionKind.ERROR: 500}


@dataclass(slots=True)
class RedirectConfig:
    """The knobs of the redirect front end (see the module docstring).

    ``allow``: source networks (CIDR) that may query: the customer list of this interface;
    required, an empty list refuses everyone (``0.0.0.0/0`` opens it). A mapping of network
    to account name says, besides, whose softswitches each network holds (the lookup gets it
    as :attr:`RedirectClient.account`; the longest matching network wins). ``udp_port`` /
    ``tcp_port``: None to not listen on that transport, 0 for any free port.
    ``max_in_flight``: lookups running at once before new INVITEs get 503.
    ``retry_after``: seconds in that 503. ``lookup_timeout``: seconds before 504 (None: no
    bound). ``assume_e164``: read a user part of bare digits as an E.164 number.
    ``udp_buffer``: socket buffer size asked for the UDP socket (see
    :func:`~gateway.sip.transport.open_udp`). ``timers``: RFC 3261 T1/T2/T4 and the 100
    Trying delay.
    """

    allow: Iterable[str] | Mapping[str, str | None]
    host: str = "127.0.0.1"
    udp_port: int | None = 5060
    tcp_port: int | None = None
    max_in_flight: int = 1000
    retry_after: int = 5
    lookup_timeout: float | None = 5.0
    contact_host: str | None = None
    contact_scheme: str = "auto"
    assume_e164: bool = True
    udp_buffer: int | None = DEFAULT_UDP_BUFFER
    timers: Timers = field(default_factory=Timers)

    def __post_init__(self) -> None:
        self.allow = dict(self.allow) if isinstance(self.allow, Mapping) else tuple(self.allow)
        for cidr in self.allow:
            ipaddress.ip_network(cidr, strict=False)  # raises ValueError
        if self.udp_port is None and self.tcp_port is None:
            raise ValueError("listen on UDP, TCP or both")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.contact_scheme not in ("auto", "sip", "tel"):
            raise ValueError(f"contact_scheme must be auto, sip or tel, not "
                             f"{self.contact_scheme!r}")


@dataclass(slots=True)
class RedirectStats:
    """What the front end did."""

    invites: int = 0
    retransmissions: int = 0  # retransmitted INVITEs absorbed by a transaction
    lookups: int = 0
    lookup_errors: int = 0
    lookup_timeouts: int = 0
    refused: int = 0  # 403: source not in the allow-list
    overloaded: int = 0  # 503: max_in_flight reached
    ack_timeouts: int = 0  # Timer H: a final answer never ACKed
    responses: dict[int, int] = field(default_factory=dict)  # status -> count (first sends)


@dataclass(slots=True, eq=False)
class _Entry:
    tx: InviteServerTransaction
    flow: Flow
    key: tuple
    to_tag: str
    task: asyncio.Task[None] | None = None
    timer_at: float | None = None  # the transaction's next deadline, in self._timers
    timed_out: bool = False


class SipRedirectServer:
    """The SIP redirect front end; see the module docstring.

    ``lookup`` is awaited with the number's E.164 digits and returns a
    :class:`RedirectDecision`.
    """

    def __init__(self, lookup: Lookup, config: RedirectConfig) -> None:
        self.lookup = lookup
        self.config = config
        self.stats = RedirectStats()
        self.udp: UdpEndpoint | None = None
        self.tcp: TcpServer | None = None
        self.in_flight = 0
        self._allow: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network,
                                str | None]] = []
        self._allowed: dict[str, tuple[bool, str | None]] = {}
        self._set_allow(config)
        self._entries: dict[tuple, _Entry] = {}
        self._prefix = secrets.token_hex(4)
        self._counter = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: TimerQueue | None = None

    def _set_allow(self, config: RedirectConfig) -> None:
        accounts = config.allow if isinstance(config.allow, Mapping) else {}
        nets = [(ipaddress.ip_network(c, strict=False), accounts.get(c)) for c in config.allow]
        # longest prefix first: the first match is the most specific entry
        self._allow = sorted(nets, key=lambda n: -n[0].prefixlen)
        self._allowed = {}

    def reconfigure(self, config: RedirectConfig) -> None:
        """Apply ``config`` while running: the allow-list, the limits, timeouts and Contact
        settings take effect for the next request. The listening address, ports and buffer
        stay as started (a restart changes those)."""
        self.config = config
        self._set_allow(config)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._timers = TimerQueue(self._loop, self._on_timer)
        cfg = self.config
        if cfg.udp_port is not None:
            self.udp = await open_udp(cfg.host, cfg.udp_port, self._on_message,
                                      buffer_size=cfg.udp_buffer)
        if cfg.tcp_port is not None:
            self.tcp = TcpServer(self._on_message)
            await self.tcp.start(cfg.host, cfg.tcp_port)

    async def close(self) -> None:
        for entry in list(self._entries.values()):
            if entry.task is not None:
                entry.task.cancel()
        self._entries.clear()
        if self._timers is not None:
            self._timers.close()
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            await self.tcp.close()

    async def __aenter__(self) -> SipRedirectServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def udp_port(self) -> int | None:
        return None if self.udp is None else self.udp.local[1]

    @property
    def tcp_port(self) -> int | None:
        return None if self.tcp is None else self.tcp.port

    @property
    def transactions(self) -> int:
        """Server transactions held (answering, or absorbing retransmissions)."""
        return len(self._entries)

    @property
    def transport_stats(self) -> list[TransportStats]:
        return [s.stats for s in (self.udp, self.tcp) if s is not None]

    # ------------------------------------------------------------------ requests

    def _tag(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:x}"

    def _allowed_source(self, ip: str) -> tuple[bool, str | None]:
        """(may ``ip`` query?, the account of the most specific network holding it)."""
        found = self._allowed.get(ip)
        if found is None:
            try:
                addr = ipaddress.ip_address(ip.split("%", 1)[0])
            except ValueError:
                addr = None
            found = (False, None)
            if addr is not None:
                for net, account in self._allow:
                    if addr.version == net.version and addr in net:
                        found = (True, account)
                        break
            if len(self._allowed) >= 4096:
                self._allowed.clear()
            self._allowed[ip] = found
        return found

    def _on_message(self, message: Request | Response, flow: Flow) -> None:
        if not isinstance(message, Request):
            return  # responses: we never send requests on this interface
        now = self._now()
        if flow.reliable is False:
            # §18.2.1, RFC 3581 §4: note where the request came from in the top Via
            peer = flow.peer
            top = message.via[0]
            stamped = top.received_from(peer[0], peer[1])
            if stamped is not top:
                message.via = (stamped,) + message.via[1:]
        key = server_key(message)
        method = message.method
        if method == Method.ACK:
            entry = self._entries.get(key)
            if entry is not None:
                entry.tx.receive_request(message, now)
                self._drive(entry)
            return
        entry = self._entries.get(key)
        if entry is not None:  # a retransmission
            self.stats.retransmissions += 1
            entry.tx.receive_request(message, now)
            self._drive(entry)
            return
        allowed, account = self._allowed_source(flow.peer[0])
        if not allowed:
            self.stats.refused += 1
            self._stateless(message, flow, 403)
            return
        if method == Method.INVITE:
            self._on_invite(message, flow, key, now, account)
        elif method == Method.CANCEL:
            self._on_cancel(message, flow, key, now)
        elif method == Method.OPTIONS:
            self._stateless(message, flow, 200, headers=(("Allow", ALLOW),
                                                        ("Accept", "application/sdp")))
        else:
            self._stateless(message, flow, 405, headers=(("Allow", ALLOW),))

    def _stateless(self, request: Request, flow: Flow, status: int, *,
                   headers: tuple[tuple[str, str], ...] = ()) -> None:
        response = make_response(request, status, to_tag=self._tag(), headers=headers)
        self._count(status)
        try:
            flow.send(encode(response))
        except OSError as exc:
            log.debug("cannot answer %s %s: %s", request.method, status, exc)

    def _count(self, status: int) -> None:
        r = self.stats.responses
        r[status] = r.get(status, 0) + 1

    def _on_invite(self, request: Request, flow: Flow, key: tuple, now: float,
                   account: str | None = None) -> None:
        self.stats.invites += 1
        cfg = self.config
        if self.in_flight >= cfg.max_in_flight:
            self.stats.overloaded += 1
            self._stateless(request, flow, 503,
                            headers=(("Retry-After", str(cfg.retry_after)),))
            return
        tx = InviteServerTransaction(request, now, reliable=flow.reliable, timers=cfg.timers)
        entry = _Entry(tx, flow, key, self._tag())
        self._entries[key] = entry
        number, status = self._number(request.uri)
        if number is None:
            self._respond(entry, make_response(request, status, to_tag=entry.to_tag))
            return
        self.in_flight += 1
        self.stats.lookups += 1
        assert self._loop is not None
        peer = flow.peer
        client = RedirectClient(peer[0], peer[1], "tcp" if flow.reliable else "udp", account)
        entry.task = self._loop.create_task(self._answer(entry, number, client))
        self._drive(entry)

    def _number(self, uri: Uri) -> tuple[str | None, int]:
        """The E.164 digits in the Request-URI, or (None, the status refusing it)."""
        if isinstance(uri, TelUri):
            sub = uri.subscriber
        elif isinstance(uri, SipUri):
            try:
                sub = uri.subscriber
            except CodecError:  # user=phone with a malformed number
                return None, 484
        else:
            return None, 416
        if sub is None:
            return None, 484
        digits = sub.digits
        if not (digits.isdigit() and digits.isascii() and 1 <= len(digits) <= 15):
            return None, 484
        if not sub.is_global and not (self.config.assume_e164 and sub.phone_context is None):
            return None, 484
        return digits, 0

    async def _answer(self, entry: _Entry, number: str, client: RedirectClient) -> None:
        cfg = self.config
        request = entry.tx.request
        assert request is not None  # held until the final answer
        timeout = None
        if cfg.lookup_timeout is not None:
            assert self._loop is not None
            timeout = self._loop.call_later(cfg.lookup_timeout, self._lookup_timeout, entry)
        try:
            decision = await self.lookup(number, client)
            response = self._response(request, number, decision, entry.to_tag)
        except asyncio.CancelledError:
            if not entry.timed_out:
                raise  # CANCEL or close: whoever cancelled answers
            self.stats.lookup_timeouts += 1
            response = make_response(request, 504, to_tag=entry.to_tag)
        except Exception:
            self.stats.lookup_errors += 1
            log.exception("SIP redirect lookup of %s failed", number)
            response = make_response(request, 500, to_tag=entry.to_tag)
        finally:
            self.in_flight -= 1
            entry.task = None
            if timeout is not None:
                timeout.cancel()
        self._respond(entry, response)

    def _lookup_timeout(self, entry: _Entry) -> None:
        if entry.task is not None:
            entry.timed_out = True
            entry.task.cancel()

    def _response(self, request: Request, number: str, decision: RedirectDecision,
                  to_tag: str) -> Response:
        status = _STATUS[decision.kind]
        if status != 302:
            headers: tuple[tuple[str, str], ...] = ()
            if decision.kind is DecisionKind.UNAVAILABLE:
                headers = (("Retry-After", str(decision.retry_after
                                               if decision.retry_after is not None
                                               else self.config.retry_after)),)
            return make_response(request, status, decision.reason, to_tag=to_tag,
                                 headers=headers)
        rn = decision.routing_number
        contact = Address(self._contact_uri(request.uri, number, rn, decision.rn_context))
        return make_response(request, 302, to_tag=to_tag, contact=(contact,))

    def _contact_uri(self, ruri: Uri, number: str, rn: str | None,
                     rn_context: str | None) -> Uri:
        cfg = self.config
        scheme = cfg.contact_scheme
        if scheme == "auto":
            scheme = "tel" if isinstance(ruri, TelUri) else "sip"
        if rn is not None and rn_context is None:
            rn = "+" + digits_of(rn).replace(" ", "")
        if scheme == "tel":
            return np_tel_uri(number, rn, rn_context=rn_context)
        if cfg.contact_host is not None:
            host, port = cfg.contact_host, None
        elif isinstance(ruri, SipUri):
            host, port = ruri.host, ruri.port
        else:
            host, port = cfg.host, None
        return np_sip_uri(number, rn, host, port=port, rn_context=rn_context)

    def _on_cancel(self, request: Request, flow: Flow, key: tuple, now: float) -> None:
        """§9.2: 200 to the CANCEL; the INVITE, when still unanswered, ends with 487."""
        entry = self._entries.get(key[:-1] + (Method.INVITE,))
        if entry is None:
            self._stateless(request, flow, 481)
            return
        response = make_response(request, 200, to_tag=entry.to_tag)
        self._count(200)
        try:
            flow.send(encode(response))
        except OSError:
            pass
        request = entry.tx.request
        if not entry.tx.answered and request is not None:
            if entry.task is not None:
                entry.task.cancel()
            self._respond(entry, make_response(request, 487, to_tag=entry.to_tag))

    # ------------------------------------------------------------------ driving

    def _now(self) -> float:
        assert self._loop is not None, "SipRedirectServer.start() was not awaited"
        return self._loop.time()

    def _respond(self, entry: _Entry, response: Response) -> None:
        tx = entry.tx
        if tx.terminated or tx.answered:
            return
        self._count(response.status)
        tx.respond(response, self._now())
        self._drive(entry)

    def _on_timer(self, entry: _Entry) -> None:
        entry.tx.handle_timer(self._now())
        self._drive(entry)

    def _drive(self, entry: _Entry) -> None:
        tx = entry.tx
        for data in tx.data_to_send():
            try:
                entry.flow.send(data)
            except OSError as exc:
                tx.transport_error(self._now(), str(exc) or type(exc).__name__)
                break
        for event in tx.events():
            if isinstance(event, TimedOut):
                self.stats.ack_timeouts += 1
        assert self._timers is not None
        if tx.terminated:
            self._timers.schedule(entry, None)
            if entry.task is not None:
                entry.task.cancel()
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
            return
        self._timers.schedule(entry, tx.get_timer())
