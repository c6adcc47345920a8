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
from protocols.map.sm import RoutingInfoForSmArg, RoutingInfoForSmRes
from protocols.sccp import bcd_digits_ok
from protocols.tbcd import _INTERNATIONAL, _ISDN, _SWAP, _address
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


_SRI_SM = map_.Opcode.SEND_ROUTING_INFO_FOR_SM
_SHAPES_MAX = 64
_RELEARN = 16


class _BeginShape:
    """The shape of an SRI-SM Begin, learned from one the general reading took (its UDT
    split by ``sccp.unitdata_split``, its TCAP read by ``TransactionManager.read_invoke``,
    its RoutingInfoForSM-Arg of msisdn, sm-RP-PRI and serviceCentreAddress read in place):
    every octet of it but the called address's digits, the otid and the msisdn's digits.
    An SMSC's Begins differ only there, so a Begin of the same length with the same octets
    everywhere else is read by comparing three runs of octets and checking those fields as
    the general reading checks them (the called digits BCD, the msisdn's digits as
    ``RoutingInfoForSmArg.decode`` reads them, the otid any octets): :meth:`read` gives what
    the general reading gives (the tests compare), or None (then the general reading runs).

    Only a UDT whose called address follows its pointers (pointer 3) is learned; the key is
    ``(length, the octets up to the called address's digits)``. A Begin of a known key that
    does not fit (another SMSC, another invoke id) counts a miss; the shape is learned anew
    from the general reading of every :data:`_RELEARN`-th such Begin, not of each one (a
    peer whose Begins never fit does not pay for learning each time)."""

    __slots__ = ("a_end", "odd", "chunk1", "otid_at", "otid_end", "chunk2", "m_at", "m_end",
                 "chunk3", "calling", "pdu", "iid", "param_at", "pri", "sca", "misses", "answers")

    @classmethod
    def learn(cls, buf: bytes, split: tuple, begin: tuple, version: int
              ) -> _BeginShape | None:
        """The shape of ``buf`` (split and read as given), or None where :meth:`read` would
        not give what the general reading gave."""
        try:
            param = begin[6]
            n = len(buf)
            if buf[2] != 3 or begin[5] != _SRI_SM or type(param) is not bytes:
                return None
            a = 4 + param[3]  # (RoutingInfoForSmArg.decode's hot path: 30 L 80 la 91 ..)
            end = len(param)
            if not (6 < end < 0x82 and param[0] == 0x30 and param[1] == end - 2
                    and param[2] == 0x80 and param[4] == 0x91 and a > 5 and a + 5 <= end
                    and param[a] == 0x81 and param[a + 1] == 1 and param[a + 3] == 0x82
                    and a + 5 + param[a + 4] == end):
                return None
            self = cls()
            self.misses = 0
            self.answers = {}
            self.a_end = 6 + buf[5]
            self.odd = buf[9] & 0x0F == 1
            ds = 5 + buf[4]  # the TCAP message
            self.otid_at = ds + 4
            self.otid_end = ds + 4 + len(begin[1])
            self.param_at = n - len(param)
            self.m_at = self.param_at + 5
            self.m_end = self.param_at + a
            if not self.a_end <= self.otid_at < self.otid_end <= self.m_at < self.m_end:
                return None
            self.chunk1 = buf[self.a_end:self.otid_at]
            self.chunk2 = buf[self.otid_end:self.m_at]
            self.chunk3 = buf[self.m_end:]
            self.calling = split[1]
            self.pdu = begin[2]
            self.iid = begin[4]
            arg = RoutingInfoForSmArg.decode(param, version)
            self.pri = arg.sm_rp_pri
            self.sca = arg.service_centre_address
            got = self.read(buf)
            if got is None or got[:3] != (split[0], split[1], begin) or got[3] != arg:
                return None
            return self
        except (CodecError, IndexError):
            return None

    def read(self, buf: bytes) -> tuple | None:
        """``(called, calling, begin, argument)`` of ``buf``, a Begin of the learned length
        and key; None when it is not of this shape."""
        a_end = self.a_end
        if (buf[a_end:self.otid_at] != self.chunk1 or buf[self.otid_end:self.m_at] != self.chunk2
                or buf[self.m_end:] != self.chunk3):
            return None
        # the called address's digits, as sccp.unitdata_split checks them
        if not bcd_digits_ok(buf, 11, a_end, 1 if self.odd else 2):
            return None
        # the msisdn, as RoutingInfoForSmArg.decode reads it
        digits = buf[self.m_at:self.m_end].translate(_SWAP).hex()
        if digits.isdigit():
            msisdn = _address(digits, _INTERNATIONAL, _ISDN)
        elif digits[-1] == "f" and digits[:-1].isdigit():
            msisdn = _address(digits[:-1], _INTERNATIONAL, _ISDN)
        else:
            return None
        begin = (0x62, buf[self.otid_at:self.otid_end], self.pdu, 0xA1, self.iid, _SRI_SM,
                 buf[self.param_at:])
        return (buf[5:a_end], self.calling, begin,
                RoutingInfoForSmArg(msisdn, self.pri, self.sca))


    def answer(self, called: bytes, otid: bytes, accepted: tcap.DialoguePdu | None,
               result: bytes) -> bytes | None:
        """The UDT answering a Begin read with :meth:`read` (its called address ``called``,
        its otid ``otid``) with an End holding one ReturnResultLast of ``result``, written
        from a template per length of the result: the same bytes as the general path
        (``TransactionManager.end_at_once``, ``sccp.encode_unitdata_lv`` of the Begin's
        addresses swapped), or None where the general path is to write it (then it also
        raises what it raises)."""
        t = self.answers.get(len(result))
        if t is None:
            if len(self.answers) >= _SHAPES_MAX:
                self.answers.clear()
            t = self.answers[len(result)] = self._answer_template(called, otid, accepted,
                                                                  result)
        if not t:
            return None
        return b"".join((t[0], called, t[1], otid, t[2], result))

    def _answer_template(self, called: bytes, otid: bytes,
                         accepted: tcap.DialoguePdu | None, result: bytes) -> tuple | bool:
        """``(before the called address, between it and the dtid, between the dtid and the
        result)``, checked on two samples of these lengths; False where it would not write
        what the general path writes. Every octet but those depends only on the lengths."""
        def general(c: bytes, o: bytes, r: bytes) -> bytes:
            return sccp.encode_unitdata_lv(self.calling, c, tcap.encode_end_result(
                o, accepted, self.iid, _SRI_SM, r))

        try:
            udt = general(called, otid, result)
            d = 5 + len(self.calling) + len(called)
            k = len(otid)
            r = len(udt) - len(result)
            t = (udt[:d - len(called)], udt[d:d + 5], udt[d + 5 + k:r])
            if (udt[d - len(called):d] != called or udt[d + 5:d + 5 + k] != otid
                    or udt[r:] != result or d + 5 + k > r):
                return False
            c2 = called[:-1] + bytes(((called[-1] + 1) & 0xFF,))
            o2 = bytes(0xFF - b for b in otid)
            r2 = bytes(0xFF - b for b in result)
            if b"".join((t[0], c2, t[1], o2, t[2], r2)) != general(c2, o2, r2):
                return False
            return t
        except (CodecError, IndexError):
            return False


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
        self._shapes: dict[tuple[int, bytes], _BeginShape] = {}  # learned SRI-SM Begins
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the traffic comes in on

    def on_payload(self, assoc: object, data: m3ua.Data) -> None:
        """An M3UA DATA arrived on ``assoc``: answer whatever it asks."""
        pd = data.protocol_data
        if pd.si != 3:
            return
        loop = self._loop
        if loop is None or not loop.is_running():  # (get_running_loop costs a getpid call)
            loop = self._loop = asyncio.get_running_loop()
        buf = pd.data
        # The hottest path: an SRI-SM Begin of a shape learned from an earlier one (an SMSC's
        # Begins differ only in the number and the otid), read by comparing octets.
        shape = self._shapes.get((len(buf), buf[:11])) if type(buf) is bytes else None
        if shape is not None:
            got = shape.read(buf)
            if got is not None:
                if self.tm.has_room():  # (as read_invoke)
                    self.stats.begun += 1
                    self._invoked(assoc, pd, (got[1], got[0]), None, None, loop.time(),
                                  got[2], got[3], shape)
                    return
            else:
                shape.misses += 1
        # The hot path: a UDT whose addresses are of the inter-PLMN form, carrying a Begin
        # with one Invoke. The addresses are checked, not decoded: the answer takes them back
        # swapped as they came, and the handler's Invocation decodes them if asked.
        split = sccp.unitdata_split(buf)
        if split is not None:
            begin = self.tm.read_invoke(split[2])
            if begin is not None:
                self.stats.begun += 1
                if begin[5] == _SRI_SM and buf[2] == 3 and (
                        shape is None or shape.misses >= _RELEARN):
                    self._learn(buf, split, begin)
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

    def _learn(self, buf: bytes, split: tuple, begin: tuple) -> None:
        pdu = begin[2]
        context = self._contexts.get(id(pdu))
        if context is None or context[0] is not pdu:
            context = self._context(pdu)
        shape = _BeginShape.learn(buf, split, begin, context[2])
        if shape is not None:
            if len(self._shapes) >= _SHAPES_MAX:
                self._shapes.clear()
            self._shapes[(len(buf), buf[:11])] = shape

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
                 begin: tuple | None = None, argument: object = None,
                 shape: _BeginShape | None = None) -> None:
        """The peer's Begin opened ``dialogue`` invoking ``invoke`` (a local operation).
        ``back`` holds the SCCP addresses of the answer (the Begin's calling and called
        addresses, encoded). ``dialogue`` and ``invoke`` None: the Begin, as
        ``TransactionManager.read_invoke`` read it, is in ``begin``, and its dialogue is
        opened here unless the handler answers at once with a result (then it is ended in
        the same step). ``argument``: the invoke's argument, already decoded by ``shape``
        (a :class:`_BeginShape`), which also writes the answer."""
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
        if served is None or version > served:
            argument = None
        elif argument is None:
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
                value = answer.value
                send = getattr(assoc, "send_payload", None)
                if shape is not None and type(value) is RoutingInfoForSmRes and send is not None:
                    # (encode_result, without its look-up; the UDT from the shape's template)
                    result = value.encode(version)
                    udt = shape.answer(back[1], begin[1], accepted, result)
                    if udt is not None:
                        self.tm.ended_at_once()
                        self.stats.answered += 1
                        try:
                            send(pd.dpc, pd.opc, SI_SCCP, pd.ni, pd.mp, pd.sls, udt)
                        except Exception as exc:  # the association went down
                            log.debug("answer not sent: %s", exc)
                        return
                else:
                    result = map_.encode_result(opcode, value, version)
                out = self.tm.end_at_once(begin, accepted, invoke_id, opcode, result)
                self.stats.answered += 1
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
