"""INVITE client and server transactions (RFC 3261 §17), sans-IO.

Both machines follow the style of :mod:`protocols.m3ua_asp`: they never open a socket and
never read a clock. Every call takes ``now`` (seconds, any monotonic clock); the caller
collects what to send with :meth:`data_to_send` (encoded messages, each to go to the
transaction's peer over its transport), what happened with :meth:`next_event` /
:meth:`events`, and calls :meth:`handle_timer` at :meth:`get_timer`.

**Client** (:class:`InviteClientTransaction`, §17.1.1, figure 5). Created in *Calling* with
the INVITE queued. Over an unreliable transport Timer A retransmits it at T1, 2*T1, 4*T1...
(no T2 cap for INVITE, §17.1.1.2); a reliable transport sends it once. Timer B (64*T1) gives
up while no response came (:class:`TimedOut`). A provisional response moves to
*Proceeding* and stops A and B. A 2xx ends the transaction (the ACK for a 2xx is the TU's,
§13.2.2.4: see :func:`ack_for_2xx`). A final 300-699 is answered by the transaction with an
ACK of the same branch (§17.1.1.3) and moves to *Completed*, where Timer D (32 s over UDP, 0
over a reliable transport) absorbs retransmitted finals by resending that ACK.

**Server** (:class:`InviteServerTransaction`, §17.2.1, figure 7). Created in *Proceeding* on
an INVITE. Unless the TU answers sooner, a 100 Trying goes out after 200 ms (§17.2.1).
A retransmitted INVITE is absorbed: it gets the last provisional again in *Proceeding*, the
final again in *Completed*, and nothing in *Confirmed*; it never reaches the TU twice. A
2xx from the TU ends the transaction; a 300-699 moves to *Completed*, where Timer G
retransmits it (T1, doubling up to T2; unreliable transports only) until the ACK comes, and
Timer H (64*T1) gives up waiting for it (:class:`TimedOut`). The ACK moves to *Confirmed*;
Timer I (T4 over UDP, 0 over a reliable transport) then ends the transaction.

Transaction matching (§17.1.3, §17.2.3) is done by the owner with :func:`client_key` and
:func:`server_key`; a machine is only given the messages of its own transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from .message import (
    MAGIC_COOKIE,
    CSeq,
    Method,
    Request,
    Response,
    encode,
    make_response,
)

__all__ = [
    "Timers",
    "TransactionState",
    "ResponseReceived",
    "AckReceived",
    "TimedOut",
    "TransportFailed",
    "Event",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "client_key",
    "server_key",
    "ack_for",
    "ack_for_2xx",
]


@dataclass(slots=True, frozen=True)
class Timers:
    """The timer values of RFC 3261 §17.1.1.1 and table 4 (seconds).

    ``t1`` (500 ms) is the round-trip estimate behind A, B, G, H; ``t2`` (4 s) caps G;
    ``t4`` (5 s) is Timer I; ``d`` is Timer D, "at least 32 s" over UDP. ``trying`` is the
    200 ms after which a server transaction sends 100 Trying itself (§17.2.1).
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    d: float = 32.0
    trying: float = 0.2

    def __post_init__(self) -> None:
        if self.t1 <= 0 or self.t2 < self.t1 or self.t4 < 0 or self.d < 0:
            raise ValueError(f"bad SIP timers {self}")

    @property
    def b(self) -> float:
        """Timer B, INVITE transaction timeout: 64*T1."""
        return 64 * self.t1

    @property
    def h(self) -> float:
        """Timer H, wait time for the ACK: 64*T1."""
        return 64 * self.t1


class TransactionState(enum.Enum):
    """States of figures 5 and 7 of RFC 3261."""

    CALLING = "calling"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(slots=True, frozen=True)
class ResponseReceived:
    """A response for the TU (client): every provisional, and the first final only."""

    response: Response


@dataclass(slots=True, frozen=True)
class AckReceived:
    """The ACK for our non-2xx final arrived (server, §17.2.1)."""

    request: Request


@dataclass(slots=True, frozen=True)
class TimedOut:
    """Timer B (client: no response to the INVITE) or Timer H (server: no ACK) fired."""

    timer: str


@dataclass(slots=True, frozen=True)
class TransportFailed:
    """The transport could not send (§17.1.4, §17.2.4); the transaction is terminated."""

    detail: str


Event = ResponseReceived | AckReceived | TimedOut | TransportFailed


def client_key(message: Response) -> tuple[str, str] | None:
    """The key of the client transaction a response belongs to (§17.1.3): the top Via's
    branch and the CSeq method. None when the response has no branch."""
    branch = message.branch
    return None if branch is None else (branch, message.cseq.method)


def server_key(request: Request) -> tuple:
    """The key of the server transaction a request belongs to (§17.2.3).

    With an RFC 3261 branch (magic cookie): branch, sent-by and method, ACK counting as
    INVITE. Without one (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq number and
    the top Via, again with ACK as INVITE (the To tag is left out, since our own final
    response added it)."""
    method = Method.INVITE if request.method == Method.ACK else request.method
    top = request.via[0]
    branch = top.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return (branch, top.host.lower(), top.port, method)
    return (str(request.uri), request.from_.tag, request.call_id, request.cseq.seq,
            str(top), method)


def ack_for(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a non-2xx final (§17.1.1.3): the INVITE's
    Request-URI, Call-ID, From, CSeq number and top Via (so the same branch) and Route
    headers; the response's To (with the tag the server added)."""
    routes = tuple(h for h in invite.headers if h[0].lower() == "route")
    return Request(Method.ACK, invite.uri, invite.via[:1], invite.from_, response.to,
                   invite.call_id, CSeq(invite.cseq.seq, Method.ACK),
                   invite.max_forwards if invite.max_forwards is not None else 70, (),
                   routes)


def ack_for_2xx(invite: Request, response: Response, branch: str) -> Request:
    """The ACK the TU sends for a 2xx (§13.2.2.4): a new transaction (``branch``), sent to
    the remote target; kept minimal here (no route set, no body)."""
    top = invite.via[0].with_param("branch", branch)
    target = response.contact[0].uri if response.contact else invite.uri
    return Request(Method.ACK, target, (top,), invite.from_, response.to, invite.call_id,
                   CSeq(invite.cseq.seq, Method.ACK), 70)


class _Transaction:
    __slots__ = ("state", "reliable", "timers", "_out", "_events")

    def __init__(self, state: TransactionState, reliable: bool, timers: Timers) -> None:
        self.state = state
        self.reliable = reliable
        self.timers = timers
        # allocated when needed: a server holds thousands of quiet transactions at once
        self._out: list[bytes] | None = None
        self._events: list[Event] | None = None

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def data_to_send(self) -> list[bytes]:
        """The encoded messages to send now, in order (and forget them)."""
        out, self._out = self._out, None
        return out if out is not None else []

    def next_event(self) -> Event | None:
        events = self._events
        if not events:
            return None
        event = events.pop(0)
        if not events:
            self._events = None
        return event

    def events(self) -> Iterator[Event]:
        while (event := self.next_event()) is not None:
            yield event

    def _send_data(self, data: bytes) -> None:
        if self._out is None:
            self._out = [data]
        else:
            self._out.append(data)

    def _event(self, event: Event) -> None:
        if self._events is None:
            self._events = [event]
        else:
            self._events.append(event)

    def transport_error(self, now: float, detail: str) -> None:
        """The transport failed to send (§17.1.4 / §17.2.4): terminate, tell the TU."""
        if self.state is not TransactionState.TERMINATED:
            self._terminate()
            self._event(TransportFailed(detail))

    def terminate(self) -> None:
        """Abandon the transaction (the TU gave up): no more output, no more timers."""
        self._terminate()

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED


class InviteClientTransaction(_Transaction):
    """The INVITE client transaction of RFC 3261 §17.1.1; see the module docstring."""

    __slots__ = ("request", "branch", "_invite", "_ack_bytes", "_timer_a", "_interval_a",
                 "_timer_b", "_timer_d", "retransmissions")

    def __init__(self, request: Request, now: float, *, reliable: bool = False,
                 timers: Timers | None = None) -> None:
        if request.method != Method.INVITE:
            raise ValueError(f"an INVITE client transaction needs an INVITE, not "
                             f"{request.method}")
        timers = timers if timers is not None else Timers()
        super().__init__(TransactionState.CALLING, reliable, timers)
        # released once a non-2xx final is in: Timer D needs only the ACK's bytes
        self.request: Request | None = request
        self.branch = request.branch
        self.retransmissions = 0
        self._invite = encode(request)
        self._ack_bytes = b""
        self._send_data(self._invite)
        # §17.1.1.2: Timer A only over unreliable transports; Timer B always
        self._interval_a = timers.t1
        self._timer_a: float | None = None if reliable else now + timers.t1
        self._timer_b: float | None = now + timers.b
        self._timer_d: float | None = None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        if self.state is TransactionState.TERMINATED:
            return None
        times = [t for t in (self._timer_a, self._timer_b, self._timer_d) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        state = self.state
        if state is TransactionState.CALLING:
            if self._timer_b is not None and now >= self._timer_b:
                self._terminate()
                self._event(TimedOut("B"))
                return
            if self._timer_a is not None and now >= self._timer_a:
                # §17.1.1.2: retransmit, double the interval
                self._send_data(self._invite)
                self.retransmissions += 1
                self._interval_a *= 2
                self._timer_a = now + self._interval_a
        elif state is TransactionState.COMPLETED:
            if self._timer_d is not None and now >= self._timer_d:
                self._terminate()

    def receive_response(self, response: Response, now: float) -> None:
        """A response of this transaction (matched with :func:`client_key`)."""
        state = self.state
        status = response.status
        if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
            self._timer_a = None
            if status < 200:
                self.state = TransactionState.PROCEEDING
                self._timer_b = None
                self._event(ResponseReceived(response))
            elif status < 300:
                # §17.1.1.2: a 2xx goes to the TU and ends the transaction
                self._terminate()
                self._event(ResponseReceived(response))
            else:
                # §17.1.1.2 / §17.1.1.3: ACK, Completed, Timer D
                assert self.request is not None
                self._ack_bytes = encode(ack_for(self.request, response))
                self._send_data(self._ack_bytes)
                self.request = None
                self._invite = b""  # no more Timer A
                self.state = TransactionState.COMPLETED
                self._timer_b = None
                self._timer_d = now + (0.0 if self.reliable else self.timers.d)
                self._event(ResponseReceived(response))
                if self.reliable:
                    self._terminate()
        elif state is TransactionState.COMPLETED and status >= 300:
            # a retransmitted final: ACK again, not passed up (§17.1.1.2)
            self._send_data(self._ack_bytes)

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        self._timer_a = self._timer_b = self._timer_d = None


class InviteServerTransaction(_Transaction):
    """The INVITE server transaction of RFC 3261 §17.2.1; see the module docstring."""

    __slots__ = ("request", "branch", "status", "retransmissions_absorbed", "_last",
                 "_timer_trying", "_timer_g", "_interval_g", "_timer_h", "_timer_i")

    def __init__(self, request: Request, now: float, *, reliable: bool = False,
                 timers: Timers | None = None) -> None:
        if request.method != Method.INVITE:
            raise ValueError(f"an INVITE server transaction needs an INVITE, not "
                             f"{request.method}")
        timers = timers if timers is not None else Timers()
        super().__init__(TransactionState.PROCEEDING, reliable, timers)
        # released once the final response is sent: retransmissions need only its bytes
        self.request: Request | None = request
        self.branch = request.branch
        self.status: int | None = None  # of the last response sent
        self.retransmissions_absorbed = 0
        self._last = b""  # encoding of the last response sent
        self._timer_trying: float | None = now + timers.trying
        self._timer_g: float | None = None
        self._interval_g = timers.t1
        self._timer_h: float | None = None
        self._timer_i: float | None = None

    @property
    def answered(self) -> bool:
        """A final response has been sent."""
        return self.status is not None and self.status >= 200

    def get_timer(self) -> float | None:
        if self.state is TransactionState.TERMINATED:
            return None
        times = [t for t in (self._timer_trying, self._timer_g, self._timer_h, self._timer_i)
                 if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        state = self.state
        if state is TransactionState.PROCEEDING:
            if self._timer_trying is not None and now >= self._timer_trying:
                self._timer_trying = None
                if not self._last and self.request is not None:
                    self._send(make_response(self.request, 100), now)
        elif state is TransactionState.COMPLETED:
            if self._timer_h is not None and now >= self._timer_h:
                # §17.2.1: no ACK came; tell the TU
                self._terminate()
                self._event(TimedOut("H"))
                return
            if self._timer_g is not None and now >= self._timer_g:
                self._send_data(self._last)
                self._interval_g = min(2 * self._interval_g, self.timers.t2)
                self._timer_g = now + self._interval_g
        elif state is TransactionState.CONFIRMED:
            if self._timer_i is not None and now >= self._timer_i:
                self._terminate()

    def respond(self, response: Response, now: float) -> None:
        """The TU's response. Only in *Proceeding*; later responses are ignored (the
        transaction already answered, §17.2.1)."""
        if self.state is not TransactionState.PROCEEDING:
            return
        self._timer_trying = None
        self._send(response, now)

    def _send(self, response: Response, now: float) -> None:
        self._last = encode(response)
        self._send_data(self._last)
        status = self.status = response.status
        if status < 200:
            return
        self.request = None
        if status < 300:
            self._terminate()  # §17.2.1: a 2xx ends the server transaction
            return
        self.state = TransactionState.COMPLETED
        if not self.reliable:
            self._interval_g = self.timers.t1
            self._timer_g = now + self._interval_g
        self._timer_h = now + self.timers.h

    def receive_request(self, request: Request, now: float) -> None:
        """A request matching this transaction (with :func:`server_key`): a retransmitted
        INVITE or the ACK."""
        state = self.state
        if request.method == Method.ACK:
            if state is TransactionState.COMPLETED:
                self.state = TransactionState.CONFIRMED
                self._timer_g = self._timer_h = None
                self._event(AckReceived(request))
                if self.reliable:
                    self._terminate()
                else:
                    self._timer_i = now + self.timers.t4
            return
        # a retransmission of the INVITE
        self.retransmissions_absorbed += 1
        if state is TransactionState.PROCEEDING and self._last:
            self._send_data(self._last)  # the most recent provisional
        elif state is TransactionState.COMPLETED:
            self._send_data(self._last)

    def _terminate(self) -> None:
        self.state = TransactionState.TERMINATED
        self._timer_trying = self._timer_g = self._timer_h = self._timer_i = None
