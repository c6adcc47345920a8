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
from protocols.tcap_dialogue import DialogueBegun, TransactionManager

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


@dataclass(slots=True)
class Invocation:
    """One operation invoked by the peer, as the handler sees it."""

    opcode: int
    argument: object  # the decoded MAP argument (protocols.map)
    version: int
    invoke_id: int
    called: sccp.SccpAddress
    calling: sccp.SccpAddress
    association: object


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
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the traffic comes in on

    def on_payload(self, assoc: object, data: m3ua.Data) -> None:
        """An M3UA DATA arrived on ``assoc``: answer whatever it asks."""
        pd = data.protocol_data
        if pd.si != 3:
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
        loop = self._loop
        if loop is None or not loop.is_running():  # (get_running_loop costs a getpid call)
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        events, replies = self.tm.receive(udt.data, now)
        for raw in replies:
            assoc.send(reply_data(pd, udt, raw))
        for event in events:
            if type(event) is DialogueBegun:
                self._begun(assoc, pd, udt, event, now)

    def _begun(self, assoc: object, pd: m3ua.ProtocolData, udt: sccp.Unitdata,
               event: DialogueBegun, now: float) -> None:
        self.stats.begun += 1
        dialogue = event.dialogue
        components = event.message.components
        if components and type(components[0]) is tcap.Invoke:
            invoke = components[0]
        else:
            invoke = next((c for c in components if type(c) is tcap.Invoke), None)
        if invoke is None or not isinstance(invoke.opcode, int):
            self._send(assoc, pd, udt, self.tm.u_abort(dialogue, None, now))
            self.stats.aborted += 1
            return
        opcode = invoke.opcode
        self.stats.by_operation[opcode] = self.stats.by_operation.get(opcode, 0) + 1
        acn = dialogue.application_context
        found = map_.lookup_context(acn) if acn is not None else None
        version = found[1] if found is not None else 1
        served = self.max_versions.get(opcode)
        if served is None:
            self._reject(assoc, pd, udt, dialogue, invoke,
                         tcap.InvokeProblem.UNRECOGNIZED_OPERATION, version, now)
            return
        if version > served:
            self._answer(assoc, pd, udt, dialogue, invoke, version, RefuseContext(served), now)
            return
        try:
            argument = map_.decode_argument(opcode, invoke.parameter or b"", version)
        except CodecError as exc:
            log.debug("mistyped argument: %s", exc)
            self._reject(assoc, pd, udt, dialogue, invoke, tcap.InvokeProblem.MISTYPED_PARAMETER,
                         version, now)
            return
        answer = self.handler(Invocation(opcode, argument, version, invoke.invoke_id,
                                         udt.called, udt.calling, assoc))
        if type(answer) is Reply:  # the common answer: no need to ask whether it is awaitable
            self._answer(assoc, pd, udt, dialogue, invoke, version, answer, now)
        elif inspect.isawaitable(answer):
            task = asyncio.ensure_future(self._later(assoc, pd, udt, dialogue, invoke,
                                                     version, answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._answer(assoc, pd, udt, dialogue, invoke, version, answer, now)

    async def _later(self, assoc, pd, udt, dialogue, invoke, version,
                     pending: Awaitable[Answer]) -> None:
        try:
            answer = await pending
        except Exception:  # a broken handler must not take the link down
            log.exception("MAP handler failed")
            answer = UserAbort()
        if dialogue.is_open:
            self._answer(assoc, pd, udt, dialogue, invoke, version, answer,
                         asyncio.get_running_loop().time())

    def _answer(self, assoc, pd, udt, dialogue, invoke: tcap.Invoke, version: int,
                answer: Answer, now: float) -> None:
        tm = self.tm
        acn = dialogue.application_context
        accepted = _accepted(acn) if acn is not None else None
        kind = type(answer)
        if kind is Reply:
            result = map_.encode_result(invoke.opcode, answer.value, version)
            out = tm.end(dialogue, accepted, [tcap.ReturnResultLast(
                invoke.invoke_id, invoke.opcode, result)], now)
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
        self._send(assoc, pd, udt, out)

    def _reject(self, assoc, pd, udt, dialogue, invoke: tcap.Invoke, problem: int,
                version: int, now: float) -> None:
        acn = dialogue.application_context
        accepted = _accepted(acn) if acn is not None else None
        self.stats.rejected += 1
        self._send(assoc, pd, udt, self.tm.end(dialogue, accepted, [tcap.Reject(
            invoke.invoke_id, tcap.ProblemType.INVOKE, problem)], now))

    @staticmethod
    def _send(assoc, pd: m3ua.ProtocolData, udt: sccp.Unitdata, tcap_bytes: bytes) -> None:
        if not tcap_bytes:
            return
        try:  # (reply_data, without its calls)
            assoc.send(m3ua.ProtocolData(pd.dpc, pd.opc, SI_SCCP, pd.ni, pd.mp, pd.sls,
                                         sccp.encode_unitdata(udt.calling, udt.called,
                                                              tcap_bytes)))
        except Exception as exc:  # the association went down meanwhile: the peer times out
            log.debug("answer not sent: %s", exc)

    async def drain(self) -> None:
        """Wait for the answers still being prepared (asynchronous handlers)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
