"""M3UA ASP state machine (RFC 4666 §4.3), sans-IO.

One :class:`Asp` drives one association (SCTP, or TCP framed by the M3UA header length, as
libosmo-sigtran does) in the manner of h11 and aioquic: it never opens a socket, never starts a
task and never reads a clock. The caller feeds it bytes or messages and the current time
(``now``, any monotonic clock in seconds), then collects:

- :meth:`Asp.data_to_send`: ``(stream id, encoded message)`` pairs. Management (MGMT), ASPSM,
  ASPTM and SSNM go on stream 0, DATA on :attr:`AspConfig.data_stream` (RFC 4666 §1.4.7); over
  TCP the stream id is ignored;
- :meth:`Asp.next_event` / :meth:`Asp.events`: what happened (:data:`Event`);
- :meth:`Asp.get_timer`: when :meth:`Asp.handle_timer` must be called next.

Roles (RFC 4666 §1.2, §4.3.1):

- :attr:`Role.ASP`, the gateway, starts the procedures: ASP Up, then ASP Active (§4.3.4.1,
  §4.3.4.3), retransmitted every T(ack) until acknowledged and given up after
  :attr:`AspConfig.max_ack_tries` transmissions (:class:`PeerLost`); :meth:`Asp.stop` runs ASP
  Inactive then ASP Down (§4.3.4.4, §4.3.4.2).
- :attr:`Role.SGP`, the simulator, answers them: ASP Up Ack and NTFY AS-INACTIVE, ASP Active Ack
  and NTFY AS-ACTIVE (§4.3.4.5), ASP Inactive Ack, ASP Down Ack; it answers DAUD (§4.5.3) from
  the destination states it announced with :meth:`Asp.announce_destinations`.
- :attr:`Role.IPSP` does both (single exchange, §1.4.3.4 / §4.3.4.1): it answers the peer's
  procedures and may start its own with :meth:`Asp.start`.

The AS state an SGP reports is that of a one-ASP Application Server; AS-PENDING and the
recovery timer T(r) of RFC 4666 §4.3.2 (several ASPs sharing one AS, as libosmo-sigtran's
xua_as_fsm keeps) are not modelled.

Heartbeat (§4.3.4.6): in ASP-INACTIVE and ASP-ACTIVE a BEAT carrying a sequence number and a
timestamp goes out every :attr:`AspConfig.heartbeat_interval`; BEAT Ack is measured for
:attr:`Asp.rtt`. When :attr:`AspConfig.heartbeat_max_missed` BEATs in a row went unanswered the
peer is declared lost (:class:`PeerLost`). Every BEAT received is answered, in any state
(unless :attr:`AspConfig.answer_heartbeat` is off, a fault the simulator injects).

Errors (§3.8.1): a message that is not expected in the current state is answered with ERR
"Unexpected Message" (DATA included: §3.8.1 lets an ASP discard it silently, this one answers),
an undecodable one with the matching ERR code (Invalid Version, Unsupported Message
Class/Type, Missing Parameter, Parameter Field Error), a Routing Context that is not configured
with "Invalid Routing Context". Each such answer is also reported as a
:class:`ProtocolViolation`. A received ERR is never answered. Nothing the peer sends raises.

A TCP stream whose framing breaks (§3.1: bad version or length) cannot be resynchronised: the
ASP answers ERR, reports a fatal :class:`ProtocolViolation`, goes to ASP-DOWN and stays closed;
the adapter must reset the transport. After :class:`PeerLost` or :meth:`Asp.connection_lost`
the machine is closed as well; a new connection gets a new :class:`Asp`.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import m3ua
from .errors import CodecError
from .m3ua import (
    AspActive,
    AspActiveAck,
    AspDown,
    AspDownAck,
    AspInactive,
    AspInactiveAck,
    AspUp,
    AspUpAck,
    AsState,
    Data,
    DestinationAvailable,
    DestinationRestricted,
    DestinationStateAudit,
    DestinationUnavailable,
    DestinationUserPartUnavailable,
    Error,
    ErrorCode,
    Heartbeat,
    HeartbeatAck,
    MessageClass,
    Notify,
    OtherStatus,
    PointCode,
    ProtocolData,
    SignallingCongestion,
    SsnmType,
    StatusType,
    TrafficModeType,
)

__all__ = [
    "Role",
    "AspState",
    "DestinationState",
    "LossReason",
    "AspConfig",
    "AspNotActive",
    "AspStateChanged",
    "AsStateChanged",
    "Notified",
    "PayloadReceived",
    "DestinationStateChanged",
    "ErrorReceived",
    "ProtocolViolation",
    "PeerLost",
    "Event",
    "Asp",
    "MANAGEMENT_STREAM",
]

MANAGEMENT_STREAM = 0  # RFC 4666 §1.4.7: stream 0 carries the management messages
DIAGNOSTIC_OCTETS = 40  # RFC 4666 §3.8.1: ERR may carry the first 40 octets of the culprit
_BEAT = struct.Struct(">Qd")  # our Heartbeat Data: sequence number, send time


class Role(enum.Enum):
    """Which side of the ASP procedures this end plays (RFC 4666 §1.2, §4.3.1)."""

    ASP = "asp"  # client: sends ASP Up and ASP Active
    SGP = "sgp"  # server: answers them
    IPSP = "ipsp"  # both (IPSP single exchange)


class AspState(enum.IntEnum):
    """ASP states (RFC 4666 §4.3.1)."""

    DOWN = 0
    INACTIVE = 1
    ACTIVE = 2


class DestinationState(enum.Enum):
    """What SSNM says of a destination (RFC 4666 §4.5): DAVA, DRST, DUNA."""

    AVAILABLE = "available"
    RESTRICTED = "restricted"  # still reachable, by a less preferred route (§3.4.6)
    UNAVAILABLE = "unavailable"


class LossReason(enum.Enum):
    """Why :class:`PeerLost` was reported."""

    ACK_TIMEOUT = "ack-timeout"  # T(ack) expired max_ack_tries times (§4.3.4.1-§4.3.4.4)
    HEARTBEAT_TIMEOUT = "heartbeat-timeout"  # heartbeat_max_missed BEATs unanswered (§4.3.4.6)
    PEER_DOWN = "peer-down"  # the SGP sent an unsolicited ASP Down Ack (§4.3.4.2, §4.7)


class AspNotActive(RuntimeError):
    """DATA was offered while the ASP is not ASP-ACTIVE (RFC 4666 §4.3.1: only an ASP-ACTIVE
    ASP carries traffic), or while it is stopping or closed."""


@dataclass(slots=True)
class AspConfig:
    """Configuration of one :class:`Asp`.

    ``routing_context``: the Routing Context this end uses in ASP Active and DATA (None: no
    Routing Context parameter, RFC 4666 §3.3.1 "conditional"). ``accepted_routing_contexts``:
    on the server side, the Routing Contexts provisioned at this SGP (None: any); a message
    naming another one is answered with ERR Invalid Routing Context (0x19). On the ASP side
    only ``routing_context`` is accepted when it is set.

    ``refuse_asp_up`` / ``refuse_asp_active``: server-side fault injection for the simulator:
    answer ASP Up / ASP Active with an ERR of this code (e.g. Refused - Management Blocking,
    §4.3.4.1) instead of the Ack.

    ``answer_heartbeat``: fault injection as well; False leaves every BEAT received
    unanswered (heartbeat silence: the peer's §4.3.4.6 procedure declares this end lost).
    Read at each BEAT, so changing it takes effect on a running association.
    """

    routing_context: int | None = None
    traffic_mode: TrafficModeType = TrafficModeType.LOADSHARE
    asp_identifier: int | None = None
    network_appearance: int | None = None
    info_string: str | None = None
    t_ack: float = 2.0  # RFC 4666 §4.3.4.1: T(ack), libosmo-sigtran uses 2 s
    max_ack_tries: int = 5  # transmissions of ASP Up/Active/Inactive/Down before giving up
    heartbeat_interval: float = 30.0  # 0 disables the heartbeat (§4.3.4.6)
    heartbeat_max_missed: int = 2
    data_stream: int = 1
    auto_activate: bool = True  # ASP role: send ASP Active as soon as ASP Up is acknowledged
    accepted_routing_contexts: frozenset[int] | None = None
    send_notify: bool = True  # server role: NTFY after ASP Up Ack / ASP Active Ack (§4.3.4.5)
    refuse_asp_up: ErrorCode | None = None
    refuse_asp_active: ErrorCode | None = None
    answer_heartbeat: bool = True
    max_message_length: int = m3ua.DEFAULT_MAX_MESSAGE_LENGTH

    def __post_init__(self) -> None:
        if self.t_ack <= 0:
            raise ValueError(f"t_ack must be positive, not {self.t_ack}")
        if self.max_ack_tries < 1:
            raise ValueError(f"max_ack_tries must be at least 1, not {self.max_ack_tries}")
        if self.heartbeat_interval < 0:
            raise ValueError(f"heartbeat_interval must be >= 0, not {self.heartbeat_interval}")
        if self.heartbeat_max_missed < 1:
            raise ValueError("heartbeat_max_missed must be at least 1")
        if not 0 <= self.data_stream <= 0xFFFF:
            raise ValueError(f"data_stream {self.data_stream} is not an SCTP stream id")
        self.traffic_mode = TrafficModeType(self.traffic_mode)
        if self.accepted_routing_contexts is not None:
            self.accepted_routing_contexts = frozenset(self.accepted_routing_contexts)


# --------------------------------------------------------------------------- events


@dataclass(slots=True, frozen=True)
class AspStateChanged:
    """The ASP state changed (RFC 4666 §4.3.1)."""

    old: AspState
    new: AspState


@dataclass(slots=True, frozen=True)
class AsStateChanged:
    """A NTFY of Status Type AS-State_Change arrived (RFC 4666 §3.8.2, §4.3.4.5)."""

    state: AsState | int
    routing_contexts: tuple[int, ...] = ()
    asp_identifier: int | None = None


@dataclass(slots=True, frozen=True)
class Notified:
    """A NTFY of Status Type Other (or an unknown type) arrived (RFC 4666 §3.8.2): Insufficient
    ASP Resources, Alternate ASP Active, ASP Failure."""

    status_type: StatusType | int
    status_info: int
    routing_contexts: tuple[int, ...] = ()
    asp_identifier: int | None = None
    info_string: str | None = None


@dataclass(slots=True, frozen=True)
class PayloadReceived:
    """A DATA message arrived on the ASP-ACTIVE ASP (RFC 4666 §3.3.1, §4.1.1)."""

    data: Data


@dataclass(slots=True, frozen=True)
class DestinationStateChanged:
    """An SSNM message changed what is known of some destinations (RFC 4666 §4.5.2).

    ``state`` is set for DUNA, DAVA and DRST; ``congestion_level`` for SCON; ``user`` and
    ``cause`` for DUPU (the destination stays available, its MTP3-User is not).
    """

    message_type: SsnmType
    point_codes: tuple[PointCode, ...]
    state: DestinationState | None = None
    congestion_level: int | None = None
    user: int | None = None
    cause: int | None = None
    routing_contexts: tuple[int, ...] = ()


@dataclass(slots=True, frozen=True)
class ErrorReceived:
    """The peer sent ERR (RFC 4666 §3.8.1). ``in_reply_to`` names the request then awaiting
    its acknowledgement ("ASPUP", "ASPAC", "ASPIA", "ASPDN"), if any."""

    code: ErrorCode | int
    routing_contexts: tuple[int, ...] = ()
    network_appearance: int | None = None
    affected_point_codes: tuple[PointCode, ...] = ()
    diagnostic: bytes | None = None
    in_reply_to: str | None = None


@dataclass(slots=True, frozen=True)
class ProtocolViolation:
    """The peer broke the protocol and was answered with ERR ``code`` (RFC 4666 §3.8.1).
    ``fatal`` marks a broken TCP framing: the ASP is closed and the transport must be reset."""

    code: ErrorCode | int
    reason: str
    fatal: bool = False


@dataclass(slots=True, frozen=True)
class PeerLost:
    """The peer stopped answering (T(ack) or heartbeat) or took the ASP down; the ASP is now
    ASP-DOWN and closed, and the transport should be reset."""

    reason: LossReason
    detail: str


Event = (
    AspStateChanged | AsStateChanged | Notified | PayloadReceived | DestinationStateChanged
    | ErrorReceived | ProtocolViolation | PeerLost
)


# --------------------------------------------------------------------------- the machine


@dataclass(slots=True)
class _Request:
    """An ASPSM/ASPTM request awaiting its Ack under T(ack)."""

    name: str
    ack: type
    message: bytes
    deadline: float
    tries: int  # transmissions so far; 0 = deferred, first sent when the deadline comes


_SSNM_STATE = {
    SsnmType.DUNA: DestinationState.UNAVAILABLE,
    SsnmType.DAVA: DestinationState.AVAILABLE,
    SsnmType.DRST: DestinationState.RESTRICTED,
}
_SSNM_BY_STATE: dict[DestinationState, type] = {
    DestinationState.UNAVAILABLE: DestinationUnavailable,
    DestinationState.AVAILABLE: DestinationAvailable,
    DestinationState.RESTRICTED: DestinationRestricted,
}
_STREAM0_CLASSES = frozenset({MessageClass.MGMT, MessageClass.ASPSM, MessageClass.RKM})


def _covers(entry: tuple[int, int], pc: int) -> bool:
    base, mask = entry
    return (base >> mask) == (pc >> mask)


def _error_code_for(exc: CodecError) -> ErrorCode:
    """The ERR code that answers an undecodable message (RFC 4666 §3.8.1)."""
    f = exc.field
    if f == "version":
        return ErrorCode.INVALID_VERSION
    if f == "message class":
        return ErrorCode.UNSUPPORTED_MESSAGE_CLASS
    if f == "message type":
        return ErrorCode.UNSUPPORTED_MESSAGE_TYPE
    if exc.reason.startswith("mandatory parameter missing"):
        return ErrorCode.MISSING_PARAMETER
    if f in ("common header", "message length", "message"):
        return ErrorCode.PROTOCOL_ERROR
    return ErrorCode.PARAMETER_FIELD_ERROR


class Asp:
    """One end of an M3UA association: the ASP state machine of RFC 4666 §4.3.

    All methods take ``now``; :meth:`handle_timer` must be called at :meth:`get_timer`.
    """

    __slots__ = (
        "role", "config", "state", "as_state", "rtt", "peer_asp_identifier",
        "active_routing_contexts", "peer_traffic_mode", "messages_received", "messages_sent",
        "_client", "_server", "_allowed_rcs", "_framer", "_out", "_events", "_pending",
        "_beat_deadline", "_beat_seq", "_beat_sent", "_beat_missed", "_stopping", "_closed",
        "_started", "_dest", "_congestion", "_dupu", "_tx_rc", "_na", "_data_stream",
        "_handlers",
    )

    def __init__(self, role: Role, config: AspConfig | None = None) -> None:
        self.role = role
        self.config = config = config if config is not None else AspConfig()
        self.state = AspState.DOWN
        self.as_state: AsState | int | None = None  # from the last NTFY AS-State_Change
        self.rtt: float | None = None  # seconds, from the last BEAT Ack
        self.peer_asp_identifier: int | None = None
        self.active_routing_contexts: tuple[int, ...] = ()  # server: as activated by the peer
        self.peer_traffic_mode: TrafficModeType | int | None = None
        self.messages_received = 0
        self.messages_sent = 0
        self._client = role in (Role.ASP, Role.IPSP)
        self._server = role in (Role.SGP, Role.IPSP)
        allowed: set[int] | None = None
        if config.accepted_routing_contexts is not None:
            allowed = set(config.accepted_routing_contexts)
        if config.routing_context is not None:
            allowed = (allowed or set()) | {config.routing_context}
        self._allowed_rcs = frozenset(allowed) if allowed is not None else None
        self._framer = m3ua.MessageFramer(config.max_message_length)
        self._out: list[tuple[int, bytes]] = []
        self._events: deque[Event] = deque()
        self._pending: _Request | None = None
        self._beat_deadline: float | None = None
        self._beat_seq = 0
        self._beat_sent: dict[int, float] = {}
        self._beat_missed = 0
        self._stopping = False
        self._closed = False
        self._started = False
        # (point code, mask) -> state; masks wildcard the low bits (§3.4.1)
        self._dest: dict[tuple[int, int], DestinationState] = {}
        self._congestion: dict[tuple[int, int], int] = {}
        self._dupu: dict[tuple[int, int], int] = {}  # (point code, user) -> cause
        self._tx_rc = config.routing_context
        self._na = config.network_appearance
        self._data_stream = config.data_stream
        self._handlers: dict[type, Any] = {
            AspUp: self._on_asp_up,
            AspUpAck: self._on_asp_up_ack,
            AspDown: self._on_asp_down,
            AspDownAck: self._on_asp_down_ack,
            Heartbeat: self._on_beat,
            HeartbeatAck: self._on_beat_ack,
            AspActive: self._on_asp_active,
            AspActiveAck: self._on_asp_active_ack,
            AspInactive: self._on_asp_inactive,
            AspInactiveAck: self._on_asp_inactive_ack,
            Notify: self._on_notify,
            Error: self._on_error,
            DestinationUnavailable: self._on_ssnm,
            DestinationAvailable: self._on_ssnm,
            DestinationRestricted: self._on_ssnm,
            SignallingCongestion: self._on_ssnm,
            DestinationUserPartUnavailable: self._on_ssnm,
            DestinationStateAudit: self._on_audit,
        }

    def __repr__(self) -> str:
        return f"<Asp {self.role.value} {self.state.name}{' closed' if self._closed else ''}>"

    # ------------------------------------------------------------------ properties

    @property
    def closed(self) -> bool:
        """True once the peer was lost, the framing broke or the connection went away."""
        return self._closed

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    @property
    def stopped(self) -> bool:
        """True when :meth:`stop` has finished: ASP-DOWN, nothing awaiting an Ack."""
        return self._stopping and self.state is AspState.DOWN and self._pending is None

    @property
    def awaiting(self) -> str | None:
        """The request awaiting its Ack ("ASPUP", "ASPAC", "ASPIA", "ASPDN"), if any."""
        return self._pending.name if self._pending is not None else None

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> list[tuple[int, bytes]]:
        """Take the queued ``(stream id, encoded message)`` pairs, oldest first."""
        out = self._out
        if not out:
            return []
        self._out = []
        return out

    def next_event(self) -> Event | None:
        """Take the oldest pending event, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Take every pending event, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called (same clock as ``now``), or None."""
        if self._closed:
            return None
        p = self._pending
        b = self._beat_deadline
        if p is None:
            return b
        if b is None or p.deadline < b:
            return p.deadline
        return b

    # ------------------------------------------------------------------ local requests

    def start(self, now: float) -> None:
        """The transport is up (RFC 4666 §4.3.3, SCTP COMM UP): the ASP (and an IPSP) sends ASP
        Up under T(ack) (§4.3.4.1); an SGP waits for the peer's ASP Up."""
        if self._started or self._closed:
            return
        self._started = True
        if self.role is Role.SGP:
            return
        up = AspUp(asp_identifier=self.config.asp_identifier,
                   info_string=self.config.info_string)
        self._request("ASPUP", AspUpAck, up, now)

    def stop(self, now: float) -> None:
        """Take the ASP down gracefully: ASP Inactive, then ASP Down, each under T(ack)
        (RFC 4666 §4.3.4.4, §4.3.4.2). :attr:`stopped` tells when it is done. An SGP has
        nothing to send: it only marks itself ASP-DOWN, the adapter closes the transport."""
        if self._closed or self._stopping:
            return
        self._stopping = True
        if self.role is Role.SGP or not self._started:
            self._pending = None
            self._beat_deadline = None
            self._set_state(AspState.DOWN)
            return
        if self.state is AspState.ACTIVE:
            self._request("ASPIA", AspInactiveAck, self._asp_inactive(), now)
        elif self.state is AspState.INACTIVE:
            self._request("ASPDN", AspDownAck, AspDown(info_string=self.config.info_string), now)
        else:
            self._pending = None  # ASP Up never acknowledged: nothing to take down
            self._beat_deadline = None

    def connection_lost(self, now: float) -> None:
        """The transport went away (RFC 4666 §4.3.3, SCTP COMM LOST): ASP-DOWN, closed."""
        if self._closed:
            return
        self._close()

    def send_data(self, protocol_data: ProtocolData, now: float) -> None:
        """Queue one DATA message (RFC 4666 §3.3.1, §4.1.1) carrying ``protocol_data`` with the
        configured Routing Context and Network Appearance, on the data stream.

        Raises :class:`AspNotActive` unless the ASP is ASP-ACTIVE (and not stopping).
        """
        if self.state is not AspState.ACTIVE or self._stopping or self._closed:
            raise AspNotActive(
                f"M3UA ASP is {self.state.name}"
                f"{' and stopping' if self._stopping else ''}"
                f"{' and closed' if self._closed else ''}: DATA needs ASP-ACTIVE")
        self._out.append((self._data_stream, m3ua.encode(Data(
            network_appearance=self._na, routing_context=self._tx_rc,
            protocol_data=protocol_data))))
        self.messages_sent += 1

    def send_payload(self, opc: int, dpc: int, si: int, ni: int, mp: int, sls: int,
                     payload: bytes, now: float) -> None:
        """:meth:`send_data` from the Protocol Data's fields, without building the
        :class:`~protocols.m3ua.ProtocolData` (the same message, the same errors)."""
        if self.state is not AspState.ACTIVE or self._stopping or self._closed:
            self.send_data(ProtocolData(opc, dpc, si, ni, mp, sls, payload), now)  # raises
            return
        self._out.append((self._data_stream, m3ua.encode_data(
            self._tx_rc, self._na, opc, dpc, si, ni, mp, sls, payload)))
        self.messages_sent += 1

    def audit_destinations(self, point_codes: Iterable[PointCode | int], now: float) -> None:
        """Send DAUD for ``point_codes`` (RFC 4666 §4.5.3); the SGP answers DAVA/DUNA/DRST."""
        if self.state is AspState.DOWN or self._closed:
            raise AspNotActive("DAUD needs ASP-INACTIVE or ASP-ACTIVE")
        pcs = [_pc(p) for p in point_codes]
        self._send(DestinationStateAudit(routing_context=self._rc_list(),
                                         network_appearance=self._na,
                                         affected_point_codes=pcs))

    def announce_destinations(self, point_codes: Iterable[PointCode | int],
                              state: DestinationState, now: float) -> None:
        """Server side: record ``point_codes`` as ``state`` and tell the peer with DUNA, DAVA or
        DRST (RFC 4666 §4.5.1). Later DAUDs are answered from what was recorded here; when the
        ASP is ASP-DOWN nothing is sent."""
        pcs = [_pc(p) for p in point_codes]
        for pc in pcs:
            self._record(pc, state)
        if self.state is AspState.DOWN or self._closed or not pcs:
            return
        self._send(_SSNM_BY_STATE[state](routing_context=self._rc_list(),
                                         network_appearance=self._na,
                                         affected_point_codes=pcs))

    def notify(self, status_type: StatusType | int, status_info: int, now: float,
               info_string: str | None = None) -> None:
        """Server side: send a NTFY (RFC 4666 §3.8.2, §4.3.4.5), e.g. ASP Failure."""
        if self._closed:
            return
        self._send(Notify(status_type=status_type, status_info=status_info,
                          routing_context=self._rc_list(), info_string=info_string))

    # ------------------------------------------------------------------ queries

    def destination_state(self, pc: int) -> DestinationState:
        """What SSNM last said of point code ``pc`` (an exact entry wins over a masked one,
        a narrower mask over a wider); AVAILABLE when nothing was said (RFC 4666 §4.5.2)."""
        dest = self._dest
        if not dest:
            return DestinationState.AVAILABLE
        state = dest.get((pc, 0))
        if state is not None:
            return state
        best: tuple[int, DestinationState] | None = None
        for entry, st in dest.items():
            if entry[1] and _covers(entry, pc) and (best is None or entry[1] < best[0]):
                best = (entry[1], st)
        return best[1] if best is not None else DestinationState.AVAILABLE

    def destination_available(self, pc: int) -> bool:
        """False when DUNA declared point code ``pc`` unavailable (RFC 4666 §4.5.2)."""
        return self.destination_state(pc) is not DestinationState.UNAVAILABLE

    def congestion_level(self, pc: int) -> int:
        """Congestion level last reported by SCON for ``pc`` (0: none, RFC 4666 §3.4.4)."""
        return self._congestion.get((pc, 0), 0)

    def user_part_available(self, pc: int, user: int = m3ua.UserIdentity.SCCP) -> bool:
        """False when DUPU declared MTP3-User ``user`` at ``pc`` unavailable (§3.4.5)."""
        return (pc, int(user)) not in self._dupu

    # ------------------------------------------------------------------ input

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Feed bytes from a TCP stream; they are cut into messages by the M3UA header length
        (RFC 4666 §3.1). A broken framing closes the ASP (fatal :class:`ProtocolViolation`)."""
        if self._closed:
            return
        try:
            frames = self._framer.feed(data)
        except CodecError as exc:
            self._framing_fault(exc)
            return
        for frame in frames:
            self._receive_frame(frame, now, None)
            if self._closed:
                return
        if self._framer.error is not None:
            self._framing_fault(self._framer.error)

    def receive_datagram(self, data: bytes, now: float, stream_id: int | None = None) -> None:
        """Feed one whole message as it came off SCTP (which keeps message boundaries)."""
        if not self._closed:
            self._receive_frame(data, now, stream_id)

    def receive_message(self, msg: m3ua.Message, now: float,
                        stream_id: int | None = None) -> None:
        """Feed one decoded message."""
        if not self._closed:
            self._dispatch(msg, now, stream_id, None)

    def handle_timer(self, now: float) -> None:
        """Run the timers due at ``now``: T(ack) retransmission or give-up, heartbeat."""
        if self._closed:
            return
        p = self._pending
        if p is not None and now >= p.deadline:
            if p.tries >= self.config.max_ack_tries:
                self._lose(LossReason.ACK_TIMEOUT,
                           f"no {p.ack.__name__} after {p.tries} {p.name} "
                           f"(T(ack) {self.config.t_ack:g} s)")
                return
            p.tries += 1
            p.deadline = now + self.config.t_ack
            self._out.append((MANAGEMENT_STREAM, p.message))
            self.messages_sent += 1
        b = self._beat_deadline
        if b is not None and now >= b:
            self._beat_tick(now)

    # ------------------------------------------------------------------ internals: output

    def _send(self, msg: m3ua.Message, stream: int = MANAGEMENT_STREAM) -> None:
        self._out.append((stream, m3ua.encode(msg)))
        self.messages_sent += 1

    def _request(self, name: str, ack: type, msg: m3ua.Message, now: float,
                 deferred: bool = False) -> None:
        raw = m3ua.encode(msg)
        self._pending = _Request(name, ack, raw, now + self.config.t_ack, 0 if deferred else 1)
        if not deferred:
            self._out.append((MANAGEMENT_STREAM, raw))
            self.messages_sent += 1

    def _rc_list(self) -> list[int]:
        if self.active_routing_contexts:  # server side: as the peer activated them
            return list(self.active_routing_contexts)
        if self._tx_rc is not None:
            return [self._tx_rc]
        acc = self.config.accepted_routing_contexts
        return sorted(acc) if acc else []

    def _asp_inactive(self) -> AspInactive:
        return AspInactive(routing_context=self._rc_list(), info_string=self.config.info_string)

    def _send_error(self, code: ErrorCode, reason: str, raw: bytes | None = None,
                    msg: m3ua.Message | None = None, routing_context: int | None = None,
                    fatal: bool = False) -> None:
        """Answer with ERR (RFC 4666 §3.8.1), the culprit's first 40 octets as diagnostic."""
        if raw is None and msg is not None:
            try:
                raw = m3ua.encode(msg)
            except CodecError:
                raw = None
        self._send(Error(error_code=code,
                         routing_context=[routing_context] if routing_context is not None else [],
                         diagnostic_information=raw[:DIAGNOSTIC_OCTETS] if raw else None))
        self._events.append(ProtocolViolation(code, reason, fatal))

    def _unexpected(self, msg: m3ua.Message, raw: bytes | None) -> None:
        self._send_error(ErrorCode.UNEXPECTED_MESSAGE,
                         f"{type(msg).__name__} not expected in ASP-{self.state.name} "
                         f"({self.role.value})", raw, msg)

    # ------------------------------------------------------------------ internals: state

    def _set_state(self, new: AspState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        self._events.append(AspStateChanged(old, new))

    def _enter_up(self, now: float) -> None:
        """ASP-DOWN -> ASP-INACTIVE: start the heartbeat (§4.3.4.6)."""
        self._set_state(AspState.INACTIVE)
        if self.config.heartbeat_interval > 0 and self._beat_deadline is None:
            self._beat_deadline = now + self.config.heartbeat_interval
            self._beat_missed = 0
            self._beat_sent.clear()

    def _enter_down(self) -> None:
        self._beat_deadline = None
        self._set_state(AspState.DOWN)

    def _close(self) -> None:
        self._closed = True
        self._pending = None
        self._beat_deadline = None
        self._set_state(AspState.DOWN)

    def _lose(self, reason: LossReason, detail: str) -> None:
        self._events.append(PeerLost(reason, detail))
        self._close()

    def _framing_fault(self, exc: CodecError) -> None:
        code = (ErrorCode.INVALID_VERSION if exc.field == "version"
                else ErrorCode.PROTOCOL_ERROR)
        self._send_error(code, f"TCP framing lost: {exc}", fatal=True)
        self._close()

    def _beat_tick(self, now: float) -> None:
        if self._beat_seq in self._beat_sent:  # the last BEAT went unanswered
            self._beat_missed += 1
            if self._beat_missed >= self.config.heartbeat_max_missed:
                self._lose(LossReason.HEARTBEAT_TIMEOUT,
                           f"{self._beat_missed} BEAT(s) unanswered "
                           f"(interval {self.config.heartbeat_interval:g} s)")
                return
        self._beat_seq += 1
        seq = self._beat_seq
        sent = self._beat_sent
        sent[seq] = now
        if len(sent) > self.config.heartbeat_max_missed + 1:
            del sent[min(sent)]
        self._send(Heartbeat(data=_BEAT.pack(seq, now)))
        self._beat_deadline = now + self.config.heartbeat_interval

    def _record(self, pc: PointCode, state: DestinationState) -> None:
        key = (pc.point_code, pc.mask)
        if pc.mask:  # a wildcard supersedes what was said of the codes it covers
            for entry in [e for e in self._dest if e[1] <= pc.mask and _covers(key, e[0])]:
                del self._dest[entry]
        if state is DestinationState.AVAILABLE and not pc.mask:
            # default state; keep an explicit entry only when a wildcard would say otherwise
            self._dest.pop(key, None)
            if any(e[1] and _covers(e, pc.point_code) for e in self._dest):
                self._dest[key] = state
        else:
            self._dest[key] = state

    # ------------------------------------------------------------------ internals: input

    def _receive_frame(self, frame: bytes, now: float, stream_id: int | None) -> None:
        try:
            msg = m3ua.decode(frame)
        except CodecError as exc:
            self.messages_received += 1
            self._send_error(_error_code_for(exc), str(exc), frame)
            return
        self._dispatch(msg, now, stream_id, frame)

    def _dispatch(self, msg: m3ua.Message, now: float, stream_id: int | None,
                  raw: bytes | None) -> None:
        self.messages_received += 1
        t = type(msg)
        if t is Data:  # the hot path
            if self.state is AspState.ACTIVE:
                allowed = self._allowed_rcs
                rc = msg.routing_context
                if allowed is not None and rc is not None and rc not in allowed:
                    self._send_error(ErrorCode.INVALID_ROUTING_CONTEXT,
                                     f"DATA for Routing Context {rc}", raw, msg, rc)
                elif (self._na is not None and msg.network_appearance is not None
                      and msg.network_appearance != self._na):
                    self._send_error(ErrorCode.INVALID_NETWORK_APPEARANCE,
                                     f"DATA for Network Appearance {msg.network_appearance}",
                                     raw, msg)
                else:
                    self._events.append(PayloadReceived(msg))
            else:
                self._unexpected(msg, raw)
            return
        if (stream_id is not None and stream_id != MANAGEMENT_STREAM
                and t.MESSAGE_CLASS in _STREAM0_CLASSES):
            self._send_error(ErrorCode.INVALID_STREAM_IDENTIFIER,
                             f"{t.__name__} on stream {stream_id}, expected 0 (§1.4.7)",
                             raw, msg)
            return
        handler = self._handlers.get(t)
        if handler is None:  # RKM (§3.6): dynamic registration is not supported here
            self._send_error(ErrorCode.UNSUPPORTED_MESSAGE_CLASS,
                             f"{t.__name__}: message class not supported", raw, msg)
            return
        handler(msg, now, raw)

    def _check_rcs(self, rcs: list[int], msg: m3ua.Message, raw: bytes | None) -> bool:
        allowed = self._allowed_rcs
        if allowed is not None:
            for rc in rcs:
                if rc not in allowed:
                    self._send_error(ErrorCode.INVALID_ROUTING_CONTEXT,
                                     f"{type(msg).__name__} for Routing Context {rc}",
                                     raw, msg, rc)
                    return False
        return True

    def _ack_pending(self, ack: type) -> _Request | None:
        p = self._pending
        if p is not None and p.ack is ack:
            self._pending = None
            return p
        return None

    # --- ASPSM (§4.3.4.1, §4.3.4.2, §4.3.4.6)

    def _on_asp_up(self, msg: AspUp, now: float, raw: bytes | None) -> None:
        if not self._server:
            self._unexpected(msg, raw)
            return
        if msg.asp_identifier is not None:
            self.peer_asp_identifier = msg.asp_identifier
        if self.state is AspState.DOWN:
            if self.config.refuse_asp_up is not None:
                self._send_error(self.config.refuse_asp_up, "ASP Up refused by configuration",
                                 raw, msg)
                return
            self._send(AspUpAck(asp_identifier=self.config.asp_identifier,
                                info_string=self.config.info_string))
            self._enter_up(now)
            if self.config.send_notify:
                self._send(Notify(status_type=StatusType.AS_STATE_CHANGE,
                                  status_info=AsState.AS_INACTIVE,
                                  routing_context=self._rc_list(),
                                  asp_identifier=self.peer_asp_identifier))
        elif self.state is AspState.INACTIVE:
            # §4.3.4.1: already ASP-INACTIVE: Ack, no further action
            self._send(AspUpAck(asp_identifier=self.config.asp_identifier))
        else:
            # §4.3.4.1: ASP Up while ASP-ACTIVE: Error (Unexpected Message) and Ack, and the
            # ASP is ASP-INACTIVE again
            self._unexpected(msg, raw)
            self._send(AspUpAck(asp_identifier=self.config.asp_identifier))
            self._set_state(AspState.INACTIVE)

    def _on_asp_up_ack(self, msg: AspUpAck, now: float, raw: bytes | None) -> None:
        if not self._client:
            self._unexpected(msg, raw)
            return
        if self._ack_pending(AspUpAck) is None:
            return  # a duplicate Ack of a retransmitted ASP Up: nothing to do
        if msg.asp_identifier is not None:
            self.peer_asp_identifier = msg.asp_identifier
        self._enter_up(now)
        if self.config.auto_activate and not self._stopping:
            self._request("ASPAC", AspActiveAck, self._asp_active(), now)

    def _asp_active(self) -> AspActive:
        return AspActive(traffic_mode_type=self.config.traffic_mode,
                         routing_context=self._rc_list(), info_string=self.config.info_string)

    def _on_asp_down(self, msg: AspDown, now: float, raw: bytes | None) -> None:
        if not self._server:
            self._unexpected(msg, raw)
            return
        # §4.3.4.2: an ASP Down is always acknowledged, even in ASP-DOWN
        self._send(AspDownAck(info_string=self.config.info_string))
        self._enter_down()

    def _on_asp_down_ack(self, msg: AspDownAck, now: float, raw: bytes | None) -> None:
        if not self._client:
            self._unexpected(msg, raw)
            return
        if self._ack_pending(AspDownAck) is not None:
            self._enter_down()
            return
        if self.state is not AspState.DOWN and not self._stopping:
            # §4.3.4.2, §4.7: an SGP may take the ASP down on its own (e.g. isolated from the
            # SS7 network); start again on a fresh association.
            self._lose(LossReason.PEER_DOWN, "unsolicited ASP Down Ack from the peer")

    def _on_beat(self, msg: Heartbeat, now: float, raw: bytes | None) -> None:
        if self.config.answer_heartbeat:
            self._send(HeartbeatAck(data=msg.data))  # §3.5.6: echo the Heartbeat Data

    def _on_beat_ack(self, msg: HeartbeatAck, now: float, raw: bytes | None) -> None:
        data = msg.data
        if data is None or len(data) != _BEAT.size:
            return
        seq = _BEAT.unpack(data)[0]
        sent = self._beat_sent.get(seq)
        if sent is None:
            return  # not one of ours, or too old
        self.rtt = now - sent
        self._beat_missed = 0
        for s in [s for s in self._beat_sent if s <= seq]:
            del self._beat_sent[s]

    # --- ASPTM (§4.3.4.3, §4.3.4.4)

    def _on_asp_active(self, msg: AspActive, now: float, raw: bytes | None) -> None:
        if not self._server or self.state is AspState.DOWN:
            self._unexpected(msg, raw)
            return
        tmt = msg.traffic_mode_type
        if tmt is not None:
            known = TrafficModeType._value2member_map_.get(tmt)
            if known is None:
                self._send_error(ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE,
                                 f"traffic mode type {tmt}", raw, msg)
                return
            tmt = TrafficModeType(known)
        if not self._check_rcs(msg.routing_context, msg, raw):
            return
        if not msg.routing_context and self.config.accepted_routing_contexts == frozenset():
            self._send_error(ErrorCode.NO_CONFIGURED_AS_FOR_ASP,
                             "ASP Active without Routing Context, no AS configured", raw, msg)
            return
        if self.config.refuse_asp_active is not None:
            self._send_error(self.config.refuse_asp_active,
                             "ASP Active refused by configuration", raw, msg)
            return
        self.peer_traffic_mode = tmt
        if msg.routing_context:
            self.active_routing_contexts = tuple(msg.routing_context)
            if self.config.routing_context is None:
                self._tx_rc = msg.routing_context[0]  # DATA toward the peer names its AS
        self._send(AspActiveAck(traffic_mode_type=tmt, routing_context=list(msg.routing_context),
                                info_string=self.config.info_string))
        if self.state is AspState.INACTIVE:
            self._set_state(AspState.ACTIVE)
            if self.config.send_notify:
                self._send(Notify(status_type=StatusType.AS_STATE_CHANGE,
                                  status_info=AsState.AS_ACTIVE,
                                  routing_context=self._rc_list(),
                                  asp_identifier=self.peer_asp_identifier))

    def _on_asp_active_ack(self, msg: AspActiveAck, now: float, raw: bytes | None) -> None:
        if not self._client:
            self._unexpected(msg, raw)
            return
        if self._ack_pending(AspActiveAck) is not None and self.state is AspState.INACTIVE:
            self._set_state(AspState.ACTIVE)

    def _on_asp_inactive(self, msg: AspInactive, now: float, raw: bytes | None) -> None:
        if not self._server or self.state is AspState.DOWN:
            self._unexpected(msg, raw)
            return
        self._send(AspInactiveAck(routing_context=list(msg.routing_context)))
        self._set_state(AspState.INACTIVE)

    def _on_asp_inactive_ack(self, msg: AspInactiveAck, now: float, raw: bytes | None) -> None:
        if not self._client:
            self._unexpected(msg, raw)
            return
        if self._ack_pending(AspInactiveAck) is not None:
            if self.state is AspState.ACTIVE:
                self._set_state(AspState.INACTIVE)
            if self._stopping:
                self._request("ASPDN", AspDownAck, AspDown(info_string=self.config.info_string),
                              now)
            return
        if self.state is AspState.ACTIVE and not self._stopping:
            # §4.3.4.4: an SGP may withdraw the ASP on its own; ask again after T(ack)
            self._set_state(AspState.INACTIVE)
            if self.config.auto_activate:
                self._request("ASPAC", AspActiveAck, self._asp_active(), now, deferred=True)

    # --- MGMT (§3.8, §4.3.4.5)

    def _on_notify(self, msg: Notify, now: float, raw: bytes | None) -> None:
        rcs = tuple(msg.routing_context)
        if msg.status_type == StatusType.AS_STATE_CHANGE:
            self.as_state = msg.status_info
            self._events.append(AsStateChanged(msg.status_info, rcs, msg.asp_identifier))
            return
        self._events.append(Notified(msg.status_type, msg.status_info, rcs,
                                     msg.asp_identifier, msg.info_string))
        if (msg.status_type == StatusType.OTHER
                and msg.status_info == OtherStatus.ALTERNATE_ASP_ACTIVE
                and self._client and self.state is AspState.ACTIVE):
            # §4.3.4.5: in Override mode another ASP took over; this one is ASP-INACTIVE now
            self._set_state(AspState.INACTIVE)

    def _on_error(self, msg: Error, now: float, raw: bytes | None) -> None:
        self._events.append(ErrorReceived(
            msg.error_code, tuple(msg.routing_context), msg.network_appearance,
            tuple(msg.affected_point_codes), msg.diagnostic_information,
            self._pending.name if self._pending is not None else None))

    # --- SSNM (§4.5)

    def _on_ssnm(self, msg: Any, now: float, raw: bytes | None) -> None:
        t = type(msg)
        # the SGP sends SSNM to the ASP; SCON also flows from the ASP (§4.5.2 note)
        if (self.state is AspState.DOWN
                or (not self._client and t is not SignallingCongestion)):
            self._unexpected(msg, raw)
            return
        if not self._check_rcs(msg.routing_context, msg, raw):
            return
        rcs = tuple(msg.routing_context)
        mtype = SsnmType(t.MESSAGE_TYPE)
        if t is DestinationUserPartUnavailable:
            pc = msg.affected_point_code
            self._dupu[(pc.point_code, int(msg.user))] = int(msg.cause)
            self._events.append(DestinationStateChanged(
                mtype, (pc,), user=msg.user, cause=msg.cause, routing_contexts=rcs))
            return
        pcs = tuple(msg.affected_point_codes)
        if t is SignallingCongestion:
            level = int(msg.congestion_level) if msg.congestion_level is not None else 1
            for pc in pcs:
                if level:
                    self._congestion[(pc.point_code, pc.mask)] = level
                else:
                    self._congestion.pop((pc.point_code, pc.mask), None)
            self._events.append(DestinationStateChanged(
                mtype, pcs, congestion_level=level, routing_contexts=rcs))
            return
        state = _SSNM_STATE[mtype]
        for pc in pcs:
            self._record(pc, state)
            if state is DestinationState.AVAILABLE:
                self._congestion.pop((pc.point_code, pc.mask), None)
                for key in [k for k in self._dupu if k[0] == pc.point_code]:
                    del self._dupu[key]
        self._events.append(DestinationStateChanged(mtype, pcs, state, routing_contexts=rcs))

    def _on_audit(self, msg: DestinationStateAudit, now: float, raw: bytes | None) -> None:
        if not self._server or self.state is AspState.DOWN:
            self._unexpected(msg, raw)
            return
        if not self._check_rcs(msg.routing_context, msg, raw):
            return
        # §4.5.3: answer each audited destination with its current state
        groups: dict[DestinationState, list[PointCode]] = {}
        for pc in msg.affected_point_codes:
            st = (self.destination_state(pc.point_code) if not pc.mask
                  else self._dest.get((pc.point_code, pc.mask), DestinationState.AVAILABLE))
            groups.setdefault(st, []).append(pc)
        for st, pcs in groups.items():
            self._send(_SSNM_BY_STATE[st](routing_context=list(msg.routing_context),
                                          network_appearance=msg.network_appearance,
                                          affected_point_codes=pcs))


def _pc(p: PointCode | int) -> PointCode:
    return p if isinstance(p, PointCode) else PointCode(p)

