"""The answering side of MAP: dialogues that arrive over M3UA associations are handed to a
handler as :class:`Invocation` values, and its :data:`Answer` goes back on the wire.

This is what an HLR does (TS 29.002 §12 for the dialogue, §15.2 for application-context
negotiation): the simulator's HLRs and the tests' in-process peers are built on it.

- A Begin whose application context is of a higher version than this responder serves for
  the operation is refused before the handler sees it: an Abort with an AARE
  reject-permanent, application-context-name-not-supported, proposing the highest version
  served (TS 29.002 §15.2.1, Q.773 Table 49).
- An argument that does not decode gets a Reject (invoke problem mistypedParameter), an
  unknown operation a Reject (unrecognizedOperation), Q.773 §3.2.2.2.
- The handler may answer at once or return an awaitable (a delayed, asynchronous answer).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.errors import CodecError
from protocols.tcap_dialogue import Dialogue, DialogueBegun, TransactionManager

from .sccp_route import SI_SCCP, reply_data

log = logging.getLogger(__name__)

#: the highest version served per operation, unless configured otherwise
DEFAULT_MAX_VERSIONS: Mapping[int, int] = {
    map_.Opcode.SEND_ROUTING_INFO_FOR_SM: 3,
    map_.Opcode.ANY_TIME_INTERROGATION: 3,
    map_.Opcode.SEND_ROUTING_INFO: 3,
    map_.Opcode.SEND_IMSI: 2,
}


_ACCEPTED: dict[tuple[int, ...], tcap.DialogueResponse] = {}


def _accepted(acn: tuple[int, ...]) -> tcap.DialogueResponse:
    """The AARE accepting ``acn``: one (frozen) object per context, bounded, so the TCAP
    encoder finds its dialogue portion by identity."""
    pdu = _ACCEPTED.get(acn)
    if pdu is None:
        if len(_ACCEPTED) >= 256:
            _ACCEPTED.clear()
        pdu = _ACCEPTED[acn] = tcap.DialogueResponse(acn)
    return pdu


class Invocation:
    """One operation invoked by the peer, as the handler sees it: ``opcode``, ``argument``
    (the decoded MAP argument, ``protocols.map``), ``version``, ``invoke_id``, the SCCP
    ``called`` and ``calling`` addresses of the Begin, and the ``association`` it came on.

    The addresses may be given as their encodings (length octet first, already checked to
    decode by ``sccp.unitdata_split``); they are decoded when first read.
    """

    __slots__ = ("opcode", "argument", "version", "invoke_id", "_called", "_calling",
                 "association")
    __hash__ = None  # type: ignore[assignment]  # (mutable, compared by value)

    def __init__(self, opcode: int, argument: object, version: int, invoke_id: int,
                 called: sccp.SccpAddress | bytes, calling: sccp.SccpAddress | bytes,
                 association: object) -> None:
        self.opcode = opcode
        self.argument = argument
        self.version = version
        self.invoke_id = invoke_id
        self._called = called
        self._calling = calling
        self.association = association

    @property
    def called(self) -> sccp.SccpAddress:
        a = self._called
        if type(a) is bytes:
            a = self._called = sccp.SccpAddress.decode(a[1:])
        return a

    @called.setter
    def called(self, value: sccp.SccpAddress) -> None:
        self._called = value

    @property
    def calling(self) -> sccp.SccpAddress:
        a = self._calling
        if type(a) is bytes:
            a = self._calling = sccp.SccpAddress.decode(a[1:])
        return a

    @calling.setter
    def calling(self, value: sccp.SccpAddress) -> None:
        self._calling = value

    def _fields(self) -> tuple:
        return (self.opcode, self.argument, self.version, self.invoke_id, self.called,
                self.calling, self.association)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return ("Invocation(" + ", ".join(
            f"{name}={value!r}" for name, value in zip(
                ("opcode", "argument", "version", "invoke_id", "called", "calling",
                 "association"), self._fields())) + ")")


@dataclass(slots=True)
class Reply:
    """Answer with the operation's result (returnResultLast in an End)."""

    value: object


@dataclass(slots=True)
class ReplyError:
    """Answer with a MAP error (returnError in an End), its parameter optional."""

    code: int
    param: object | None = None


@dataclass(slots=True)
class RefuseContext:
    """Refuse the dialogue's application context, proposing ``version`` instead."""

    version: int


@dataclass(slots=True)
class UserAbort:
    """A TC-U-ABORT (ABRT, dialogue-service-user)."""


@dataclass(slots=True)
class ProviderAbort:
    """A P-Abort with ``cause`` (Q.773 P-AbortCause)."""

    cause: int = tcap.PAbortCause.RESOURCE_LIMITATION


@dataclass(slots=True)
class NoReply:
    """Say nothing: the dialogue is dropped here and the peer's timer runs out."""


@dataclass(slots=True)
class RawReply:
    """Send these TCAP bytes as the answer, whatever they are (malformed-answer faults)."""

    data: bytes


Answer = Reply | ReplyError | RefuseContext | UserAbort | ProviderAbort | NoReply | RawReply
Handler = Callable[[Invocation], "Answer | Awaitable[Answer]"]


@dataclass(slots=True)
class ResponderStats:
    """Dialogues by outcome, for counters and tests."""

    begun: int = 0
    answered: int = 0
    errors: int = 0
    refused: int = 0
    aborted: int = 0
    silent: int = 0
    rejected: int = 0
    undecodable: int = 0
    by_operation: dict[int, int] = field(default_factory=dict)


class MapResponder:
    """Answers MAP dialogues with ``handler``; attach it to associations as their payload
    callback (``AssociationServer(on_payload=responder.on_payload)``)."""

    def __init__(self, handler: Handler, *, max_versions: Mapping[int, int] | None = None,
                 max_dialogues: int = 65536, timeout: float = 60.0) -> None:
        self.handler = handler
        self.max_versions = dict(DEFAULT_MAX_VERSIONS if max_versions is None else max_versions)
        self.tm = TransactionManager(max_dialogues=max_dialogues, invoke_timeout=timeout)
        self.stats = ResponderStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._contexts: dict[int, tuple] = {}  # id(AARQ) -> _context()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the traffic comes in on

    def on_payload(self, assoc: object, data: m3ua.Data) -> None:
        """An M3UA DATA arrived on ``assoc``: answer whatever it asks."""
        pd = data.protocol_data
        if pd.si != 3:
            return
        loop = self._loop
        if loop is None or not loop.is_running():  # (get_running_loop costs a getpid call)
            loop = self._loop = asyncio.get_running_loop()
        # The hot path: a UDT whose addresses are of the inter-PLMN form, carrying a Begin
        # with one Invoke. The addresses are checked, not decoded: the answer takes them back
        # swapped as they came, and the handler's Invocation decodes them if asked.
        split = sccp.unitdata_split(pd.data)
        if split is not None:
            begin = self.tm.read_invoke(split[2])
            if begin is not None:
                self.stats.begun += 1
                self._invoked(assoc, pd, (split[1], split[0]), None, None, loop.time(), begin)
                return
        try:
            udt = sccp.decode(pd.data)
        except CodecError as exc:
            self.stats.undecodable += 1
            log.debug("undecodable SCCP from %s: %s", assoc, exc)
            return
        kind = type(udt)
        if kind is not sccp.Unitdata and kind is not sccp.ExtendedUnitdata:
            return  # a returned message (UDTS/XUDTS) needs no answer
        now = loop.time()
        events, replies = self.tm.receive(udt.data, now)
        for raw in replies:
            assoc.send(reply_data(pd, udt, raw))
        back = (udt.calling._lv, udt.called._lv)
        for event in events:
            if type(event) is DialogueBegun:
                self._begun(assoc, pd, back, event, now)

    def _begun(self, assoc: object, pd: m3ua.ProtocolData, back: tuple[bytes, bytes],
               event: DialogueBegun, now: float) -> None:
        self.stats.begun += 1
        dialogue = event.dialogue
        components = event.message.components
        if components and type(components[0]) is tcap.Invoke:
            invoke = components[0]
        else:
            invoke = next((c for c in components if type(c) is tcap.Invoke), None)
        if invoke is None or not isinstance(invoke.opcode, int):
            self._send(assoc, pd, back, self.tm.u_abort(dialogue, None, now))
            self.stats.aborted += 1
            return
        self._invoked(assoc, pd, back, dialogue, invoke, now)

    def _invoked(self, assoc: object, pd: m3ua.ProtocolData, back: tuple[bytes, bytes],
                 dialogue: Dialogue | None, invoke: tcap.Invoke | None, now: float,
                 begin: tuple | None = None) -> None:
        """The peer's Begin opened ``dialogue`` invoking ``invoke`` (a local operation).
        ``back`` holds the SCCP addresses of the answer (the Begin's calling and called
        addresses, encoded). ``dialogue`` and ``invoke`` None: the Begin, as
        ``TransactionManager.read_invoke`` read it, is in ``begin``, and its dialogue is
        opened here unless the handler answers at once with a result (then it is ended in
        the same step)."""
        if dialogue is None:
            pdu = begin[2]  # type: ignore[index]
            invoke_id, opcode, parameter = begin[4], begin[5], begin[6]  # type: ignore[index]
            context = self._contexts.get(id(pdu))
            if context is None or context[0] is not pdu:
                context = self._context(pdu)
            acn, version, accepted = context[1:]
        else:
            invoke_id, opcode, parameter = invoke.invoke_id, invoke.opcode, invoke.parameter
            acn = dialogue.application_context
            found = map_.lookup_context(acn) if acn is not None else None
            version = found[1] if found is not None else 1
            accepted = None
        self.stats.by_operation[opcode] = self.stats.by_operation.get(opcode, 0) + 1
        served = self.max_versions.get(opcode)
        argument = None
        if served is not None and version <= served:
            try:
                argument = map_.decode_argument(opcode, parameter or b"", version)
            except CodecError as exc:
                log.debug("mistyped argument: %s", exc)
        if argument is None:
            if invoke is None:
                invoke = tcap.Invoke(invoke_id, opcode, parameter)
            if dialogue is None:
                dialogue = self.tm.accept(begin, now)
            if served is None:
                self._reject(assoc, pd, back, dialogue, invoke,
                             tcap.InvokeProblem.UNRECOGNIZED_OPERATION, version, now)
            elif version > served:
                self._answer(assoc, pd, back, dialogue, invoke, version, RefuseContext(served),
                             now)
            else:
                self._reject(assoc, pd, back, dialogue, invoke,
                             tcap.InvokeProblem.MISTYPED_PARAMETER, version, now)
            return
        answer = self.handler(Invocation(opcode, argument, version, invoke_id,
                                         back[1], back[0], assoc))
        if dialogue is None:
            if type(answer) is Reply:  # answered at once: the dialogue opens and ends here
                result = map_.encode_result(opcode, answer.value, version)
                out = self.tm.end_at_once(begin, accepted, invoke_id, opcode, result)
                self.stats.answered += 1
                send = getattr(assoc, "send_payload", None)
                if send is None:  # (an association with only send())
                    self._send(assoc, pd, back, out)
                    return
                try:  # (_send, without its call)
                    send(pd.dpc, pd.opc, SI_SCCP, pd.ni, pd.mp, pd.sls,
                         sccp.encode_unitdata_lv(back[0], back[1], out))
                except Exception as exc:  # the association went down: the peer times out
                    log.debug("answer not sent: %s", exc)
                return
            dialogue = self.tm.accept(begin, now)
            invoke = tcap.Invoke(invoke_id, opcode, parameter)
        if type(answer) is Reply:  # the common answer: no need to ask whether it is awaitable
            self._answer(assoc, pd, back, dialogue, invoke, version, answer, now)
        elif inspect.isawaitable(answer):
            task = asyncio.ensure_future(self._later(assoc, pd, back, dialogue, invoke,
                                                     version, answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._answer(assoc, pd, back, dialogue, invoke, version, answer, now)

    def _context(self, pdu: tcap.DialogueRequest | None) -> tuple:
        """``(pdu, application context, version, AARE accepting it)`` of a Begin's dialogue
        portion (None: none, version 1), memoised by the PDU's identity: the decoder gives
        one PDU object per context."""
        if pdu is None:
            return (None, None, 1, None)
        acn = pdu.application_context
        found = map_.lookup_context(acn)
        context = (pdu, acn, found[1] if found is not None else 1, _accepted(acn))
        if len(self._contexts) >= 256:
            self._contexts.clear()
        self._contexts[id(pdu)] = context
        return context

    async def _later(self, assoc, pd, back, dialogue, invoke, version,
                     pending: Awaitable[Answer]) -> None:
        try:
            answer = await pending
        except Exception:  # a broken handler must not take the link down
            log.exception("MAP handler failed")
            answer = UserAbort()
        if dialogue.is_open:
            self._answer(assoc, pd, back, dialogue, invoke, version, answer,
                         asyncio.get_running_loop().time())

    def _answer(self, assoc, pd, back, dialogue, invoke: tcap.Invoke, version: int,
                answer: Answer, now: float) -> None:
        tm = self.tm
        acn = dialogue.application_context
        accepted = _accepted(acn) if acn is not None else None
        kind = type(answer)
        if kind is Reply:
            result = map_.encode_result(invoke.opcode, answer.value, version)
            out = tm.end_result(dialogue, accepted, invoke.invoke_id, invoke.opcode, result, now)
            self.stats.answered += 1
        elif kind is ReplyError:
            param = map_.encode_error_param(answer.code, answer.param, version)
            out = tm.end(dialogue, accepted, [tcap.ReturnError(
                invoke.invoke_id, answer.code, param)], now)
            self.stats.errors += 1
        elif kind is RefuseContext:
            proposed = map_.context_for(invoke.opcode, answer.version)
            out = tm.u_abort(dialogue, tcap.DialogueResponse(
                proposed, tcap.AssociateResult.REJECT_PERMANENT,
                tcap.DiagnosticSource.DIALOGUE_SERVICE_USER,
                tcap.ServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED), now)
            self.stats.refused += 1
        elif kind is UserAbort:
            out = tm.u_abort(dialogue, None, now)
            self.stats.aborted += 1
        elif kind is ProviderAbort:
            tm.end(dialogue, None, [], now, prearranged=True)
            out = tcap.encode(tcap.Abort(dialogue.peer_tid, answer.cause))
            self.stats.aborted += 1
        elif kind is RawReply:
            tm.end(dialogue, None, [], now, prearranged=True)
            out = answer.data
            self.stats.answered += 1
        else:  # NoReply
            tm.end(dialogue, None, [], now, prearranged=True)
            self.stats.silent += 1
            return
        self._send(assoc, pd, back, out)

    def _reject(self, assoc, pd, back, dialogue, invoke: tcap.Invoke, problem: int,
                version: int, now: float) -> None:
        acn = dialogue.application_context
        accepted = _accepted(acn) if acn is not None else None
        self.stats.rejected += 1
        self._send(assoc, pd, back, self.tm.end(dialogue, accepted, [tcap.Reject(
            invoke.invoke_id, tcap.ProblemType.INVOKE, problem)], now))

    @staticmethod
    def _send(assoc, pd: m3ua.ProtocolData, back: tuple[bytes, bytes], tcap_bytes: bytes
              ) -> None:
        if not tcap_bytes:
            return
        try:  # (reply_data, without its calls)
            payload = sccp.encode_unitdata_lv(back[0], back[1], tcap_bytes)
            send = getattr(assoc, "send_payload", None)
            if send is not None:
                send(pd.dpc, pd.opc, SI_SCCP, pd.ni, pd.mp, pd.sls, payload)
            else:  # (an association with only send())
                assoc.send(m3ua.ProtocolData(pd.dpc, pd.opc, SI_SCCP, pd.ni, pd.mp, pd.sls,
                                             payload))
        except Exception as exc:  # the association went down meanwhile: the peer times out
            log.debug("answer not sent: %s", exc)

    async def drain(self) -> None:
        """Wait for the answers still being prepared (asynchronous handlers)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
