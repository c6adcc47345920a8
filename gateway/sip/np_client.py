"""The SIP number-portability client: ask an NP server whether a number is ported.

``await client.query("447700900123")`` sends an INVITE for the number (Request-URI
``sip:+447700900123@<target>;user=phone``, or ``tel:+447700900123``) through an
:class:`~protocols.sip.transaction.InviteClientTransaction` and reads the answer the way
portability servers give it (RFC 4694 §5.3, the "redirect" model): a ``302 Moved
Temporarily`` whose Contact carries the number with ``rn`` (routing number) and ``npdi``.

It returns one :class:`NpResult` and never raises for what the network does:

==================  ============================================================
outcome             when
==================  ============================================================
``ported``          3xx whose preferred Contact (highest q) has ``rn``; the network
                    is looked up from the rn prefix (:class:`RnTable`)
``not_ported``      3xx whose Contact has no ``rn`` (``npdi`` alone, or nothing)
``not_found``       404 Not Found, 604 Does Not Exist Anywhere
``invalid``         484 Address Incomplete (or a number we cannot send)
``timeout``         no final answer within the target's timeout (or Timer B)
``transport_error`` the target could not be reached (TCP connect, send failure)
``server_error``    5xx (503 with Retry-After also rests the target that long)
``rejected``        any other 4xx/6xx (403, 486, 603...)
``protocol_error``  a 2xx, or a 3xx without a usable Contact
``rate_limited``    every target is at its rate cap; nothing was sent
==================  ============================================================

Each result carries the SIP status and reason phrase (or what happened instead), the
target that gave it and the number of targets tried.

**Targets and fail-over.** Targets are tried in the order configured. ``ported``,
``not_ported``, ``not_found`` and ``invalid`` are answers about the number and end the
query; every other outcome tries the next target, and the last one tried is returned. A
target at its rate cap (token bucket, ``rate`` per second with ``burst``) or resting after
a 503 with Retry-After is skipped without sending.

**Transports.** UDP shares one socket for every UDP target; Timer A retransmits. TCP keeps
one connection per target, opened on first use and again after a loss; queries in flight
on a lost connection end as ``transport_error``. Target host names are resolved once, at
:meth:`SipNpClient.start` (no RFC 3263 NAPTR/SRV).

**Limits.** A query given up at the target timeout is abandoned without a CANCEL (the
server's own timers end its side); a 2xx gets an ACK but no BYE.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protocols.errors import CodecError
from protocols.sip.message import (
    MAGIC_COOKIE,
    Address,
    CSeq,
    Method,
    Request,
    Response,
    Via,
    by_preference,
    encode,
)
from protocols.sip.transaction import (
    InviteClientTransaction,
    ResponseReceived,
    TimedOut,
    Timers,
    TransportFailed,
    ack_for_2xx,
)
from protocols.sip.uri import (
    SipUri,
    TelephoneSubscriber,
    TelUri,
    Uri,
    digits_of,
)

from .timers import TimerQueue
from .transport import (
    DEFAULT_UDP_BUFFER,
    Flow,
    TcpConnection,
    TransportKind,
    UdpEndpoint,
    UdpFlow,
    open_tcp,
    open_udp,
)

__all__ = [
    "NpOutcome",
    "NpResult",
    "NpTarget",
    "RnNetwork",
    "RnTable",
    "TokenBucket",
    "SipNpClient",
    "NpClientStats",
]

log = logging.getLogger(__name__)


class NpOutcome(enum.StrEnum):
    """What an NP query found out; see the module docstring."""

    PORTED = "ported"
    NOT_PORTED = "not_ported"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    TIMEOUT = "timeout"
    TRANSPORT_ERROR = "transport_error"
    SERVER_ERROR = "server_error"
    REJECTED = "rejected"
    PROTOCOL_ERROR = "protocol_error"
    RATE_LIMITED = "rate_limited"


# answers about the number: no other target is asked
DEFINITIVE = frozenset({NpOutcome.PORTED, NpOutcome.NOT_PORTED, NpOutcome.NOT_FOUND,
                        NpOutcome.INVALID})


@dataclass(slots=True)
class NpResult:
    """The answer to one NP query.

    ``routing_number`` is the rn's digits (no ``+``, no separators); ``network`` and
    ``mccmnc`` what :class:`RnTable` gives its prefix (None when no prefix matches); ``npdi``
    whether the Contact carried the dip indicator; ``contact`` the Contact URI as received.
    ``status`` and ``reason`` are the SIP status line of the final answer, or None and a description
    when there was none (timeout, transport error, rate cap).
    """

    outcome: NpOutcome
    number: str
    status: int | None = None
    reason: str = ""
    routing_number: str | None = None
    npdi: bool = False
    network: str | None = None
    contact: str | None = None
    target: str | None = None
    attempts: int = 0
    elapsed: float = 0.0
    mccmnc: str | None = None

    @property
    def ported(self) -> bool:
        return self.outcome is NpOutcome.PORTED


@dataclass(slots=True, frozen=True)
class NpTarget:
    """One NP server.

    ``transport`` is ``udp`` or ``tcp``; ``timeout`` the time (s) to wait for a final answer
    before trying the next target; ``rate``/``burst`` the token-bucket cap on queries sent
    to it (None: no cap; burst defaults to max(1, rate)); ``domain`` the host part of the
    Request-URI (default: ``host``, with the port when it is not 5060); ``uri_scheme``
    ``sip`` (``sip:+CC...@domain;user=phone``) or ``tel`` (``tel:+CC...``).
    """

    host: str
    port: int = 5060
    transport: TransportKind = TransportKind.UDP
    timeout: float = 2.0
    rate: float | None = None
    burst: float | None = None
    name: str = ""
    domain: str | None = None
    uri_scheme: str = "sip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "transport", TransportKind(str(self.transport).lower()))
        if not 0 < self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate must be positive, not {self.rate}")
        if self.uri_scheme not in ("sip", "tel"):
            raise ValueError(f"uri_scheme must be 'sip' or 'tel', not {self.uri_scheme!r}")
        if not self.name:
            object.__setattr__(self, "name", f"{self.transport}:{self.host}:{self.port}")


def _rn_key(rn: str) -> str:
    return digits_of(rn).replace(" ", "")


@dataclass(slots=True, frozen=True)
class RnNetwork:
    """The network a routing number designates: its name and, when known, its MCC+MNC
    (``[[routing_numbers]]`` of the configuration)."""

    name: str
    mccmnc: str | None = None


class RnTable:
    """Routing-number prefix -> the network it designates, longest prefix first
    (``{"44770012": "vodafone-uk"}``, or :class:`RnNetwork` values with the MCC+MNC).
    Prefixes and looked-up rns are compared without ``+``, spaces and visual separators."""

    __slots__ = ("_table", "_lengths")

    def __init__(self, prefixes: Mapping[str, str | RnNetwork] | None = None) -> None:
        self._table = {_rn_key(k): v if isinstance(v, RnNetwork) else RnNetwork(v)
                       for k, v in (prefixes or {}).items()}
        self._lengths = sorted({len(k) for k in self._table}, reverse=True)

    def entry_for(self, rn: str) -> RnNetwork | None:
        """The network of the longest prefix of ``rn``, or None."""
        digits = _rn_key(rn)
        table = self._table
        for n in self._lengths:
            if n <= len(digits):
                found = table.get(digits[:n])
                if found is not None:
                    return found
        return None

    def network_for(self, rn: str) -> str | None:
        """The name of the network of ``rn``, or None."""
        found = self.entry_for(rn)
        return None if found is None else found.name

    def __len__(self) -> int:
        return len(self._table)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`take` spends one."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.tokens = self.burst
        self.stamp: float | None = None

    def take(self, now: float) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class NpClientStats:
    """Queries by outcome, and what the transactions did."""

    queries: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    invites_sent: int = 0
    retransmissions: int = 0
    provisional: int = 0
    stray_responses: int = 0
    skipped_rate: int = 0
    skipped_backoff: int = 0


@dataclass(slots=True, eq=False)
class _Target:
    config: NpTarget
    address: tuple[str, int] | None = None  # resolved
    bucket: TokenBucket | None = None
    rest_until: float = 0.0  # after 503 Retry-After
    connection: TcpConnection | None = None
    connecting: asyncio.Future[TcpConnection] | None = None


@dataclass(slots=True, eq=False)
class _Query:
    tx: InviteClientTransaction
    flow: Flow
    target: _Target
    number: str
    future: asyncio.Future[NpResult] | None  # None once the caller has its answer
    timer_at: float | None = None  # the transaction's next deadline, in client._timers


class SipNpClient:
    """Runs NP queries toward the configured targets; see the module docstring.

    ``local_host``/``local_port``: where the UDP socket binds (port 0: any).
    ``advertise_host``: the host written in Via, From and Contact (default: ``local_host``,
    or when that is a wildcard the address the kernel would use toward the first target).
    ``rn_networks``: rn prefix -> network name. ``timers``: RFC 3261 timers (T1 = 500 ms).
    ``udp_buffer``: socket buffer size asked for the UDP socket.
    """

    def __init__(self, targets: Sequence[NpTarget], *,
                 rn_networks: Mapping[str, str | RnNetwork] | RnTable | None = None,
                 local_host: str = "0.0.0.0", local_port: int = 0,
                 advertise_host: str | None = None, user: str = "hlrgw",
                 timers: Timers | None = None, user_agent: str = "hlr-gateway",
                 udp_buffer: int | None = DEFAULT_UDP_BUFFER) -> None:
        if not targets:
            raise ValueError("SipNpClient needs at least one target")
        self.targets = [_Target(t, bucket=None if t.rate is None else
                                TokenBucket(t.rate, t.burst)) for t in targets]
        self.rn_table = rn_networks if isinstance(rn_networks, RnTable) \
            else RnTable(rn_networks)
        self.local_host = local_host
        self.local_port = local_port
        self.advertise_host = advertise_host
        self.user = user
        self.timers = timers if timers is not None else Timers()
        self.user_agent = user_agent
        self.udp_buffer = udp_buffer
        self.stats = NpClientStats()
        self.udp: UdpEndpoint | None = None
        self._pending: dict[str, _Query] = {}
        self._prefix = secrets.token_hex(4)
        self._counter = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: TimerQueue | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Resolve the targets and open the UDP socket (when a target uses UDP)."""
        loop = self._loop = asyncio.get_running_loop()
        self._timers = TimerQueue(loop, self._on_timer)
        for t in self.targets:
            infos = await loop.getaddrinfo(t.config.host, t.config.port,
                                           type=socket.SOCK_DGRAM)
            t.address = infos[0][4][:2]
        if any(t.config.transport is TransportKind.UDP for t in self.targets):
            self.udp = await open_udp(self.local_host, self.local_port, self._on_message,
                                      buffer_size=self.udp_buffer)
        if self.advertise_host is None:
            self.advertise_host = _advertised(self.local_host, self.targets[0].address)

    async def close(self) -> None:
        """Close the sockets; queries in flight end as ``transport_error``."""
        for q in list(self._pending.values()):
            self._fail(q, "client closed")
        if self.udp is not None:
            self.udp.close()
        for t in self.targets:
            if t.connection is not None:
                t.connection.close()
        if self._timers is not None:
            self._timers.close()

    async def __aenter__(self) -> SipNpClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def in_flight(self) -> int:
        """Transactions still held (awaiting an answer, or absorbing retransmissions)."""
        return len(self._pending)

    def _now(self) -> float:
        assert self._loop is not None, "SipNpClient.start() was not awaited"
        return self._loop.time()

    # ------------------------------------------------------------------ queries

    async def query(self, number: str) -> NpResult:
        """Ask the targets about ``number`` (E.164 digits, ``+`` and separators allowed)."""
        t0 = self._now()
        self.stats.queries += 1
        digits = digits_of(number).replace(" ", "")
        if not digits.isdigit() or not digits.isascii() or len(digits) > 15:
            result = NpResult(NpOutcome.INVALID, digits, reason=f"{number!r} is not an E.164 "
                                                                "number")
            return self._done(result, 0, t0)
        last: NpResult | None = None
        attempts = 0
        rested = False
        for target in self.targets:
            now = self._now()
            if target.rest_until > now:
                self.stats.skipped_backoff += 1
                rested = True
                continue
            if target.bucket is not None and not target.bucket.take(now):
                self.stats.skipped_rate += 1
                continue
            attempts += 1
            last = await self._attempt(target, digits)
            if last.outcome in DEFINITIVE:
                break
        if last is None:
            if rested:
                last = NpResult(NpOutcome.SERVER_ERROR, digits, reason="every target is "
                                "resting after 503 Retry-After or at its rate cap")
            else:
                last = NpResult(NpOutcome.RATE_LIMITED, digits,
                                reason="every target is at its rate cap")
        return self._done(last, attempts, t0)

    def _done(self, result: NpResult, attempts: int, t0: float) -> NpResult:
        result.attempts = attempts
        result.elapsed = self._now() - t0
        out = self.stats.outcomes
        out[result.outcome] = out.get(result.outcome, 0) + 1
        return result

    async def _attempt(self, target: _Target, digits: str) -> NpResult:
        cfg = target.config
        loop = self._loop
        assert loop is not None, "SipNpClient.start() was not awaited"
        try:
            flow = await self._flow(target)
        except (OSError, TimeoutError) as exc:
            return NpResult(NpOutcome.TRANSPORT_ERROR, digits, target=cfg.name,
                            reason=f"cannot reach {cfg.host}:{cfg.port}: "
                                   f"{exc or type(exc).__name__}")
        invite = self._invite(cfg, digits, flow)
        now = loop.time()
        tx = InviteClientTransaction(invite, now, reliable=flow.reliable, timers=self.timers)
        q = _Query(tx, flow, target, digits, loop.create_future())
        assert tx.branch is not None
        self._pending[tx.branch] = q
        self.stats.invites_sent += 1
        self._drive(q)
        deadline = loop.call_at(now + cfg.timeout, self._deadline, q)
        future = q.future
        try:
            return await future
        finally:
            deadline.cancel()
            q.future = None  # the transaction may stay for Timer D; the answer need not
            if future.cancelled():  # the caller gave up: stop retransmitting
                q.tx.terminate()
                self._drive(q)

    # ------------------------------------------------------------------ building

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:x}"

    def _invite(self, cfg: NpTarget, digits: str, flow: Flow) -> Request:
        ident = self._next_id()
        host = self.advertise_host if flow.kind is TransportKind.UDP else flow.local[0]
        assert host is not None
        port = flow.local[1]
        number = "+" + digits
        ruri: Uri
        if cfg.uri_scheme == "tel":
            ruri = TelUri(TelephoneSubscriber(number))
        else:
            domain = cfg.domain
            dport = None
            if domain is None:
                domain = cfg.host
                dport = cfg.port if cfg.port != 5060 else None
            ruri = SipUri(domain, number, dport, (("user", "phone"),))
        via = Via(flow.kind.upper(), host, port, (("branch", MAGIC_COOKIE + ident),
                                                  ("rport", None)))
        me = SipUri(host, self.user)
        contact_params = (("transport", "tcp"),) if flow.kind is TransportKind.TCP else ()
        return Request(
            Method.INVITE, ruri, (via,), Address(me, None, (("tag", ident),)), Address(ruri),
            f"{ident}@{host}", CSeq(1, Method.INVITE), 70,
            (Address(SipUri(host, self.user, port, contact_params)),),
            (("User-Agent", self.user_agent),))

    # ------------------------------------------------------------------ transports

    async def _flow(self, target: _Target) -> Flow:
        cfg = target.config
        assert target.address is not None, "SipNpClient.start() was not awaited"
        if cfg.transport is TransportKind.UDP:
            if self.udp is None or self.udp.closed:
                raise ConnectionError("the UDP socket is closed")
            return UdpFlow(self.udp, target.address)
        conn = target.connection
        if conn is not None and not conn.closed:
            return conn
        connecting = target.connecting
        if connecting is None or connecting.done():  # none yet, or the last one failed
            connecting = target.connecting = asyncio.ensure_future(self._connect(target))
        # queries arriving while it connects share the attempt; one of them being
        # cancelled does not cancel it for the others
        return await asyncio.shield(connecting)

    async def _connect(self, target: _Target) -> TcpConnection:
        assert target.address is not None
        conn = await open_tcp(target.address[0], target.address[1], self._on_message,
                              timeout=target.config.timeout, on_lost=self._connection_lost)
        target.connection = conn
        return conn

    def _connection_lost(self, conn: TcpConnection, exc: BaseException | None) -> None:
        for q in list(self._pending.values()):
            if q.flow is conn:
                self._fail(q, f"connection to {conn.peer[0]}:{conn.peer[1]} lost"
                              + (f": {exc}" if exc else ""))
        for t in self.targets:
            if t.connection is conn:
                t.connection = None

    def _fail(self, q: _Query, detail: str) -> None:
        q.tx.transport_error(self._now(), detail)
        self._drive(q)

    # ------------------------------------------------------------------ incoming

    def _on_message(self, message: Request | Response, flow: Flow) -> None:
        if not isinstance(message, Response):
            return  # NP servers do not send us requests; nothing to answer here
        branch = message.branch
        q = self._pending.get(branch) if branch is not None else None
        if q is None or message.cseq.method != Method.INVITE:
            self.stats.stray_responses += 1
            return
        q.tx.receive_response(message, self._now())
        self._drive(q)

    def _on_timer(self, q: _Query) -> None:
        before = q.tx.retransmissions
        q.tx.handle_timer(self._now())
        self.stats.retransmissions += q.tx.retransmissions - before
        self._drive(q)

    def _deadline(self, q: _Query) -> None:
        self._resolve(q, NpResult(NpOutcome.TIMEOUT, q.number, target=q.target.config.name,
                                  reason=f"no final answer within "
                                         f"{q.target.config.timeout:g} s"))
        q.tx.terminate()
        self._drive(q)

    def _drive(self, q: _Query) -> None:
        """Send what the transaction wants sent, act on its events, keep its timer."""
        tx = q.tx
        for data in tx.data_to_send():
            try:
                q.flow.send(data)
            except OSError as exc:
                tx.transport_error(self._now(), str(exc) or type(exc).__name__)
                break
        for event in tx.events():
            if isinstance(event, ResponseReceived):
                self._on_response(q, event.response)
            elif isinstance(event, TimedOut):
                self._resolve(q, NpResult(NpOutcome.TIMEOUT, q.number,
                                          target=q.target.config.name,
                                          reason="Timer B: no response to the INVITE"))
            elif isinstance(event, TransportFailed):
                self._resolve(q, NpResult(NpOutcome.TRANSPORT_ERROR, q.number,
                                          target=q.target.config.name, reason=event.detail))
        assert self._timers is not None
        if tx.terminated:
            self._timers.schedule(q, None)
            branch = tx.branch
            if branch is not None and self._pending.get(branch) is q:
                del self._pending[branch]
            return
        self._timers.schedule(q, tx.get_timer())

    def _resolve(self, q: _Query, result: NpResult) -> None:
        if q.future is not None and not q.future.done():
            q.future.set_result(result)

    def _on_response(self, q: _Query, response: Response) -> None:
        status = response.status
        if status < 200:
            self.stats.provisional += 1
            return
        if status < 300:
            # §13.2.2.4: the TU ACKs a 2xx itself (a new transaction)
            invite = q.tx.request
            if invite is not None:
                ack = ack_for_2xx(invite, response, MAGIC_COOKIE + self._next_id())
                try:
                    q.flow.send(encode(ack))
                except OSError:
                    pass
        self._resolve(q, self._interpret(q, response))

    def _interpret(self, q: _Query, response: Response) -> NpResult:
        status, reason = response.status, response.reason
        name = q.target.config.name
        if 300 <= status < 400:
            return self._redirect(q.number, response, name)
        if status in (404, 604):
            return NpResult(NpOutcome.NOT_FOUND, q.number, status, reason, target=name)
        if status == 484:
            return NpResult(NpOutcome.INVALID, q.number, status, reason, target=name)
        if 500 <= status < 600:
            if status == 503:
                retry = _retry_after(response)
                if retry:
                    q.target.rest_until = self._now() + min(retry, 3600)
            return NpResult(NpOutcome.SERVER_ERROR, q.number, status, reason, target=name)
        if 200 <= status < 300:
            return NpResult(NpOutcome.PROTOCOL_ERROR, q.number, status, reason, target=name)
        return NpResult(NpOutcome.REJECTED, q.number, status, reason, target=name)

    def _redirect(self, number: str, response: Response, target: str) -> NpResult:
        status, reason = response.status, response.reason
        contacts = by_preference(response.contact)
        if not contacts:
            return NpResult(NpOutcome.PROTOCOL_ERROR, number, status,
                            f"{reason} (no Contact)", target=target)
        for contact in contacts:
            found = _np_params(contact.uri)
            if found is not None:
                break
        else:
            return NpResult(NpOutcome.PROTOCOL_ERROR, number, status,
                            f"{reason} (no telephone number in Contact)",
                            contact=str(contacts[0].uri), target=target)
        rn, npdi = found
        uri = str(contact.uri)
        if rn is None:
            return NpResult(NpOutcome.NOT_PORTED, number, status, reason, npdi=npdi,
                            contact=uri, target=target)
        rn_digits = digits_of(rn)
        net = self.rn_table.entry_for(rn_digits)
        return NpResult(NpOutcome.PORTED, number, status, reason, routing_number=rn_digits,
                        npdi=npdi, network=net.name if net is not None else None,
                        contact=uri, target=target,
                        mccmnc=net.mccmnc if net is not None else None)


def _np_params(uri: Uri) -> tuple[str | None, bool] | None:
    """(rn, npdi) of a Contact URI, or None when it carries no telephone number.

    RFC 4694 puts them in the telephone-subscriber (the user part of a SIP URI); some
    servers put them among the URI parameters instead, which is read too."""
    if isinstance(uri, TelUri):
        return uri.subscriber.rn, uri.subscriber.npdi
    if isinstance(uri, SipUri):
        try:
            sub = uri.subscriber
        except CodecError:  # user=phone with a malformed number
            return None
        if sub is None:
            return None
        rn = sub.rn or uri.param("rn")
        return rn, sub.npdi or uri.has_param("npdi")
    return None


def _retry_after(response: Response) -> int | None:
    """The delta-seconds of Retry-After (RFC 3261 §20.33), or None."""
    value = response.header("Retry-After")
    if not value:
        return None
    head = value.split(";", 1)[0].split("(", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _advertised(local_host: str, toward: tuple[str, int] | None) -> str:
    """``local_host`` unless it is a wildcard; then the source address the kernel picks
    toward ``toward`` (a connected UDP socket sends nothing)."""
    try:
        wildcard = ipaddress.ip_address(local_host).is_unspecified
    except ValueError:
        return local_host  # a host name: use it as given
    if not wildcard or toward is None:
        return local_host
    family = socket.AF_INET6 if ":" in toward[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(toward)
            return s.getsockname()[0]
        except OSError:
            return local_host
