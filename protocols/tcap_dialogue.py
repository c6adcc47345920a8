"""TCAP transaction manager (ITU-T Q.774 transaction sub-layer), sans-IO.

One :class:`TransactionManager` holds every open TCAP dialogue of one TC-user (the gateway's
MAP client, or the simulator's HLR), on either side of the dialogue:

- **Originating side** (Q.774 §3.3.3.2.1): :meth:`~TransactionManager.begin` allocates a
  4-octet originating transaction id, opens the dialogue in state *initiation sent* and
  returns the encoded Begin. The first Continue from the peer carries the peer's transaction
  id and moves the dialogue to *active* (§3.3.3.2.2); an End (§3.3.3.2.3) or an Abort
  (§3.3.3.2.4) closes it.
- **Responding side**: an incoming Begin opens a dialogue in state *initiation received*
  with a local id of its own (needed as the otid of a Continue; an End needs none), and the
  user answers with :meth:`~TransactionManager.respond_continue`,
  :meth:`~TransactionManager.respond_end` or :meth:`~TransactionManager.abort`.

Incoming messages are matched on their destination transaction id alone, a dict lookup on
the 4 octets as they stand on the wire. The states are those of the Q.774 transaction state
machine (TSM): idle, initiation sent, initiation received, active.

Nothing here touches a socket or reads a clock: every call takes ``now`` (seconds, from
whatever monotonic clock the caller uses) and returns the events for the user and the
encoded TCAP messages to send, in the style of h11 and aioquic. Routing those messages
(SCCP addresses, association) is the caller's business; :attr:`Dialogue.context` holds
whatever it needs for that.

Transaction ids (Q.773 §4.2.1: 1 to 4 octets): always 4 octets here, taken from a
sequential counter that wraps and skips ids still in use, so an id is never given to a
second dialogue while the first is open. Sequential allocation also keeps a recently closed
id out of use for as long as possible (a full turn of the id space), so a late answer to a
dialogue that timed out meets an unknown id rather than a new dialogue.

Timers: each open dialogue has one deadline, the invocation timer of Q.774 §3.2.1 (for MAP,
timer m of TS 29.002, 15 s to 30 s; 30 s by default). Deadlines sit in a heap with lazy
deletion, so opening and closing dialogues costs O(log n) and stale entries are swept in
bulk once they outnumber the live ones. When a deadline passes the dialogue is cancelled
locally (the TC-L-CANCEL of §3.2.1 followed by the user's TC-U-ABORT) and, when the peer
knows our transaction id, a U-Abort goes to the peer. A dialogue still in *initiation sent*
is only cancelled locally: the peer has not told us its transaction id, so there is nothing
to address an Abort to (§3.3.3.2.4, abort in initiation sent); a late answer then meets an
unknown id and gets the treatment of Table 7/Q.774.

Abnormal messages (Q.774 §3.3.4, Table 7/Q.774):

- Continue whose dtid names no open dialogue: answered with a P-Abort
  ``unrecognizedTransactionID`` to its otid. End or Abort with an unknown dtid: discarded
  (counted, and reported as :class:`UnknownTransaction`).
- Undecodable message: an :class:`InvalidMessage` event; when its otid can still be read
  from a Begin or Continue (or a message of unknown type), an Abort goes back to it: with
  an ABRT (abort-source dialogue-service-provider) when the fault is in the dialogue
  portion (§3.2.2.1), else with a P-Abort cause (``unrecognizedMessageType``,
  ``incorrectTransactionPortion`` or ``badlyFormattedTransactionPortion``). When its dtid
  names an open dialogue, that dialogue is aborted locally too.
- Begin arriving while the bound on open dialogues is reached: P-Abort
  ``resourceLimitation``.

Component handling is left to the TC-user: the decoder refuses a message with a faulty
component as a whole, so no Reject (§3.2.2.2) is generated here, and the invocation state
machine is reduced to the one timer per dialogue that MAP's single-operation dialogues
(SRI-SM, ATI) need.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .ber import read_tlv
from .errors import CodecError
from .tcap import (
    TAG_ABORT,
    TAG_BEGIN,
    TAG_CONTINUE,
    TAG_DTID,
    TAG_END,
    TAG_INVOKE,
    TAG_OTID,
    TAG_UNIDIRECTIONAL,
    Abort,
    AbortSource,
    AssociateResult,
    Begin,
    Component,
    Continue,
    DiagnosticSource,
    DialogueAbort,
    DialoguePdu,
    DialogueRequest,
    DialogueResponse,
    End,
    Message,
    PAbortCause,
    ReturnResultLast,
    ServiceUserDiagnostic,
    Unidirectional,
    _decode_general,
    _decode_simple,
    _encode_simple,
    _read_simple,
    encode,
    encode_end_result,
)

TID_OCTETS = 4
DEFAULT_INVOKE_TIMEOUT = 30.0  # TS 29.002 timer m: 15 s to 30 s
DEFAULT_MAX_DIALOGUES = 65536
_COMPACT_SLACK = 1024  # stale heap entries tolerated beyond the live ones before a sweep


class TransactionError(Exception):
    """A request the transaction manager cannot carry out."""


class TooManyDialogues(TransactionError):
    """:meth:`TransactionManager.begin` with the bound on open dialogues reached."""


class DialogueStateError(TransactionError):
    """A request that the dialogue's state does not allow (Q.774 TSM), or a closed dialogue."""


class DialogueState(enum.Enum):
    """States of the transaction state machine (TSM) of Q.774 §3.3; IDLE once closed."""

    IDLE = "idle"
    INITIATION_SENT = "initiation sent"
    INITIATION_RECEIVED = "initiation received"
    ACTIVE = "active"


_IDLE = DialogueState.IDLE
_INIT_SENT = DialogueState.INITIATION_SENT
_INIT_RECEIVED = DialogueState.INITIATION_RECEIVED
_ACTIVE = DialogueState.ACTIVE


@dataclass(slots=True, eq=False)
class Dialogue:
    """One TCAP dialogue (transaction), the handle every call and event refers to.

    ``otid`` is our transaction id, 4 octets: the otid of the messages we send and the dtid
    of those the peer sends us. ``peer_tid`` is the peer's, known from its Begin (responding
    side) or its first Continue (originating side), None until then. ``application_context``
    is the one of the AARQ that opened the dialogue, None for a dialogue without dialogue
    portion (MAP v1). ``deadline`` is when the invocation timer runs out (None once closed).
    ``context`` belongs to the caller (SCCP addresses, the waiting lookup, ...).
    """

    otid: bytes
    state: DialogueState
    originating: bool
    deadline: float | None
    peer_tid: bytes | None = None
    application_context: tuple[int, ...] | None = None
    context: object = None
    timer_seq: int = field(default=-1, repr=False)  # heap entry that is live; -1 when none

    @property
    def local_id(self) -> int:
        """Our transaction id as an integer."""
        return int.from_bytes(self.otid, "big")

    @property
    def is_open(self) -> bool:
        return self.state is not _IDLE


# --------------------------------------------------------------------------- events

@dataclass(slots=True)
class DialogueBegun:
    """A Begin from a peer opened a dialogue (TC-BEGIN indication, responding side)."""

    dialogue: Dialogue
    message: Begin


@dataclass(slots=True)
class DialogueContinued:
    """A Continue for an open dialogue (TC-CONTINUE indication)."""

    dialogue: Dialogue
    message: Continue


@dataclass(slots=True)
class DialogueEnded:
    """An End closed the dialogue (TC-END indication): components and dialogue portion."""

    dialogue: Dialogue
    message: End


@dataclass(slots=True)
class DialogueAborted:
    """The dialogue was aborted (TC-U-ABORT or TC-P-ABORT indication).

    From the peer: ``p_abort_cause`` for a P-Abort; ``dialogue_pdu`` for a U-Abort carrying an
    ABRT, or an AARE refusing the dialogue (see :func:`refused_context`); both None for a
    U-Abort without dialogue portion. ``reason`` is None for an Abort received from the peer
    and says why for an abort decided here (association lost, malformed message).
    """

    dialogue: Dialogue
    p_abort_cause: int | None = None
    dialogue_pdu: DialoguePdu | None = None
    reason: str | None = None


@dataclass(slots=True)
class DialogueTimedOut:
    """The invocation timer ran out and the dialogue was cancelled (Q.774 §3.2.1)."""

    dialogue: Dialogue


@dataclass(slots=True)
class InvalidMessage:
    """A message that did not decode (the answer, if any, is in the messages to send)."""

    error: CodecError


@dataclass(slots=True)
class UnknownTransaction:
    """A Continue, End or Abort whose dtid names no open dialogue (Table 7/Q.774)."""

    message: Message


@dataclass(slots=True)
class UnidirectionalReceived:
    """A Unidirectional message (Q.774 §3.3.3.1): components outside any dialogue."""

    message: Unidirectional


Event = (DialogueBegun | DialogueContinued | DialogueEnded | DialogueAborted
         | DialogueTimedOut | InvalidMessage | UnknownTransaction | UnidirectionalReceived)


def refused_context(event: object) -> tuple[int, ...] | None:
    """The application context a peer proposes when it refused ours, else None.

    A dialogue refused for an unsupported application context comes back as an Abort whose
    dialogue portion is an AARE with result reject-permanent and the dialogue-service-user
    diagnostic application-context-name-not-supported; its application-context-name is the
    version the peer offers instead, to retry with (TS 29.002 §15.2, Q.773 Table 49).
    """
    if type(event) is not DialogueAborted:
        return None
    pdu = event.dialogue_pdu
    if (type(pdu) is DialogueResponse
            and pdu.result == AssociateResult.REJECT_PERMANENT
            and pdu.diagnostic_source == DiagnosticSource.DIALOGUE_SERVICE_USER
            and pdu.diagnostic == ServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED):
        return pdu.application_context
    return None


@dataclass(slots=True)
class Counters:
    """Running totals since the manager was created."""

    begun: int = 0  # dialogues opened by begin()
    begins_received: int = 0  # dialogues opened by a peer's Begin
    ended: int = 0  # closed by an End, either way, or a prearranged end
    aborted: int = 0  # closed by an abort, either way (timeouts not included)
    timed_out: int = 0  # closed by the invocation timer
    p_aborts_sent: int = 0  # P-Abort answers built (unknown tid, malformed, overflow)
    u_aborts_sent: int = 0  # Aborts built for the user, on timeout, or with a provider ABRT
    unknown_tids: int = 0  # Continue/End/Abort for no open dialogue
    invalid: int = 0  # messages that did not decode
    resource_limited: int = 0  # dialogues refused by the bound (begin() or a peer's Begin)


_USER_ABRT = DialogueAbort(AbortSource.DIALOGUE_SERVICE_USER)
_PROVIDER_ABRT = DialogueAbort(AbortSource.DIALOGUE_SERVICE_PROVIDER)
_KNOWN_TYPES = frozenset((TAG_UNIDIRECTIONAL, TAG_BEGIN, TAG_END, TAG_CONTINUE, TAG_ABORT))
_TID_FIELDS = frozenset(("otid", "dtid", "otid/dtid", "transaction portion", "components"))


class TransactionManager:
    """Open TCAP dialogues of one TC-user, both originating and responding (Q.774 §3.3).

    ``max_dialogues`` bounds the open dialogues of both sides together; ``invoke_timeout``
    is the default invocation timer, in seconds. ``id_space`` is how many transaction ids
    the counter goes through before it wraps (2**32, the whole 4-octet space; tests make it
    small to exercise the wrap); it must be at least ``max_dialogues``.
    """

    __slots__ = ("_open", "_heap", "_seq", "_next", "_id_space", "max_dialogues",
                 "invoke_timeout", "counters")

    def __init__(self, max_dialogues: int = DEFAULT_MAX_DIALOGUES,
                 invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT,
                 *, id_space: int = 1 << 32) -> None:
        if not 1 <= id_space <= 1 << 32:
            raise ValueError(f"id_space {id_space} outside 1..2**32")
        if not 1 <= max_dialogues <= id_space:
            raise ValueError(f"max_dialogues {max_dialogues} outside 1..id_space ({id_space})")
        if not invoke_timeout > 0:
            raise ValueError(f"invoke_timeout {invoke_timeout} must be positive")
        self._open: dict[bytes, Dialogue] = {}
        self._heap: list[tuple[float, int, bytes]] = []  # (deadline, timer_seq, otid)
        self._seq = 0
        self._next = 1 % id_space  # the first dialogue gets otid 00000001
        self._id_space = id_space
        self.max_dialogues = max_dialogues
        self.invoke_timeout = float(invoke_timeout)
        self.counters = Counters()

    # ----------------------------------------------------------------- inspection

    @property
    def open_dialogues(self) -> int:
        """How many dialogues are open (either side)."""
        return len(self._open)

    def find(self, tid: bytes | int) -> Dialogue | None:
        """The open dialogue with our transaction id ``tid``, if any."""
        if type(tid) is int:
            tid = tid.to_bytes(TID_OCTETS, "big")
        return self._open.get(tid)

    def dialogues(self) -> list[Dialogue]:
        """A snapshot of the open dialogues."""
        return list(self._open.values())

    # ----------------------------------------------------------------- requests

    def begin(self, pdu: DialoguePdu | None, components: Sequence[Component], now: float,
              timeout: float | None = None, context: object = None) -> tuple[Dialogue, bytes]:
        """Open a dialogue (TC-BEGIN request, Q.774 §3.3.3.2.1): the handle and the Begin.

        ``pdu`` is the dialogue portion (an AARQ, or None for a dialogue without one);
        ``timeout`` overrides the invocation timer for this dialogue. Raises
        :class:`TooManyDialogues` when ``max_dialogues`` are open, and the codec's
        :class:`CodecError` when the message cannot be encoded (nothing is opened then).
        """
        in_use = self._open
        if len(in_use) >= self.max_dialogues:
            self.counters.resource_limited += 1
            raise TooManyDialogues(
                f"{len(in_use)} TCAP dialogues open, the bound is {self.max_dialogues}")
        otid = self._allocate()
        data = _encode_simple(TAG_BEGIN, otid, pdu, components)
        if data is None:
            data = encode(Begin(otid, pdu, components))
        d = Dialogue(otid, _INIT_SENT, True, None, None,
                     pdu.application_context if type(pdu) is DialogueRequest else None,
                     context)
        in_use[otid] = d
        self._arm(d, now + (self.invoke_timeout if timeout is None else timeout))
        self.counters.begun += 1
        return d, data

    def open(self, application_context: tuple[int, ...] | None, now: float,
             timeout: float | None = None, context: object = None) -> Dialogue:
        """Open a dialogue whose Begin the caller writes itself, with the handle's ``otid``
        (a sender with the rest of its Begin encoded in advance): :meth:`begin` without the
        encoding. ``application_context`` is the one its AARQ proposes (None without a
        dialogue portion). Raises :class:`TooManyDialogues` when ``max_dialogues`` are
        open."""
        in_use = self._open
        if len(in_use) >= self.max_dialogues:
            self.counters.resource_limited += 1
            raise TooManyDialogues(
                f"{len(in_use)} TCAP dialogues open, the bound is {self.max_dialogues}")
        # (_allocate's common case and _arm, inline: this is every Begin a client sends)
        i = self._next
        otid = i.to_bytes(TID_OCTETS, "big")
        if otid in in_use or i + 1 >= self._id_space:
            otid = self._allocate()
        else:
            self._next = i + 1
        seq = self._seq
        self._seq = seq + 1
        deadline = now + (self.invoke_timeout if timeout is None else timeout)
        d = Dialogue(otid, _INIT_SENT, True, deadline, None, application_context, context, seq)
        in_use[otid] = d
        heap = self._heap
        heapq.heappush(heap, (deadline, seq, otid))
        if len(heap) > 2 * len(in_use) + _COMPACT_SLACK:
            self._compact()
        self.counters.begun += 1
        return d

    def continue_(self, dialogue: Dialogue, pdu: DialoguePdu | None,
                  components: Sequence[Component], now: float,
                  timeout: float | None = None) -> bytes:
        """A Continue for the dialogue (TC-CONTINUE request, Q.774 §3.3.3.2.2).

        On the responding side the first Continue also accepts the dialogue (state
        *initiation received* to *active*). Not allowed in *initiation sent*: the peer has
        not told us its transaction id yet. ``timeout`` re-arms the invocation timer from
        ``now``; without it the running deadline stays.
        """
        state = dialogue.state
        if state is not _ACTIVE and state is not _INIT_RECEIVED:
            raise DialogueStateError(f"Continue not allowed in state {state.value}")
        data = encode(Continue(dialogue.otid, dialogue.peer_tid, pdu,
                               components))
        dialogue.state = _ACTIVE
        if timeout is not None:
            self._arm(dialogue, now + timeout)
        return data

    def end(self, dialogue: Dialogue, pdu: DialoguePdu | None,
            components: Sequence[Component], now: float, prearranged: bool = False) -> bytes:
        """Close the dialogue (TC-END request, Q.774 §3.3.3.2.3): the End to send.

        A basic end sends an End to the peer, which needs the peer's transaction id (not
        in *initiation sent*). A prearranged end closes the dialogue locally, sends nothing
        and returns ``b""``.
        """
        state = dialogue.state
        if state is _IDLE:
            raise DialogueStateError("End on a closed dialogue")
        data = b""
        if not prearranged:
            if state is _INIT_SENT:
                raise DialogueStateError(
                    "End not allowed in state initiation sent (only a prearranged end)")
            data = _encode_simple(TAG_END, dialogue.peer_tid, pdu, components)
            if data is None:
                data = encode(End(dialogue.peer_tid, pdu, components))
        self._release(dialogue)
        self.counters.ended += 1
        return data

    def end_result(self, dialogue: Dialogue, pdu: DialoguePdu | None, invoke_id: int,
                   opcode: int, parameter: bytes | None, now: float) -> bytes:
        """:meth:`end` with one ReturnResultLast (``invoke_id``, ``opcode``, ``parameter``),
        written without building the component: the same End, the same errors."""
        state = dialogue.state
        if state is _IDLE or state is _INIT_SENT:
            return self.end(dialogue, pdu, [ReturnResultLast(invoke_id, opcode, parameter)],
                            now)  # raises
        data = encode_end_result(dialogue.peer_tid, pdu, invoke_id, opcode, parameter)
        self._release(dialogue)
        self.counters.ended += 1
        return data

    def u_abort(self, dialogue: Dialogue, pdu: DialogueAbort | DialogueResponse | None,
                now: float) -> bytes:
        """Abort the dialogue (TC-U-ABORT request, Q.774 §3.3.3.2.4): the Abort to send.

        ``pdu`` is the dialogue portion: an ABRT, or on the responding side an AARE refusing
        the dialogue (reject-permanent, e.g. application-context-name-not-supported with
        the version we support, TS 29.002 §15.2). None gives the default: an ABRT with
        abort-source dialogue-service-user when the dialogue has a dialogue portion, no
        dialogue portion otherwise. In *initiation sent* the dialogue is only terminated
        locally and ``b""`` is returned: there is no peer transaction id to address.
        """
        if dialogue.state is _IDLE:
            raise DialogueStateError("Abort on a closed dialogue")
        data = self._abort_message(dialogue, pdu)
        self._release(dialogue)
        self.counters.aborted += 1
        return data

    # the responding side's names for the same requests
    respond_continue = continue_
    respond_end = end
    abort = u_abort

    def abort_all(self, now: float, reason: str = "association lost") -> list[Event]:
        """Abort every open dialogue locally, nothing sent (the association carrying them
        is gone): one :class:`DialogueAborted` each, with ``reason``."""
        dialogues = list(self._open.values())
        self._open.clear()
        self._heap.clear()
        for d in dialogues:
            d.state = _IDLE
            d.deadline = None
            d.timer_seq = -1
        self.counters.aborted += len(dialogues)
        return [DialogueAborted(d, None, None, reason) for d in dialogues]

    def abort_dialogues(self, dialogues: Iterable[Dialogue | bytes | int], now: float,
                        reason: str = "association lost") -> list[Event]:
        """Abort the given dialogues locally, nothing sent; closed or unknown ones are
        skipped. Handles, 4-octet ids and integer ids are all accepted."""
        events: list[Event] = []
        for item in dialogues:
            d = item if type(item) is Dialogue else self.find(item)
            if d is None or d.state is _IDLE or self._open.get(d.otid) is not d:
                continue
            self._release(d)
            self.counters.aborted += 1
            events.append(DialogueAborted(d, None, None, reason))
        return events

    # ----------------------------------------------------------------- timers

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next be called: the earliest deadline, or None."""
        heap = self._heap
        in_use = self._open
        while heap:
            deadline, seq, tid = heap[0]
            d = in_use.get(tid)
            if d is not None and d.timer_seq == seq:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> tuple[list[Event], list[tuple[Dialogue, bytes]]]:
        """Time out every dialogue whose deadline is at or before ``now``.

        Each gets a :class:`DialogueTimedOut` and is cancelled locally (its id is free
        again). The messages are ``(dialogue, Abort)`` pairs, the U-Abort to send to the
        peer of that dialogue (use the dialogue's ``context`` to route it); there is none
        for a dialogue still in *initiation sent* (see the module notes).
        """
        heap = self._heap
        events: list[Event] = []
        out: list[tuple[Dialogue, bytes]] = []
        while heap and heap[0][0] <= now:
            _, seq, tid = heapq.heappop(heap)
            d = self._open.get(tid)
            if d is None or d.timer_seq != seq:
                continue  # stale: closed or re-armed since
            data = self._abort_message(d, None)
            self._release(d)
            self.counters.timed_out += 1
            events.append(DialogueTimedOut(d))
            if data:
                out.append((d, data))
        return events, out

    # ----------------------------------------------------------------- incoming

    def receive(self, data: bytes, now: float) -> tuple[list[Event], list[bytes]]:
        """Take one TCAP message from the peer: the events, and the messages to answer it
        with (to the sender of ``data``), per Q.774 §3.3.3 and Table 7/Q.774."""
        if type(data) is not bytes:
            data = bytes(data)
        msg = _decode_simple(data)  # (decode(), without its call)
        if msg is None:
            try:
                msg = _decode_general(data)
            except CodecError as exc:
                return self._malformed(data, exc)
        t = type(msg)
        if t is End:
            d = self._open.pop(msg.dtid, None)
            if d is None:
                return self._unknown(msg, None)
            d.state = _IDLE  # (_release)
            d.deadline = None
            d.timer_seq = -1
            self.counters.ended += 1
            return [DialogueEnded(d, msg)], []
        if t is Continue:
            d = self._open.get(msg.dtid)
            if d is None:
                return self._unknown(msg, msg.otid)
            if d.state is not _ACTIVE:
                d.state = _ACTIVE
                if d.peer_tid is None:
                    d.peer_tid = msg.otid  # Q.774 §3.3.3.2.2: the peer's id, from now on
            return [DialogueContinued(d, msg)], []
        if t is Abort:
            d = self._open.get(msg.dtid)
            if d is None:
                return self._unknown(msg, None)
            self._release(d)
            self.counters.aborted += 1
            return [DialogueAborted(d, msg.p_abort_cause, msg.dialogue)], []
        if t is Begin:
            return self._begin_received(msg, now)
        return [UnidirectionalReceived(msg)], []

    def receive_result(self, data: bytes, now: float
                       ) -> tuple[Dialogue, int, int, bytes] | None:
        """The originating side's hot path of :meth:`receive`: when ``data`` is an End for an
        open dialogue holding one ReturnResultLast with a result (the shapes
        :func:`~protocols.tcap._decode_simple` reads), the dialogue is closed as
        :meth:`receive` closes it and ``(dialogue, invoke id, operation code, parameter)``
        is returned, without building the message and its event. None for anything else
        (nothing done): :meth:`receive` then takes it."""
        r = _read_simple(data) if type(data) is bytes else None
        if r is None or r[0] != TAG_END or r[6] is None or r[3] == TAG_INVOKE:
            return None
        d = self.take_end(r[1])
        if d is None:
            return None
        return d, r[4], r[5], r[6]

    def take_end(self, dtid: bytes) -> Dialogue | None:
        """Close the open dialogue ``dtid`` on an End read by the caller (holding one
        ReturnResultLast with a result, as :meth:`receive_result` takes it), as
        :meth:`receive_result` closes it; None (nothing done) when no dialogue ``dtid`` is
        open."""
        d = self._open.pop(dtid, None)
        if d is None:
            return None
        d.state = _IDLE  # (_release)
        d.deadline = None
        d.timer_seq = -1
        self.counters.ended += 1
        return d

    def read_invoke(self, data: bytes) -> tuple | None:
        """The responding side's hot path, first half: when ``data`` is a Begin holding one
        Invoke (the shapes :func:`~protocols.tcap._decode_simple` reads) that :meth:`receive`
        would open a dialogue for, its fields ``(tag, otid, dialogue PDU, component tag,
        invoke id, operation code, parameter)``; nothing is opened yet. The user then
        either answers at once with :meth:`end_at_once` (the dialogue opens and closes in
        one step, as far as anyone can tell) or opens it with :meth:`accept`. None for
        anything else, a Begin that would be refused included: :meth:`receive` takes it."""
        r = _read_simple(data) if type(data) is bytes else None
        if r is None or r[0] != TAG_BEGIN or r[3] != TAG_INVOKE:
            return None
        pdu = r[2]
        if pdu is not None and type(pdu) is not DialogueRequest:
            return None
        if len(self._open) >= self.max_dialogues:
            return None
        return r

    def has_room(self) -> bool:
        """Whether another dialogue may open (fewer than ``max_dialogues`` are open)."""
        return len(self._open) < self.max_dialogues

    def accept(self, begin: tuple, now: float) -> Dialogue:
        """Open the dialogue of a Begin read by :meth:`read_invoke`, as :meth:`receive` opens
        it (state *initiation received*, a local id, the invocation timer)."""
        pdu = begin[2]
        otid = self._allocate()
        d = Dialogue(otid, _INIT_RECEIVED, False, None, begin[1],
                     None if pdu is None else pdu.application_context)
        self._open[otid] = d
        self._arm(d, now + self.invoke_timeout)
        self.counters.begins_received += 1
        return d

    def end_at_once(self, begin: tuple, pdu: DialoguePdu | None, invoke_id: int, opcode: int,
                    parameter: bytes | None) -> bytes:
        """Answer a Begin read by :meth:`read_invoke` with an End holding one
        ReturnResultLast, without opening its dialogue: what :meth:`accept` then
        :meth:`end_result` give (the same End, the same counters), in one step."""
        data = encode_end_result(begin[1], pdu, invoke_id, opcode, parameter)
        counters = self.counters
        counters.begins_received += 1
        counters.ended += 1
        return data

    def ended_at_once(self) -> None:
        """Count a Begin answered at once with an End the caller wrote itself (a template of
        the bytes :meth:`end_at_once` writes): the counters of :meth:`end_at_once`."""
        counters = self.counters
        counters.begins_received += 1
        counters.ended += 1

    # ----------------------------------------------------------------- internals

    def _allocate(self) -> bytes:
        """The next free transaction id: sequential, wrapping, skipping ids in use."""
        i = self._next
        tid = i.to_bytes(TID_OCTETS, "big")
        in_use = self._open
        if tid not in in_use and i + 1 < self._id_space:  # the common case
            self._next = i + 1
            return tid
        space = self._id_space
        for _ in range(space):
            tid = i.to_bytes(TID_OCTETS, "big")
            i += 1
            if i == space:
                i = 0
            if tid not in in_use:
                self._next = i
                return tid
        raise TooManyDialogues("every transaction id is in use")  # unreachable: bound < space

    def _arm(self, d: Dialogue, deadline: float) -> None:
        seq = self._seq
        self._seq = seq + 1
        d.timer_seq = seq
        d.deadline = deadline
        heap = self._heap
        heapq.heappush(heap, (deadline, seq, d.otid))
        # lazy deletion leaves an entry behind for every closed or re-armed dialogue (holding
        # the id, not the dialogue: a closed dialogue, and what its context holds, is freed)
        if len(heap) > 2 * len(self._open) + _COMPACT_SLACK:
            self._compact()

    def _compact(self) -> None:
        in_use = self._open
        self._heap = [e for e in self._heap
                      if (o := in_use.get(e[2])) is not None and o.timer_seq == e[1]]
        heapq.heapify(self._heap)

    def _release(self, d: Dialogue) -> None:
        del self._open[d.otid]
        d.state = _IDLE
        d.deadline = None
        d.timer_seq = -1

    def _abort_message(self, d: Dialogue, pdu: DialoguePdu | None) -> bytes:
        if d.peer_tid is None:
            return b""  # initiation sent: local termination only
        if pdu is None and d.application_context is not None:
            pdu = _USER_ABRT
        self.counters.u_aborts_sent += 1
        return encode(Abort(d.peer_tid, None, pdu))

    def _unknown(self, msg: Message, otid: bytes | None) -> tuple[list[Event], list[bytes]]:
        """Table 7/Q.774: a Continue for an unknown dtid is answered with a P-Abort, an End
        or an Abort is discarded."""
        self.counters.unknown_tids += 1
        if otid is None:
            return [UnknownTransaction(msg)], []
        self.counters.p_aborts_sent += 1
        return [UnknownTransaction(msg)], [
            encode(Abort(otid, PAbortCause.UNRECOGNIZED_TRANSACTION_ID))]

    def _begin_received(self, msg: Begin, now: float) -> tuple[list[Event], list[bytes]]:
        pdu = msg.dialogue
        if pdu is not None and type(pdu) is not DialogueRequest:
            # Q.774 §3.2.2.1: a Begin's dialogue portion can only hold an AARQ
            self.counters.u_aborts_sent += 1
            return [], [encode(Abort(msg.otid, None, _PROVIDER_ABRT))]
        if len(self._open) >= self.max_dialogues:
            self.counters.resource_limited += 1
            self.counters.p_aborts_sent += 1
            return [], [encode(Abort(msg.otid, PAbortCause.RESOURCE_LIMITATION))]
        otid = self._allocate()
        d = Dialogue(otid, _INIT_RECEIVED, False, None, msg.otid,
                     None if pdu is None else pdu.application_context)
        self._open[otid] = d
        self._arm(d, now + self.invoke_timeout)
        self.counters.begins_received += 1
        return [DialogueBegun(d, msg)], []

    def _malformed(self, data: bytes, exc: CodecError) -> tuple[list[Event], list[bytes]]:
        """Q.774 §3.3.4 and Table 7/Q.774 for a message that does not decode."""
        self.counters.invalid += 1
        events: list[Event] = [InvalidMessage(exc)]
        out: list[bytes] = []
        mtype, otid, dtid = _peek_transaction_ids(data)
        dialogue_fault = exc.field.startswith("dialoguePortion")
        if mtype not in _KNOWN_TYPES:
            cause = PAbortCause.UNRECOGNIZED_MESSAGE_TYPE
        elif exc.field in _TID_FIELDS:
            cause = PAbortCause.INCORRECT_TRANSACTION_PORTION
        else:
            cause = PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION
        if dtid is not None and mtype in (TAG_CONTINUE, TAG_END, TAG_ABORT):
            d = self._open.get(dtid)
            if d is not None:
                self._release(d)
                self.counters.aborted += 1
                events.append(DialogueAborted(
                    d, None if dialogue_fault else cause, None, f"malformed message: {exc}"))
        if otid is not None and mtype not in (TAG_END, TAG_ABORT, TAG_UNIDIRECTIONAL):
            if dialogue_fault:
                self.counters.u_aborts_sent += 1
                out.append(encode(Abort(otid, None, _PROVIDER_ABRT)))
            else:
                self.counters.p_aborts_sent += 1
                out.append(encode(Abort(otid, cause)))
        return events, out


def _peek_transaction_ids(buf: bytes) -> tuple[int | None, bytes | None, bytes | None]:
    """The message tag and whatever otid and dtid can still be read from a damaged message.

    Walks the elements inside the outer one for as long as they parse, taking the first
    well-formed originating (``48``) and destination (``49``) transaction id of 1 to 4
    octets; whether a fault leaves an id derivable is the implementation's to decide
    (Table 7/Q.774).
    """
    n = len(buf)
    if n < 2:
        return (buf[0] if n else None), None, None
    tag = buf[0]
    ln = buf[1]
    pos = 2 if ln <= 0x80 else 2 + (ln & 0x7F)  # short, indefinite, or long form
    otid = dtid = None
    while pos < n and (otid is None or dtid is None):
        try:
            t, s, e, pos = read_tlv(buf, pos, n)
        except CodecError:
            break
        if 1 <= e - s <= TID_OCTETS:
            if t == TAG_OTID and otid is None:
                otid = buf[s:e]
            elif t == TAG_DTID and dtid is None:
                dtid = buf[s:e]
    return tag, otid, dtid
