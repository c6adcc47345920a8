"""The asyncio MAP client: ``sri_sm``, ``ati`` and ``sri`` toward an HLR over a link set.

Each call opens one TCAP dialogue (TS 29.002 §12: one operation per dialogue for these
services) and returns one :data:`MapOutcome`, never raising for what the network does:

- :class:`MapResult`: the operation's typed result (``protocols.map``);
- :class:`MapUserError`: the HLR answered with a MAP error (code, name, diagnostic);
- :class:`MapFailure`: no answer to give (timer m ran out, the dialogue was aborted, the
  link set is down or the association carrying the dialogue was lost, SCCP returned the
  message, the component was rejected, or the answer did not decode).

Application-context negotiation (TS 29.002 §15.2.1, §15.2.4): a Begin refused with an AARE
naming a lower version of the context is retried once with that version, and the version
is remembered per route and operation, so later dialogues start there.

Incoming traffic from every association of the attached link sets goes to
:meth:`MapClient.on_payload`; a lost association fails the dialogues it carried at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field

from protocols import m3ua, sccp, tcap
from protocols import map as map_
from protocols.errors import CodecError
from protocols.map import ErrorCode, Opcode
from protocols.tbcd import isdn
from protocols.tcap_dialogue import (
    Dialogue,
    DialogueAborted,
    DialogueContinued,
    DialogueEnded,
    DialogueTimedOut,
    TooManyDialogues,
    TransactionManager,
    refused_context,
)

from .sccp_route import SI_SCCP, MapRoute, protocol_data, reply_data, unitdata

log = logging.getLogger(__name__)

__all__ = ["FailureKind", "MapClient", "MapFailure", "MapOutcome", "MapResult", "MapRoute",
           "MapUserError"]


class FailureKind(enum.StrEnum):
    """Why a MAP operation has no answer."""

    TIMEOUT = "timeout"  # timer m ran out (TS 29.002 §17.1.2)
    ABORT = "abort"  # TC-U-ABORT from the peer
    PROVIDER_ABORT = "provider_abort"  # TC-P-ABORT (Q.773 P-AbortCause in ``cause``)
    CONTEXT_REFUSED = "context_refused"  # no application context version was accepted
    LINK_DOWN = "link_down"  # no ASP-ACTIVE association, or the one carrying it was lost
    SCCP_RETURN = "sccp_return"  # UDTS/XUDTS: SCCP could not deliver (Q.713 cause in ``cause``)
    REJECT = "reject"  # the peer rejected the component (Q.773 problem in ``cause``)
    OVERLOAD = "overload"  # the bound on open dialogues is reached
    PROTOCOL = "protocol_error"  # the answer did not make sense or did not decode


@dataclass(slots=True)
class MapResult:
    """The HLR's answer: ``value`` is the operation's typed result."""

    operation: Opcode
    value: object
    version: int
    route: str


@dataclass(slots=True)
class MapUserError:
    """The HLR answered with a MAP error (TS 29.002 §17.6)."""

    operation: Opcode
    code: int
    name: str
    param: object | None
    diagnostic: str | None
    version: int
    route: str


@dataclass(slots=True)
class MapFailure:
    """No answer: ``kind`` says why, ``detail`` in words, ``cause`` the protocol's code."""

    operation: Opcode
    kind: FailureKind
    detail: str
    version: int
    route: str
    cause: int | None = None


MapOutcome = MapResult | MapUserError | MapFailure

# the parameter attribute that carries each error's diagnostic (TS 29.002 §17.7.7)
_DIAGNOSTICS = ("absent_subscriber_diagnostic_sm", "unknown_subscriber_diagnostic",
                "call_barring_cause", "network_resource", "absent_subscriber_reason")

_SRI_SM = Opcode.SEND_ROUTING_INFO_FOR_SM
_AARQS: dict[tuple[int, int], tcap.DialogueRequest] = {}


def _aarq(operation: int, version: int) -> tcap.DialogueRequest:
    """The AARQ proposing ``operation``'s context at ``version``: one (frozen) object per
    context, so the TCAP encoder finds its dialogue portion by identity."""
    pdu = _AARQS.get((operation, version))
    if pdu is None:
        pdu = _AARQS[(operation, version)] = tcap.DialogueRequest(
            map_.context_for(operation, version))
    return pdu


_HIGHEST = {Opcode.SEND_ROUTING_INFO_FOR_SM: 3, Opcode.ANY_TIME_INTERROGATION: 3,
            Opcode.SEND_ROUTING_INFO: 3}


@dataclass(slots=True, eq=False)
class _Pending:
    """What a dialogue in flight needs: the caller's future and what a retry would resend."""

    future: asyncio.Future[MapOutcome]
    operation: Opcode
    argument: object
    version: int
    route: MapRoute
    called: sccp.SccpAddress
    calling: sccp.SccpAddress
    timeout: float | None
    association: object = None
    retried: bool = False


@dataclass(slots=True)
class ClientStats:
    """Dialogues by outcome."""

    begun: int = 0
    results: int = 0
    user_errors: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0
    sccp_undecodable: int = 0


class MapClient:
    """Runs MAP dialogues over attached link sets; see the module docstring.

    ``smsc_address`` is the service centre address sent in SRI-SM; ``gsmscf_address`` the
    gsmSCF address sent in ATI; ``timer_m`` the invoke timer (TS 29.002: 15 s to 30 s).
    ``sri_sm_ssn``/``ati_ssn``/``sri_ssn`` are our calling SSNs (an SMS gateway MSC, the
    gsmSCF, a GMSC).
    """

    def __init__(self, *, smsc_address: str, gsmscf_address: str | None = None,
                 timer_m: float = 30.0, max_dialogues: int = 65536,
                 sri_sm_ssn: int = sccp.Ssn.MSC, ati_ssn: int = sccp.Ssn.GSMSCF,
                 sri_ssn: int = sccp.Ssn.MSC) -> None:
        self.smsc = isdn(smsc_address)
        self.gsmscf = isdn(gsmscf_address or smsc_address)
        self.timer_m = timer_m
        self.tm = TransactionManager(max_dialogues=max_dialogues, invoke_timeout=timer_m)
        self.stats = ClientStats()
        self._ssn = {Opcode.SEND_ROUTING_INFO_FOR_SM: sri_sm_ssn,
                     Opcode.ANY_TIME_INTERROGATION: ati_ssn, Opcode.SEND_ROUTING_INFO: sri_ssn}
        self._versions: dict[tuple[str, int], int] = {}
        self._by_association: dict[object, set[bytes]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ wiring

    def attach(self, linkset) -> None:
        """Take the traffic of ``linkset``'s associations, and fail the dialogues of any
        association that leaves ASP-ACTIVE."""
        for assoc in linkset.members:
            assoc.on_payload = self.on_payload
        linkset.add_loss_listener(self._association_lost)

    def version_for(self, route: MapRoute, operation: int) -> int:
        """The context version the next dialogue of ``operation`` on ``route`` starts with."""
        return self._versions.get((route.name, operation), _HIGHEST[operation])

    @property
    def open_dialogues(self) -> int:
        return self.tm.open_dialogues

    def dialogues_on(self, association: object) -> int:
        """Dialogues in flight on ``association`` (to drain it before closing)."""
        return len(self._by_association.get(association, ()))

    def set_version(self, route: MapRoute, operation: int, version: int) -> None:
        """Start the dialogues of ``operation`` on ``route`` with context ``version`` (for
        partners known not to take the highest); a refusal still falls back from there."""
        self._versions[(route.name, operation)] = version

    # ------------------------------------------------------------------ operations

    async def sri_sm(self, msisdn: str, route: MapRoute, *, sm_rp_pri: bool = True,
                     timeout: float | None = None) -> MapOutcome:
        """sendRoutingInfoForSM (TS 29.002 §12.1): IMSI and serving MSC of ``msisdn``."""
        arg = map_.RoutingInfoForSmArg(isdn(msisdn), sm_rp_pri, self.smsc)
        return await self._start(_SRI_SM, arg, msisdn, route, timeout)

    async def ati(self, msisdn: str, route: MapRoute, *,
                  requested: map_.RequestedInfo | None = None,
                  timeout: float | None = None) -> MapOutcome:
        """anyTimeInterrogation (TS 29.002 §8.11.1): location and subscriber state."""
        arg = map_.AnyTimeInterrogationArg(
            isdn(msisdn), requested or map_.RequestedInfo(location_information=True,
                                                          subscriber_state=True),
            self.gsmscf)
        return await self._start(Opcode.ANY_TIME_INTERROGATION, arg, msisdn, route, timeout)

    async def sri(self, msisdn: str, route: MapRoute, *,
                  interrogation_type: int = map_.InterrogationType.BASIC_CALL,
                  timeout: float | None = None) -> MapOutcome:
        """sendRoutingInfo (TS 29.002 §10.1): IMSI plus MSRN or forwarding data."""
        arg = map_.SendRoutingInfoArg(isdn(msisdn), interrogation_type=interrogation_type,
                                      gmsc_or_gsm_scf_address=self.smsc)
        return await self._start(Opcode.SEND_ROUTING_INFO, arg, msisdn, route, timeout)

    def _start(self, operation: Opcode, argument: object, msisdn: str, route: MapRoute,
               timeout: float | None) -> asyncio.Future[MapOutcome]:
        """Open the dialogue; the future the operation's caller awaits (a plain function, not a
        coroutine: one frame less to create and to resume per dialogue)."""
        loop = self._loop
        if loop is None or not loop.is_running():  # (get_running_loop costs a getpid call)
            loop = self._loop = asyncio.get_running_loop()
        if route.hlr_gt:
            called = sccp.SccpAddress.e164(route.hlr_gt, route.hlr_ssn)
        else:  # addressed by the MSISDN: a new number each time, not worth memoising
            called = sccp.SccpAddress.e164(msisdn, route.hlr_ssn, memoise=False)
        calling = sccp.SccpAddress.e164(route.calling_gt, self._ssn[operation])
        pending = _Pending(loop.create_future(), operation, argument,
                           self._versions.get((route.name, operation), _HIGHEST[operation]),
                           route, called, calling, timeout)
        self._begin(pending, loop.time())
        return pending.future

    # ------------------------------------------------------------------ sending

    def _begin(self, p: _Pending, now: float) -> None:
        route = p.route
        if not route.linkset.is_up:
            self._fail(p, FailureKind.LINK_DOWN, f"link set {route.linkset.name} is down")
            return
        version = p.version
        operation = p.operation
        pdu = None if version == 1 else _aarq(operation, version)
        try:
            parameter = map_.encode_argument(operation, p.argument, version)
            dialogue, data = self.tm.begin(pdu, [tcap.Invoke(1, operation, parameter)], now,
                                           p.timeout, p)
        except TooManyDialogues as exc:
            self._fail(p, FailureKind.OVERLOAD, str(exc))
            return
        except CodecError as exc:
            self._fail(p, FailureKind.PROTOCOL, f"cannot encode the invoke: {exc}")
            return
        otid = dialogue.otid
        key = int.from_bytes(otid, "big")
        try:
            assoc = route.linkset.pick(key)
            assoc.send(m3ua.ProtocolData(route.opc, route.dpc, SI_SCCP, route.ni, 0, key & 0xFF,
                                         sccp.encode_unitdata(p.called, p.calling, data, 0,
                                                              route.return_on_error)))
        except Exception as exc:  # LinkSetDown, AspNotActive: the link went away
            self.tm.end(dialogue, None, [], now, prearranged=True)
            self._fail(p, FailureKind.LINK_DOWN, str(exc))
            return
        p.association = assoc
        ids = self._by_association.get(assoc)
        if ids is None:
            ids = self._by_association[assoc] = set()
        ids.add(otid)
        self.stats.begun += 1
        if self._timer_at is None or dialogue.deadline < self._timer_at:
            self._arm_timer()  # else the timer already set goes off before this deadline

    # ------------------------------------------------------------------ receiving

    def on_payload(self, assoc: object, data: m3ua.Data) -> None:
        """An M3UA DATA from one of our associations."""
        pd = data.protocol_data
        if pd.si != 3:
            return
        try:
            msg = sccp.decode(pd.data)
        except CodecError as exc:
            self.stats.sccp_undecodable += 1
            log.warning("undecodable SCCP from %s: %s", assoc, exc)
            return
        now = (self._loop or asyncio.get_running_loop()).time()
        kind = type(msg)
        if kind is sccp.Unitdata or kind is sccp.ExtendedUnitdata:
            events, replies = self.tm.receive(msg.data, now)
            for raw in replies:  # P-Aborts for unknown transactions
                try:
                    assoc.send(reply_data(pd, msg, raw))
                except Exception as exc:
                    log.debug("P-Abort not sent: %s", exc)
            for event in events:
                if type(event) is DialogueEnded:  # the hot path: the answer, in an End
                    dialogue = event.dialogue
                    p = dialogue.context
                    if type(p) is _Pending:
                        self._forget(dialogue)
                        self._answered(p, event.message.components)
                    continue
                self._event(event)
        else:  # UDTS/XUDTS: the network returned one of our Begins (Q.713 §4.11)
            self._returned(msg, now)
        if self._timer is None:
            self._arm_timer()  # (every _begin arms it; this only covers a timer not yet set)

    def _returned(self, msg: sccp.UnitdataService | sccp.ExtendedUnitdataService,
                  now: float) -> None:
        try:
            begin = tcap.decode(msg.data)
        except CodecError:
            return
        otid = getattr(begin, "otid", None)
        dialogue = self.tm.find(otid) if otid is not None else None
        if dialogue is None or not isinstance(dialogue.context, _Pending):
            return
        self.tm.abort_dialogues([dialogue], now, "returned by SCCP")
        self._forget(dialogue)
        self._fail(dialogue.context, FailureKind.SCCP_RETURN,
                   f"SCCP returned the message: {sccp.ReturnCause(msg.cause).name}",
                   int(msg.cause))

    def _event(self, event: object) -> None:
        dialogue: Dialogue = getattr(event, "dialogue", None)
        p = getattr(dialogue, "context", None)
        if not isinstance(p, _Pending):
            return
        kind = type(event)
        if kind is DialogueEnded:
            self._forget(dialogue)
            self._answered(p, event.message.components)
        elif kind is DialogueContinued:
            final = [c for c in event.message.components
                     if type(c) in (tcap.ReturnResultLast, tcap.ReturnError, tcap.Reject)]
            if final:  # answered in a Continue: take it and close our side
                now = asyncio.get_running_loop().time()
                self._send_end(dialogue, now)
                self._answered(p, final)
        elif kind is DialogueAborted:
            self._forget(dialogue)
            self._aborted(p, event)
        elif kind is DialogueTimedOut:
            self._forget(dialogue)
            self._fail(p, FailureKind.TIMEOUT, f"no answer within {p.timeout or self.timer_m} s")

    def _send_end(self, dialogue: Dialogue, now: float) -> None:
        p: _Pending = dialogue.context
        self._forget(dialogue)
        data = self.tm.end(dialogue, None, [], now)
        try:
            p.association.send(protocol_data(p.route.opc, p.route.dpc, p.route.ni,
                                             dialogue.local_id, unitdata(p.called, p.calling,
                                                                         data, False)))
        except Exception as exc:
            log.debug("End not sent: %s", exc)

    def _answered(self, p: _Pending, components: list[tcap.Component]) -> None:
        for c in components:
            kind = type(c)
            try:
                if kind is tcap.ReturnResultLast:
                    if c.parameter is None:
                        break
                    value = map_.decode_result(p.operation, c.parameter, p.version)
                    self.stats.results += 1
                    _resolve(p, MapResult(p.operation, value, p.version, p.route.name))
                    return
                if kind is tcap.ReturnError:
                    err = map_.decode_error(c.error_code, c.parameter, p.version)
                    self.stats.user_errors += 1
                    _resolve(p, _user_error(p, err))
                    return
            except CodecError as exc:
                self._fail(p, FailureKind.PROTOCOL, f"answer did not decode: {exc}")
                return
            if kind is tcap.Reject:
                self._fail(p, FailureKind.REJECT,
                           f"component rejected: {c.problem_type.name} {_name(c.problem)}",
                           int(c.problem))
                return
        self._fail(p, FailureKind.PROTOCOL, "the dialogue ended without a result or error")

    def _aborted(self, p: _Pending, event: DialogueAborted) -> None:
        proposed = refused_context(event)
        if proposed is not None:
            found = map_.lookup_context(proposed)
            version = found[1] if found else None
            if version is not None and version < p.version and not p.retried:
                # TS 29.002 §15.2.4: retry once with the version the peer offers
                self._versions[(p.route.name, p.operation)] = version
                self.stats.fallbacks += 1
                p.version, p.retried = version, True
                self._begin(p, asyncio.get_running_loop().time())
                return
            self._fail(p, FailureKind.CONTEXT_REFUSED,
                       f"application context v{p.version} refused, peer proposed {proposed}")
            return
        if event.reason is not None:  # decided by our transaction manager: malformed answer
            self._fail(p, FailureKind.PROTOCOL, event.reason)
        elif event.p_abort_cause is not None:
            self._fail(p, FailureKind.PROVIDER_ABORT,
                       f"P-Abort: {_name(event.p_abort_cause)}", int(event.p_abort_cause))
        else:
            pdu = event.dialogue_pdu
            why = f" ({pdu.abort_source.name})" if isinstance(pdu, tcap.DialogueAbort) else ""
            self._fail(p, FailureKind.ABORT, f"aborted by the peer{why}")

    def _association_lost(self, linkset, assoc) -> None:
        otids = self._by_association.pop(assoc, None)
        if not otids:
            return
        loop = self._loop or asyncio.get_event_loop()
        reason = f"association {assoc.name} lost"
        for event in self.tm.abort_dialogues(list(otids), loop.time(), reason):
            p = getattr(event.dialogue, "context", None)
            if isinstance(p, _Pending):  # the dialogues it carried fail at once
                self._fail(p, FailureKind.LINK_DOWN, reason)

    # ------------------------------------------------------------------ helpers

    def _forget(self, dialogue: Dialogue) -> None:
        p = dialogue.context
        ids = self._by_association.get(getattr(p, "association", None))
        if ids is not None:
            ids.discard(dialogue.otid)

    def _fail(self, p: _Pending, kind: FailureKind, detail: str, cause: int | None = None
              ) -> None:
        self.stats.failures[kind.value] = self.stats.failures.get(kind.value, 0) + 1
        _resolve(p, MapFailure(p.operation, kind, detail, p.version, p.route.name, cause))

    def _arm_timer(self) -> None:
        at = self.tm.get_timer()
        if at is None or (self._timer_at is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = (self._loop or asyncio.get_running_loop()).call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        now = (self._loop or asyncio.get_event_loop()).time()
        events, aborts = self.tm.handle_timer(now)
        for dialogue, data in aborts:  # U-Aborts toward peers that knew our transaction
            p = dialogue.context
            try:
                p.association.send(protocol_data(p.route.opc, p.route.dpc, p.route.ni,
                                                 dialogue.local_id,
                                                 unitdata(p.called, p.calling, data, False)))
            except Exception as exc:
                log.debug("U-Abort not sent: %s", exc)
        for event in events:
            self._event(event)
        self._arm_timer()


def _resolve(p: _Pending, outcome: MapOutcome) -> None:
    if not p.future.done():
        p.future.set_result(outcome)


def _name(code: int) -> str:
    return getattr(code, "name", str(code))


def _user_error(p: _Pending, err: map_.MapError) -> MapUserError:
    code = err.code
    name = code.name.lower() if isinstance(code, ErrorCode) else f"error_{code}"
    diagnostic = None
    for attr in _DIAGNOSTICS:
        value = getattr(err.param, attr, None)
        if value is not None:
            diagnostic = _name(value).lower()
            break
    return MapUserError(p.operation, int(code), name, err.param, diagnostic, p.version,
                        p.route.name)
